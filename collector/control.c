/*
 * Control requests, from the socket or an upstream: flush (flush.c runs
 * the barrier), status, set_mode (the console view: what it shows, never
 * what programs write), set_level (the level programs log at, the seed's
 * in-process lever), summary and drain. Each takes a request object and
 * returns the reply object.
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>


#include "collector.h"

static struct timespec	 started;
static char		 started_ts[TS_LEN];	/* the same, RFC 3339 */
/* The programs' level, last set by set_level: -1 never set. */
static int		 prog_level = -1;
static json_t		*prog_ranks;		/* null: every rank */

void
control_init(void)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &started);
	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(started_ts, &now);
}

/* An error reply. */
static json_t *
control_error(const char *msg)
{
	return (json_pack("{s:s, s:s}", "type", "error", "message", msg));
}

/* Ranks v[0..n) as a JSON array, null when there are none. */
static json_t *
control_ranks(const long *v, size_t n)
{
	json_t	*a;
	size_t	 i;

	if (n == 0)
		return (json_null());
	a = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(a, json_integer(v[i]));
	return (a);
}

/*
 * The current mode as a JSON object: the console view's, and the level
 * the programs were last given (level null: never).
 */
static json_t *
control_mode(void)
{
	const struct console_mode	*m = console_mode();

	return (json_pack("{s:b, s:o, s:i, s:o, s:o, s:O}",
	    "stream_to_client", m->on, "aggregate_window_sec", m->window > 0 ?
	    json_real(m->window) : json_null(), "console_level", m->level,
	    "console_ranks", control_ranks(m->ranks, m->nranks), "level",
	    prog_level >= 0 ? json_integer(prog_level) : json_null(), "ranks",
	    prog_ranks != NULL ? prog_ranks : json_null()));
}

json_t *
control_status(void)
{
	struct timespec	 now;
	uint64_t	 lines, printed, hits, misses;
	size_t		 pending, i;
	json_t		*o, *c, *command, *v;

	clock_gettime(CLOCK_MONOTONIC, &now);
	aggregate_stats(&lines, &printed, &pending);
	shape_stats(&hits, &misses);
	o = json_pack("{s:s, s:{s:I, s:s, s:s?, s:s?, s:I, s:o, s:I, "
	    "s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}}, s:o}", "type", "status",
	    "collector", "pid", (json_int_t)getpid(), "version",
	    PACKAGE_VERSION, "socket", cfg.socket_path, "json", cfg.json_path,
	    "uptime_s", (json_int_t)(now.tv_sec - started.tv_sec), "mode",
	    control_mode(), "flush_version", (json_int_t)flush_last_version(),
	    "sources_open", (json_int_t)(source_count() +
	    source_remote_count()), "console_filtered",
	    (json_int_t)console_filtered(), "aggregated", "lines",
	    (json_int_t)lines, "printed", (json_int_t)printed, "pending",
	    (json_int_t)pending, "shapes_remembered", (json_int_t)hits,
	    "shapes_computed", (json_int_t)misses, "sources",
	    source_status_all());
	c = json_object_get(o, "collector");
	json_object_set_new(c, "host", json_string(cfg.host));
	json_object_set_new(c, "started", json_string(started_ts));
	/* Launch mode's command, so that meshlogctl ls can tell jobs apart. */
	command = json_null();
	if (cfg.command != NULL) {
		command = json_array();
		for (i = 0; cfg.command[i] != NULL && i < 64; i++) {
			/* NULL when not UTF-8. */
			v = json_string(cfg.command[i]);
			json_array_append_new(command, v != NULL ? v :
			    json_string("?"));
		}
	}
	json_object_set_new(c, "command", command);
	source_remote_status(json_object_get(o, "sources"));
	json_object_set_new(o, "relays", link_status_all());
	json_object_set_new(o, "upstream", upstream_status());
	return (o);
}

int
control_parse_level(json_t *v)
{
	json_int_t	n;

	if (json_is_integer(v)) {
		n = json_integer_value(v);
		return (n >= 0 && n <= 50 ? (int)n : -1);
	}
	return (json_is_string(v) ? (int)level_by_name(json_string_value(v)) :
	    -1);
}

/*
 * Ranks from a request's JSON array into *out (sorted, allocated) and
 * *n; null is no ranks. 0, or -1 when it is not a list of ranks.
 */
static int
control_parse_ranks(json_t *r, long **out, size_t *n)
{
	json_t	*v;
	size_t	 i;

	*out = NULL;
	*n = 0;
	if (r == NULL || json_is_null(r))
		return (0);
	if (!json_is_array(r) || json_array_size(r) > RANKSET_MAX)
		return (-1);
	*out = xcalloc(json_array_size(r) + 1, sizeof **out);
	json_array_foreach(r, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > INT_MAX) {
			free(*out);
			*out = NULL;
			return (-1);
		}
		(*out)[(*n)++] = (long)json_integer_value(v);
	}
	rankset_sort(*out, n);
	return (0);
}

/* DEBUG for 10 ... CRITICAL for 50; NULL for other numbers. */
static const char *
control_level_name(int level)
{
	static const char *const names[] = { "DEBUG", "INFO", "WARNING",
	    "ERROR", "CRITICAL" };

	return (level >= 10 && level <= 50 && level % 10 == 0 ?
	    names[level / 10 - 1] : NULL);
}

/* Write a control event to the JSON log: set_mode, set_level. */
static void
control_event(const char *event, json_t *fields)
{
	struct timespec	 now;
	char		 ts[TS_LEN];
	json_t		*ev;

	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	ev = json_pack("{s:s, s:s}", "ts", ts, "event", event);
	json_object_update(ev, fields);
	json_decref(fields);
	jsonlog_event(ev);
	json_decref(ev);
}

static json_t *
control_set_mode(json_t *req)
{
	json_t		*s = json_object_get(req, "stream_to_client");
	json_t		*a = json_object_get(req, "aggregate_window_sec");
	json_t		*l = json_object_get(req, "console_level");
	json_t		*r = json_object_get(req, "console_ranks");
	struct console_mode mode = *console_mode();
	double		 window = -1;
	int		 level = -1;
	long		*ranks = NULL;
	size_t		 nranks = 0;

	/* Check everything before changing anything. */
	if (json_object_get(req, "level") != NULL ||
	    json_object_get(req, "ranks") != NULL)
		return (control_error("set_mode no longer takes level or "
		    "ranks: console_level and console_ranks filter the "
		    "console, set_level changes the level programs log at"));
	if (s != NULL && !json_is_boolean(s))
		return (control_error("stream_to_client must be true or "
		    "false"));
	if (a != NULL) {
		if (json_is_null(a) || (json_is_string(a) &&
		    strcmp(json_string_value(a), "off") == 0))
			window = 0;
		else if (json_is_number(a) && json_number_value(a) >= 0 &&
		    json_number_value(a) <= 3600)
			window = json_number_value(a);
		else
			return (control_error("aggregate_window_sec must be "
			    "0 to 3600, null or \"off\""));
	}
	if (l != NULL && (level = control_parse_level(l)) < 0)
		return (control_error("console_level must be DEBUG, INFO, "
		    "WARNING, ERROR, CRITICAL or 0-50"));
	if (control_parse_ranks(r, &ranks, &nranks) != 0)
		return (control_error("console_ranks must be a list of ranks "
		    "or null"));
	if (s != NULL)
		mode.on = json_is_true(s);
	if (window >= 0)
		mode.window = window;
	if (l != NULL)
		mode.level = level;
	if (r != NULL) {
		mode.ranks = ranks;
		mode.nranks = nranks;
	}
	console_set_mode(&mode);
	free(ranks);
	control_event("set_mode", json_pack("{s:o}", "mode", control_mode()));
	return (json_pack("{s:s, s:o}", "type", "mode", "mode",
	    control_mode()));
}

/*
 * The level programs log at (Python's root logger, syslog's mask), on
 * every rank or those given, here and on every relay's host. The JSON log
 * says so: the lines that stop are not lost, they are not written.
 */
static json_t *
control_set_level(json_t *req)
{
	json_t	*l = json_object_get(req, "level");
	json_t	*r = json_object_get(req, "ranks"), *m;
	long	*ranks;
	size_t	 nranks;
	int	 level;

	if (l == NULL || (level = control_parse_level(l)) < 0)
		return (control_error("level must be DEBUG, INFO, WARNING, "
		    "ERROR, CRITICAL or 0-50"));
	if (control_parse_ranks(r, &ranks, &nranks) != 0)
		return (control_error("ranks must be a list of ranks"));
	runtime_push_level(level, ranks, nranks);
	prog_level = level;
	json_decref(prog_ranks);
	prog_ranks = nranks > 0 ? control_ranks(ranks, nranks) : NULL;
	free(ranks);
	/* Every relay applies it on its host, and passes it on. */
	m = json_pack("{s:s, s:i, s:O}", "type", "set_level", "level", level,
	    "ranks", prog_ranks != NULL ? prog_ranks : json_null());
	link_broadcast(m);
	json_decref(m);
	control_event("set_level", json_pack("{s:i, s:s*, s:O}", "level",
	    level, "level_name", control_level_name(level), "ranks", prog_ranks !=
	    NULL ? prog_ranks : json_null()));
	return (json_pack("{s:s, s:o}", "type", "mode", "mode",
	    control_mode()));
}

/*
 * A process about to exit whose output is bound for a file: read what it
 * wrote to its pipes and put it where it goes before answering, so that
 * the next reader of the file finds it. A parent that reaped a forked
 * child asks the same for the child's pipes.
 */
static json_t *
control_drain(json_t *req)
{
	static const char	 usage[] = "drain needs pipes: [[dev, ino], ...]";
	json_t			*pipes = json_object_get(req, "pipes"), *p;
	json_t			*dev, *ino, *sync = json_object_get(req, "sync");
	const char		*how = json_string_value(sync);
	size_t			 i;
	int			 found = 0, err;

	if (!json_is_array(pipes))
		return (control_error(usage));
	/* A process that syncs its file: one pipe, then the file's sync. */
	if (sync != NULL) {
		if (how == NULL || (strcmp(how, "data") != 0 &&
		    strcmp(how, "all") != 0) || json_array_size(pipes) != 1)
			return (control_error("sync is \"data\" or \"all\", "
			    "for one pipe"));
	}
	json_array_foreach(pipes, i, p) {
		dev = json_array_get(p, 0);
		ino = json_array_get(p, 1);
		if (!json_is_integer(dev) || !json_is_integer(ino) ||
		    json_integer_value(dev) < 0 || json_integer_value(ino) < 0)
			return (control_error(usage));
		if (source_drain_pipe((dev_t)json_integer_value(dev),
		    (ino_t)json_integer_value(ino)) == 0)
			found++;
	}
	dest_flush_pending();
	if (sync != NULL) {
		p = json_array_get(pipes, 0);
		err = source_sync_pipe((dev_t)json_integer_value(
		    json_array_get(p, 0)), (ino_t)json_integer_value(
		    json_array_get(p, 1)), strcmp(how, "data") == 0);
		return (json_pack("{s:s, s:i, s:i}", "type", "drained",
		    "found", found, "sync_errno", err));
	}
	return (json_pack("{s:s, s:i}", "type", "drained", "found", found));
}

/* The job's summary so far, ranks still running included. */
static json_t *
control_summary(void)
{
	json_t	*o = source_summary();

	json_object_del(o, "event");
	json_object_set_new(o, "type", json_string("summary"));
	return (o);
}

json_t *
control_dispatch(json_t *req, reply_cb cb, void *arg)
{
	const char	*type = json_string_value(json_object_get(req, "type"));
	json_t		*t;
	double		 secs = 3;

	if (type == NULL)
		return (control_error("request has no type"));
	if (strcmp(type, "flush") == 0) {
		t = json_object_get(req, "timeout_ms");
		if (t != NULL && (!json_is_integer(t) ||
		    json_integer_value(t) < 0 ||
		    json_integer_value(t) > FLUSH_TIMEOUT_MAX_MS))
			return (control_error("timeout_ms must be an integer "
			    "from 0 to 3600000"));
		if (t != NULL)
			secs = (double)json_integer_value(t) / 1000;
		if (cb == NULL)
			return (control_error("flush needs an answer path"));
		flush_start((int)(secs * 1000), cb, arg);
		return (NULL);
	}
	if (strcmp(type, "status") == 0)
		return (control_status());
	if (strcmp(type, "drain") == 0)
		return (control_drain(req));
	if (strcmp(type, "set_mode") == 0)
		return (control_set_mode(req));
	if (strcmp(type, "set_level") == 0)
		return (control_set_level(req));
	if (strcmp(type, "summary") == 0)
		return (control_summary());
	return (control_error("unknown request type (this collector knows "
	    "hello, flush, status, set_mode, set_level, summary and drain)"));
}
