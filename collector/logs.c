/*
 * meshlogctl logs: the records of JSON logs that answer a query, as
 * journalctl shows a journal. Files are mapped and read in order; with
 * -n the newest lines are found from the end, a block at a time, so that
 * "the last 20 lines of rank 3" reads only as much as it needs; with -f
 * the newest file is followed as it grows and across a rotation.
 */

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "logfiles.h"
#include "logmap.h"
#include "logquery.h"
#include "logruns.h"
#include "logs.h"
#include "logsplit.h"
#include "outname.h"
#include "rankset.h"
#include "visible.h"

/* How much of a file -n looks at at once, from its end. */
#define TAIL_BLOCK	(4u << 20)
/* How often -f looks at the file. */
#define FOLLOW_MS	200
/* How long -f reads a rotated file after it last grew. */
#define FOLLOW_OLD_MS	2000

enum logs_fmt { FMT_SHORT, FMT_PRECISE, FMT_ISO, FMT_ISO_PRECISE, FMT_UNIX,
    FMT_CAT, FMT_JSON, FMT_JSON_PRETTY };

/* -o's words, as journalctl(1) names its formats. */
static const struct {
	const char	*name;
	enum logs_fmt	 fmt;
} logs_fmts[] = {
	{ "short", FMT_SHORT }, { "short-precise", FMT_PRECISE },
	{ "short-iso", FMT_ISO }, { "short-iso-precise", FMT_ISO_PRECISE },
	{ "short-unix", FMT_UNIX }, { "cat", FMT_CAT }, { "json", FMT_JSON },
	{ "json-pretty", FMT_JSON_PRETTY },
};

struct span {
	const char	*p;
	size_t		 n;
};

struct logs {
	struct logq	 q;
	enum logs_fmt	 fmt;
	int		 color;
	int		 visible;	/* lines made safe: a terminal */
	int		 all;		/* -a: as written all the same */
	int		 parse;		/* filters the bytes do not settle */
	long		 lines;		/* -n, or -1 */
	int		 follow;
	int		 run_set;	/* -b, --run: only run */
	long		 run;
	int		 list_runs;
	struct logsplit	*split;		/* --split DIR: files, not output */
	const char	*split_dir;
	struct span	*v;		/* -n: the newest answers, in order */
	size_t		 nv;
	size_t		 cap;
};

static const char logs_usage[] =
"usage: meshlogctl logs [options] [FILE...]\n"
"\n"
"Shows the line records of JSON logs (FILE, in order; default: the running\n"
"collector's) that answer every filter given, oldest first.\n"
"\n"
"  -b, --run [N]          one collector run of a log that several wrote to\n"
"                         (-j appends): 1 the first, 2 the next; 0 (or no\n"
"                         N) the last, -1 the one before\n"
"      --list-runs        list the runs: index for -b, first and last\n"
"                         record, processes, command\n"
"  -r, --rank LIST        ranks, as 0,2-5\n"
"      --host NAME        lines from this host\n"
"      --pid PID          lines of this process\n"
"      --source ID        lines of this source (the log's \"source\") of\n"
"                         the run -b names, by default the last: each\n"
"                         run numbers its sources from 1\n"
"      --stream stdout|stderr\n"
"  -p, --priority LEVEL   lines at LEVEL or above (DEBUG, INFO, WARNING,\n"
"                         ERROR, CRITICAL); lines without a level are left out\n"
"  -S, --since TIME       lines at or after TIME; -U, --until TIME: at or\n"
"                         before. TIME: 2026-11-30T10:42:00Z (RFC 3339),\n"
"                         \"2026-11-30 10:42\", 10:42 (today, local time),\n"
"                         now, today, yesterday, or -5m, -1h30m, -2d,\n"
"                         \"1 hour ago\", \"2h 30min ago\"\n"
"  -g, --grep REGEX       lines matching the extended regular expression;\n"
"                         case is ignored unless REGEX has a capital letter\n"
"  -n, --lines N          only the last N answers\n"
"  -f, --follow           then go on showing new lines as they are written,\n"
"                         across a rotation of the file, until interrupted\n"
"      --events           lifecycle records too (process start and end,\n"
"                         flushes, level changes), whatever -p and -g say\n"
"      --copies           launchers' copies of their ranks' lines too\n"
"      --piped            what programs a rank ran answered through a pipe\n"
"                         too (pyenv's helpers in $(...), nvidia-smi read\n"
"                         by the rank): logged under the rank, no line of\n"
"                         its; shown anyway with --pid, --source, --split\n"
"  -a, --all              lines as written on a terminal too (there, escape\n"
"                         sequences other than colours show as text)\n"
"  -o, --output FORMAT    short (default): time [rank N] line;\n"
"                         short-precise: the time to the microsecond;\n"
"                         short-iso, short-iso-precise: ISO 8601 times;\n"
"                         short-unix: seconds since the epoch; cat: the\n"
"                         line only; json: the records as written;\n"
"                         json-pretty: indented\n"
"      --color[=WHEN]     colour levels: auto (on a terminal, unless\n"
"                         NO_COLOR is set), always or never\n"
"      --split DIR        instead of showing lines, write each process's\n"
"                         output to DIR/HOST/rank-N.stdout.log and\n"
"                         .stderr.log, as meshlog-collector --output-dir does\n"
"\n"
"Exit status: 0 done (answers or none), 1 a log could not be read (or\n"
"has no such run),\n"
"2 usage, 3 no FILE and no collector answered.\n";

static void __attribute__((noreturn))
logs_bad(const char *msg, const char *arg)
{
	fprintf(stderr, "meshlogctl logs: %s%s%s\nTry 'meshlogctl logs "
	    "--help'.\n", msg, arg != NULL ? ": " : "", arg != NULL ? arg :
	    "");
	exit(2);
}

/* Whether s is a whole number, as -b's argument: 1, -1, +2, 0. */
static int
logs_is_number(const char *s)
{
	s += *s == '-' || *s == '+';
	if (*s == '\0')
		return (0);
	while (*s >= '0' && *s <= '9')
		s++;
	return (*s == '\0');
}

/* Now, in ns since the epoch. */
static int64_t
logs_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

/* An argument on one line: control characters as \n, \t or \xNN. */
static void
logs_arg(const char *s)
{
	const unsigned char	*p;

	if (s == NULL)
		s = "?";
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\n')
			fputs("\\n", stdout);
		else if (*p == '\t')
			fputs("\\t", stdout);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

/* A line's time in format fmt: "Nov 30 10:42:07[.123456]" or
 * "2026-11-30T10:42:07[.123456]+01:00", local time. */
static void
logs_when(char *buf, size_t size, const struct tm *tm, int us,
    enum logs_fmt fmt)
{
	char	zone[8];
	int	iso = fmt == FMT_ISO || fmt == FMT_ISO_PRECISE;

	strftime(buf, size, iso ? "%Y-%m-%dT%H:%M:%S" : "%b %d %H:%M:%S",
	    tm);
	if (fmt == FMT_PRECISE || fmt == FMT_ISO_PRECISE)
		snprintf(buf + strlen(buf), size - strlen(buf), ".%06d", us);
	if (iso) {
		/* +0100 as +01:00 */
		strftime(zone, sizeof zone, "%z", tm);
		snprintf(buf + strlen(buf), size - strlen(buf), "%.3s:%.2s",
		    zone, zone + 3);
	}
}

/*
 * A line as it is safe on the reader's terminal (visible.c, as the
 * console view shows it): no program's escape sequence moves the cursor
 * or retitles the terminal of whoever reads its log. Borrowed.
 */
static const char *
logs_visible(const char *line, size_t *len)
{
	static char	*buf;
	static size_t	 cap;

	if (VISIBLE_MAX(*len) > cap) {
		cap = VISIBLE_MAX(*len) * 2;
		buf = logfiles_alloc(buf, cap, 1);
	}
	*len = visible_text(buf, line, *len, 1);
	return (buf);
}

/* Show the record o (its bytes rec[0..n)). */
static void
logs_print(struct logs *l, const char *rec, size_t n, json_t *o)
{
	static const char *const colors[] = { "", "", "\033[1;33m",
	    "\033[1;31m", "\033[1;31m" };
	const char	*line, *ev;
	char		 when[48];
	json_t		*rank, *exit_;
	struct tm	 tm;
	time_t		 t;
	int64_t		 ns;
	size_t		 len;
	int		 level = 0;

	if (l->fmt == FMT_JSON) {
		fwrite(rec, 1, n, stdout);
		putchar('\n');
		return;
	}
	if (l->fmt == FMT_JSON_PRETTY) {
		json_dumpf(o, stdout, JSON_INDENT(8) | JSON_PRESERVE_ORDER);
		putchar('\n');
		return;
	}
	line = logq_line(o, &len);
	if (line != NULL && l->visible)
		line = logs_visible(line, &len);
	if (l->fmt == FMT_CAT) {
		if (line != NULL) {
			fwrite(line, 1, len, stdout);
			putchar('\n');
		}
		return;
	}
	ns = logq_time(rec, n);
	t = (time_t)(ns / 1000000000LL);
	localtime_r(&t, &tm);
	if (l->fmt == FMT_UNIX)
		snprintf(when, sizeof when, "%lld.%06d", (long long)t,
		    (int)(ns % 1000000000LL / 1000));
	else
		logs_when(when, sizeof when, &tm, (int)(ns % 1000000000LL /
		    1000), l->fmt);
	fputs(when, stdout);
	rank = json_object_get(o, "rank");
	if (json_is_integer(rank))
		printf(" [rank %lld]", (long long)json_integer_value(rank));
	else
		printf(" [pid %lld]", (long long)json_integer_value(
		    json_object_get(o, "pid")));
	if (line == NULL) {
		ev = json_string_value(json_object_get(o, "event"));
		printf(" -- %s", ev != NULL ? ev : "record");
		exit_ = json_object_get(o, "exit");
		if (json_is_integer(json_object_get(exit_, "code")))
			printf(": exit code %lld", (long long)
			    json_integer_value(json_object_get(exit_, "code")));
		else if (json_is_string(json_object_get(exit_, "signal")))
			printf(": killed by %s", json_string_value(
			    json_object_get(exit_, "signal")));
		else if (json_is_integer(json_object_get(o, "world_size")) &&
		    ev != NULL && strcmp(ev, "rank") == 0)
			printf(": world size %lld", (long long)
			    json_integer_value(json_object_get(o,
			    "world_size")));
		else if (json_is_array(json_object_get(o, "argv"))) {
			size_t	 i;
			json_t	*a;

			putchar(':');
			json_array_foreach(json_object_get(o, "argv"), i, a) {
				putchar(' ');
				logs_arg(json_string_value(a));
			}
		}
		putchar('\n');
		return;
	}
	if (l->color && json_is_string(json_object_get(o, "level")))
		level = logq_parse_level(json_string_value(json_object_get(o,
		    "level")));
	putchar(' ');
	if (level >= 30)
		fputs(colors[level / 10 - 1], stdout);
	fwrite(line, 1, len, stdout);
	if (level >= 30)
		fputs("\033[0m", stdout);
	putchar('\n');
}

/*
 * Whether m is a JSON log: empty (one just opened), or a record ({"ts":")
 * among its first 64 KiB. A text file named by mistake (the job's console
 * output) showed nothing and ended as if it had answered.
 */
static int
logs_is_log(const struct mapped *m)
{
	static const char	rec[] = "{\"ts\":\"";

	return (m->n == 0 || memmem(m->p, m->n < 65536 ? m->n : 65536, rec,
	    sizeof rec - 1) != NULL);
}

/* Whether the record rec[0..n) answers; *o its parse, when one was made. */
static int
logs_answers(struct logs *l, const char *rec, size_t n, json_t **o)
{
	*o = NULL;
	if (!logq_maybe(&l->q, rec, n))
		return (0);
	if (!l->parse && l->fmt == FMT_JSON)
		return (1);
	if ((*o = json_loadb(rec, n, JSON_ALLOW_NUL, NULL)) == NULL)
		return (0);		/* not a record: a torn or foreign line */
	if (logq_match(&l->q, *o))
		return (1);
	json_decref(*o);
	*o = NULL;
	return (0);
}

/*
 * The first place in [p, end) where a needle of l's query is, or NULL;
 * at[] keeps where each one is next (NULL: not looked for yet).
 */
static const char *
logs_next_hit(struct logs *l, const char *p, const char *end,
    const char **at)
{
	const char	*best = NULL;
	int		 i;

	for (i = 0; i < l->q.nneedles; i++) {
		if (at[i] == end)	/* none left */
			continue;
		if (at[i] == NULL || at[i] < p) {
			at[i] = memmem(p, (size_t)(end - p), l->q.needle[i],
			    l->q.nlen[i]);
			if (at[i] == NULL) {
				at[i] = end;
				continue;
			}
		}
		if (best == NULL || at[i] < best)
			best = at[i];
	}
	return (best);
}

/*
 * Each whole line of buf[0..len) that answers: shown at once (keep NULL)
 * or added to keep. With needles only lines holding one are looked at.
 * Returns the bytes of whole lines gone through.
 */
static size_t
logs_scan(struct logs *l, const char *buf, size_t len, struct span **keep,
    size_t *nkeep, size_t *capkeep)
{
	const char	*p = buf, *end = buf + len, *hit, *nl, *start;
	const char	*at[LOGQ_NEEDLES] = { NULL };
	json_t		*o;

	while (p < end) {
		if (l->q.by_tail) {
			if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
				break;
			start = p;
			p = nl + 1;
			if (!logq_tail_maybe(&l->q, start, (size_t)(nl -
			    start)))
				continue;
			hit = start;
		} else if (l->q.nneedles > 0) {
			if ((hit = logs_next_hit(l, p, end, at)) == NULL)
				break;
			start = hit;
			while (start > p && start[-1] != '\n')
				start--;
		} else {
			hit = start = p;
		}
		if ((nl = memchr(hit, '\n', (size_t)(end - hit))) == NULL) {
			p = start;
			return ((size_t)(p - buf));
		}
		p = nl + 1;
		if (!logs_answers(l, start, (size_t)(nl - start), &o))
			continue;
		if (keep == NULL && l->split != NULL) {
			logsplit_record(l->split, o);
		} else if (keep == NULL) {
			logs_print(l, start, (size_t)(nl - start), o);
		} else {
			if (*nkeep == *capkeep) {
				*capkeep = *capkeep ? *capkeep * 2 : 64;
				*keep = realloc(*keep, *capkeep * sizeof **keep);
				if (*keep == NULL) {
					perror("meshlogctl logs");
					exit(1);
				}
			}
			(*keep)[(*nkeep)++] = (struct span){ start,
			    (size_t)(nl - start) };
		}
		json_decref(o);
	}
	/* Lines without a needle: all gone through, but a torn end. */
	if (p >= end)
		return (len);
	nl = memrchr(p, '\n', (size_t)(end - p));
	return (nl != NULL ? (size_t)(nl + 1 - buf) : (size_t)(p - buf));
}

/*
 * With -r: processes that told their rank after they started, in
 * buf[0..len); their lines before it are their rank's too, so a rank
 * event is learned before any line before it is looked at.
 */
static void
logs_learn(struct logs *l, const char *buf, size_t len)
{
	size_t	had = l->q.nlate;

	if (l->q.ranks == NULL)
		return;
	logq_learn_ranks(&l->q, buf, len);
	if (l->q.nlate > had) {
		l->parse = 1;
		logq_ready(&l->q);
	}
}

/*
 * The last l->lines answers of m, put before those already found (from
 * newer files): blocks from the end until there are enough.
 */
static void
logs_tail(struct logs *l, struct mapped *m, size_t *end_out)
{
	struct span	*blk = NULL, *all;
	size_t		 nblk, capblk = 0, end, start, want, keep;
	const char	*nl;

	/* A torn last line (a live log) is not a record yet. */
	nl = m->n > 0 ? memrchr(m->p, '\n', m->n) : NULL;
	end = nl != NULL ? (size_t)(nl + 1 - m->p) : 0;
	*end_out = end;
	while (end > 0 && l->nv < (size_t)l->lines) {
		start = end > TAIL_BLOCK ? end - TAIL_BLOCK : 0;
		if (start > 0) {
			nl = memrchr(m->p, '\n', start);
			start = nl != NULL ? (size_t)(nl + 1 - m->p) : 0;
		}
		nblk = 0;
		logs_learn(l, m->p + start, end - start);
		(void)logs_scan(l, m->p + start, end - start, &blk, &nblk,
		    &capblk);
		want = (size_t)l->lines - l->nv;
		keep = nblk < want ? nblk : want;
		if (keep > 0) {
			all = malloc((l->nv + keep) * sizeof *all);
			if (all == NULL) {
				perror("meshlogctl logs");
				exit(1);
			}
			memcpy(all, blk + nblk - keep, keep * sizeof *all);
			if (l->nv > 0)
				memcpy(all + keep, l->v, l->nv * sizeof *all);
			free(l->v);
			l->v = all;
			l->nv += keep;
			l->cap = l->nv;
		}
		end = start;
	}
	free(blk);
}

/* A growing buffer of bytes read but not yet a whole line. */
struct pending {
	char	*p;
	size_t	 n;
	size_t	 cap;
};

/* Read fd from *off to its end, showing each whole line that answers. */
static int
logs_drain(struct logs *l, int fd, off_t *off, struct pending *b)
{
	ssize_t	r;
	size_t	used;

	for (;;) {
		if (b->cap - b->n < 65536) {
			b->cap = b->cap ? b->cap * 2 : 1 << 20;
			if ((b->p = realloc(b->p, b->cap)) == NULL)
				return (-1);
		}
		if ((r = pread(fd, b->p + b->n, b->cap - b->n, *off)) <= 0)
			return (r == 0 ? 0 : -1);
		*off += r;
		b->n += (size_t)r;
		used = logs_scan(l, b->p, b->n, NULL, NULL, NULL);
		memmove(b->p, b->p + used, b->n - used);
		b->n -= used;
	}
}

/* The segment number fd's file begins with; -1 while it has no line. */
static long long
logs_fd_head(int fd)
{
	char	buf[PATH_MAX + 256];	/* "previous" names a path */
	ssize_t	n = pread(fd, buf, sizeof buf, 0);

	if (n <= 0)
		return (-1);
	/* A first line longer than this is no log_rotated record. */
	return (n == sizeof buf && memchr(buf, '\n', sizeof buf) == NULL ? 0 :
	    outname_segment_head(buf, (size_t)n));
}

/*
 * Segments from..to of the log path, rotated away between two looks of
 * -f: found by their first record, shown whole, in order.
 */
static void
logs_between(struct logs *l, const char *path, long long from,
    long long to)
{
	struct mapped	 m;
	char		 seg[PATH_MAX];
	long long	 s;
	int		 k, found;

	for (s = from; s <= to; s++) {
		found = 0;
		for (k = 1; !found && k <= LOGFILES_SEGMENTS &&
		    logfiles_segment(path, k, seg, sizeof seg) == 0; k++) {
			if (logmap_open(seg, &m) != 0) {
				logmap_close(&m);
				continue;
			}
			if (m.n > 0 && outname_segment_head(m.p, m.n) == s) {
				(void)logs_scan(l, m.p, m.n, NULL, NULL, NULL);
				found = 1;
			}
			logmap_close(&m);
		}
		if (!found)
			fprintf(stderr, "meshlogctl logs: segment %lld of %s "
			    "was rotated away before it could be read\n", s,
			    path);
	}
}

/*
 * Follow path from offset off of the open fd: new whole lines as they
 * come. When the file at path is another (rotated), the rest of the old
 * one, the segments that came and went in between (the collector starts
 * each with its number), then the new one from its start; the old one is
 * read a while longer, until it has been still: another writer may not
 * have reopened yet. Returns only on an error.
 */
static int
logs_follow(struct logs *l, const char *path, int fd, off_t off)
{
	struct pending	 b = { NULL, 0, 0 }, ob = { NULL, 0, 0 };
	struct stat	 sb, now;
	off_t		 ooff = 0, before;
	long long	 seg = logs_fd_head(fd), next, h;
	int		 nfd, ofd = -1, still = 0, waits = 0;

	for (;;) {
		if (ofd != -1) {
			before = ooff;
			(void)logs_drain(l, ofd, &ooff, &ob);
			still = ooff == before ? still + 1 : 0;
			if (still * FOLLOW_MS >= FOLLOW_OLD_MS) {
				close(ofd);
				ofd = -1;
			}
		}
		if (logs_drain(l, fd, &off, &b) != 0) {
			fprintf(stderr, "meshlogctl logs: %s: %s\n", path,
			    strerror(errno));
			break;
		}
		/* Output that cannot be written ends it (said at exit). */
		if (fflush(stdout) != 0 || ferror(stdout))
			break;
		if (fstat(fd, &sb) == 0 && sb.st_size < off) {
			off = 0;	/* truncated in place */
			b.n = 0;
			continue;
		}
		if (stat(path, &now) == 0 && (now.st_ino != sb.st_ino ||
		    now.st_dev != sb.st_dev) &&
		    (nfd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
			/* Its first record says which segment it is. */
			if (seg < 0)
				seg = 0;
			if ((next = logs_fd_head(nfd)) < 0) {
				close(nfd);
				/*
				 * Still without its first record (a collector
				 * that stopped before writing it): the
				 * segments before it are whole; show them.
				 */
				if (++waits % 4 == 0 && (h = logmap_segment_head(
				    path, 1)) > seg) {
					(void)logs_drain(l, fd, &off, &b);
					logs_between(l, path, seg + 1, h);
					seg = h;
					(void)fflush(stdout);
				}
				usleep(FOLLOW_MS * 1000 / 4);
				continue;
			}
			waits = 0;
			/*
			 * What the old file holds now comes before the
			 * segments after it (this reader may have been held
			 * up for several rotations by a slow reader of its
			 * own output); what it gets later cannot.
			 */
			(void)logs_drain(l, fd, &off, &b);
			if (next > seg + 1)
				logs_between(l, path, seg + 1, next - 1);
			seg = next;
			if (ofd != -1)
				close(ofd);
			ofd = fd;
			ooff = off;
			still = 0;
			free(ob.p);
			memcpy(&ob, &b, sizeof ob);
			memset(&b, 0, sizeof b);
			fd = nfd;
			off = 0;
			continue;
		}
		usleep(FOLLOW_MS * 1000);
	}
	free(b.p);
	free(ob.p);
	close(fd);
	if (ofd != -1)
		close(ofd);
	return (1);
}

/* Parse the command line into l and the files. */
static void
logs_options(struct logs *l, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rank", required_argument, NULL, 'r' },
		{ "host", required_argument, NULL, 'H' },
		{ "pid", required_argument, NULL, 'P' },
		{ "source", required_argument, NULL, 's' },
		{ "stream", required_argument, NULL, 't' },
		{ "priority", required_argument, NULL, 'p' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "grep", required_argument, NULL, 'g' },
		{ "lines", required_argument, NULL, 'n' },
		{ "follow", no_argument, NULL, 'f' },
		{ "events", no_argument, NULL, 'e' },
		{ "copies", no_argument, NULL, 'c' },
		{ "piped", no_argument, NULL, 'i' },
		{ "all", no_argument, NULL, 'a' },
		{ "output", required_argument, NULL, 'o' },
		{ "color", optional_argument, NULL, 'C' },
		{ "colour", optional_argument, NULL, 'C' },
		{ "split", required_argument, NULL, 'D' },
		{ "run", optional_argument, NULL, 'b' },
		{ "list-runs", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*color = "auto", *s;
	char		*end;
	int64_t		 now = logs_now();
	long		 v;
	size_t		 i;
	int		 c, flags, upper;

	while ((c = getopt_long(argc, argv, "r:p:S:U:g:n:fo:b::ah", opts,
	    NULL)) != -1) {
		switch (c) {
		case 'r':
			free(l->q.ranks);
			if (rankset_parse(optarg, &l->q.ranks, &l->q.nranks) !=
			    0)
				logs_bad("--rank takes a list like 0,2-5",
				    optarg);
			break;
		case 'H':
			l->q.host = optarg;
			l->parse = 1;
			break;
		case 'P':
		case 's':
			v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 0)
				logs_bad(c == 'P' ? "--pid takes a number" :
				    "--source takes a number", optarg);
			if (c == 'P')
				l->q.pid = v;
			else
				l->q.source = v;
			/* A process named: all it wrote. */
			l->q.piped = 1;
			l->parse = 1;
			break;
		case 't':
			if (strcmp(optarg, "stdout") != 0 &&
			    strcmp(optarg, "stderr") != 0)
				logs_bad("--stream takes stdout or stderr",
				    optarg);
			l->q.stream = strcmp(optarg, "stderr") == 0;
			l->parse = 1;
			break;
		case 'p':
			if ((l->q.priority = logq_parse_level(optarg)) < 0)
				logs_bad("-p takes DEBUG, INFO, WARNING, "
				    "ERROR, CRITICAL or 0-50", optarg);
			break;
		case 'S':
		case 'U':
			if (logq_parse_time(optarg, now, c == 'S' ?
			    &l->q.since : &l->q.until) != 0)
				logs_bad("not a time (2026-11-30T10:42:00Z, "
				    "\"2026-11-30 10:42\", 10:42, yesterday, "
				    "-5m, \"1 hour ago\")", optarg);
			break;
		case 'g':
			if (l->q.have_re)
				regfree(&l->q.re);
			for (upper = 0, s = optarg; *s != '\0'; s++)
				upper |= *s >= 'A' && *s <= 'Z';
			flags = REG_EXTENDED | REG_NOSUB |
			    (upper ? 0 : REG_ICASE);
			if (regcomp(&l->q.re, optarg, flags) != 0)
				logs_bad("not a regular expression", optarg);
			l->q.have_re = 1;
			l->parse = 1;
			break;
		case 'n':
			v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 0 ||
			    v > 100000000)
				logs_bad("-n takes a number of lines", optarg);
			l->lines = v;
			break;
		case 'f':
			l->follow = 1;
			break;
		case 'b':
			/* As journalctl's -b: "-b", "-b -1", "--run=2". */
			s = optarg;
			if (s == NULL && optind < argc && logs_is_number(
			    argv[optind]))
				s = argv[optind++];
			v = s != NULL ? strtol(s, &end, 10) : 0;
			if (s != NULL && (!logs_is_number(s) || v < -100000000 ||
			    v > 100000000))
				logs_bad("--run takes a number: 1 the first "
				    "run, 0 the last, -1 the one before", s);
			l->run_set = 1;
			l->run = v;
			break;
		case 'L':
			l->list_runs = 1;
			break;
		case 'e':
			l->q.events = 1;
			break;
		case 'c':
			l->q.copies = 1;
			break;
		case 'i':
			l->q.piped = 1;
			break;
		case 'a':
			l->all = 1;
			break;
		case 'o':
			for (i = 0; i < sizeof logs_fmts / sizeof logs_fmts[0];
			    i++) {
				if (strcmp(optarg, logs_fmts[i].name) == 0)
					break;
			}
			if (i == sizeof logs_fmts / sizeof logs_fmts[0])
				logs_bad("-o takes short, short-precise, "
				    "short-iso, short-iso-precise, short-unix, "
				    "cat, json or json-pretty", optarg);
			l->fmt = logs_fmts[i].fmt;
			break;
		case 'C':
			color = optarg != NULL ? optarg : "always";
			if (strcmp(color, "auto") != 0 &&
			    strcmp(color, "always") != 0 &&
			    strcmp(color, "never") != 0)
				logs_bad("--color takes auto, always or never",
				    optarg);
			break;
		case 'D':
			l->split_dir = optarg;
			l->q.piped = 1;
			break;
		case 'h':
			fputs(logs_usage, stdout);
			exit(0);
		default:
			logs_bad("unknown option", NULL);
		}
	}
	if (l->q.since > l->q.until)
		logs_bad("--since is after --until", NULL);
	if (l->split_dir != NULL && (l->lines >= 0 || l->follow))
		logs_bad("--split does not go with -n or -f", NULL);
	if (l->split_dir != NULL) {
		/* Its source_open records say which streams were shown. */
		l->q.events = 1;
		l->parse = 1;
		l->fmt = FMT_SHORT;
	}
	l->color = strcmp(color, "always") == 0 || (strcmp(color, "auto") ==
	    0 && isatty(STDOUT_FILENO) && (getenv("NO_COLOR") == NULL ||
	    *getenv("NO_COLOR") == '\0'));
	l->visible = !l->all && isatty(STDOUT_FILENO);
	logq_ready(&l->q);
}

/*
 * --list-runs, or -b: the runs of the files m listed (-1), or the run
 * asked for as a range of each file, lo[i]..hi[i] (0); 1 or 2 when it
 * cannot be, said on stderr.
 */
static int
logs_runs(struct logs *l, struct mapped *m, size_t nfiles, size_t *lo,
    size_t *hi)
{
	char	**p;
	size_t	 *n, i;
	int	  rc;

	p = calloc(nfiles, sizeof *p);
	n = calloc(nfiles, sizeof *n);
	if (p == NULL || n == NULL) {
		perror("meshlogctl logs");
		exit(1);
	}
	for (i = 0; i < nfiles; i++) {
		p[i] = m[i].p;
		n[i] = m[i].n;
	}
	if (l->list_runs) {
		logruns_list(p, n, nfiles);
		rc = -1;
	} else
		rc = logruns_range(p, n, nfiles, l->run, l->follow, lo, hi);
	free(p);
	free(n);
	return (rc);
}

int
logs_main(int argc, char **argv, char *(*default_log)(void))
{
	struct logs	 l;
	struct mapped	*m, view;
	char		*dflt = NULL, **files, **named;
	size_t		 nfiles, nnamed, i, end, last_end = 0, *lo, *hi;
	int		 rc = 0;
	json_t		*o;

	memset(&l, 0, sizeof l);
	logq_init(&l.q);
	l.lines = -1;
	optind = 0;	/* start over: options may follow FILEs */
	logs_options(&l, argc, argv);
	named = argv + optind;
	nnamed = (size_t)(argc - optind);
	if (nnamed == 0) {
		dflt = default_log();
		named = &dflt;
		nnamed = 1;
	}
	files = logfiles_expand(named, nnamed, &nfiles);
	if (l.split_dir != NULL)
		l.split = logsplit_open(l.split_dir);
	m = calloc(nfiles, sizeof *m);
	lo = calloc(nfiles, sizeof *lo);
	hi = calloc(nfiles, sizeof *hi);
	if (m == NULL || lo == NULL || hi == NULL) {
		perror("meshlogctl logs");
		return (1);
	}
	for (i = 0; i < nfiles; i++) {
		if (logmap_open(files[i], &m[i]) != 0)
			rc = 1;
		else if (!logs_is_log(&m[i])) {
			fprintf(stderr, "meshlogctl logs: %s is no meshlog "
			    "JSON log (-j): its first 64 KiB hold no "
			    "record\n", files[i]);
			rc = 1;
		}
		hi[i] = m[i].n;
	}
	/* A source's id is its run's: the last run's unless -b says. */
	if (l.q.source >= 0 && !l.run_set) {
		l.run_set = 1;
		l.run = 0;
	}
	if (rc == 0 && (l.run_set || l.list_runs))
		rc = logs_runs(&l, m, nfiles, lo, hi);	/* -1: listed */
	/* A tail learns them block by block, as it reads. */
	for (i = 0; rc == 0 && l.lines < 0 && i < nfiles; i++)
		logs_learn(&l, m[i].p + lo[i], hi[i] - lo[i]);
	if (rc == 0 && l.lines >= 0) {
		/* The newest first, until there are enough. */
		for (i = nfiles; i-- > 0;) {
			view = m[i];
			if (lo[i] > 0)
				view.p += lo[i];
			view.n = hi[i] - lo[i];
			logs_tail(&l, &view, &end);
			if (i == nfiles - 1)
				last_end = lo[i] + end;
		}
		for (i = 0; i < l.nv; i++) {
			if (logs_answers(&l, l.v[i].p, l.v[i].n, &o))
				logs_print(&l, l.v[i].p, l.v[i].n, o);
			json_decref(o);
		}
	} else if (rc == 0) {
		for (i = 0; i < nfiles; i++) {
			end = hi[i] > lo[i] ? logs_scan(&l, m[i].p + lo[i],
			    hi[i] - lo[i], NULL, NULL, NULL) : 0;
			if (i == nfiles - 1)
				last_end = lo[i] + end;
		}
	}
	fflush(stdout);
	if (rc == 0 && l.follow)
		rc = logs_follow(&l, files[nfiles - 1], dup(m[nfiles - 1].fd),
		    (off_t)last_end);
	for (i = 0; i < nfiles; i++) {
		logmap_close(&m[i]);
		free(files[i]);
	}
	free(files);
	free(m);
	free(lo);
	free(hi);
	if (rc == -1)
		rc = 0;
	if (l.split != NULL && logsplit_close(l.split) != 0)
		rc = 1;
	free(l.v);
	free(dflt);
	logq_free(&l.q);
	return (rc);
}
