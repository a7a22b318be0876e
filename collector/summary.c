/*
 * The job's account at its end: per rank, its lines, warnings and errors
 * (the severity the console detects), how its process ended and when; the
 * first failure with its last lines; ranks that never registered when the
 * world size is known; processes without a rank, counted. Processes are
 * added as they end (summary_add); the ones still running are passed in
 * when an account is asked for.
 *
 * A rank's lines, warnings and errors are those of every process that had
 * the rank (its forked workers, a restarted process); its pid, exit and
 * end are its last registered process's (not a forked worker's).
 */

#include <sys/wait.h>

#include <stdlib.h>
#include <string.h>

#include "collector.h"

/* Largest world whose missing ranks are listed. */
#define SUMMARY_WORLD_MAX	(1L << 20)

/* One rank's account, or the processes without a rank. */
struct summary_rank {
	long			 rank;
	struct summary_proc	 main;		/* its last registered process */
	int			 have_main;
	uint64_t		 lines;
	uint64_t		 warnings;
	uint64_t		 errors;
	unsigned		 procs;
};

static struct summary_rank	*ranks;
static size_t			 nranks, capranks;
static struct summary_proc	 first;		/* the first failure */
static json_t			*first_lines;	/* its last lines */
static int			 have_first;
static long			 world_size = -1;
/* Processes without a rank: how many, how many failed, the first few. */
static unsigned			 others, others_failed;
static json_t			*others_list;

/* Compare ranks for bsearch and qsort. */
static int
summary_rank_cmp(const void *a, const void *b)
{
	long	x = ((const struct summary_rank *)a)->rank;
	long	y = ((const struct summary_rank *)b)->rank;

	return (x < y ? -1 : x > y);
}

/* The account of rank r in table t (n entries, sorted), made if new. */
static struct summary_rank *
summary_rank_get(struct summary_rank **t, size_t *n, size_t *cap, long r)
{
	struct summary_rank	key, *e;

	key.rank = r;
	if ((e = bsearch(&key, *t, *n, sizeof **t, summary_rank_cmp)) != NULL)
		return (e);
	if (*n == *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		*t = xrealloc(*t, *cap * sizeof **t);
	}
	e = *t + (*n)++;
	memset(e, 0, sizeof *e);
	e->rank = r;
	qsort(*t, *n, sizeof **t, summary_rank_cmp);
	return (bsearch(&key, *t, *n, sizeof **t, summary_rank_cmp));
}

/* Whether p ended abnormally. */
static int
summary_failed(const struct summary_proc *p)
{
	return (p->have_status && (!WIFEXITED(p->status) ||
	    WEXITSTATUS(p->status) != 0));
}

/* p's "exit" as the JSON log says it (new reference). */
static json_t *
summary_exit(const struct summary_proc *p)
{
	char	sig[32];

	if (!p->have_status)
		return (json_null());
	if (WIFEXITED(p->status))
		return (json_pack("{s:i}", "code", WEXITSTATUS(p->status)));
	summary_signame(WTERMSIG(p->status), sig, sizeof sig);
	return (json_pack("{s:s, s:b}", "signal", sig, "core",
	    WCOREDUMP(p->status) != 0));
}

/* p's identity and end (new reference). */
static json_t *
summary_proc_json(const struct summary_proc *p)
{
	json_t	*o;

	o = json_pack("{s:o, s:s, s:I, s:o, s:s?}", "rank", p->rank < 0 ?
	    json_null() : json_integer(p->rank), "host", p->host, "pid",
	    (json_int_t)p->pid, "exit", summary_exit(p), "ended",
	    p->ended[0] != '\0' ? p->ended : NULL);
	if (p->oom_killed)
		json_object_set_new(o, "oom_killed", json_true());
	if (!p->have_status && p->running)
		json_object_set_new(o, "running", json_true());
	if (!p->have_status && p->relay_lost)
		json_object_set_new(o, "relay_lost", json_true());
	return (o);
}

/* Fold p into table t. */
static void
summary_fold(struct summary_rank **t, size_t *n, size_t *cap,
    const struct summary_proc *p)
{
	struct summary_rank	*e;

	if (p->world_size > world_size)
		world_size = p->world_size;
	if (p->rank < 0)
		return;
	e = summary_rank_get(t, n, cap, p->rank);
	e->lines += p->lines;
	e->warnings += p->warnings;
	e->errors += p->errors;
	e->procs++;
	if (!p->forked || !e->have_main) {
		e->main = *p;
		e->have_main = 1;
	}
}

void
summary_add(const struct summary_proc *p, const struct ending_lines *tail)
{
	size_t	i;

	summary_fold(&ranks, &nranks, &capranks, p);
	if (p->first_failure && !have_first) {
		first = *p;
		have_first = 1;
		first_lines = json_array();
		for (i = 0; tail != NULL && i < tail->n; i++)
			json_array_append_new(first_lines, json_stringn_nocheck(
			    tail->line[i], tail->len[i]));
	}
	if (p->rank >= 0)
		return;
	others++;
	if (!summary_failed(p))
		return;
	others_failed++;
	if (others_list == NULL)
		others_list = json_array();
	if (json_array_size(others_list) < 8)
		json_array_append_new(others_list, summary_proc_json(p));
}

json_t *
summary_build(const struct summary_proc *live, size_t nlive,
    const char *log)
{
	struct summary_rank	*t = NULL, *e;
	size_t			 n = nranks, cap = nranks, i;
	json_t			*o, *a, *missing;
	uint64_t		 lines = 0, warnings = 0, errors = 0;
	unsigned		 failed = 0;
	long			 r;

	/* The ended processes' table, then the running ones on a copy. */
	if (n > 0) {
		t = xcalloc(n, sizeof *t);
		memcpy(t, ranks, n * sizeof *t);
	}
	for (i = 0; i < nlive; i++)
		summary_fold(&t, &n, &cap, &live[i]);
	a = json_array();
	for (i = 0; i < n; i++) {
		e = &t[i];
		o = summary_proc_json(&e->main);
		json_object_set_new(o, "lines", json_integer((json_int_t)
		    e->lines));
		json_object_set_new(o, "warnings", json_integer((json_int_t)
		    e->warnings));
		json_object_set_new(o, "errors", json_integer((json_int_t)
		    e->errors));
		if (e->procs > 1)
			json_object_set_new(o, "processes", json_integer(
			    e->procs));
		json_array_append_new(a, o);
		lines += e->lines;
		warnings += e->warnings;
		errors += e->errors;
		failed += summary_failed(&e->main);
	}
	missing = json_array();
	/* A world of more than a million ranks is a wrong WORLD_SIZE. */
	for (r = 0, i = 0; world_size > 0 && world_size <= SUMMARY_WORLD_MAX &&
	    r < world_size; r++) {
		while (i < n && t[i].rank < r)
			i++;
		if (i == n || t[i].rank != r)
			json_array_append_new(missing, json_integer(r));
	}
	o = json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:o, s:{s:i, s:i, s:O?}, "
	    "s:s?}", "event", "summary", "ranks", a, "ranks_failed",
	    (json_int_t)failed, "lines", (json_int_t)lines, "warnings",
	    (json_int_t)warnings, "errors", (json_int_t)errors,
	    "missing_ranks", missing, "other_processes", "count", others,
	    "failed", others_failed, "failures", others_list, "log", log);
	json_object_set_new(o, "world_size", world_size > 0 ?
	    json_integer(world_size) : json_null());
	if (have_first) {
		json_object_set_new(o, "first_failure", summary_proc_json(
		    &first));
		json_object_set_new(json_object_get(o, "first_failure"),
		    "last_lines", json_incref(first_lines));
	}
	free(t);
	return (o);
}

void
summary_reset(void)
{
	free(ranks);
	ranks = NULL;
	nranks = capranks = 0;
	json_decref(first_lines);
	first_lines = NULL;
	have_first = 0;
	json_decref(others_list);
	others_list = NULL;
	others = others_failed = 0;
	world_size = -1;
}
