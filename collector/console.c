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
static char		*cbuf;
static size_t		 ccap;

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
		cons[i] = dest_get(fd);
		dest_set_console(cons[i]);
	}
}

void
console_line(int which, const char *prefix, const char *line, size_t len,
    int flags)
{
	size_t	plen = strlen(prefix), need, n;

	if (!cfg.console || cons[which] == NULL)
		return;
	need = plen + JSON_ESCAPE_MAX(len) + 16;
	if (need > ccap) {
		ccap = need;
		cbuf = xrealloc(cbuf, ccap);
	}
	memcpy(cbuf, prefix, plen);
	n = plen + record_console(cbuf + plen, line, len);
	if (flags & SPLIT_TRUNCATED) {
		memcpy(cbuf + n, " [...]", 6);
		n += 6;
	}
	cbuf[n++] = '\n';
	dest_write(cons[which], cbuf, n);
}

void
console_notice(const char *msg)
{
	console_line(MESHLOG_STDERR, "[meshlog] ", msg, strlen(msg), 0);
}
