/*
 * Frames between collectors (a relay and its upstream). Every frame has a
 * 13-byte header: body length (32 bits), type (one byte) and a sequence
 * number (64 bits, 0 when the frame is not sequenced), all big-endian.
 * Record batches carry each record as a fixed header and the raw line,
 * so a line travels as its bytes and is escaped once, at the end.
 */

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "collector.h"

void
wire_header(char *dst, int type, uint64_t seq, size_t len)
{
	uint32_t	l = htobe32((uint32_t)len);
	uint64_t	s = htobe64(seq);

	memcpy(dst, &l, 4);
	dst[4] = (char)type;
	memcpy(dst + 5, &s, 8);
}

int
wire_next(struct evbuffer *in, size_t max, struct wire_frame *f,
    const char **cause)
{
	unsigned char	hdr[WIRE_HDR];
	uint32_t	l;
	uint64_t	s;

	if (evbuffer_copyout(in, hdr, sizeof hdr) < (ev_ssize_t)sizeof hdr)
		return (0);
	memcpy(&l, hdr, 4);
	memcpy(&s, hdr + 5, 8);
	f->len = be32toh(l);
	f->type = hdr[4];
	f->seq = be64toh(s);
	if (f->len > max) {
		*cause = "frame too long (not a meshlog relay?)";
		return (-1);
	}
	if (f->type != WIRE_HELLO && f->type != WIRE_CONTROL &&
	    f->type != WIRE_EVENT && f->type != WIRE_RECORDS) {
		*cause = "unknown frame type (not a meshlog relay?)";
		return (-1);
	}
	if (evbuffer_get_length(in) < WIRE_HDR + f->len)
		return (0);
	f->body = (const char *)evbuffer_pullup(in, WIRE_HDR + f->len) +
	    WIRE_HDR;
	return (1);
}

void
wire_done(struct evbuffer *in, const struct wire_frame *f)
{
	evbuffer_drain(in, WIRE_HDR + f->len);
}

void
wire_send_json(struct evbuffer *out, int type, uint64_t seq, json_t *msg)
{
	char	*s = json_dumps(msg, JSON_COMPACT);
	char	 hdr[WIRE_HDR];
	size_t	 n;

	if (s == NULL)
		return;
	n = strlen(s);
	wire_header(hdr, type, seq, n);
	evbuffer_add(out, hdr, sizeof hdr);
	evbuffer_add(out, s, n);
	free(s);
}

json_t *
wire_json(const struct wire_frame *f)
{
	json_t	*o = json_loadb(f->body, f->len, 0, NULL);

	if (o != NULL && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return (o);
}

size_t
wire_record(char *dst, const struct wire_rec *r)
{
	uint64_t	v;
	uint32_t	l = htobe32((uint32_t)r->len);

	v = htobe64(r->source);
	memcpy(dst, &v, 8);
	dst[8] = (char)r->which;
	dst[9] = (char)r->flags;
	v = htobe64(r->seq);
	memcpy(dst + 10, &v, 8);
	v = htobe64(r->ts_us);
	memcpy(dst + 18, &v, 8);
	memcpy(dst + 26, &l, 4);
	memcpy(dst + WIRE_REC_HDR, r->line, r->len);
	return (WIRE_REC_HDR + r->len);
}

int
wire_record_next(const char **p, size_t *left, struct wire_rec *r)
{
	const char	*q = *p;
	uint64_t	 v;
	uint32_t	 l;

	if (*left == 0)
		return (0);
	if (*left < WIRE_REC_HDR)
		return (-1);
	memcpy(&v, q, 8);
	r->source = be64toh(v);
	r->which = (unsigned char)q[8];
	/* SPLIT_PLAIN is this collector's splitter's word, never a peer's. */
	r->flags = (unsigned char)q[9] & ~SPLIT_PLAIN;
	memcpy(&v, q + 10, 8);
	r->seq = be64toh(v);
	memcpy(&v, q + 18, 8);
	r->ts_us = be64toh(v);
	memcpy(&l, q + 26, 4);
	r->len = be32toh(l);
	/* A time whose nanoseconds (ts_ns) still fit in 64 bits: the year
	 * 2554 at most. */
	if (r->len > *left - WIRE_REC_HDR || r->which > 1 ||
	    r->ts_us > UINT64_MAX / 1000)
		return (-1);
	r->line = q + WIRE_REC_HDR;
	*p = q + WIRE_REC_HDR + r->len;
	*left -= WIRE_REC_HDR + r->len;
	return (1);
}

int
wire_split_hostport(const char *s, char **host, char **port)
{
	const char	*colon, *end;

	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return (-1);
		*host = xstrndup(s + 1, (size_t)(end - s - 1));
		colon = end + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return (-1);
		*host = xstrndup(s, (size_t)(colon - s));
	}
	if (colon[1] == '\0' || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1) || atol(colon + 1) > 65535) {
		free(*host);
		return (-1);
	}
	*port = xstrdup(colon + 1);
	return (0);
}
