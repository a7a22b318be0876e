/*
 * Flushes: the versioned barrier (barrier.c) run over this collector's
 * participants. A participant is anything that holds records which a
 * flush must see through: a local source (its pipes) or a relay (its
 * host's sources). Each joins with two operations: drain, asked at the
 * start of every flush, and describe, for the reply when it did not make
 * it in time. A participant answers at once or later (flush_ack), leaves
 * when it has nothing left to drain (flush_leave), and a relay back on
 * its link is asked again for the barriers it still holds (flush_rejoin).
 *
 * When a barrier ends, pending console groups are printed and the JSON
 * log written before the answer goes out, so that a reader who waited
 * for the answer finds every line in both.
 */

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "collector.h"

/* A flush under way: its barrier and who gets the answer. */
struct pending {
	struct barrier		*b;
	reply_cb		 cb;
	void			*arg;
	long long		 t0;
	size_t			 n[2];		/* participants by kind */
	struct event		*timer;
	TAILQ_ENTRY(pending)	 entry;
};

RB_HEAD(flush_parts, flush_part);

static struct barriers		 bars = {
	0, TAILQ_HEAD_INITIALIZER(bars.active)
};
static struct flush_parts	 parts = RB_INITIALIZER(&parts);
static size_t			 nparts[2];
static uint64_t			 next_id;
static TAILQ_HEAD(, pending)	 pendings = TAILQ_HEAD_INITIALIZER(pendings);

/* Order participants by id. */
static int
flush_part_cmp(struct flush_part *a, struct flush_part *b)
{
	return (a->id < b->id ? -1 : a->id > b->id);
}
RB_GENERATE(flush_parts, flush_part, entry, flush_part_cmp)

/* The participant with this id, or NULL when it has left. */
static struct flush_part *
flush_find(uint64_t id)
{
	struct flush_part	key;

	key.id = id;
	return (RB_FIND(flush_parts, &parts, &key));
}

/* A pending flush is complete or out of time: answer it. */
static void
flush_finish(struct pending *pd)
{
	struct barrier		*b = pd->b;
	struct flush_part	*p;
	json_t			*reply, *missing, *ev;
	struct timespec		 now;
	char			 ts[TS_LEN];
	size_t			 i;

	aggregate_flush();
	dest_flush_pending();	/* printed before the answer, not after */
	missing = json_array();
	for (i = 0; i < b->nwaiting; i++) {
		p = flush_find(b->waiting[i]);
		json_array_append_new(missing, p != NULL ?
		    p->ops->describe(p) : json_pack("{s:I}", "participant",
		    (json_int_t)b->waiting[i]));
	}
	/* Drained, but not into a log that cannot be written. */
	jsonlog_flush();
	if (jsonlog_failed() != 0)
		json_array_append_new(missing, json_pack("{s:s, s:s}", "log",
		    "JSON log", "error", strerror(jsonlog_failed())));
	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	ev = json_pack("{s:s, s:s, s:I, s:I, s:I, s:O}", "ts", ts, "event",
	    "flush", "version", (json_int_t)b->version, "sources",
	    (json_int_t)pd->n[FLUSH_SOURCE], "relays",
	    (json_int_t)pd->n[FLUSH_RELAY], "incomplete", missing);
	jsonlog_event(ev);
	json_decref(ev);
	jsonlog_flush();
	reply = json_pack("{s:s, s:I, s:I, s:I, s:o, s:I}", "type", "flushed",
	    "version", (json_int_t)b->version, "sources",
	    (json_int_t)pd->n[FLUSH_SOURCE], "relays",
	    (json_int_t)pd->n[FLUSH_RELAY], "incomplete", missing,
	    "elapsed_ms", (json_int_t)(clock_now_ms() - pd->t0));
	TAILQ_REMOVE(&pendings, pd, entry);
	barrier_finish(&bars, b);
	event_free(pd->timer);
	if (pd->cb != NULL)
		pd->cb(reply, pd->arg);
	json_decref(reply);
	free(pd);
}

/* Answer every flush that is complete or past its deadline. */
static void
flush_check(void)
{
	struct barrier	*b;
	struct pending	*pd;

	while ((b = barrier_next_done(&bars, clock_now_ms())) != NULL) {
		TAILQ_FOREACH(pd, &pendings, entry) {
			if (pd->b == b)
				break;
		}
		if (pd == NULL) {
			barrier_finish(&bars, b);
			continue;
		}
		flush_finish(pd);
	}
}

/* Arm pd's timer to fire in ms milliseconds: 0, or -1. */
static int
flush_arm(struct pending *pd, long long ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return (evtimer_add(pd->timer, &tv));
}

/*
 * A flush's timer fired. libevent's clock (CLOCK_MONOTONIC_COARSE) may lag
 * ours by a tick, so the timer can fire up to 4 ms early: the rest is
 * waited out. Once past, the flush ends now, whatever the rounding.
 */
static void
flush_timer_cb(int fd, short what, void *arg)
{
	struct pending	*pd = arg;
	long long	 left = pd->b->deadline_ms - clock_now_ms();

	if (left > 0 && flush_arm(pd, left) == 0)
		return;
	pd->b->deadline_ms = 0;
	flush_check();
}

void
flush_start(int timeout_ms, reply_cb cb, void *arg)
{
	struct pending		*pd;
	struct flush_part	*p;
	uint64_t		*ids, version;
	size_t			 n = 0, i;
	long long		 deadline, left;
	int			 rc;

	pd = xcalloc(1, sizeof *pd);
	pd->t0 = clock_now_ms();
	pd->cb = cb;
	pd->arg = arg;
	deadline = pd->t0 + timeout_ms;
	ids = xcalloc(nparts[0] + nparts[1] + 1, sizeof *ids);
	RB_FOREACH(p, flush_parts, &parts)
		ids[n++] = p->id;
	memcpy(pd->n, nparts, sizeof pd->n);
	pd->b = barrier_start(&bars, ids, n, deadline);
	version = pd->b->version;
	TAILQ_INSERT_TAIL(&pendings, pd, entry);
	pd->timer = evtimer_new(base, flush_timer_cb, pd);
	if (pd->timer == NULL || flush_arm(pd, timeout_ms) != 0)
		fatalx("cannot arm a flush timer");
	/*
	 * Ask everyone in id order: relays start draining on their hosts
	 * while local pipes are read here. A drain may end participants
	 * (a pipe found closed), so each is looked up again.
	 */
	for (i = 0; i < n; i++) {
		left = deadline - clock_now_ms();
		if ((p = flush_find(ids[i])) == NULL || left <= 0)
			continue;
		rc = p->ops->drain(p, version, (int)left);
		if (rc == 0)
			barrier_ack(&bars, ids[i], version);
		else if (rc < 0)
			barrier_leave(&bars, ids[i]);
	}
	free(ids);
	flush_check();
}

/* Keeps the reply of a flush run to completion in place. */
static void
flush_sync_cb(json_t *reply, void *arg)
{
	json_t	**out = arg;

	*out = json_incref(reply);
}

json_t *
flush_run(int timeout_ms)
{
	json_t	*reply = NULL;

	flush_start(timeout_ms, flush_sync_cb, &reply);
	while (reply == NULL)
		event_base_loop(base, EVLOOP_ONCE);
	return (reply);
}

void
flush_join(struct flush_part *p, enum flush_kind kind,
    const struct flush_ops *ops, void *arg)
{
	p->id = ++next_id;
	p->kind = kind;
	p->ops = ops;
	p->arg = arg;
	p->joined = 1;
	RB_INSERT(flush_parts, &parts, p);
	nparts[kind]++;
}

void
flush_leave(struct flush_part *p)
{
	if (!p->joined)
		return;
	p->joined = 0;
	RB_REMOVE(flush_parts, &parts, p);
	nparts[p->kind]--;
	if (barrier_leave(&bars, p->id))
		flush_check();
}

void
flush_ack(struct flush_part *p, uint64_t version)
{
	if (p->joined && barrier_ack(&bars, p->id, version))
		flush_check();
}

void
flush_rejoin(struct flush_part *p)
{
	struct pending	*pd;
	size_t		 i;
	long long	 left;

	if (!p->joined)
		return;
	/* Asked again for each barrier it holds back, in version order. */
	TAILQ_FOREACH(pd, &pendings, entry) {
		for (i = 0; i < pd->b->nwaiting; i++) {
			if (pd->b->waiting[i] != p->id)
				continue;
			left = pd->b->deadline_ms - clock_now_ms();
			if (left > 0)
				(void)p->ops->drain(p, pd->b->version,
				    (int)left);
		}
	}
}

uint64_t
flush_last_version(void)
{
	return (bars.last);
}
