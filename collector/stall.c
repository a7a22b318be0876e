/*
 * Silence (--stall SECONDS): a rank that has written nothing for that
 * long while other ranks keep writing is said once on the console with
 * its last line, and again when it writes again; each is a "stall" record
 * in the JSON log. The question behind it: which rank did not join the
 * collective the others wait in.
 *
 * A rank's activity is the newest read of any of its processes (its
 * forked workers included), local or relayed; a rank is only judged once
 * it has written, and only while at least one other rank wrote within
 * the same time. Checked every quarter of the time, at most every second.
 */

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "source.h"

/* One rank at a check: its newest activity, and the source it was in. */
struct stall_rank {
	long		 rank;
	double		 last;		/* seconds, CLOCK_REALTIME */
	struct source	*src;
};

/* A rank said to be silent, until it writes again. */
struct stall_said {
	long		 rank;
	double		 since;		/* its last activity then */
};

static struct event	*stall_timer;
static struct stall_said *said;
static size_t		 nsaid, capsaid;
static struct sourcelist *stall_lists[2];

static double
stall_secs(const struct timespec *ts)
{
	return ((double)ts->tv_sec + (double)ts->tv_nsec / 1e9);
}

static int
stall_rank_cmp(const void *a, const void *b)
{
	const struct stall_rank	*x = a, *y = b;

	return (x->rank < y->rank ? -1 : x->rank > y->rank);
}

/* Whether rank was said to be silent; its entry's index, or -1. */
static ssize_t
stall_find(long rank)
{
	size_t	i;

	for (i = 0; i < nsaid; i++) {
		if (said[i].rank == rank)
			return ((ssize_t)i);
	}
	return (-1);
}

/* A stall record, and the console's line. */
static void
stall_say(struct stall_rank *r, const char *state, double idle,
    unsigned active)
{
	struct source		*src = r->src;
	struct ending_line	*l = NULL;
	struct timespec		 now;
	char			 ts[TS_LEN], text[512];
	json_t			*o;

	if (src->ntail > 0)
		l = &src->tail[(src->tail_next + ENDING_TAIL - 1) % ENDING_TAIL];
	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:f, s:i}", "ts", ts,
	    "event", "stall", "state", state, "rank", (json_int_t)r->rank,
	    "host", src->host, "pid", (json_int_t)src->pid, "idle_s", idle,
	    "others_active", active);
	if (l != NULL)
		json_object_set_new(o, "last_line", json_stringn_nocheck(
		    l->text, l->len));
	source_log(o);
	json_decref(o);
	if (strcmp(state, "stalled") == 0)
		snprintf(text, sizeof text, "rank %ld (pid %ld, host %s) has "
		    "written nothing for %.0f s while %u other rank%s write%s; "
		    "its last line: %.*s", r->rank, src->pid, src->host, idle,
		    active, active == 1 ? "" : "s", active == 1 ? "s" : "",
		    l != NULL ? (int)l->len : 6, l != NULL ? l->text :
		    "(none)");
	else
		snprintf(text, sizeof text, "rank %ld (pid %ld, host %s) "
		    "writes again after %.0f s", r->rank, src->pid, src->host,
		    idle);
	if (!console_alert(text))
		log_debug("%s", text);
}

/* Every quarter of the time: who is silent while others write. */
static void
stall_check_cb(int fd, short what, void *arg)
{
	struct stall_rank	*r = NULL;
	struct source		*src;
	struct timespec		 now;
	size_t			 n = 0, cap = 0, i, k;
	double			 t, limit = cfg.stall, last;
	unsigned		 active = 0;
	ssize_t			 at;
	int			 j, l;

	clock_gettime(CLOCK_REALTIME, &now);
	t = stall_secs(&now);
	for (l = 0; l < 2; l++) {
		TAILQ_FOREACH(src, stall_lists[l], entry) {
			if (src->rank < 0)
				continue;
			last = 0;
			for (j = 0; j < 2; j++) {
				if (src->st[j] != NULL &&
				    stall_secs(&src->st[j]->last_read) > last)
					last = stall_secs(&src->st[j]->
					    last_read);
			}
			if (last == 0)
				continue;	/* judged once it has written */
			if (n == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				r = xrealloc(r, cap * sizeof *r);
			}
			r[n].rank = src->rank;
			r[n].last = last;
			r[n++].src = src;
		}
	}
	qsort(r, n, sizeof *r, stall_rank_cmp);
	/* One entry per rank: its newest activity. */
	for (i = 0, k = 0; i < n; i++) {
		if (k > 0 && r[k - 1].rank == r[i].rank) {
			if (r[i].last > r[k - 1].last)
				r[k - 1] = r[i];
			continue;
		}
		r[k++] = r[i];
	}
	n = k;
	for (i = 0; i < n; i++)
		active += t - r[i].last < limit;
	for (i = 0; i < n; i++) {
		at = stall_find(r[i].rank);
		if (t - r[i].last >= limit && at == -1 &&
		    active > 0) {
			stall_say(&r[i], "stalled", t - r[i].last, active);
			if (nsaid == capsaid) {
				capsaid = capsaid == 0 ? 16 : capsaid * 2;
				said = xrealloc(said, capsaid * sizeof *said);
			}
			said[nsaid].rank = r[i].rank;
			said[nsaid++].since = r[i].last;
		} else if (at != -1 && r[i].last > said[at].since) {
			stall_say(&r[i], "resumed", r[i].last -
			    said[at].since, active);
			said[at] = said[--nsaid];
		}
	}
	free(r);
}

void
stall_start(struct sourcelist *relayed)
{
	struct timeval	tv;
	double		every;

	if (cfg.stall <= 0)
		return;
	stall_lists[0] = &sources;
	stall_lists[1] = relayed;
	every = cfg.stall / 4 < 1 ? cfg.stall / 4 : 1;
	tv.tv_sec = (time_t)every;
	tv.tv_usec = (suseconds_t)((every - (double)tv.tv_sec) * 1e6);
	stall_timer = event_new(base, -1, EV_PERSIST, stall_check_cb, NULL);
	if (stall_timer == NULL || event_add(stall_timer, &tv) != 0)
		fatalx("cannot arm the stall timer");
}

void
stall_stop_all(void)
{
	if (stall_timer != NULL)
		event_free(stall_timer);
	stall_timer = NULL;
	free(said);
	said = NULL;
	nsaid = capsaid = 0;
}
