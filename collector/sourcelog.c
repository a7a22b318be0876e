/*
 * What is said of sources: their console label, their lifecycle events
 * (source_open and the head of every event) for the JSON log and the
 * upstream, and their status for meshlogctl. Part of the source module
 * (source.h).
 */

#include <sys/time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "source.h"

/*
 * Lifecycle events are written with jw, not built with jansson: a process
 * that registers and exits costs the collector two of them, and jansson's
 * objects and dumps were most of that cost.
 */

/*
 * The console prefix and origin of src, from its id, rank and pid; a
 * rankless process of another host is named with its host.
 */
void
source_label(struct source *src)
{
	if (src->rank >= 0)
		snprintf(src->prefix, sizeof src->prefix, "[rank %ld] ",
		    src->rank);
	else if (src->link != 0)
		snprintf(src->prefix, sizeof src->prefix, "[%.32s pid %ld] ",
		    src->host, src->pid);
	else
		snprintf(src->prefix, sizeof src->prefix, "[pid %ld] ",
		    src->pid);
	src->origin.id = src->id;
	src->origin.rank = src->rank;
	src->origin.pid = src->pid;
	src->origin.prefix = src->prefix;
	src->origin.world = src->world_size;
}

/* Start the event: the fields every lifecycle event has. */
void
source_event_head(struct jw *w, struct source *src, const char *event)
{
	struct timespec	now;
	char		ts[TS_LEN];

	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	jw_lit(w, "{\"ts\":\"");
	jw_lit(w, ts);
	jw_lit(w, "\",\"host\":");
	jw_str(w, src->host, strlen(src->host));
	jw_lit(w, ",\"pid\":");
	jw_int(w, src->pid);
	jw_lit(w, ",\"rank\":");
	jw_int_or_null(w, src->rank);
	jw_lit(w, ",\"source\":");
	jw_int(w, (long long)src->id);
	jw_lit(w, ",\"event\":\"");
	jw_lit(w, event);
	jw_lit(w, "\"");
}

/* Write a finished event to the JSON log and pass it upstream. */
void
source_log_text(struct jw *w)
{
	jsonlog_text(w->buf, w->len);
	if (upstream_active())
		upstream_event_text(w->buf, w->len);
}

/* The same for an event object (borrowed): a relay's events. */
void
source_log(json_t *o)
{
	jsonlog_event(o);
	if (upstream_active())
		upstream_event(o);
}

const char *
close_reason_name(enum close_reason r)
{
	static const char *const names[] = { "eof", "reader_gone",
	    "collector_exit", "relay_lost", "relayed" };

	return ((unsigned)r < sizeof names / sizeof names[0] ? names[r] :
	    "unknown");
}


/*
 * Write a source_open event: the common head, the fields fields() adds,
 * and the streams shown on the console; the buffer grows for a long argv
 * (every byte escaped takes at most 6).
 */
void
source_open_log(struct source *src, void (*fields)(struct jw *,
    struct source *, const void *), const void *arg)
{
	char		 stack[4096], *heap = NULL;
	struct jw	 w;
	size_t		 cap = sizeof stack;

	for (;;) {
		jw_init(&w, heap != NULL ? heap : stack, cap);
		source_event_head(&w, src, "source_open");
		fields(&w, src, arg);
		source_streams_json(&w, src, "console_streams",
		    STREAMS_CONSOLE);
		/* Bound for a launcher that passes lines on (mpirun). */
		if ((src->st[0] != NULL && src->st[0]->fwd) ||
		    (src->st[1] != NULL && src->st[1]->fwd))
			source_streams_json(&w, src, "forwarded_streams",
			    STREAMS_FORWARDED);
		/* A program its rank ran: which of its lines are the rank's
		 * output, for a root's summary. */
		if (src->helper) {
			jw_lit(&w, ",\"helper\":true");
			source_streams_json(&w, src, "inherited_streams",
			    STREAMS_INHERITED);
		}
		jw_lit(&w, "}");
		if (!w.overflow)
			break;
		free(heap);
		cap = cap < 1024 * 1024 ? cap * 8 : cap * 2;
		heap = xmalloc(cap);
	}
	source_log_text(&w);
	free(heap);
}

void
source_streams_json(struct jw *w, struct source *src, const char *key,
    int which)
{
	int	k, first;

	jw_lit(w, ",\"");
	jw_lit(w, key);
	jw_lit(w, "\":[");
	for (k = 0, first = 1; k < 2; k++) {
		if (src->st[k] == NULL ||
		    (which == STREAMS_CONSOLE && !src->st[k]->console) ||
		    (which == STREAMS_FORWARDED && !src->st[k]->fwd) ||
		    (which == STREAMS_INHERITED && !src->st[k]->inherited))
			continue;
		jw_lit(w, first ? "\"" : ",\"");
		jw_lit(w, stream_names[k]);
		jw_lit(w, "\"");
		first = 0;
	}
	jw_lit(w, "]");
}

void
source_argv_json(struct jw *w, json_t *argv)
{
	json_t	*v;
	size_t	 i;

	jw_lit(w, ",\"argv\":[");
	json_array_foreach(argv, i, v) {
		if (i > 0)
			jw_lit(w, ",");
		jw_str(w, json_string_value(v), json_string_length(v));
	}
	jw_lit(w, "]");
}

/* What a registered process's source_open says: its hello. */
struct open_hello {
	const struct hello	*h;
	long long		 parent_id;
};

static void
source_hello_fields(struct jw *w, struct source *src, const void *arg)
{
	const struct open_hello	*oh = arg;
	const struct hello	*h = oh->h;
	int			 k;

	jw_lit(w, ",\"ppid\":");
	jw_int(w, h->ppid);
	jw_lit(w, ",\"uid\":");
	jw_int(w, h->uid);
	source_argv_json(w, h->argv);
	if (h->argv_truncated)
		jw_lit(w, ",\"argv_truncated\":true");
	jw_lit(w, ",\"local_rank\":");
	jw_int_or_null(w, h->local_rank);
	jw_lit(w, ",\"world_size\":");
	jw_int_or_null(w, h->world_size);
	if (h->rank_var != NULL) {
		jw_lit(w, ",\"rank_var\":");
		jw_str(w, h->rank_var, strlen(h->rank_var));
	}
	jw_lit(w, ",\"streams\":[");
	for (k = 0; k < h->nstreams; k++) {
		jw_lit(w, k > 0 ? ",\"" : "\"");
		jw_lit(w, stream_names[h->which[k]]);
		jw_lit(w, "\"");
	}
	jw_lit(w, "]");
	/* `2>&1`: one stream, labelled stdout, in the program's order. */
	if (h->merged)
		jw_lit(w, ",\"merged\":true");
	jw_lit(w, ",\"parent_source\":");
	jw_int_or_null(w, oh->parent_id);
	jw_lit(w, h->keep_buffering ? ",\"buffering\":\"keep\"" :
	    ",\"buffering\":\"line\"");
}

/* The source_open event of a source just made from hello h. */
void
source_open_event(struct source *src, const struct hello *h,
    long long parent_id)
{
	struct open_hello	oh = { h, parent_id };

	source_open_log(src, source_hello_fields, &oh);
}

json_t *
source_describe(struct source *src)
{
	return (json_pack("{s:I, s:I, s:o, s:s, s:O}", "source",
	    (json_int_t)src->id, "pid", (json_int_t)src->pid, "rank",
	    src->rank < 0 ? json_null() : json_integer(src->rank), "host",
	    src->host, "argv", src->argv));
}

void
source_status(struct sourcelist *list, json_t *all)
{
	struct source	*src;
	struct stream	*s;
	struct timespec	 now, last;
	json_t		*o, *streams;
	char		 ts[TS_LEN];
	int		 i;

	clock_gettime(CLOCK_REALTIME, &now);
	TAILQ_FOREACH(src, list, entry) {
		if (!src->announced)
			continue;
		o = source_describe(src);
		streams = json_object();
		last = src->start;
		for (i = 0; i < 2; i++) {
			if ((s = src->st[i]) == NULL)
				continue;
			if (timespeccmp(&s->last_read, &last, >))
				last = s->last_read;
			if (s->last_read.tv_sec != 0)
				record_ts(ts, &s->last_read);
			json_object_set_new(streams, stream_names[i], json_pack(
			    "{s:I, s:I, s:b, s:s?}", "lines", (json_int_t)s->seq,
			    "bytes", (json_int_t)s->bytes, "open", s->fd != -1 ||
			    src->link != 0,
			    "last_activity", s->last_read.tv_sec != 0 ? ts :
			    NULL));
		}
		json_object_set_new(o, "streams", streams);
		/* A launcher's copies of its ranks' lines, among its lines. */
		json_object_set_new(o, "copies", json_integer(
		    (json_int_t)src->copies));
		/* Seconds since it last wrote, or since it registered. */
		json_object_set_new(o, "idle_s", json_real((double)(now.tv_sec -
		    last.tv_sec) + (double)(now.tv_nsec - last.tv_nsec) / 1e9));
		json_array_append_new(all, o);
	}
}

json_t *
source_status_all(void)
{
	json_t	*all = json_array();

	source_status(&sources, all);
	return (all);
}

int
source_argv_set(struct source *src, json_t *argv)
{
	json_t	*v;
	size_t	 i;

	if (!json_is_array(argv) || json_array_size(argv) == 0)
		return (0);
	json_array_foreach(argv, i, v) {
		if (!json_is_string(v))
			return (0);
	}
	json_decref(src->argv);
	src->argv = json_incref(argv);
	return (1);
}

int
source_rank_valid(json_t *o, long *rank, long *world)
{
	json_t	*r = json_object_get(o, "rank");
	json_t	*w = json_object_get(o, "world_size");

	if (!json_is_integer(r) || !json_is_integer(w) ||
	    json_integer_value(w) < 1 || json_integer_value(w) > (1L << 20) ||
	    json_integer_value(r) < 0 ||
	    json_integer_value(r) >= json_integer_value(w))
		return (0);
	*rank = (long)json_integer_value(r);
	*world = (long)json_integer_value(w);
	return (1);
}

void
source_rank(long pid, json_t *msg)
{
	struct source	*found = source_newest_open(pid);
	char		 buf[2048];	/* a host of 255 bytes, escaped */
	struct jw	 w;
	long		 rank, world;

	/* A rank from the environment stays: it is the launcher's word. */
	if (found == NULL || found->rank >= 0 ||
	    !source_rank_valid(msg, &rank, &world))
		return;
	source_rank_set(found, rank, world);
	found->rank_late = 1;
	handover_renew(found);
	/* A forked child that never wrote opens with its rank. */
	if (!found->announced)
		return;
	jw_init(&w, buf, sizeof buf);
	source_event_head(&w, found, "rank");
	jw_lit(&w, ",\"world_size\":");
	jw_int(&w, world);
	jw_lit(&w, "}");
	source_log_text(&w);
}

void
source_exec(long pid, json_t *argv, int truncated)
{
	struct source	*found = source_newest_open(pid);
	struct timespec	 now;
	char		 ts[TS_LEN];
	json_t		*o;

	/* A forked child that never wrote is not in the log. */
	if (found == NULL || !source_argv_set(found, argv))
		return;
	handover_renew(found);
	if (!found->announced)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	o = json_pack("{s:s, s:s, s:I, s:o, s:I, s:s, s:O}", "ts", ts,
	    "host", found->host, "pid", (json_int_t)pid, "rank",
	    found->rank < 0 ? json_null() : json_integer(found->rank),
	    "source", (json_int_t)found->id, "event", "exec", "argv", argv);
	if (truncated)
		json_object_set_new(o, "argv_truncated", json_true());
	source_log(o);
	json_decref(o);
}
