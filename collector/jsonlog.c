/*
 * The JSON Lines log: records collect in one buffer that is written to the
 * kernel at the end of every event-loop pass (and when it grows large), so
 * a burst costs few writes and a quiet line waits for no timer.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"

/* Write out once this much is buffered, even within a pass. */
#define JSONLOG_HIGH	(256 * 1024)
/* Room an event is first dumped into: a source_open with a long argv fits. */
#define JSONLOG_EVENT_GUESS	4096

static int	 jsonlog_fd = -1;
static char	*jbuf;
static size_t	 jlen, jcap;
static int	 jfailed;

int
jsonlog_open(const char *path)
{
	/*
	 * Every line of the job, secrets printed by mistake included: made
	 * readable by this user only (an existing file keeps its mode), and
	 * never through a link someone else may have planted.
	 */
	jsonlog_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (jsonlog_fd == -1)
		return (-1);
	jcap = 2 * JSONLOG_HIGH;
	jbuf = xmalloc(jcap);
	return (0);
}

int
jsonlog_reopen(const char *path)
{
	int	fd;

	if (jsonlog_fd == -1)
		return (0);
	/* What the old file was promised goes there first. */
	jsonlog_flush();
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return (-1);
	close(jsonlog_fd);
	jsonlog_fd = fd;
	jfailed = 0;
	return (0);
}

int
jsonlog_active(void)
{
	return (jsonlog_fd != -1);
}

char *
jsonlog_reserve(size_t n)
{
	if (jlen >= JSONLOG_HIGH)
		jsonlog_flush();
	if (n > jcap - jlen) {
		jcap = jlen + n + JSONLOG_HIGH;
		jbuf = xrealloc(jbuf, jcap);
	}
	return (jbuf + jlen);
}

void
jsonlog_commit(size_t n)
{
	jlen += n;
}

void
jsonlog_event(json_t *o)
{
	char	*p;
	size_t	 n;

	if (jsonlog_fd == -1)
		return;
	/* Once into room that fits nearly every event; twice otherwise. */
	p = jsonlog_reserve(JSONLOG_EVENT_GUESS);
	if ((n = json_dumpb(o, p, JSONLOG_EVENT_GUESS, JSON_COMPACT)) >=
	    JSONLOG_EVENT_GUESS) {
		p = jsonlog_reserve(n + 1);
		json_dumpb(o, p, n, JSON_COMPACT);
	}
	p[n] = '\n';
	jsonlog_commit(n + 1);
}

void
jsonlog_text(const char *s, size_t n)
{
	char	*p;

	if (jsonlog_fd == -1)
		return;
	p = jsonlog_reserve(n + 1);
	memcpy(p, s, n);
	p[n] = '\n';
	jsonlog_commit(n + 1);
}

void
jsonlog_flush(void)
{
	size_t	off = 0;
	ssize_t	n;

	if (jsonlog_fd == -1)
		return;
	while (off < jlen) {
		n = write(jsonlog_fd, jbuf + off, jlen - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Not silent: say so on every failed flush. */
			if (!jfailed || errno != ENOSPC)
				log_warn("JSON log write failed, %zu bytes "
				    "lost: %s", jlen - off, strerror(errno));
			jfailed = 1;
			break;
		}
		off += (size_t)n;
	}
	jlen = 0;
}

void
jsonlog_close(void)
{
	if (jsonlog_fd == -1)
		return;
	jsonlog_flush();
	if (fsync(jsonlog_fd) == -1 && errno != EINVAL)
		log_warn("JSON log fsync: %s", strerror(errno));
	close(jsonlog_fd);
	jsonlog_fd = -1;
	free(jbuf);
	jbuf = NULL;
}
