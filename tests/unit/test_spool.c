/*
 * The relay's spool: frames come back out as they went in, numbered;
 * chunks move to disk past the memory bound and come back from it;
 * acknowledgements free what they cover and nothing more; past both
 * bounds nothing is admitted; a new link resends from the first chunk
 * not acknowledged.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <event2/buffer.h>

#include "collector/collector.h"

struct config		 cfg;
struct event_base	*base;

static char	 dir[] = "/tmp/meshlog-spool-test.XXXXXX";

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	rmdir(dir);
}

TestSuite(spool, .init = setup, .fini = teardown);

/* Spool record i of source 7: "line <i>", padded with x to pad bytes. */
static void
put(struct spool *sp, unsigned i, size_t pad)
{
	struct wire_rec	 r;
	char		 buf[4096];
	int		 n;

	cr_assert_lt(pad, sizeof buf);
	memset(buf, 'x', sizeof buf);
	n = snprintf(buf, sizeof buf, "line %u", i);
	buf[n] = ' ';
	r.source = 7;
	r.which = MESHLOG_STDOUT;
	r.flags = 0;
	r.seq = i;
	r.ts_us = 1000000ULL * i;
	r.line = buf;
	r.len = pad > (size_t)n ? pad : (size_t)n;
	cr_assert(spool_admit(sp, WIRE_REC_HDR + r.len + WIRE_HDR),
	    "record %u refused: %zu bytes in memory, %zu on disk", i,
	    sp->mem_bytes + sp->cur_len, sp->disk_bytes);
	spool_record(sp, &r);
}

/*
 * Read every frame in out: checks frame numbers run on from *frame + 1
 * and records on from *next; event frames are counted in *events.
 */
static void
take(struct evbuffer *out, uint64_t *frame, unsigned *next, int *events)
{
	struct wire_frame	 f;
	struct wire_rec		 r;
	const char		*cause, *p;
	char			 text[32];
	size_t			 left;
	unsigned		 i;

	while (wire_next(out, WIRE_FRAME_MAX, &f, &cause) == 1) {
		cr_assert_eq(f.seq, *frame + 1, "frame %llu after %llu",
		    (unsigned long long)f.seq, (unsigned long long)*frame);
		*frame = f.seq;
		if (f.type == WIRE_EVENT)
			(*events)++;
		else {
			cr_assert_eq(f.type, WIRE_RECORDS);
			p = f.body;
			left = f.len;
			while (wire_record_next(&p, &left, &r) == 1) {
				cr_assert_eq(r.seq, *next);
				/* The line is not NUL-terminated. */
				snprintf(text, sizeof text, "%.*s", (int)(r.len <
				    20 ? r.len : 20), r.line);
				cr_assert_eq(sscanf(text, "line %u", &i), 1);
				cr_assert_eq(i, *next);
				cr_assert_eq(r.source, 7);
				(*next)++;
			}
		}
		wire_done(out, &f);
	}
	cr_assert_eq(evbuffer_get_length(out), 0, "a partial frame is left");
}

Test(spool, frames_come_back_in_order_and_numbered)
{
	struct spool	 sp;
	struct evbuffer	*out = evbuffer_new();
	uint64_t	 frame = 0;
	unsigned	 next = 0, i;
	int		 events = 0;

	spool_init(&sp, dir, 1 << 20, 0);
	cr_assert(spool_empty(&sp));
	for (i = 0; i < 100; i++)
		put(&sp, i, 0);
	spool_event(&sp, "{\"event\":\"x\"}", 13);
	for (; i < 150; i++)
		put(&sp, i, 0);
	cr_assert(!spool_empty(&sp));
	cr_assert_eq(spool_send(&sp, out, 1 << 20), 0, "sent unsealed");
	cr_assert_eq(spool_seal(&sp), 1);
	cr_assert_eq(spool_seal(&sp), 0);
	cr_assert_eq(spool_send(&sp, out, 1 << 20), 1);
	take(out, &frame, &next, &events);
	/* Records, the event, records: three frames. */
	cr_assert_eq(frame, 3);
	cr_assert_eq(next, 150);
	cr_assert_eq(events, 1);
	cr_assert_eq(sp.next_seq, 3);
	spool_ack(&sp, 3);
	cr_assert(spool_empty(&sp));
	cr_assert_eq(sp.mem_bytes, 0);
	spool_free(&sp);
	evbuffer_free(out);
}

Test(spool, chunks_spill_to_disk_and_come_back_from_it)
{
	struct spool	 sp;
	struct evbuffer	*out = evbuffer_new();
	uint64_t	 frame = 0;
	unsigned	 next = 0, i;
	int		 events = 0;

	/* Memory for about two chunks of ~10 KiB; the rest goes to disk. */
	spool_init(&sp, dir, 24 * 1024, 1 << 20);
	for (i = 0; i < 100; i++) {
		put(&sp, i, 1000);
		if (i % 10 == 9)
			spool_seal(&sp);
	}
	cr_assert_eq(sp.nchunks, 10);
	cr_assert_gt(sp.disk_bytes, 0, "nothing spilled");
	cr_assert_leq(sp.mem_bytes + sp.cur_len, 24 * 1024);
	cr_assert_neq(sp.disk_fd, -1);
	/* The file is unnamed: the directory stays empty. */
	cr_assert_eq(rmdir(dir), 0, "the spool left a name in its directory");
	cr_assert_eq(spool_send(&sp, out, 1 << 20), 10);
	take(out, &frame, &next, &events);
	cr_assert_eq(next, 100);
	spool_ack(&sp, frame);
	cr_assert(spool_empty(&sp));
	cr_assert_eq(sp.disk_bytes, 0);
	cr_assert_eq(sp.disk_end, 0, "the file was not emptied");
	spool_free(&sp);
	evbuffer_free(out);
	cr_assert_eq(mkdir(dir, 0700), 0);
}

Test(spool, an_ack_frees_only_whole_chunks_it_covers)
{
	struct spool	 sp;
	unsigned	 i;
	size_t		 before;

	spool_init(&sp, dir, 1 << 20, 0);
	for (i = 0; i < 4; i++) {
		put(&sp, i, 100);
		spool_event(&sp, "{}", 2);
		spool_seal(&sp);
	}
	/* Four chunks of two frames each: 1-2, 3-4, 5-6, 7-8. */
	cr_assert_eq(sp.nchunks, 4);
	before = sp.mem_bytes;
	spool_ack(&sp, 3);	/* covers the first, half of the second */
	cr_assert_eq(sp.nchunks, 3);
	cr_assert_lt(sp.mem_bytes, before);
	cr_assert_eq(TAILQ_FIRST(&sp.chunks)->seq_lo, 3);
	spool_ack(&sp, 2);	/* older: changes nothing */
	cr_assert_eq(sp.nchunks, 3);
	cr_assert_eq(sp.acked, 3);
	spool_ack(&sp, 8);
	cr_assert(spool_empty(&sp));
	spool_free(&sp);
}

Test(spool, past_both_bounds_nothing_is_admitted)
{
	struct spool	sp;
	unsigned	i;

	spool_init(&sp, dir, 8 * 1024, 8 * 1024);
	for (i = 0; spool_admit(&sp, WIRE_REC_HDR + 1000 + WIRE_HDR); i++) {
		put(&sp, i, 1000);
		spool_seal(&sp);
		cr_assert_lt(i, 100, "the bounds do not hold");
	}
	cr_assert_gt(i, 8, "refused before both bounds were used");
	cr_assert_leq(sp.mem_bytes + sp.cur_len, 8 * 1024);
	cr_assert_leq(sp.disk_bytes, 8 * 1024);
	/* Once the upstream takes some, there is room again. */
	spool_ack(&sp, sp.next_seq);
	cr_assert(spool_admit(&sp, WIRE_REC_HDR + 1000 + WIRE_HDR));
	spool_free(&sp);
}

Test(spool, a_new_link_resends_from_the_first_chunk_not_acknowledged)
{
	struct spool	 sp;
	struct evbuffer	*out = evbuffer_new();
	uint64_t	 frame;
	unsigned	 next, i;
	int		 events = 0;

	spool_init(&sp, dir, 1 << 20, 0);
	for (i = 0; i < 30; i++) {
		put(&sp, i, 0);
		spool_seal(&sp);
	}
	/* A small window: the link takes a few chunks at a time. */
	cr_assert_lt(spool_send(&sp, out, 1), 30);
	while (spool_send(&sp, out, 1 << 20) > 0)
		;
	evbuffer_drain(out, evbuffer_get_length(out));
	/* Lost link: the upstream had taken frames up to 10. */
	spool_ack(&sp, 10);
	spool_rewind(&sp);
	cr_assert_eq(spool_send(&sp, out, 1 << 20), 20);
	frame = 10;
	next = 10;
	take(out, &frame, &next, &events);
	cr_assert_eq(next, 30);
	spool_free(&sp);
	evbuffer_free(out);
}

/*
 * The relay's link calls back into the spool while a chunk is being added
 * to it: a sealed link's filter passes the bytes on at once and its write
 * callback asks for more. Each chunk still goes out once (every frame was
 * sent twice, which the root took as duplicates: twice the bytes sealed,
 * sent and opened).
 */
static struct spool	*again_sp;

static void
send_again(struct evbuffer *out, const struct evbuffer_cb_info *info,
    void *arg)
{
	(void)arg;
	if (info->n_added > 0)
		(void)spool_send(again_sp, out, 1 << 20);
}

Test(spool, a_link_that_asks_for_more_while_it_takes_a_chunk_gets_it_once)
{
	struct spool	 sp;
	struct evbuffer	*out = evbuffer_new();
	uint64_t	 frame = 0;
	unsigned	 next = 0, i;
	int		 events = 0;

	spool_init(&sp, dir, 1 << 20, 0);
	again_sp = &sp;
	evbuffer_add_cb(out, send_again, NULL);
	for (i = 0; i < 5; i++) {
		put(&sp, i, 0);
		spool_seal(&sp);
	}
	(void)spool_send(&sp, out, 1 << 20);
	put(&sp, i++, 0);
	spool_seal(&sp);
	(void)spool_send(&sp, out, 1 << 20);
	take(out, &frame, &next, &events);
	cr_assert_eq(frame, 6, "frames out: up to %llu",
	    (unsigned long long)frame);
	cr_assert_eq(next, 6);
	spool_free(&sp);
	evbuffer_free(out);
}
