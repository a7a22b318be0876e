/*
 * The console view: one prefixed line per record, stdout records on the
 * collector's stdout and stderr records on its stderr. Output goes through
 * non-blocking destinations, so a slow terminal never stalls the JSON log.
 *
 * Progress bars: off a terminal, a bar's state is printed as a line at
 * most once a second (record_route's limit). On a terminal, the latest
 * state of every bar is kept and drawn as one live line below the
 * scrolling log, redrawn in place at most four times a second, ranks
 * grouped as the aggregator groups lines; a line printed above erases it
 * first. Bar lines are cut to the terminal's width: they never wrap.
 */

#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <event2/event.h>

#include "collector.h"

/* Bars remembered for the live line; the oldest goes past this. */
#define LIVE_MAX	4096
/* Bars listed one by one; past this, the slowest is named. */
#define LIVE_LIST	8
/* A bar not updated for this long (s) leaves the live line. */
#define LIVE_STALE	10

/* A process's latest progress state, for the live line. */
struct live_bar {
	uint64_t		 id;
	long			 rank;
	long			 pid;
	long			 world;
	int			 which;
	char			 prefix[64];
	char			*text;		/* without the bar's drawing */
	size_t			 len;
	int			 pct;		/* its "NN%", or -1 */
	time_t			 when;
	TAILQ_ENTRY(live_bar)	 entry;
};

static struct dest	*cons[2];
static int		 cons_tty[2];
static int		 cons_colour[2];	/* --color, NO_COLOR, a tty */
static uint64_t		 started_us;		/* for --timestamps=elapsed */
static char		*cbuf;
static size_t		 ccap;
static uint64_t		 filtered;
static struct console_mode	 mode;
static TAILQ_HEAD(, live_bar)	 bars = TAILQ_HEAD_INITIALIZER(bars);
static size_t		 nbars;
static struct event	*live_ev;
static int		 live_drawn;	/* the live line is on screen */
static int		 mid_which = -1;	/* a prompt ends the screen: */
static uint64_t		 mid_id;		/* whose, on which stream */
static long		 mid_pid;	/* its process, */
static int		 mid_reading;	/* then reading the terminal */
static int		 raw_mid = -1;	/* raw bytes ended mid-line there */
static char		 mid_prefix[64];	/* whose open line it is */
static int		 same_tty;	/* stdout and stderr: one terminal */
static char		*live_buf;	/* the live line being made */
static size_t		 live_len, live_cap, live_more;

static void	console_emit(int, const char *, const char *, const char *,
		    size_t, int, uint64_t);
/* With console_emit's SPLIT_* flags: no line end (a prompt waits). */
#define CONSOLE_OPEN	0x1000
static void	console_live_erase(void);
static void	console_live_done(uint64_t);
static const struct timeval live_period = { 0, 250000 };

/*
 * Known even with -q: a process whose original destination is the
 * collector's own stdout or stderr is covered by --tee/--no-tee, not teed
 * as if its output were data for another program.
 */
void
console_open(void)
{
	struct timespec	now;
	struct stat	sb[2];
	int		i, fd;

	clock_gettime(CLOCK_REALTIME, &now);
	started_us = (uint64_t)now.tv_sec * 1000000 +
	    (uint64_t)now.tv_nsec / 1000;
	same_tty = fstat(1, &sb[0]) == 0 && fstat(2, &sb[1]) == 0 &&
	    S_ISCHR(sb[0].st_mode) && sb[0].st_rdev == sb[1].st_rdev &&
	    isatty(1);
	for (i = 0; i < 2; i++) {
		if ((fd = dup(i + 1)) == -1)
			continue;
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
			fatal("fcntl");
		cons_tty[i] = isatty(fd);
		/* https://no-color.org: a set NO_COLOR means none by default. */
		cons_colour[i] = cfg.colour > 0 || (cfg.colour == 0 &&
		    cons_tty[i] && (getenv("NO_COLOR") == NULL ||
		    *getenv("NO_COLOR") == '\0'));
		cons[i] = dest_get(fd);
		dest_set_console(cons[i]);
	}
	aggregate_set_output(console_line, console_group);
}

const struct console_mode *
console_mode(void)
{
	return (&mode);
}

void
console_set_mode(const struct console_mode *m)
{
	long	*ranks = NULL;

	/* Pending groups are printed before the console goes quiet. */
	if (mode.on && !m->on) {
		aggregate_flush();
		console_live_erase();
	}
	if (m->window != aggregate_window())
		aggregate_set_window(m->window);
	if (m->nranks > 0) {
		ranks = xcalloc(m->nranks, sizeof *ranks);
		memcpy(ranks, m->ranks, m->nranks * sizeof *ranks);
	}
	free(mode.ranks);
	mode = *m;
	mode.ranks = ranks;
}

/* Whether --console-ranks lets a line of o through. */
static int
console_shows(const struct origin *o)
{
	return (mode.nranks == 0 || o->rank < 0 ||
	    rankset_has(mode.ranks, mode.nranks, o->rank));
}

void
console_record(int which, const struct origin *o, const char *line,
    size_t len, int flags, const struct shape *sh, uint64_t us)
{
	if (cons[which] == NULL)
		return;
	if (flags & SPLIT_PROGRESS)
		console_live_done(o->id);
	/* Lines without a recognised severity are never filtered. */
	if ((mode.level > 0 && sh->severity > 0 && sh->severity < mode.level) ||
	    !console_shows(o)) {
		filtered++;
		return;
	}
	if (mode.window > 0)
		aggregate_line(which, o, line, len, flags, sh, us);
	else
		console_line(which, o->prefix, line, len, flags, us);
}

/*
 * Columns of the terminal on the console's stream which (80 if unknown),
 * asked on the collector's own descriptor: the console's copy may have
 * been closed for the other stream's when both are the same terminal.
 */
static size_t
console_width(int which)
{
	struct winsize	ws;

	if (ioctl(which + 1, TIOCGWINSZ, &ws) == -1 || ws.ws_col < 20)
		return (80);
	return (ws.ws_col);
}

/*
 * Columns the character at s[0..n) takes on the terminal (its bytes in
 * *k): as wcwidth(3) says in a UTF-8 locale (CJK and emoji two, a
 * combining mark none), a control byte as the escaper shows it ("\x07"),
 * a byte that is no UTF-8 as U+FFFD.
 */
static int
console_columns(const unsigned char *s, size_t n, size_t *k)
{
	uint32_t	cp;
	size_t		i;
	int		w;

	*k = 1;
	if (s[0] >= 0x20 && s[0] < 0x7f)
		return (1);
	if (s[0] < 0x80)
		return (s[0] == '\t' ? 1 : 4);
	if ((*k = utf8_valid(s, n)) == 0) {
		*k = 1;
		return (1);
	}
	cp = s[0] & (0x7f >> *k);
	for (i = 1; i < *k; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	w = wcwidth((wchar_t)cp);
	return (w < 0 ? 1 : w);
}

/*
 * Bytes of s[0..n) that fit in cols terminal columns, colours taking none.
 * A live line that wrapped would leave its first screen line behind at
 * each redraw (a CJK bar on a narrow terminal).
 */
static size_t
console_fit(const char *s, size_t n, size_t cols)
{
	static locale_t		 utf8;
	static int		 tried;
	const unsigned char	*u = (const unsigned char *)s;
	locale_t		 old = (locale_t)0;
	size_t			 i = 0, c = 0, k;
	int			 w;

	/* Widths are UTF-8's, whatever the collector's own locale. */
	if (!tried) {
		tried = 1;
		utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	if (utf8 != (locale_t)0)
		old = uselocale(utf8);
	while (i < n) {
		if (u[i] == 0x1b && (k = visible_sgr(u + i, n - i)) > 0) {
			i += k;
			continue;
		}
		w = console_columns(u + i, n - i, &k);
		if (c + (size_t)w > cols)
			break;
		c += (size_t)w;
		i += k;
	}
	if (old != (locale_t)0)
		uselocale(old);
	return (i);
}

/*
 * Whether process pid waits in read(2) on the terminal of the view's
 * stream which: it shows a prompt, and the terminal's echo of the answer
 * will end the screen line.
 */
static int
console_reads_tty(long pid, int which)
{
	char		path[64], buf[160];
	struct stat	tty, sb;
	unsigned long	fd;
	long		nr;
	ssize_t		n;
	int		f;

	if (pid <= 0 || !cons_tty[which] ||
	    fstat(dest_fd(cons[which]), &tty) != 0)
		return (0);
	snprintf(path, sizeof path, "/proc/%ld/syscall", pid);
	if ((f = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (0);
	n = read(f, buf, sizeof buf - 1);
	close(f);
	if (n <= 0)
		return (0);
	buf[n] = '\0';
	if (sscanf(buf, "%ld 0x%lx", &nr, &fd) != 2 ||
	    (nr != SYS_read && nr != SYS_readv) || fd > INT_MAX)
		return (0);
	snprintf(path, sizeof path, "/proc/%ld/fd/%lu", pid, fd);
	return (stat(path, &sb) == 0 && S_ISCHR(sb.st_mode) &&
	    sb.st_rdev == tty.st_rdev);
}

/* Whether the open line's prompt was answered: the echo ended it. */
static int
console_answered(void)
{
	return (mid_reading && !console_reads_tty(mid_pid, mid_which));
}

/* Something else is printed after an unfinished line: end it first. */
static void
console_end_mid(void)
{
	if (raw_mid >= 0 && cons[raw_mid] != NULL)
		dest_write(cons[raw_mid], "\n", 1);
	raw_mid = -1;
	if (mid_which < 0)
		return;
	if (!console_answered())
		dest_write(cons[mid_which], "\n", 1);
	mid_which = -1;
}

void
console_raw_passed(int which, const char *prefix, int mid)
{
	raw_mid = mid ? which : -1;
	strlcpy(mid_prefix, prefix, sizeof mid_prefix);
}

/*
 * A newline alone that the process with the open line wrote to its other
 * stream, both streams one terminal (Python's REPL ends its prompt so at
 * EOF): on the terminal it ends that line, and so it does here, rather
 * than printing an empty line of its own.
 */
static int
console_ends_mid(int which, const char *prefix, size_t len, int flags)
{
	int	open = raw_mid >= 0 ? raw_mid : mid_which;

	if (len > 0 || flags != 0 || !same_tty || open < 0 || open == which ||
	    cons[open] == NULL || strcmp(prefix, mid_prefix) != 0)
		return (0);
	console_live_erase();
	dest_write(cons[open], "\n", 1);
	raw_mid = mid_which = -1;
	return (1);
}

/* Erase the live line before something else is printed. */
static void
console_live_erase(void)
{
	if (!live_drawn)
		return;
	live_drawn = 0;
	dest_write(cons[MESHLOG_STDERR], "\r\x1b[K", 4);
	if (live_ev != NULL && !evtimer_pending(live_ev, NULL))
		evtimer_add(live_ev, &live_period);
}

/* One line of the rendered live line: the first kept, the rest counted. */
static void
console_live_line_cb(int which, const char *prefix, const char *line,
    size_t len, int flags, uint64_t us)
{
	size_t	plen = strlen(prefix);

	if (live_len > 0) {
		live_more++;
		return;
	}
	if (plen + VISIBLE_MAX(len) > live_cap) {
		live_cap = (plen + VISIBLE_MAX(len)) * 2;
		live_buf = xrealloc(live_buf, live_cap);
	}
	memcpy(live_buf, prefix, plen);
	/* A program's bytes, as a line's: never raw on the terminal. */
	live_len = plen + visible_text(live_buf + plen, line, len, 0);
}

/* Draw the live line: every bar's latest state, grouped, in place. */
static void
console_live_draw(void)
{
	struct live_bar	 *b, *next;
	struct origin	 *o;
	const char	**text;
	size_t		 *len, n = 0, cols, fit, clen;
	time_t		  now = time(NULL);
	char		  more[96];
	long		  slow_rank = -1;
	int		  slow_pct = 101;

	for (b = TAILQ_FIRST(&bars); b != NULL; b = next) {
		next = TAILQ_NEXT(b, entry);
		if (now - b->when > LIVE_STALE) {
			TAILQ_REMOVE(&bars, b, entry);
			free(b->text);
			free(b);
			nbars--;
		}
	}
	/* Not over a prompt that waits for its answer. */
	if (nbars == 0 || !mode.on || mid_which >= 0)
		return;
	o = xcalloc(nbars, sizeof *o);
	text = xcalloc(nbars, sizeof *text);
	len = xcalloc(nbars, sizeof *len);
	TAILQ_FOREACH(b, &bars, entry) {
		o[n].id = b->id;
		o[n].rank = b->rank;
		o[n].pid = b->pid;
		o[n].world = b->world;
		o[n].prefix = b->prefix;
		text[n] = b->text;
		len[n++] = b->len;
		if (b->pct >= 0 && b->pct < slow_pct) {
			slow_pct = b->pct;
			slow_rank = b->rank;
		}
	}
	live_len = live_more = 0;
	aggregate_render(MESHLOG_STDERR, o, text, len, n,
	    console_live_line_cb);
	free(o);
	free(text);
	free(len);
	more[0] = '\0';
	if (n > LIVE_LIST && slow_rank >= 0)
		snprintf(more, sizeof more, " slowest: rank %ld at %d%%%s",
		    slow_rank, slow_pct, live_more > 0 ? "," : "");
	if (live_more > 0)
		snprintf(more + strlen(more), sizeof more - strlen(more),
		    " +%zu more bar%s", live_more, live_more > 1 ? "s" : "");
	cols = console_width(MESHLOG_STDERR) - 1 - strlen(more);
	fit = console_fit(live_buf, live_len, cols);
	clen = 4 + fit + strlen(more);
	if (clen > ccap) {
		ccap = clen;
		cbuf = xrealloc(cbuf, ccap);
	}
	memcpy(cbuf, "\r\x1b[K", 4);
	memcpy(cbuf + 4, live_buf, fit);
	memcpy(cbuf + 4 + fit, more, strlen(more));
	dest_write(cons[MESHLOG_STDERR], cbuf, clen);
	live_drawn = 1;
}

/* Time to redraw the live line. */
static void
console_live_cb(int fd, short what, void *arg)
{
	console_live_draw();
}

/* A bar of source id is done (its last state is a line): forget it. */
static void
console_live_done(uint64_t id)
{
	struct live_bar	*b;

	TAILQ_FOREACH(b, &bars, entry) {
		if (b->id == id) {
			TAILQ_REMOVE(&bars, b, entry);
			free(b->text);
			free(b);
			nbars--;
			return;
		}
	}
}

/*
 * A bar's state for the live line: its drawing ("|####   |", blocks or
 * '#'s between two '|') left out, so that ranks' states line up; *pct its
 * first "NN%", or -1. Allocated.
 */
static char *
console_bar_text(const char *s, size_t n, size_t *outlen, int *pct)
{
	const char	*a, *b, *p;
	char		*t;
	size_t		 k;

	*pct = -1;
	for (p = s; (p = memchr(p, '%', (size_t)(s + n - p))) != NULL; p++) {
		for (k = 0; p - k > s && p[-(long)k - 1] >= '0' &&
		    p[-(long)k - 1] <= '9' && k < 3; k++)
			;
		if (k > 0) {
			*pct = (int)strtol(p - k, NULL, 10);
			break;
		}
	}
	t = xmalloc(n + 1);
	a = memchr(s, '|', n);
	b = a != NULL ? memchr(a + 1, '|', (size_t)(s + n - a - 1)) : NULL;
	for (p = a != NULL ? a + 1 : NULL; b != NULL && p < b; p++) {
		/* A drawing has no letter and no digit. */
		if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z'))
			b = NULL;
	}
	if (b == NULL) {
		memcpy(t, s, n);
		*outlen = n;
		return (t);
	}
	k = (size_t)(a - s);
	memcpy(t, s, k);
	t[k++] = ' ';
	memcpy(t + k, b + 1, (size_t)(s + n - b - 1));
	*outlen = k + (size_t)(s + n - b - 1);
	return (t);
}

void
console_live(int which, const struct origin *o, const char *line,
    size_t len)
{
	struct live_bar	*b;

	if (!console_shows(o))
		return;
	if (!cons_tty[MESHLOG_STDERR] || cons[MESHLOG_STDERR] == NULL) {
		console_line(which, o->prefix, line, len, SPLIT_PROGRESS, 0);
		return;
	}
	TAILQ_FOREACH(b, &bars, entry) {
		if (b->id == o->id)
			break;
	}
	if (b == NULL) {
		if (nbars == LIVE_MAX)
			console_live_done(TAILQ_FIRST(&bars)->id);
		b = xcalloc(1, sizeof *b);
		b->id = o->id;
		TAILQ_INSERT_TAIL(&bars, b, entry);
		nbars++;
	}
	b->rank = o->rank;
	b->pid = o->pid;
	b->world = o->world;
	b->which = which;
	strlcpy(b->prefix, o->prefix, sizeof b->prefix);
	free(b->text);
	b->text = console_bar_text(line, len, &b->len, &b->pct);
	b->when = time(NULL);
	if (live_ev == NULL && base != NULL)
		live_ev = evtimer_new(base, console_live_cb, NULL);
	if (live_ev != NULL && !evtimer_pending(live_ev, NULL))
		evtimer_add(live_ev, &live_period);
}

void
console_live_stop(void)
{
	struct live_bar	*b;

	console_live_erase();
	if (live_ev != NULL)
		event_free(live_ev);
	live_ev = NULL;
	while ((b = TAILQ_FIRST(&bars)) != NULL)
		console_live_done(b->id);
}

int
console_alert(const char *text)
{
	if (!mode.on || cons[MESHLOG_STDERR] == NULL)
		return (0);
	console_emit(MESHLOG_STDERR, cons_colour[MESHLOG_STDERR] ?
	    "\x1b[1;31m" : NULL, "meshlog: ", text, strlen(text), 0, 0);
	return (1);
}

int
console_colour(void)
{
	return (mode.on && cons_colour[MESHLOG_STDERR]);
}

void
console_text(const char *text)
{
	if (mode.on && cons[MESHLOG_STDERR] != NULL) {
		console_live_erase();
		console_end_mid();
		dest_write(cons[MESHLOG_STDERR], text, strlen(text));
	}
}

uint64_t
console_filtered(void)
{
	return (filtered);
}

/* Colours of ranks' prefixes on a terminal (red is for alerts). */
static const char *const rank_colours[] = { "\x1b[32m", "\x1b[33m",
    "\x1b[34m", "\x1b[35m", "\x1b[36m", "\x1b[92m", "\x1b[93m", "\x1b[94m",
    "\x1b[95m", "\x1b[96m" };

/* "13:40:17.514 " or "+12.345 " for a line read at us, into buf. */
static size_t
console_stamp(char *buf, size_t size, uint64_t us)
{
	struct tm	tm;
	time_t		t;
	int		n;

	if (cfg.timestamps == CONSOLE_TS_NONE || us == 0)
		return (0);
	if (cfg.timestamps == CONSOLE_TS_ELAPSED) {
		us = us > started_us ? us - started_us : 0;
		n = snprintf(buf, size, "+%llu.%03llu ", (unsigned long long)
		    (us / 1000000), (unsigned long long)(us / 1000 % 1000));
	} else {
		t = (time_t)(us / 1000000);
		localtime_r(&t, &tm);
		n = snprintf(buf, size, "%02d:%02d:%02d.%03llu ", tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (unsigned long long)(us / 1000 %
		    1000));
	}
	return (n > 0 && (size_t)n < size ? (size_t)n : 0);
}

/* Format time, prefix (coloured when asked) and line into the console. */
static void
console_emit(int which, const char *colour, const char *prefix,
    const char *line, size_t len, int flags, uint64_t us)
{
	size_t	plen = strlen(prefix), clen, need, n = 0, tlen;
	char	stamp[32];

	if (cons[which] == NULL)
		return;
	console_live_erase();
	console_end_mid();
	tlen = console_stamp(stamp, sizeof stamp, us);
	/* A bar's line on a terminal never wraps. */
	if ((flags & SPLIT_PROGRESS) && cons_tty[which])
		len = console_fit(line, len, console_width(which) > tlen +
		    plen + 1 ? console_width(which) - tlen - plen - 1 : 0);
	clen = colour != NULL ? strlen(colour) + 4 : 0;
	need = tlen + clen + plen + VISIBLE_MAX(len) + 16;
	if (need > ccap) {
		ccap = need;
		cbuf = xrealloc(cbuf, ccap);
	}
	memcpy(cbuf, stamp, tlen);
	n = tlen;
	if (colour != NULL) {
		memcpy(cbuf + n, colour, strlen(colour));
		n += strlen(colour);
	}
	memcpy(cbuf + n, prefix, plen);
	n += plen;
	if (colour != NULL) {
		memcpy(cbuf + n, "\x1b[0m", 4);
		n += 4;
	}
	n += visible_text(cbuf + n, line, len, 1);
	if (flags & SPLIT_TRUNCATED) {
		memcpy(cbuf + n, " [...]", 6);
		n += 6;
	}
	if (!(flags & CONSOLE_OPEN))
		cbuf[n++] = '\n';
	dest_write(cons[which], cbuf, n);
}

/* The colour of a rank's prefix on stream which, or NULL. */
static const char *
console_rank_colour(int which, const char *prefix)
{
	long	rank;

	if (!cons_colour[which] || sscanf(prefix, "[rank %ld]", &rank) != 1 ||
	    rank < 0)
		return (NULL);
	return (rank_colours[rank % (long)(sizeof rank_colours /
	    sizeof rank_colours[0])]);
}

void
console_line(int which, const char *prefix, const char *line, size_t len,
    int flags, uint64_t us)
{
	if (console_ends_mid(which, prefix, len, flags))
		return;
	/* Each rank in its colour, on a terminal. */
	console_emit(which, console_rank_colour(which, prefix), prefix, line,
	    len, flags, us);
}

void
console_partial(int which, const struct origin *o, const char *text,
    size_t len)
{
	if (cons[which] == NULL || !console_shows(o))
		return;
	/* What waits was written before it. */
	aggregate_flush();
	console_emit(which, console_rank_colour(which, o->prefix), o->prefix,
	    text, len, CONSOLE_OPEN, 0);
	mid_which = which;
	strlcpy(mid_prefix, o->prefix, sizeof mid_prefix);
	mid_id = o->id;
	mid_pid = o->pid;
	mid_reading = console_reads_tty(o->pid, which);
}

void
console_rest(int which, const struct origin *o, const char *text,
    size_t len, int flags, uint64_t us)
{
	if (cons[which] == NULL || !console_shows(o))
		return;
	if (mid_which == which && mid_id == o->id && console_answered()) {
		/*
		 * The answer's echo ended the screen line: a line of its own.
		 * A newline alone ends the line as the echo left it (blank
		 * after an echoed answer, the prompt's after a password's).
		 */
		mid_which = -1;
		if (len > 0)
			console_line(which, o->prefix, text, len, 0, us);
		else if (!(flags & SPLIT_PARTIAL))
			dest_write(cons[which], "\n", 1);
	} else if (mid_which == which && mid_id == o->id) {
		/* Nothing came between: finish the screen line. */
		mid_which = -1;
		console_emit(which, NULL, "", text, len, 0, 0);
	} else if (len > 0)
		console_line(which, o->prefix, text, len, 0, us);
}

void
console_group(int which, const char *prefix, const char *line, size_t len,
    int flags, uint64_t us)
{
	console_emit(which, cons_colour[which] ? "\x1b[1m" : NULL, prefix,
	    line, len, flags, us);
}
