/*
 * libFuzzer target: what a relay link reads, through the collector's own
 * link code with every module linked, on a socket pair. The first byte
 * chooses where the input goes:
 *   even: straight after the connection (before authentication: anyone
 *         on the network can send this);
 *   odd:  after a real handshake with the token (a relay that holds the
 *         token: events, record batches, control frames), sealed with the
 *         session's key as a relay seals them.
 * Nothing may crash, leak or be read past a frame.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "collector/collector.h"
#include "whole.h"


static const char	token[] = "0123456789abcdef0123456789abcdef";

/* Plaintext per sealed record the harness writes. */
#define SEAL_CHUNK	16384

/* Write a frame of type with the JSON text s to fd. */
static void
send_frame(int fd, int type, uint64_t seq, const char *s)
{
	char	hdr[WIRE_HDR];

	wire_header(hdr, type, seq, strlen(s));
	if (write(fd, hdr, sizeof hdr) != (ssize_t)sizeof hdr ||
	    write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		abort();
}

/* The next handshake frame the collector sent on fd, parsed; or NULL. */
static json_t *
read_frame(int fd, struct evbuffer *in)
{
	struct wire_frame	 f;
	const char		*cause;
	json_t			*o;
	char			 buf[4096];
	ssize_t			 n;
	int			 i;

	for (i = 0; i < 100; i++) {
		if (wire_next(in, 1 << 16, &f, &cause) == 1) {
			o = wire_json(&f);
			wire_done(in, &f);
			return (o);
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		if ((n = read(fd, buf, sizeof buf)) > 0)
			evbuffer_add(in, buf, (size_t)n);
	}
	return (NULL);
}

/* The key this input's frames are sealed with, after the handshake. */
static unsigned char	to_root[SEAL_KEY];

/* Authenticate as a relay over fd, as upstream.c does. 0, or -1. */
static int
handshake(int fd)
{
	struct evbuffer	*in = evbuffer_new();
	char		 nonce[AUTH_HEX], name[AUTH_HEX], proof[AUTH_HEX];
	char		 msg[512];
	const char	*their;
	json_t		*o;
	int		 rc = -1;

	auth_nonce(nonce);
	auth_nonce(name);
	snprintf(msg, sizeof msg, "{\"type\":\"relay_hello\",\"proto\":%d,"
	    "\"nonce\":\"%s\"}", WIRE_PROTO, nonce);
	send_frame(fd, WIRE_HELLO, 0, msg);
	if ((o = read_frame(fd, in)) == NULL)
		goto out;
	their = json_string_value(json_object_get(o, "nonce"));
	if (their == NULL || auth_check(json_string_value(json_object_get(o,
	    "proof")), "root", nonce, their) != 0)
		abort();	/* the root must prove the token too */
	auth_proof(proof, "relay", their, nonce);
	auth_session_key(to_root, "link to root", nonce, their);
	json_decref(o);
	snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"proof\":\"%s\","
	    "\"relay\":\"%s\",\"host\":\"fuzzhost\",\"pid\":1}", proof, name);
	send_frame(fd, WIRE_HELLO, 0, msg);
	if ((o = read_frame(fd, in)) == NULL)
		goto out;
	if (strcmp(json_string_value(json_object_get(o, "type")) != NULL ?
	    json_string_value(json_object_get(o, "type")) : "", "accepted") != 0)
		abort();
	json_decref(o);
	rc = 0;
out:
	evbuffer_free(in);
	return (rc);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	 path[] = "/tmp/meshlog-fuzz-token.XXXXXX", *cause = NULL;
	int	 fd;

	(void)argc;
	(void)argv;
	fuzz_whole_init();
	if ((fd = mkstemp(path)) == -1 ||
	    write(fd, token, sizeof token - 1) != (ssize_t)sizeof token - 1)
		abort();
	close(fd);
	if (auth_load(path, &cause) != 0) {
		fprintf(stderr, "fuzz_link: %s\n", cause);
		abort();
	}
	unlink(path);
	control_init();
	return (0);
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static unsigned char	sealed[SEAL_CHUNK + 64];
	struct sockaddr_un	sa = { .sun_family = AF_UNIX };
	char			buf[4096];
	size_t			off, len;
	uint64_t		n;
	int			sv[2], i;

	if (size == 0)
		return (0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	(void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(sv[1], F_SETFL, O_NONBLOCK);
	link_adopt(sv[0], (struct sockaddr *)&sa);
	if (!(data[0] & 1)) {
		/* What fits the socket buffer; the rest is not this input's. */
		(void)write(sv[1], data + 1, size - 1);
	} else {
		if (handshake(sv[1]) != 0)
			abort();
		for (off = 1, n = 0; off < size; off += len) {
			len = size - off < SEAL_CHUNK ? size - off : SEAL_CHUNK;
			(void)write(sv[1], sealed, seal_record(to_root, n++,
			    data + off, len, sealed));
		}
	}
	for (i = 0; i < 8; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		while (read(sv[1], buf, sizeof buf) > 0)
			;
	}
	close(sv[1]);
	for (i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	/* Each input a fresh start: no relay or link carried over. */
	link_close_all();
	return (0);
}
