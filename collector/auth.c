/*
 * The shared token of a mesh and the challenge-response that proves it.
 * Both ends send a fresh nonce; each answers with an HMAC-SHA-256, keyed by
 * a hash of the token, over its role and both nonces. The token itself never
 * travels, a recorded exchange cannot be replayed, and either end that
 * lacks the token is found out before anything else is accepted.
 */

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "collector.h"

/* Shortest token accepted, in bytes. */
#define AUTH_TOKEN_MIN	16
/* Longest token file read. */
#define AUTH_TOKEN_MAX	4096

static unsigned char	auth_key[crypto_auth_hmacsha256_KEYBYTES];
static int		auth_ready;

int
auth_load(const char *path, char **cause)
{
	char		buf[AUTH_TOKEN_MAX + 1];
	struct stat	sb;
	ssize_t		n;
	size_t		len = 0;
	int		fd;

	if (sodium_init() < 0) {
		xasprintf(cause, "cannot initialise libsodium");
		return (-1);
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		xasprintf(cause, "token file %s: %s", path, strerror(errno));
		return (-1);
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		xasprintf(cause, "token file %s is not a regular file", path);
		goto fail;
	}
	if (sb.st_uid != geteuid() && sb.st_uid != 0) {
		xasprintf(cause, "token file %s belongs to uid %lu, not to "
		    "this user", path, (unsigned long)sb.st_uid);
		goto fail;
	}
	if ((sb.st_mode & 077) != 0) {
		xasprintf(cause, "token file %s can be read by others (mode "
		    "%04o); chmod 600 it", path, (unsigned)(sb.st_mode & 07777));
		goto fail;
	}
	while (len < sizeof buf) {
		n = read(fd, buf + len, sizeof buf - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			xasprintf(cause, "token file %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > AUTH_TOKEN_MAX) {
		xasprintf(cause, "token file %s is longer than %d bytes", path,
		    AUTH_TOKEN_MAX);
		goto fail;
	}
	/* A trailing newline from an editor or echo is not part of it. */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
	    buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	if (len < AUTH_TOKEN_MIN) {
		xasprintf(cause, "token file %s holds %zu bytes; a token needs "
		    "at least %d (for example: head -c 32 /dev/urandom | "
		    "base64 > FILE)", path, len, AUTH_TOKEN_MIN);
		goto fail;
	}
	crypto_generichash(auth_key, sizeof auth_key, (unsigned char *)buf,
	    len, NULL, 0);
	sodium_memzero(buf, sizeof buf);
	auth_ready = 1;
	close(fd);
	return (0);
fail:
	sodium_memzero(buf, sizeof buf);
	close(fd);
	return (-1);
}

int
auth_loaded(void)
{
	return (auth_ready);
}

void
auth_nonce(char hex[AUTH_HEX])
{
	unsigned char	n[AUTH_BYTES];

	randombytes_buf(n, sizeof n);
	sodium_bin2hex(hex, AUTH_HEX, n, sizeof n);
}

/* HMAC-SHA-256 keyed by the token's hash over role and both nonces. */
static void
auth_mac(unsigned char mac[crypto_auth_hmacsha256_BYTES], const char *role,
    const char *first, const char *second)
{
	crypto_auth_hmacsha256_state	st;

	crypto_auth_hmacsha256_init(&st, auth_key, sizeof auth_key);
	/* Lengths are fixed except the role's, which ends with its NUL. */
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)role,
	    strlen(role) + 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)first,
	    AUTH_HEX - 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)second,
	    AUTH_HEX - 1);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof st);
}

void
auth_proof(char hex[AUTH_HEX], const char *role, const char *first,
    const char *second)
{
	unsigned char	mac[crypto_auth_hmacsha256_BYTES];

	auth_mac(mac, role, first, second);
	sodium_bin2hex(hex, AUTH_HEX, mac, sizeof mac);
}

int
auth_check(const char *proof, const char *role, const char *first,
    const char *second)
{
	char	want[AUTH_HEX];

	if (proof == NULL || strlen(proof) != AUTH_HEX - 1 ||
	    first == NULL || strlen(first) != AUTH_HEX - 1 ||
	    second == NULL || strlen(second) != AUTH_HEX - 1)
		return (-1);
	auth_proof(want, role, first, second);
	return (sodium_memcmp(want, proof, AUTH_HEX - 1) == 0 ? 0 : -1);
}

int
auth_valid_nonce(const char *hex)
{
	size_t	i;

	if (hex == NULL || strlen(hex) != AUTH_HEX - 1)
		return (0);
	for (i = 0; i < AUTH_HEX - 1; i++) {
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		    (hex[i] >= 'a' && hex[i] <= 'f')))
			return (0);
	}
	return (1);
}

void
auth_session_key(unsigned char key[SEAL_KEY], const char *role,
    const char *nonce_r, const char *nonce_s)
{
	/* As a proof, but for a role no proof uses, and never sent. */
	auth_mac(key, role, nonce_r, nonce_s);
}
