/*
 * The console view: one prefixed line per record, stdout records on the
 * collector's stdout and stderr records on its stderr. Output goes through
 * non-blocking destinations, so a slow terminal never stalls the JSON log.
 */

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"

static struct dest	*cons[2];
static int		 cons_tty[2];
static char		*cbuf;
static size_t		 ccap;
static uint64_t		 filtered;
static struct console_mode	 mode;

static void	console_emit(int, const char *, const char *, const char *,
		    size_t, int);

/*
 * Known even with -q: a process whose original destination is the
 * collector's own stdout or stderr is covered by --tee/--no-tee, not teed
 * as if its output were data for another program.
 */
void
console_open(void)
{
	int	i, fd;

	for (i = 0; i < 2; i++) {
		if ((fd = dup(i + 1)) == -1)
			continue;
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
			fatal("fcntl");
		cons_tty[i] = isatty(fd);
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
	if (mode.on && !m->on)
		aggregate_flush();
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
    size_t len, int flags, const struct shape *sh)
{
	if (cons[which] == NULL)
		return;
	/* Lines without a recognised severity are never filtered. */
	if ((mode.level > 0 && sh->severity > 0 && sh->severity < mode.level) ||
	    !console_shows(o)) {
		filtered++;
		return;
	}
	if (mode.window > 0)
		aggregate_line(which, o, line, len, flags, sh);
	else
		console_line(which, o->prefix, line, len, flags);
}

void
console_live(int which, const struct origin *o, const char *line,
    size_t len)
{
	if (console_shows(o))
		console_line(which, o->prefix, line, len, 0);
}

int
console_alert(const char *text)
{
	if (!mode.on || cons[MESHLOG_STDERR] == NULL)
		return (0);
	console_emit(MESHLOG_STDERR, cons_tty[MESHLOG_STDERR] ? "\x1b[1;31m" :
	    NULL, "meshlog: ", text, strlen(text), 0);
	return (1);
}

int
console_colour(void)
{
	return (mode.on && cons_tty[MESHLOG_STDERR]);
}

void
console_text(const char *text)
{
	if (mode.on && cons[MESHLOG_STDERR] != NULL)
		dest_write(cons[MESHLOG_STDERR], text, strlen(text));
}

uint64_t
console_filtered(void)
{
	return (filtered);
}

/* Format prefix (coloured when asked) and line into the console. */
static void
console_emit(int which, const char *colour, const char *prefix,
    const char *line, size_t len, int flags)
{
	size_t	plen = strlen(prefix), clen, need, n = 0;

	if (cons[which] == NULL)
		return;
	clen = colour != NULL ? strlen(colour) + 4 : 0;
	need = clen + plen + JSON_ESCAPE_MAX(len) + 16;
	if (need > ccap) {
		ccap = need;
		cbuf = xrealloc(cbuf, ccap);
	}
	if (colour != NULL) {
		memcpy(cbuf, colour, strlen(colour));
		n = strlen(colour);
	}
	memcpy(cbuf + n, prefix, plen);
	n += plen;
	if (colour != NULL) {
		memcpy(cbuf + n, "\x1b[0m", 4);
		n += 4;
	}
	n += record_console(cbuf + n, line, len);
	if (flags & SPLIT_TRUNCATED) {
		memcpy(cbuf + n, " [...]", 6);
		n += 6;
	}
	cbuf[n++] = '\n';
	dest_write(cons[which], cbuf, n);
}

void
console_line(int which, const char *prefix, const char *line, size_t len,
    int flags)
{
	console_emit(which, NULL, prefix, line, len, flags);
}

void
console_group(int which, const char *prefix, const char *line, size_t len,
    int flags)
{
	/* Colour only on a terminal. */
	console_emit(which, cons_tty[which] ? "\x1b[36m" : NULL, prefix, line,
	    len, flags);
}
