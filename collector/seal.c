/*
 * Sealed relay links. Once the token handshake is done, everything a
 * link carries either way travels in records of at most SEAL_MAX bytes,
 * each encrypted and authenticated with XChaCha20-Poly1305 (libsodium):
 * a 4-byte big-endian length, then the ciphertext and its tag. Each
 * direction has its own key, derived from the token and both handshake
 * nonces (auth_session_key), and counts its records in the nonce, so a
 * record cannot be read without the token, changed, replayed, dropped or
 * moved without the link failing. The frames inside are the same as
 * before; a libevent filter does the sealing, so the code above it does
 * not change.
 */

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <sodium.h>

#include "collector.h"

/* Plaintext bytes per sealed record, at most. */
#define SEAL_MAX	(64 * 1024)
#define SEAL_TAG	crypto_aead_xchacha20poly1305_ietf_ABYTES
/* Room made at once for opened records, so that several follow each other
 * in one piece of the reader's buffer (a frame across two records is then
 * read where it lies, not copied together). */
#define SEAL_ROOM	(256 * 1024 - 1024)

struct seal {
	unsigned char	key_out[SEAL_KEY];
	unsigned char	key_in[SEAL_KEY];
	uint64_t	n_out;		/* records sealed so far */
	uint64_t	n_in;		/* records opened so far */
	size_t		room;		/* left after the last one opened */
	unsigned char	buf[4 + SEAL_MAX + SEAL_TAG];
};

/* The nonce of record n: its number, little-endian, then zeros. */
static void
seal_nonce(unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES],
    uint64_t n)
{
	int	i;

	memset(nonce, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	for (i = 0; i < 8; i++)
		nonce[i] = (unsigned char)(n >> (8 * i));
}

size_t
seal_record(const unsigned char key[SEAL_KEY], uint64_t n,
    const void *plain, size_t len, unsigned char *out)
{
	unsigned char		nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long	clen;
	uint32_t		be = htobe32((uint32_t)(len + SEAL_TAG));

	seal_nonce(nonce, n);
	memcpy(out, &be, 4);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 4, &clen, plain,
	    len, NULL, 0, NULL, nonce, key);
	return (4 + (size_t)clen);
}

/* Sealed records from src to plaintext in dst, as many as are whole. */
static enum bufferevent_filter_result
seal_in_cb(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct seal		*s = arg;
	unsigned char		 nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long	 plen;
	struct evbuffer_iovec	 v;
	uint32_t		 be;
	size_t			 len, want;
	unsigned char		*p;
	int			 got = 0;

	(void)limit;
	(void)mode;
	while (evbuffer_get_length(src) >= 4) {
		evbuffer_copyout(src, &be, 4);
		len = be32toh(be);
		if (len < SEAL_TAG || len > SEAL_MAX + SEAL_TAG)
			return (BEV_ERROR);
		if (evbuffer_get_length(src) < 4 + len)
			break;
		if ((p = evbuffer_pullup(src, (ev_ssize_t)(4 + len))) == NULL)
			return (BEV_ERROR);
		/*
		 * Opened where the reader takes it from: no copy after. Right
		 * after the record before it while that piece has room (an
		 * emptied buffer has let go of its pieces), else in a new
		 * piece with room for more.
		 */
		want = len - SEAL_TAG;
		if (evbuffer_get_length(dst) == 0)
			s->room = 0;
		if (want > s->room && want < SEAL_ROOM)
			want = SEAL_ROOM;
		if (evbuffer_reserve_space(dst, (ev_ssize_t)want, &v, 1) != 1)
			return (BEV_ERROR);
		seal_nonce(nonce, s->n_in);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(v.iov_base,
		    &plen, NULL, p + 4, len, NULL, 0, nonce, s->key_in) != 0)
			return (BEV_ERROR);	/* forged, changed or moved */
		s->n_in++;
		s->room = v.iov_len - (size_t)plen;
		v.iov_len = (size_t)plen;
		if (evbuffer_commit_space(dst, &v, 1) != 0)
			return (BEV_ERROR);
		evbuffer_drain(src, 4 + len);
		got = 1;
	}
	return (got ? BEV_OK : BEV_NEED_MORE);
}

/* Plaintext from src sealed into dst, all of it. */
static enum bufferevent_filter_result
seal_out_cb(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct seal	*s = arg;
	size_t		 len, n;
	unsigned char	*p;

	(void)limit;
	(void)mode;
	while ((len = evbuffer_get_length(src)) > 0) {
		if (len > SEAL_MAX)
			len = SEAL_MAX;
		if ((p = evbuffer_pullup(src, (ev_ssize_t)len)) == NULL)
			return (BEV_ERROR);
		n = seal_record(s->key_out, s->n_out++, p, len, s->buf);
		evbuffer_add(dst, s->buf, n);
		evbuffer_drain(src, len);
	}
	return (BEV_OK);
}

static void
seal_free(void *arg)
{
	struct seal	*s = arg;

	sodium_memzero(s, sizeof *s);
	free(s);
}

struct bufferevent *
seal_wrap(struct bufferevent *under, const unsigned char key_out[SEAL_KEY],
    const unsigned char key_in[SEAL_KEY])
{
	struct bufferevent	*bev;
	struct seal		*s = xcalloc(1, sizeof *s);

	memcpy(s->key_out, key_out, SEAL_KEY);
	memcpy(s->key_in, key_in, SEAL_KEY);
	bev = bufferevent_filter_new(under, seal_in_cb, seal_out_cb,
	    BEV_OPT_CLOSE_ON_FREE, seal_free, s);
	if (bev == NULL)
		fatalx("out of memory for a sealed link");
	/* Bytes that came with the last clear message are sealed ones. */
	if (evbuffer_get_length(bufferevent_get_input(under)) > 0)
		bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
	return (bev);
}
