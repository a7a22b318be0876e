/*
 * A job's summary (summary.c's record) as text for a person: one line
 * when every process exited 0, else a table of the ranks with the first
 * failure and its last lines. Shared by the collector (its console at the
 * end of launch mode) and meshlogctl (summary); needs only jansson.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "summarytext.h"

/* Ranks listed one a row, at most; past that, a line for each way of
 * ending. */
#define SUMMARY_ROWS	16

#define RED	"\x1b[31m"
#define BOLD	"\x1b[1;31m"
#define OFF	"\x1b[0m"

void
summary_signame(int sig, char *buf, size_t len)
{
	const char	*abbrev = sigabbrev_np(sig);

	if (abbrev != NULL)
		snprintf(buf, len, "SIG%s", abbrev);
	else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(buf, len, "%d", sig);
}

/* "exit 3", "SIGKILL", "SIGKILL (OOM)", "running" or "?" in buf. */
static const char *
summary_exit_word(json_t *p, char *buf, size_t len)
{
	json_t	*e = json_object_get(p, "exit");

	if (json_is_object(e) && json_object_get(e, "code") != NULL)
		snprintf(buf, len, "exit %lld", (long long)json_integer_value(
		    json_object_get(e, "code")));
	else if (json_is_object(e))
		snprintf(buf, len, "%s%s", json_string_value(json_object_get(e,
		    "signal")), json_is_true(json_object_get(p, "oom_killed")) ?
		    " (OOM)" : json_is_true(json_object_get(e, "core")) ?
		    " (core)" : "");
	else
		snprintf(buf, len, "%s", json_is_true(json_object_get(p,
		    "running")) ? "running" : json_is_true(json_object_get(p,
		    "relay_lost")) ? "relay lost" : "?");
	return (buf);
}

/* Whether the exit of p is a clean one (code 0) or still running. */
static int
summary_ok(json_t *p)
{
	json_t	*e = json_object_get(p, "exit");

	if (json_is_null(e) || e == NULL)
		return (json_is_true(json_object_get(p, "running")));
	return (json_integer_value(json_object_get(e, "code")) == 0 &&
	    json_object_get(e, "code") != NULL);
}

/* HH:MM:SS.ss of p's RFC 3339 time key, or "-". */
static const char *
summary_clock(json_t *p, const char *key, char *buf, size_t len)
{
	const char	*ts = json_string_value(json_object_get(p, key));
	const char	*t = ts != NULL ? strchr(ts, 'T') : NULL;

	snprintf(buf, len, "%.11s", t != NULL ? t + 1 : "-");
	return (buf);
}

/* "rank 1 (pid 4, host h)" or "pid 4 (python3, host h)". */
static void
summary_who(FILE *f, json_t *p)
{
	json_t		*r = json_object_get(p, "rank");
	const char	*prog = json_string_value(json_object_get(p,
			    "program"));

	if (json_is_integer(r))
		fprintf(f, "rank %lld (pid %lld, host %s)",
		    (long long)json_integer_value(r),
		    (long long)json_integer_value(json_object_get(p, "pid")),
		    json_string_value(json_object_get(p, "host")));
	else
		fprintf(f, "pid %lld (%s%shost %s)",
		    (long long)json_integer_value(json_object_get(p, "pid")),
		    prog != NULL ? prog : "", prog != NULL ? ", " : "",
		    json_string_value(json_object_get(p, "host")));
}

/* "0-3,5" of a sorted array of integers. */
static void
summary_ranges(FILE *f, json_t *a)
{
	size_t		i, n = json_array_size(a);
	long long	lo, hi;

	for (i = 0; i < n; i = i) {
		lo = hi = json_integer_value(json_array_get(a, i));
		while (++i < n && json_integer_value(json_array_get(a, i)) ==
		    hi + 1)
			hi++;
		fprintf(f, "%s%lld", lo == json_integer_value(json_array_get(
		    a, 0)) ? "" : ",", lo);
		if (hi > lo)
			fprintf(f, "-%lld", hi);
	}
}

/* After sep, s's count of key, as "1 line" or "2 lines". */
static void
summary_count(FILE *f, const char *sep, json_t *s, const char *key,
    const char *one)
{
	long long	n = json_integer_value(json_object_get(s, key));

	fprintf(f, "%s%lld %s", sep, n, n == 1 ? one : key);
}

/*
 * The first failure's last lines, after the first of its runtime's last
 * words that came before them, and how many lines came between.
 */
static void
summary_last_lines(FILE *f, json_t *first)
{
	json_t		*v;
	json_int_t	 n = json_integer_value(json_object_get(first,
			    "lines_between"));
	size_t		 i;

	json_array_foreach(json_object_get(first, "first_lines"), i, v)
		fprintf(f, "    %s\n", json_string_value(v));
	if (n > 0)
		fprintf(f, "    ... (%lld line%s)\n", (long long)n,
		    n == 1 ? "" : "s");
	json_array_foreach(json_object_get(first, "last_lines"), i, v)
		fprintf(f, "    %s\n", json_string_value(v));
}

/* The ends not counted as failures, if any. */
static void
summary_quiet(FILE *f, const char *sep, long long n)
{
	if (n > 0)
		fprintf(f, "%s(%lld ended as pipelines, tests and clean-ups "
		    "do: by SIGPIPE, SIGTERM or the like, or a nonzero code "
		    "without output)", sep, n);
}

/* Why a launched command's output is not in the log, if it is not. */
static void
summary_uncaptured(FILE *f, json_t *cmd)
{
	if (cmd == NULL || !json_is_false(json_object_get(cmd, "captured")))
		return;
	fprintf(f, "  the command (pid %lld) was not captured: it did not "
	    "start, is static or setuid, or cleared LD_PRELOAD; its output "
	    "went straight to its destinations\n", (long long)
	    json_integer_value(json_object_get(cmd, "pid")));
}

/* Whether p is the first failure's process. */
static int
summary_is_first(json_t *p, json_t *first)
{
	return (first != NULL && json_equal(json_object_get(p, "pid"),
	    json_object_get(first, "pid")) && json_equal(json_object_get(p,
	    "host"), json_object_get(first, "host")));
}

/*
 * No ranks: the first line counted the processes and named the first
 * failure. Named here: the others that failed (the summary lists up to
 * 8), and those whose end was no failure.
 */
static void
summary_also(FILE *f, json_t *failures, json_t *first, long long failed,
    long long quiet)
{
	json_t		*p;
	char		 word[48];
	size_t		 i;
	long long	 n = 0;

	json_array_foreach(failures, i, p) {
		if (summary_is_first(p, first))
			continue;
		fprintf(f, n++ > 0 ? ", " : first != NULL ? "  also ended "
		    "abnormally: " : "  ended abnormally: ");
		summary_who(f, p);
		fprintf(f, " %s", summary_exit_word(p, word, sizeof word));
	}
	/* Those past the list: the first failure is one of the count. */
	if (failed - (first != NULL) > n)
		fprintf(f, "%s%lld more", n > 0 ? ", " : first != NULL ?
		    "  also ended abnormally: " : "  ended abnormally: ",
		    failed - (first != NULL) - n);
	if (failed - (first != NULL) > 0 || n > 0)
		summary_quiet(f, " ", quiet);
	else if (quiet > 0)
		summary_quiet(f, "  ", quiet);
	if (failed - (first != NULL) > 0 || n > 0 || quiet > 0)
		fprintf(f, "\n");
}

/* One rank's row of the table. */
static void
summary_row(FILE *f, json_t *p, json_t *first, int colour)
{
	char	word[48], clock[16];

	summary_exit_word(p, word, sizeof word);
	if (summary_is_first(p, first))
		strncat(word, " *", sizeof word - strlen(word) - 1);
	fprintf(f, "  %5lld  %-12.12s %8lld %9lld %9lld %7lld  %s%-14s%s "
	    "%s\n", (long long)json_integer_value(json_object_get(p,
	    "rank")), json_string_value(json_object_get(p, "host")),
	    (long long)json_integer_value(json_object_get(p, "pid")),
	    (long long)json_integer_value(json_object_get(p, "lines")),
	    (long long)json_integer_value(json_object_get(p, "warnings")),
	    (long long)json_integer_value(json_object_get(p, "errors")),
	    colour && !summary_ok(p) ? (strchr(word, '*') != NULL ? BOLD :
	    RED) : "", word, colour && !summary_ok(p) ? OFF : "",
	    summary_clock(p, "ended", clock, sizeof clock));
}

/*
 * The table's rows: every rank's, up to SUMMARY_ROWS ranks. Past that,
 * the first failure's and those of ranks that ended abnormally or wrote
 * errors, up to SUMMARY_ROWS, then one line for the rest of each way of
 * ending ("ranks 0-16,18-1023: exit 0, 1,022 ranks, ..."): a job of
 * 1,024 ranks does not end with 1,024 rows alike.
 */
static void
summary_rows(FILE *f, json_t *ranks, json_t *first, int colour)
{
	json_t		*p, *q, *alike;
	char		*shown, word[48], other[48];
	size_t		 n = json_array_size(ranks), i, j, rows = 0;
	long long	 count, lines, warnings, errors;

	if ((shown = calloc(n > 0 ? n : 1, 1)) == NULL)
		return;
	json_array_foreach(ranks, i, p) {
		if (n <= SUMMARY_ROWS || summary_is_first(p, first) ||
		    (rows < SUMMARY_ROWS - 1 && (!summary_ok(p) ||
		    json_integer_value(json_object_get(p, "errors")) > 0))) {
			shown[i] = 1;
			rows++;
		}
	}
	json_array_foreach(ranks, i, p) {
		if (shown[i])
			summary_row(f, p, first, colour);
	}
	json_array_foreach(ranks, i, p) {
		if (shown[i])
			continue;
		summary_exit_word(p, word, sizeof word);
		alike = json_array();
		count = lines = warnings = errors = 0;
		for (j = i; j < n; j++) {
			q = json_array_get(ranks, j);
			if (shown[j] || strcmp(summary_exit_word(q, other,
			    sizeof other), word) != 0)
				continue;
			shown[j] = 1;
			json_array_append(alike, json_object_get(q, "rank"));
			count++;
			lines += json_integer_value(json_object_get(q,
			    "lines"));
			warnings += json_integer_value(json_object_get(q,
			    "warnings"));
			errors += json_integer_value(json_object_get(q,
			    "errors"));
		}
		fprintf(f, count == 1 ? "  rank " : "  ranks ");
		summary_ranges(f, alike);
		fprintf(f, ": %s, %lld rank%s; %lld line%s, %lld warning%s, "
		    "%lld error%s\n", word, count, count == 1 ? "" : "s",
		    lines, lines == 1 ? "" : "s", warnings, warnings == 1 ? "" :
		    "s", errors, errors == 1 ? "" : "s");
		json_decref(alike);
	}
	free(shown);
}

char *
summary_text(json_t *s, int colour)
{
	json_t		*ranks = json_object_get(s, "ranks"), *p, *first, *intr;
	json_t		*other = json_object_get(s, "other_processes");
	json_t		*cmd = json_object_get(s, "command");
	const char	*log = json_string_value(json_object_get(s, "log"));
	char		*buf = NULL, word[48], clock[16];
	size_t		 len = 0, i, nranks = json_array_size(ranks);
	long long	 nother = json_integer_value(json_object_get(other,
			    "count"));
	long long	 oth_failed = json_integer_value(json_object_get(other,
			    "failed"));
	long long	 quiet = json_integer_value(json_object_get(other,
			    "not_failures"));
	unsigned	 bad = 0, running = 0;
	FILE		*f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return (NULL);
	json_array_foreach(ranks, i, p) {
		bad += !summary_ok(p);
		running += json_is_true(json_object_get(p, "running"));
	}
	first = json_object_get(s, "first_failure");
	if (bad == 0 && oth_failed == 0 && first == NULL &&
	    json_array_size(json_object_get(s, "missing_ranks")) == 0) {
		if (nranks > 0 && running == nranks)
			fprintf(f, "%zu rank%s, %s", nranks, nranks == 1 ?
			    "" : "s", nranks == 1 ? "still running" :
			    "all still running");
		else if (nranks > 0 && running > 0)
			fprintf(f, "%zu ranks, %u still running, the others "
			    "exited 0", nranks, running);
		else if (nranks > 0)
			fprintf(f, "%zu rank%s, all exited 0", nranks,
			    nranks == 1 ? "" : "s");
		else if (quiet == 0)
			fprintf(f, "%lld process%s, all exited 0", nother,
			    nother == 1 ? "" : "es");
		else
			fprintf(f, "%lld process%s, none failed", nother,
			    nother == 1 ? "" : "es");
		summary_quiet(f, nranks > 0 ? "; " : " ", quiet);
		summary_count(f, "; ", s, "lines", "line");
		summary_count(f, ", ", s, "warnings", "warning");
		summary_count(f, ", ", s, "errors", "error");
		if (log != NULL)
			fprintf(f, "; log %s", log);
		fprintf(f, "\n");
		summary_uncaptured(f, cmd);
		fclose(f);
		return (buf);
	}
	if (nranks > 0) {
		fprintf(f, "%u of %zu rank%s ended abnormally", bad, nranks,
		    nranks == 1 ? "" : "s");
		if (running > 0)
			fprintf(f, ", %u still running", running);
	} else
		fprintf(f, "%lld of %lld process%s ended abnormally",
		    oth_failed, nother, nother == 1 ? "" : "es");
	if (first != NULL) {
		fprintf(f, "; first failure: ");
		summary_who(f, first);
		fprintf(f, ", %s at %s UTC", summary_exit_word(first, word,
		    sizeof word), summary_clock(first, "ended", clock,
		    sizeof clock));
	}
	/* Told to end (^C, a scheduler): the ends that followed were asked. */
	if ((intr = json_object_get(s, "interrupted")) != NULL)
		fprintf(f, "; interrupted: %s to the job at %s UTC",
		    json_string_value(json_object_get(intr, "signal")),
		    summary_clock(intr, "at", clock, sizeof clock));
	fprintf(f, "\n");
	if (nranks > 0)
		fprintf(f, "  %5s  %-12s %8s %9s %9s %7s  %-14s %s\n", "rank",
		    "host", "pid", "lines", "warnings", "errors", "exit",
		    "ended");
	summary_rows(f, ranks, first, colour);
	if (first != NULL && json_array_size(json_object_get(first,
	    "last_lines")) > 0) {
		fprintf(f, "  %sits last lines:\n", nranks > 0 ?
		    "* first failure; " : "first failure; ");
		summary_last_lines(f, first);
	}
	if (json_array_size(json_object_get(s, "missing_ranks")) > 0) {
		fprintf(f, "  never registered: rank%s ", json_array_size(
		    json_object_get(s, "missing_ranks")) > 1 ? "s" : "");
		summary_ranges(f, json_object_get(s, "missing_ranks"));
		fprintf(f, " (world size %lld)\n", (long long)
		    json_integer_value(json_object_get(s, "world_size")));
	}
	if (nother > 0 && nranks > 0) {
		fprintf(f, "  other processes: %lld, %lld ended abnormally",
		    nother, oth_failed);
		json_array_foreach(json_object_get(other, "failures"), i, p) {
			fprintf(f, i == 0 ? ": " : ", ");
			summary_who(f, p);
			fprintf(f, " %s", summary_exit_word(p, word,
			    sizeof word));
		}
		summary_quiet(f, " ", quiet);
		fprintf(f, "\n");
	} else if (nother > 0)
		summary_also(f, json_object_get(other, "failures"), first,
		    oth_failed, quiet);
	summary_uncaptured(f, cmd);
	if (log != NULL)
		fprintf(f, "  log: %s\n", log);
	fclose(f);
	return (buf);
}
