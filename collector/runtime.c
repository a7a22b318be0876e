/*
 * Pushing level changes into the processes. The collector writes the
 * level to a file beside its socket (SOCKET.level, JSON, replaced
 * atomically) and sends SIGURG to the processes concerned whose runtime
 * asked for it (source_set_runtime), through a pidfd so that a reused pid
 * is never signalled. Python processes read the file in a signal handler
 * that meshlog's sitecustomize installs, which runs on the main thread
 * between bytecodes (never inside C code, never during finalisation);
 * the syslog applier reads it at the next syslog call.
 */

#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "source.h"

static uint64_t	level_version;

/* SOCKET.level, the file the runtimes read. */
static char *
runtime_path(void)
{
	char	*path;

	xasprintf(&path, "%s.level", cfg.socket_path);
	return (path);
}

void
runtime_push_level(int level, const long *ranks, size_t n)
{
	char	*path = runtime_path(), *tmp, *text;
	json_t	*o, *r = json_array();
	size_t	 i;
	FILE	*f;
	int	 fd;

	for (i = 0; i < n; i++)
		json_array_append_new(r, json_integer(ranks[i]));
	o = json_pack("{s:I, s:i, s:o}", "version", (json_int_t)++level_version,
	    "level", level, "ranks", n > 0 ? r : (json_decref(r), json_null()));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	/* A new file of ours in the verified directory; never a link. */
	xasprintf(&tmp, ".level.%ld.tmp", (long)getpid());
	if ((fd = sockdir_openat(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600)) ==
	    -1 && errno == EEXIST && sockdir_unlink(tmp) == 0)
		fd = sockdir_openat(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd == -1 || (f = fdopen(fd, "w")) == NULL) {
		log_warn("cannot create %s: %s; processes keep their level",
		    path, strerror(errno));
		if (fd != -1)
			close(fd);
		goto out;
	}
	if (fprintf(f, "%s\n", text) < 0 || fclose(f) != 0 ||
	    sockdir_rename(tmp, ".level") != 0) {
		log_warn("cannot write %s: %s; processes keep their level",
		    path, strerror(errno));
		sockdir_unlink(tmp);
		goto out;
	}
	(void)source_signal_runtimes(ranks, n, SIGURG);
out:
	free(text);
	free(tmp);
	free(path);
}

size_t
source_signal_runtimes(const long *ranks, size_t n, int sig)
{
	struct source	*src;
	size_t		 i, sent = 0;
	int		 rc;

	TAILQ_FOREACH(src, &sources, entry) {
		if (!src->runtime)
			continue;
		for (i = 0; i < n; i++) {
			if (ranks[i] == src->rank)
				break;
		}
		if (n != 0 && i == n)
			continue;
		/* Without pidfds (Linux < 5.3) the pid, as before them. */
		rc = src->pidfd != -1 ? (int)syscall(SYS_pidfd_send_signal,
		    src->pidfd, sig, NULL, 0) : kill((pid_t)src->pid, sig);
		if (rc == 0)
			sent++;
		else if (errno != ESRCH)
			log_warn("cannot signal pid %ld: %s", src->pid,
			    strerror(errno));
	}
	return (sent);
}

int
source_set_runtime(long pid, int on)
{
	struct source	*found = source_newest_open(pid);
	int		 was;

	if (found == NULL)
		return (-1);
	was = found->runtime;
	if (on)
		source_runtime_on(found);
	else
		found->runtime = 0;	/* its pidfd watches for its death */
	if (found->runtime != was)	/* the keeper's copy says it too */
		handover_renew(found);
	return (0);
}

void
runtime_cleanup(void)
{
	sockdir_unlink(".level");
}
