/*
 * Frames between collectors: what goes out comes back the same; a frame
 * that is not all there yet waits; one too long, of an unknown type, or a
 * record batch cut short is refused, never read past its end.
 */

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "collector/collector.h"

struct config		 cfg;
struct event_base	*base;

Test(wire, a_json_frame_comes_back_the_same)
{
	struct evbuffer		*b = evbuffer_new();
	struct wire_frame	 f;
	const char		*cause = NULL;
	json_t			*m = json_pack("{s:s, s:i}", "type", "ack",
				    "seq", 42), *o;

	wire_send_json(b, WIRE_CONTROL, 7, m);
	cr_assert_eq(wire_next(b, WIRE_CONTROL_MAX, &f, &cause), 1);
	cr_assert_eq(f.type, WIRE_CONTROL);
	cr_assert_eq(f.seq, 7);
	o = wire_json(&f);
	cr_assert(json_equal(o, m));
	wire_done(b, &f);
	cr_assert_eq(evbuffer_get_length(b), 0);
	json_decref(o);
	json_decref(m);
	evbuffer_free(b);
}

Test(wire, a_frame_not_all_there_waits)
{
	struct evbuffer		*b = evbuffer_new();
	struct wire_frame	 f;
	const char		*cause = NULL;
	char			 hdr[WIRE_HDR];

	wire_header(hdr, WIRE_EVENT, 1, 10);
	evbuffer_add(b, hdr, 5);
	cr_assert_eq(wire_next(b, 100, &f, &cause), 0, "half a header");
	evbuffer_add(b, hdr + 5, WIRE_HDR - 5);
	cr_assert_eq(wire_next(b, 100, &f, &cause), 0, "no body");
	evbuffer_add(b, "{\"a\":1234", 9);
	cr_assert_eq(wire_next(b, 100, &f, &cause), 0, "9 of 10 bytes");
	evbuffer_add(b, "}", 1);
	cr_assert_eq(wire_next(b, 100, &f, &cause), 1);
	cr_assert_eq(f.len, 10);
	cr_assert_eq(memcmp(f.body, "{\"a\":1234}", 10), 0);
	cr_assert_null(cause);
	evbuffer_free(b);
}

Test(wire, too_long_and_unknown_frames_are_refused_from_the_header)
{
	struct evbuffer		*b = evbuffer_new();
	struct wire_frame	 f;
	const char		*cause = NULL;
	char			 hdr[WIRE_HDR];

	/* Refused before the body arrives: nothing is buffered for it. */
	wire_header(hdr, WIRE_HELLO, 0, WIRE_PRE_AUTH_MAX + 1);
	evbuffer_add(b, hdr, sizeof hdr);
	cr_assert_eq(wire_next(b, WIRE_PRE_AUTH_MAX, &f, &cause), -1);
	cr_assert_not_null(cause);
	evbuffer_drain(b, evbuffer_get_length(b));
	wire_header(hdr, 'Z', 0, 1);
	evbuffer_add(b, hdr, sizeof hdr);
	cause = NULL;
	cr_assert_eq(wire_next(b, WIRE_FRAME_MAX, &f, &cause), -1);
	cr_assert_not_null(cause);
	/* A length of 2^32 - 1 with a large bound is still only a length. */
	evbuffer_drain(b, evbuffer_get_length(b));
	wire_header(hdr, WIRE_RECORDS, 1, 0xffffffffU);
	evbuffer_add(b, hdr, sizeof hdr);
	cr_assert_eq(wire_next(b, WIRE_FRAME_MAX, &f, &cause), -1);
	evbuffer_free(b);
}

Test(wire, records_round_trip_and_a_cut_batch_is_refused)
{
	struct wire_rec	 r = { 5, MESHLOG_STDERR, SPLIT_PARTIAL, 9, 1234567,
			    "bytes\0and\xff", 10 }, got;
	char		 buf[2 * (WIRE_REC_HDR + 10)];
	const char	*p;
	size_t		 n, left;

	n = wire_record(buf, &r);
	n += wire_record(buf + n, &r);
	cr_assert_eq(n, sizeof buf);
	p = buf;
	left = n;
	cr_assert_eq(wire_record_next(&p, &left, &got), 1);
	cr_assert_eq(got.source, 5);
	cr_assert_eq(got.which, MESHLOG_STDERR);
	cr_assert_eq(got.flags, SPLIT_PARTIAL);
	cr_assert_eq(got.seq, 9);
	cr_assert_eq(got.ts_us, 1234567);
	cr_assert_eq(got.len, 10);
	cr_assert_eq(memcmp(got.line, r.line, 10), 0);
	cr_assert_eq(wire_record_next(&p, &left, &got), 1);
	cr_assert_eq(wire_record_next(&p, &left, &got), 0);
	/* Cut inside the header, and inside the line. */
	p = buf;
	left = WIRE_REC_HDR - 1;
	cr_assert_eq(wire_record_next(&p, &left, &got), -1);
	p = buf;
	left = WIRE_REC_HDR + 9;
	cr_assert_eq(wire_record_next(&p, &left, &got), -1);
	/* A stream that is neither stdout nor stderr. */
	buf[8] = 2;
	p = buf;
	left = n;
	cr_assert_eq(wire_record_next(&p, &left, &got), -1);
}

/* A time is taken while its nanoseconds fit in the record's ts_ns. */
Test(wire, a_record_from_past_the_year_2554_is_refused)
{
	struct wire_rec	 r = { 5, MESHLOG_STDOUT, 0, 9, UINT64_MAX / 1000,
			    "late", 4 }, got;
	char		 buf[WIRE_REC_HDR + 4];
	const char	*p = buf;
	size_t		 left;

	left = wire_record(buf, &r);
	cr_assert_eq(wire_record_next(&p, &left, &got), 1);
	cr_assert_eq(got.ts_us, UINT64_MAX / 1000);
	r.ts_us++;
	p = buf;
	left = wire_record(buf, &r);
	cr_assert_eq(wire_record_next(&p, &left, &got), -1);
	r.ts_us = UINT64_MAX;
	p = buf;
	left = wire_record(buf, &r);
	cr_assert_eq(wire_record_next(&p, &left, &got), -1);
}

/* Only this collector's splitter may call a line plain (copied unescaped). */
Test(wire, a_peer_cannot_mark_a_line_plain)
{
	struct wire_rec	 r = { 5, MESHLOG_STDOUT, SPLIT_PLAIN | SPLIT_PARTIAL,
			    9, 1234567, "a \"quote\"", 9 }, got;
	char		 buf[WIRE_REC_HDR + 9];
	const char	*p = buf;
	size_t		 left;

	left = wire_record(buf, &r);
	cr_assert_eq(wire_record_next(&p, &left, &got), 1);
	cr_assert_eq(got.flags, SPLIT_PARTIAL);
}

Test(wire, a_json_frame_that_is_not_an_object_is_refused)
{
	struct wire_frame	f = { WIRE_CONTROL, 0, "[1,2]", 5 };

	cr_assert_null(wire_json(&f));
	f.body = "{\"a\":";
	cr_assert_null(wire_json(&f));
}

Test(wire, host_and_port)
{
	char	*h, *p;

	cr_assert_eq(wire_split_hostport("10.0.0.1:7000", &h, &p), 0);
	cr_assert_str_eq(h, "10.0.0.1");
	cr_assert_str_eq(p, "7000");
	free(h);
	free(p);
	cr_assert_eq(wire_split_hostport("[::1]:80", &h, &p), 0);
	cr_assert_str_eq(h, "::1");
	free(h);
	free(p);
	cr_assert_eq(wire_split_hostport("host", &h, &p), -1);
	cr_assert_eq(wire_split_hostport("host:", &h, &p), -1);
	cr_assert_eq(wire_split_hostport("host:70000", &h, &p), -1);
	cr_assert_eq(wire_split_hostport("host:7x", &h, &p), -1);
	cr_assert_eq(wire_split_hostport("[::1]7000", &h, &p), -1);
}

/*
 * A sealed link over a pair of bufferevents: writes of every size, each
 * sealed as it is written (in records of 64 KiB at most), come out of the
 * other end the same bytes, in order, as the reader drains them at odd
 * points (an emptied input lets go of its pieces).
 */
static void
sealed_pair(struct event_base *eb, struct bufferevent **a,
    struct bufferevent **b)
{
	struct bufferevent	*pair[2];
	unsigned char		 k1[SEAL_KEY], k2[SEAL_KEY];

	memset(k1, 0x11, sizeof k1);
	memset(k2, 0x22, sizeof k2);
	cr_assert_eq(bufferevent_pair_new(eb, 0, pair), 0);
	*a = seal_wrap(pair[0], k1, k2);
	*b = seal_wrap(pair[1], k2, k1);
	bufferevent_enable(*a, EV_READ | EV_WRITE);
	bufferevent_enable(*b, EV_READ | EV_WRITE);
}

Test(wire, sealed_writes_open_to_the_same_bytes)
{
	static unsigned char	 sent[8 << 20], got[200 * 1024];
	struct event_base	*eb = event_base_new();
	struct bufferevent	*a, *b;
	struct evbuffer		*in;
	size_t			 off = 0, back = 0, n, i, d;
	unsigned		 seed = 5;

	sealed_pair(eb, &a, &b);
	in = bufferevent_get_input(b);
	for (i = 0; i < sizeof sent; i++)
		sent[i] = (unsigned char)rand_r(&seed);
	while (off < sizeof sent) {
		n = (size_t)rand_r(&seed) % (rand_r(&seed) % 4 == 0 ?
		    200 * 1024 : 3000) + 1;
		if (n > sizeof sent - off)
			n = sizeof sent - off;
		cr_assert_eq(bufferevent_write(a, sent + off, n), 0);
		off += n;
		event_base_loop(eb, EVLOOP_NONBLOCK);
		/* Drain some, all, or none of what came. */
		d = evbuffer_get_length(in);
		if (rand_r(&seed) % 3 == 0)
			d = (size_t)rand_r(&seed) % (d + 1);
		if (d > sizeof got)
			d = sizeof got;
		cr_assert_eq(evbuffer_remove(in, got, d), (int)d);
		cr_assert(memcmp(got, sent + back, d) == 0, "at %zu", back);
		back += d;
	}
	while (back < sizeof sent) {
		event_base_loop(eb, EVLOOP_NONBLOCK);
		d = evbuffer_get_length(in);
		cr_assert_gt(d, 0, "%zu bytes never came", sizeof sent - back);
		if (d > sizeof got)
			d = sizeof got;
		cr_assert_eq(evbuffer_remove(in, got, d), (int)d);
		cr_assert(memcmp(got, sent + back, d) == 0, "at %zu", back);
		back += d;
	}
	bufferevent_free(a);
	bufferevent_free(b);
	event_base_free(eb);
}

/*
 * Records opened one after another lie in one piece of the reader's
 * buffer: a frame across two of them is read where it is, not copied.
 */
Test(wire, opened_records_follow_each_other_in_one_piece)
{
	static char		 chunk[3000];
	struct event_base	*eb = event_base_new();
	struct bufferevent	*a, *b;
	struct evbuffer		*in;
	int			 i;

	sealed_pair(eb, &a, &b);
	in = bufferevent_get_input(b);
	memset(chunk, 'x', sizeof chunk);
	for (i = 0; i < 50; i++) {
		cr_assert_eq(bufferevent_write(a, chunk, sizeof chunk), 0);
		event_base_loop(eb, EVLOOP_NONBLOCK);
	}
	cr_assert_eq(evbuffer_get_length(in), 50 * sizeof chunk);
	cr_assert_eq(evbuffer_get_contiguous_space(in), 50 * sizeof chunk,
	    "in pieces: %zu of %zu bytes in the first",
	    evbuffer_get_contiguous_space(in), 50 * sizeof chunk);
	bufferevent_free(a);
	bufferevent_free(b);
	event_base_free(eb);
}
