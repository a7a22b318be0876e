/*
 * Control requests on the socket: flush (the versioned barrier), status,
 * and set_mode. Each takes a request object and returns the reply object.
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"

static struct barriers	 bars;
static int		 bars_ready;
static struct timespec	 started;

/* Milliseconds on the monotonic clock. */
static long long
control_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

void
control_init(void)
{
	barriers_init(&bars);
	bars_ready = 1;
	clock_gettime(CLOCK_MONOTONIC, &started);
}

/* An error reply. */
static json_t *
control_error(const char *msg)
{
	return (json_pack("{s:s, s:s}", "type", "error", "message", msg));
}

/* The current mode as a JSON object. */
static json_t *
control_mode(void)
{
	json_t	*ranks = json_null();
	size_t	 i;

	if (cfg.nlevel_ranks > 0) {
		ranks = json_array();
		for (i = 0; i < cfg.nlevel_ranks; i++)
			json_array_append_new(ranks,
			    json_integer(cfg.level_ranks[i]));
	}
	return (json_pack("{s:b, s:o, s:i, s:o}", "stream_to_client",
	    cfg.console, "aggregate_window_sec", aggregate_window() > 0 ?
	    json_real(aggregate_window()) : json_null(), "level", cfg.level,
	    "ranks", ranks));
}

json_t *
control_flush(int timeout_ms)
{
	struct barrier	*b;
	uint64_t	*ids;
	size_t		 n, i;
	long long	 t0 = control_now_ms(), deadline = t0 + timeout_ms;
	json_t		*reply, *missing, *ev;
	struct timespec	 now;
	char		 ts[TS_LEN];

	if (!bars_ready)
		control_init();
	ids = source_ids(&n);
	b = barrier_start(&bars, ids, n, deadline);
	/*
	 * The collector owns the pipes: draining what each one held when
	 * the barrier started needs nothing from the writers, so a stopped
	 * or busy writer is flushed up to its last byte all the same.
	 */
	for (i = 0; i < n && control_now_ms() < deadline; i++) {
		if (source_drain_written(ids[i]) == 0)
			barrier_ack(&bars, ids[i], b->version);
		else
			barrier_leave(&bars, ids[i]);
	}
	(void)barrier_next_done(&bars, control_now_ms());
	aggregate_flush();
	dest_flush_pending();	/* printed before the answer, not after */
	missing = json_array();
	for (i = 0; i < b->nwaiting; i++)
		json_array_append_new(missing, source_describe(b->waiting[i]));
	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	ev = json_pack("{s:s, s:s, s:I, s:I, s:O}", "ts", ts, "event", "flush",
	    "version", (json_int_t)b->version, "sources", (json_int_t)n,
	    "incomplete", missing);
	jsonlog_event(ev);
	json_decref(ev);
	jsonlog_flush();
	reply = json_pack("{s:s, s:I, s:I, s:o, s:I}", "type", "flushed",
	    "version", (json_int_t)b->version, "sources", (json_int_t)n,
	    "incomplete", missing, "elapsed_ms",
	    (json_int_t)(control_now_ms() - t0));
	barrier_finish(&bars, b);
	free(ids);
	return (reply);
}

json_t *
control_status(void)
{
	struct timespec	 now;
	uint64_t	 lines, printed;
	size_t		 pending;

	clock_gettime(CLOCK_MONOTONIC, &now);
	aggregate_stats(&lines, &printed, &pending);
	return (json_pack("{s:s, s:{s:I, s:s, s:s?, s:s?, s:I, s:o, s:I, "
	    "s:I, s:I, s:{s:I, s:I, s:I}}, s:o}", "type", "status",
	    "collector", "pid", (json_int_t)getpid(), "version",
	    PACKAGE_VERSION, "socket", cfg.socket_path, "json", cfg.json_path,
	    "uptime_s", (json_int_t)(now.tv_sec - started.tv_sec), "mode",
	    control_mode(), "flush_version", (json_int_t)bars.last,
	    "sources_open", (json_int_t)source_count(), "console_filtered",
	    (json_int_t)console_filtered(), "aggregated", "lines",
	    (json_int_t)lines, "printed", (json_int_t)printed, "pending",
	    (json_int_t)pending, "sources", source_status_all()));
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

json_t *
control_set_mode(json_t *req)
{
	json_t		*s = json_object_get(req, "stream_to_client");
	json_t		*a = json_object_get(req, "aggregate_window_sec");
	json_t		*l = json_object_get(req, "level");
	json_t		*r = json_object_get(req, "ranks"), *v, *ev;
	double		 window = -1;
	int		 level = -1;
	long		*ranks = NULL;
	size_t		 nranks = 0, i;
	struct timespec	 now;
	char		 ts[TS_LEN];

	/* Check everything before changing anything. */
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
		return (control_error("level must be DEBUG, INFO, WARNING, "
		    "ERROR, CRITICAL or 0-50"));
	if (r != NULL && !json_is_null(r)) {
		if (!json_is_array(r))
			return (control_error("ranks must be a list of "
			    "ranks"));
		ranks = xcalloc(json_array_size(r) + 1, sizeof *ranks);
		json_array_foreach(r, i, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 0) {
				free(ranks);
				return (control_error("ranks must be a list "
				    "of ranks"));
			}
			ranks[nranks++] = (long)json_integer_value(v);
		}
	}
	if (s != NULL) {
		/* Pending groups are printed before the console goes quiet. */
		if (!json_is_true(s))
			aggregate_flush();
		cfg.console = json_is_true(s);
	}
	if (window >= 0)
		aggregate_set_window(window);
	if (l != NULL) {
		cfg.level = level;
		free(cfg.level_ranks);
		cfg.level_ranks = ranks;
		cfg.nlevel_ranks = nranks;
		ranks = NULL;
		runtime_push_level(level, cfg.level_ranks, cfg.nlevel_ranks);
	}
	free(ranks);
	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	ev = json_pack("{s:s, s:s, s:o}", "ts", ts, "event", "set_mode",
	    "mode", control_mode());
	jsonlog_event(ev);
	json_decref(ev);
	return (json_pack("{s:s, s:o}", "type", "mode", "mode",
	    control_mode()));
}

json_t *
control_dispatch(json_t *req)
{
	const char	*type = json_string_value(json_object_get(req, "type"));
	json_t		*t;
	double		 secs = 3;

	if (type == NULL)
		return (control_error("request has no type"));
	if (strcmp(type, "flush") == 0) {
		t = json_object_get(req, "timeout_ms");
		if (t != NULL && (!json_is_integer(t) ||
		    json_integer_value(t) < 0))
			return (control_error("timeout_ms must be a "
			    "non-negative integer"));
		if (t != NULL)
			secs = (double)json_integer_value(t) / 1000;
		return (control_flush((int)(secs * 1000)));
	}
	if (strcmp(type, "status") == 0)
		return (control_status());
	if (strcmp(type, "set_mode") == 0)
		return (control_set_mode(req));
	return (control_error("unknown request type (this collector knows "
	    "hello, flush, status and set_mode)"));
}
