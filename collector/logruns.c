/*
 * The collector runs in a JSON log, found by the source_open records
 * alone: a memmem over the files, and jansson for those few records.
 */

#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "logfiles.h"
#include "logquery.h"
#include "logruns.h"
#include "visible.h"

static const char	logruns_open[] = "\"event\":\"source_open\"";

/* The argv of a source_open as one line (words joined by blanks, as they
 * are: shown through visible.c), or NULL. */
static char *
logruns_argv(json_t *o)
{
	json_t		*argv = json_object_get(o, "argv"), *a;
	size_t		 i, len = 0, k;
	char		*s;
	const char	*w;

	if (json_array_size(argv) == 0)
		return (NULL);
	json_array_foreach(argv, i, a)
		len += (json_is_string(a) ? json_string_length(a) : 1) + 1;
	s = logfiles_alloc(NULL, len, 1);
	len = 0;
	json_array_foreach(argv, i, a) {
		w = json_is_string(a) ? json_string_value(a) : "?";
		k = json_is_string(a) ? json_string_length(a) : 1;
		if (len > 0)
			s[len++] = ' ';
		memcpy(s + len, w, k);
		len += k;
	}
	s[len] = '\0';
	return (s);
}

/* The time of the last whole record in p[0..end), or 0. */
static int64_t
logruns_last_ns(const char *p, size_t end)
{
	const char	*e, *s;

	while (end > 0) {
		e = p + end - 1;	/* a newline, or a torn end */
		if (*e != '\n') {
			e = memrchr(p, '\n', end);
			if (e == NULL)
				return (0);
		}
		s = memrchr(p, '\n', (size_t)(e - p));
		s = s != NULL ? s + 1 : p;
		if (e > s)
			return (logq_time(s, (size_t)(e - s)));
		end = (size_t)(s - p);
	}
	return (0);
}

size_t
logruns_find(char *const *p, const size_t *n, size_t nfiles,
    struct logrun **out)
{
	struct logrun	*v;
	json_t		*seen = json_object(), *o;
	const char	*at, *start, *nl, *host;
	char		 key[512];
	size_t		 nv = 1, i, off;

	v = logfiles_alloc(NULL, 1, sizeof *v);
	memset(v, 0, sizeof *v);
	for (i = 0; i < nfiles; i++) {
		if (v[0].first_ns == 0 && n[i] > 0 && (nl = memchr(p[i], '\n',
		    n[i])) != NULL)
			v[0].first_ns = logq_time(p[i], (size_t)(nl - p[i]));
		for (off = 0; off < n[i]; off = (size_t)(nl + 1 - p[i])) {
			if ((at = memmem(p[i] + off, n[i] - off, logruns_open,
			    sizeof logruns_open - 1)) == NULL)
				break;
			if ((nl = memchr(at, '\n', n[i] - (size_t)(at -
			    p[i]))) == NULL)
				break;		/* torn: not a record yet */
			start = memrchr(p[i] + off, '\n', (size_t)(at - p[i] -
			    off));
			start = start != NULL ? start + 1 : p[i] + off;
			o = json_loadb(start, (size_t)(nl - start), 0, NULL);
			if (!json_is_integer(json_object_get(o, "source"))) {
				json_decref(o);
				continue;
			}
			host = json_string_value(json_object_get(o, "host"));
			snprintf(key, sizeof key, "%s %lld", host != NULL ?
			    host : "", (long long)json_integer_value(
			    json_object_get(o, "source")));
			if (json_object_get(seen, key) != NULL &&
			    !json_is_true(json_object_get(o, "from_keeper"))) {
				v = logfiles_alloc(v, nv + 1, sizeof *v);
				memset(&v[nv], 0, sizeof v[nv]);
				v[nv].file = i;
				v[nv].off = (size_t)(start - p[i]);
				v[nv].first_ns = logq_time(start,
				    (size_t)(nl - start));
				nv++;
				json_object_clear(seen);
			}
			/* A process taken back from the keeper is no new one. */
			if (json_object_get(seen, key) == NULL)
				v[nv - 1].sources++;
			json_object_set_new(seen, key, json_true());
			if (v[nv - 1].command == NULL)
				v[nv - 1].command = logruns_argv(o);
			json_decref(o);
		}
	}
	/* Each run's last record: the one before the next run's first. */
	for (i = 0; i < nv; i++) {
		size_t	f = i + 1 < nv ? v[i + 1].file : nfiles - 1;
		size_t	e = i + 1 < nv ? v[i + 1].off : (nfiles > 0 ? n[f] : 0);

		for (;;) {
			if (nfiles > 0 && (v[i].last_ns = logruns_last_ns(p[f],
			    e)) != 0)
				break;
			if (nfiles == 0 || f == v[i].file)
				break;
			e = n[--f];
		}
	}
	json_decref(seen);
	*out = v;
	return (nv);
}

void
logruns_free(struct logrun *v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(v[i].command);
	free(v);
}

long
logruns_pick(long k, size_t nruns)
{
	if (k >= 1)
		return (k <= (long)nruns ? k - 1 : -1);
	return (-k < (long)nruns ? (long)nruns - 1 + k : -1);
}

/* A record's time as journalctl --list-boots shows it, local time. */
static void
logruns_stamp(char *buf, size_t size, int64_t ns)
{
	struct tm	tm;
	time_t		t = (time_t)(ns / 1000000000LL);

	if (ns == 0 || localtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%a %Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		snprintf(buf, size, "-");
}

void
logruns_list(char *const *p, const size_t *n, size_t nfiles)
{
	struct logrun	*v;
	char		 first[64], last[64], *cmd;
	size_t		 nv, i, k;

	nv = logruns_find(p, n, nfiles, &v);
	printf("%4s  %-27s  %-27s  %7s  %s\n", "IDX", "FIRST RECORD",
	    "LAST RECORD", "SOURCES", "COMMAND");
	for (i = 0; i < nv; i++) {
		logruns_stamp(first, sizeof first, v[i].first_ns);
		logruns_stamp(last, sizeof last, v[i].last_ns);
		k = v[i].command != NULL ? strlen(v[i].command) : 0;
		cmd = logfiles_alloc(NULL, VISIBLE_MAX(k), 1);
		k = visible_text(cmd, v[i].command, k, 0);
		printf("%4lld  %-27s  %-27s  %7zu  %.*s\n", (long long)i -
		    (long long)nv + 1, first, last, v[i].sources, k > 0 ?
		    (int)k : 1, k > 0 ? cmd : "-");
		free(cmd);
	}
	logruns_free(v, nv);
}

int
logruns_range(char *const *p, const size_t *n, size_t nfiles, long k,
    int follow, size_t *lo, size_t *hi)
{
	struct logrun	*v;
	size_t		 nv, i, ef, eoff;
	long		 r;
	int		 rc = 0;

	nv = logruns_find(p, n, nfiles, &v);
	if ((r = logruns_pick(k, nv)) < 0) {
		fprintf(stderr, "meshlogctl logs: no run %+ld: the log%s "
		    "hold%s %zu (see --list-runs)\n", k, nfiles > 1 ? "s" : "",
		    nfiles > 1 ? "" : "s", nv);
		rc = 1;
	} else if (follow && (size_t)r != nv - 1) {
		fprintf(stderr, "meshlogctl logs: -f follows the last run; "
		    "run %+ld has ended\n", k);
		rc = 2;
	} else {
		ef = (size_t)r + 1 < nv ? v[r + 1].file : nfiles - 1;
		eoff = (size_t)r + 1 < nv ? v[r + 1].off : n[ef];
		for (i = 0; i < nfiles; i++) {
			lo[i] = i < v[r].file ? n[i] : i == v[r].file ?
			    v[r].off : 0;
			hi[i] = i > ef ? 0 : i == ef ? eoff : n[i];
			if (lo[i] > hi[i])
				lo[i] = hi[i];
		}
	}
	logruns_free(v, nv);
	return (rc);
}
