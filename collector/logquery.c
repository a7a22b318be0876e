/*
 * Questions to a JSON log. Records are tested on their bytes first: the
 * collector writes each with its keys in a fixed order and every string
 * escaped, so a key such as "rank": can only be the key itself and the
 * first one is the record's own. Only records that pass are parsed, and
 * then every test is made again on the parsed record.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "logquery.h"
#include "rankset.h"

#define NS	1000000000LL

void
logq_init(struct logq *q)
{
	memset(q, 0, sizeof *q);
	q->pid = -1;
	q->source = -1;
	q->stream = -1;
	q->since = INT64_MIN;
	q->until = INT64_MAX;
}

void
logq_free(struct logq *q)
{
	size_t	i;

	free(q->ranks);
	q->ranks = NULL;
	for (i = 0; i < q->nlate; i++)
		free(q->late[i].host);
	free(q->late);
	q->late = NULL;
	q->nlate = 0;
	if (q->have_re)
		regfree(&q->re);
	q->have_re = 0;
}

/* Add the needle s to q's. */
static void
logq_needle(struct logq *q, const char *s)
{
	int	i = q->nneedles++;

	q->nlen[i] = (size_t)snprintf(q->needle[i], sizeof q->needle[i], "%s", s);
}

void
logq_ready(struct logq *q)
{
	static const char *const rare[] = { "\"level\":\"WARNING\"",
	    "\"level\":\"ERROR\"", "\"level\":\"CRITICAL\"" };
	char	buf[48];
	int	i;

	q->nneedles = 0;
	if (q->events)		/* lifecycle records hold none of them */
		return;
	q->by_tail = q->priority >= 30 && q->nranks == 0;
	if (q->priority >= 30 && !q->by_tail) {
		for (i = q->priority / 10 - 3; i < 3; i++)
			logq_needle(q, rare[i]);
	} else if (q->nranks == 1) {
		snprintf(buf, sizeof buf, "\"rank\":%ld,", q->ranks[0]);
		logq_needle(q, buf);
		if (q->nlate > 0)	/* its lines before it told it */
			logq_needle(q, "\"rank\":null,");
	} else if (q->source >= 0) {
		snprintf(buf, sizeof buf, "\"source\":%ld,", q->source);
		logq_needle(q, buf);
	}
}

static int
late_cmp(const void *a, const void *b)
{
	const struct logq_late	*x = a, *y = b;

	if (x->pid != y->pid)
		return (x->pid < y->pid ? -1 : 1);
	if (x->source != y->source)
		return (x->source < y->source ? -1 : 1);
	return (strcmp(x->host, y->host));
}

void
logq_learn_ranks(struct logq *q, const char *buf, size_t len)
{
	/* memmem skips further on a long needle: logs -r costs 2.4% more
	 * instructions on a log without one, 4.8% with ,"event":"rank"
	 * alone (the collector writes world_size next). */
	static const char	 ev[] = ",\"event\":\"rank\",\"world_size\":";
	const char		*p = buf, *end = buf + len, *hit, *start, *nl;
	const char		*host, *ev_name;
	struct logq_late	*l;
	json_t			*o, *r;
	size_t			 had = q->nlate;

	while ((hit = memmem(p, (size_t)(end - p), ev, sizeof ev - 1)) !=
	    NULL && (nl = memchr(hit, '\n', (size_t)(end - hit))) != NULL) {
		for (start = hit; start > buf && start[-1] != '\n'; start--)
			;
		p = nl + 1;
		if ((o = json_loadb(start, (size_t)(nl - start), 0, NULL)) ==
		    NULL)
			continue;
		r = json_object_get(o, "rank");
		host = json_string_value(json_object_get(o, "host"));
		/* The needle may lie deeper in a log not the collector's. */
		ev_name = json_string_value(json_object_get(o, "event"));
		if (json_is_integer(r) && host != NULL && ev_name != NULL &&
		    strcmp(ev_name, "rank") == 0 && q->ranks != NULL &&
		    rankset_has(q->ranks, q->nranks,
		    (long)json_integer_value(r))) {
			if ((q->late = realloc(q->late, (q->nlate + 1) *
			    sizeof *q->late)) == NULL ||
			    (host = strdup(host)) == NULL) {
				perror("meshlogctl logs");
				exit(1);
			}
			l = &q->late[q->nlate++];
			l->host = (char *)host;
			l->pid = (long)json_integer_value(json_object_get(o,
			    "pid"));
			l->source = json_integer_value(json_object_get(o,
			    "source"));
			l->rank = (long)json_integer_value(r);
		}
		json_decref(o);
	}
	if (q->nlate > had)
		qsort(q->late, q->nlate, sizeof *q->late, late_cmp);
}

/* The rank of record o: its own, or the one its process told later; -1. */
static long
record_rank(const struct logq *q, json_t *o)
{
	struct logq_late	 key, *l;
	json_t			*r = json_object_get(o, "rank");

	if (json_is_integer(r))
		return ((long)json_integer_value(r));
	if (q->nlate == 0 || (key.host = (char *)json_string_value(
	    json_object_get(o, "host"))) == NULL)
		return (-1);
	key.pid = (long)json_integer_value(json_object_get(o, "pid"));
	key.source = json_integer_value(json_object_get(o, "source"));
	l = bsearch(&key, q->late, q->nlate, sizeof *q->late, late_cmp);
	return (l != NULL ? l->rank : -1);
}

int
logq_parse_level(const char *s)
{
	static const struct {
		const char	*name;
		int		 level;
	} names[] = {
		{ "DEBUG", 10 }, { "INFO", 20 }, { "WARNING", 30 },
		{ "WARN", 30 }, { "ERROR", 40 }, { "ERR", 40 },
		{ "CRITICAL", 50 }, { "CRIT", 50 }, { "FATAL", 50 },
	};
	char	*end;
	long	 n;
	size_t	 i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcasecmp(s, names[i].name) == 0)
			return (names[i].level);
	}
	n = strtol(s, &end, 10);
	if (*s != '\0' && *end == '\0' && n >= 0 && n <= 50)
		return ((int)n);
	return (-1);
}

/* Up to max digits at *p as a number; -1 when there are fewer than min. */
static long
digits(const char **p, int min, int max)
{
	long	v = 0;
	int	n = 0;

	while (n < max && isdigit((unsigned char)**p)) {
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	return (n < min ? -1 : v);
}

/*
 * A span from now as systemd.time(7) writes one: "-1h30m", "+90s", "-2d",
 * "-2 hours", "1h 30min ago", "5min left". Seconds, or -1 when s is not
 * that.
 */
static int
relative(const char *s, int64_t *secs)
{
	static const struct {
		const char	*unit;
		int64_t		 secs;
	} units[] = {
		{ "weeks", 604800 }, { "week", 604800 }, { "w", 604800 },
		{ "days", 86400 }, { "day", 86400 }, { "d", 86400 },
		{ "hours", 3600 }, { "hour", 3600 }, { "hr", 3600 },
		{ "h", 3600 }, { "minutes", 60 }, { "minute", 60 },
		{ "min", 60 }, { "m", 60 }, { "seconds", 1 }, { "second", 1 },
		{ "sec", 1 }, { "s", 1 },
	};
	const char	*p = s, *end = s + strlen(s);
	int64_t		 total = 0;
	long		 v;
	size_t		 i, len;
	int		 sign, n = 0;

	if (*p == '-' || *p == '+')
		sign = *p++ == '-' ? -1 : 1;
	else if (end - p > 4 && strcmp(end - 4, " ago") == 0) {
		sign = -1;
		end -= 4;
	} else if (end - p > 5 && strcmp(end - 5, " left") == 0) {
		sign = 1;
		end -= 5;
	} else
		return (-1);
	for (;;) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		if ((v = digits(&p, 1, 9)) < 0)
			return (-1);
		n++;
		while (p < end && *p == ' ')
			p++;
		for (i = 0; i < sizeof units / sizeof units[0]; i++) {
			len = strlen(units[i].unit);
			if ((size_t)(end - p) >= len &&
			    strncmp(p, units[i].unit, len) == 0 &&
			    (p + len == end || !isalpha((unsigned char)p[len])))
				break;
		}
		if (i == sizeof units / sizeof units[0]) {
			if (p != end)	/* a bare number, last: seconds */
				return (-1);
			total += v;
			break;
		}
		total += v * units[i].secs;
		p += len;
		if (total > 100LL * 365 * 86400)
			return (-1);
	}
	if (n == 0)
		return (-1);
	*secs = sign * total;
	return (0);
}

/* Local midnight days from today's, as ns. */
static int64_t
midnight(int64_t now, int days)
{
	time_t		t = (time_t)(now / NS);
	struct tm	tm;

	localtime_r(&t, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mday += days;
	tm.tm_isdst = -1;
	return ((int64_t)mktime(&tm) * NS);
}

int
logq_parse_time(const char *s, int64_t now, int64_t *out)
{
	const char	*p = s;
	struct tm	 tm;
	time_t		 t, nowt = (time_t)(now / NS);
	int64_t		 secs, frac = 0, scale = NS / 10;
	long		 v, oh, om;
	int		 have_date = 0, zone = 0, sign;

	if (strcmp(s, "now") == 0) {
		*out = now;
		return (0);
	}
	if (strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0 ||
	    strcmp(s, "tomorrow") == 0) {
		*out = midnight(now, s[0] == 'y' ? -1 : s[0] == 't' &&
		    s[2] == 'm' ? 1 : 0);
		return (0);
	}
	if (relative(s, &secs) == 0) {
		*out = now + secs * NS;
		return (0);
	}
	localtime_r(&nowt, &tm);
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	/* YYYY-MM-DD */
	if (strlen(p) >= 10 && p[4] == '-' && p[7] == '-') {
		if ((v = digits(&p, 4, 4)) < 0)
			return (-1);
		tm.tm_year = (int)v - 1900;
		p++;
		if ((v = digits(&p, 2, 2)) < 1 || v > 12)
			return (-1);
		tm.tm_mon = (int)v - 1;
		p++;
		if ((v = digits(&p, 2, 2)) < 1 || v > 31)
			return (-1);
		tm.tm_mday = (int)v;
		have_date = 1;
		tm.tm_hour = tm.tm_min = 0;
		if (*p == 'T' || *p == ' ')
			p++;
		else if (*p != '\0')
			return (-1);
	}
	if (*p != '\0') {
		/* HH:MM[:SS[.frac]] */
		if ((v = digits(&p, 1, 2)) < 0 || v > 23 || *p++ != ':')
			return (-1);
		tm.tm_hour = (int)v;
		if ((v = digits(&p, 2, 2)) < 0 || v > 59)
			return (-1);
		tm.tm_min = (int)v;
		if (*p == ':') {
			p++;
			if ((v = digits(&p, 2, 2)) < 0 || v > 60)
				return (-1);
			tm.tm_sec = (int)v;
			if (*p == '.' || *p == ',') {
				p++;
				if (!isdigit((unsigned char)*p))
					return (-1);
				for (; isdigit((unsigned char)*p); p++) {
					frac += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
		if (*p == 'Z' || *p == 'z') {
			zone = 1;
			oh = om = 0;
			sign = 1;
			p++;
		} else if (*p == '+' || *p == '-') {
			zone = 1;
			sign = *p++ == '-' ? -1 : 1;
			if ((oh = digits(&p, 2, 2)) < 0 || oh > 23)
				return (-1);
			if (*p == ':')
				p++;
			if ((om = digits(&p, 2, 2)) < 0 || om > 59)
				return (-1);
		}
		if (*p != '\0')
			return (-1);
	} else if (!have_date)
		return (-1);
	if (zone) {
		if (!have_date)
			return (-1);
		t = timegm(&tm) - sign * (oh * 3600 + om * 60);
	} else
		t = mktime(&tm);
	if (t == (time_t)-1 && !zone)
		return (-1);
	*out = (int64_t)t * NS + frac;
	return (0);
}

/* The bytes after the first "key": of rec, or NULL. */
static const char *
field(const char *rec, size_t n, const char *key, size_t klen)
{
	const char	*p = memmem(rec, n, key, klen);

	return (p != NULL ? p + klen : NULL);
}

#define FIELD(rec, n, lit)	field((rec), (n), (lit), sizeof(lit) - 1)

/* A line record's prefix is {"ts":"<27 bytes>","ts_ns": */
#define TS_NS_AT	36

/* Whether rec is a line record (has ts_ns), from its bytes. */
static int
is_line(const char *rec, size_t n)
{
	if (n > TS_NS_AT + 8 && memcmp(rec + TS_NS_AT, "\"ts_ns\":", 8) == 0)
		return (1);
	return (FIELD(rec, n < 96 ? n : 96, "\"ts_ns\":") != NULL);
}

/* "2026-11-30T02:15:46.830911Z" at p in ns, or 0. */
static int64_t
ts_parse(const char *p, size_t n)
{
	char	buf[40];
	int64_t	v;

	if (n > sizeof buf - 1)
		n = sizeof buf - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	if (strchr(buf, '"') != NULL)
		*strchr(buf, '"') = '\0';
	if (strlen(buf) < 20 || logq_parse_time(buf, 0, &v) != 0)
		return (0);
	return (v);
}

int64_t
logq_time(const char *rec, size_t n)
{
	const char	*p;
	int64_t		 v = 0;

	if (is_line(rec, n)) {
		p = FIELD(rec, n, "\"ts_ns\":");
		while (p < rec + n && *p >= '0' && *p <= '9')
			v = v * 10 + (*p++ - '0');
		return (v);
	}
	if ((p = FIELD(rec, n, "\"ts\":\"")) == NULL)
		return (0);
	return (ts_parse(p, (size_t)(rec + n - p)));
}

/* The level named at p ("ERROR"...), or 0. */
static int
level_at(const char *p, const char *end)
{
	static const char *const names[] = { "DEBUG\"", "INFO\"",
	    "WARNING\"", "ERROR\"", "CRITICAL\"" };
	size_t	i, len;

	for (i = 0; i < 5; i++) {
		len = strlen(names[i]);
		if ((size_t)(end - p) >= len && memcmp(p, names[i], len) == 0)
			return ((int)(i + 1) * 10);
	}
	return (0);
}

int
logq_tail_maybe(const struct logq *q, const char *rec, size_t n)
{
	const char	*p;

	if (n < 16 || rec[n - 1] != '}')
		return (0);
	if (rec[n - 2] == '}')		/* "copy_of":{...} comes last */
		return (1);
	if (rec[n - 2] != '"')
		return (0);
	if ((p = memrchr(rec, '"', n - 2)) == NULL || p - rec < 9 ||
	    memcmp(p - 9, ",\"level\":", 9) != 0)
		return (0);
	return (level_at(p + 1, rec + n) >= q->priority);
}

int
logq_maybe(const struct logq *q, const char *rec, size_t n)
{
	const char	*p, *end = rec + n;
	long		 r;
	int64_t		 t;
	int		 line = is_line(rec, n);

	if (!line) {
		if (!q->events)
			return (0);
	} else {
		if (!q->copies && FIELD(rec, n, ",\"copy\":true") != NULL)
			return (0);
		if (!q->piped && FIELD(rec, n, ",\"piped\":true") != NULL)
			return (0);
		if (q->priority > 0 && ((p = FIELD(rec, n, "\"level\":\"")) ==
		    NULL || level_at(p, end) < q->priority))
			return (0);
	}
	if (q->ranks != NULL) {
		/* A rankless record may be a late rank's: logq_match says. */
		if ((p = FIELD(rec, n, "\"rank\":")) == NULL ||
		    (*p == 'n' && q->nlate == 0))
			return (0);
		r = *p == 'n' ? -1 : strtol(p, NULL, 10);
		if (r >= 0 && !rankset_has(q->ranks, q->nranks, r))
			return (0);
	}
	if (q->since != INT64_MIN || q->until != INT64_MAX) {
		t = logq_time(rec, n);
		if (t < q->since || t > q->until)
			return (0);
	}
	return (1);
}

const char *
logq_line(json_t *o, size_t *len)
{
	json_t	*l;

	if (json_object_get(o, "event") != NULL ||
	    !json_is_string(l = json_object_get(o, "line")))
		return (NULL);
	*len = json_string_length(l);
	return (json_string_value(l));
}

/* The record's level (10..50), or 0. */
static int
record_level(json_t *o)
{
	const char	*s = json_string_value(json_object_get(o, "level"));
	int		 l;

	return (s != NULL && (l = logq_parse_level(s)) > 0 ? l : 0);
}

int
logq_match(const struct logq *q, json_t *o)
{
	const char	*line, *s;
	json_t		*v;
	size_t		 len;
	int64_t		 t;
	int		 is_event = json_object_get(o, "event") != NULL;

	line = logq_line(o, &len);
	if (line == NULL && (!is_event || !q->events))
		return (0);
	if (q->ranks != NULL && !rankset_has(q->ranks, q->nranks,
	    record_rank(q, o)))
		return (0);
	if (q->host != NULL && ((s = json_string_value(json_object_get(o,
	    "host"))) == NULL || strcmp(s, q->host) != 0))
		return (0);
	if (q->pid >= 0 && json_integer_value(json_object_get(o, "pid")) !=
	    q->pid)
		return (0);
	if (q->source >= 0 && json_integer_value(json_object_get(o,
	    "source")) != q->source)
		return (0);
	if (q->since != INT64_MIN || q->until != INT64_MAX) {
		if (json_is_integer(v = json_object_get(o, "ts_ns")))
			t = json_integer_value(v);
		else if ((s = json_string_value(json_object_get(o, "ts"))) !=
		    NULL)
			t = ts_parse(s, strlen(s));
		else
			t = 0;
		if (t < q->since || t > q->until)
			return (0);
	}
	if (line == NULL)		/* a lifecycle record asked for */
		return (1);
	if (!q->copies && json_is_true(json_object_get(o, "copy")))
		return (0);
	if (!q->piped && json_is_true(json_object_get(o, "piped")))
		return (0);
	if (q->stream >= 0 && ((s = json_string_value(json_object_get(o,
	    "stream"))) == NULL || strcmp(s, q->stream ? "stderr" :
	    "stdout") != 0))
		return (0);
	if (q->priority > 0 && record_level(o) < q->priority)
		return (0);
	if (q->have_re && regexec(&q->re, line, 0, NULL, 0) != 0)
		return (0);
	return (1);
}
