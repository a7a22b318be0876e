/*
 * One line per host: with MESHLOG_UPSTREAM set and no collector on this
 * host, the first process to notice starts a relay collector for the host
 * and the others wait for it. A lock beside the socket makes that one
 * relay however many processes start at once. The relay is a daemon of its
 * own (new session, stdio on /dev/null and a log file), so the job's
 * signals and exit do not touch it; it leaves by itself when idle.
 */

#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "shim.h"

#ifndef MESHLOG_BINDIR
#define MESHLOG_BINDIR	"/usr/local/bin"
#endif

/* Most extra options taken from MESHLOG_RELAY_OPTIONS. */
#define RELAY_MAX_OPTS	32

extern char **environ;

/* Whether a collector accepts connections on path now. */
static int
relay_probe(const char *path)
{
	struct sockaddr_un	sun;
	int			fd, rc;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return (0);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	close(fd);
	return (rc == 0);
}

/* Find meshlog-collector: $MESHLOG_COLLECTOR, beside this library, bindir. */
static int
relay_find(char **envp, char *out, size_t len)
{
	static const char *const rel[] = { "/../../bin/meshlog-collector",
	    "/../../collector/meshlog-collector", NULL };
	const char	*env = ident_env(envp, "MESHLOG_COLLECTOR");
	char		*slash;
	Dl_info		 info;
	int		 i;

	if (env != NULL && *env != '\0') {
		if (strlen(env) >= len)
			return (-1);
		strcpy(out, env);
		return (access(out, X_OK));
	}
	if (dladdr(&shim_state, &info) != 0 && info.dli_fname != NULL &&
	    strlen(info.dli_fname) + 40 < len) {
		for (i = 0; rel[i] != NULL; i++) {
			strcpy(out, info.dli_fname);
			if ((slash = strrchr(out, '/')) == NULL)
				break;
			strcpy(slash, rel[i]);
			if (access(out, X_OK) == 0)
				return (0);
		}
	}
	if (strlen(MESHLOG_BINDIR "/meshlog-collector") >= len)
		return (-1);
	strcpy(out, MESHLOG_BINDIR "/meshlog-collector");
	return (access(out, X_OK));
}

/* In the daemon: set up stdio and exec the relay; never returns. */
static void __attribute__((noreturn))
relay_exec(const char *prog, const char *upstream, const char *sockpath,
    const char *opts, int ready, int dfd, const char *base)
{
	char	*argv[10 + RELAY_MAX_OPTS], logname[NAME_MAX + 1], *copy, *tok;
	int	 fd, n = 0;

	/* Out of the way of the descriptors set up below. */
	if (dfd <= 3)
		dfd = fcntl(dfd, F_DUPFD_CLOEXEC, 10);
	argv[n++] = (char *)"meshlog-collector";
	argv[n++] = (char *)"--upstream";
	argv[n++] = (char *)upstream;
	argv[n++] = (char *)"-s";
	argv[n++] = (char *)sockpath;
	argv[n++] = (char *)"--idle-exit";
	argv[n++] = (char *)"30";
	argv[n++] = (char *)"--ready-fd";
	argv[n++] = (char *)"3";
	if (opts != NULL && (copy = strdup(opts)) != NULL) {
		for (tok = strtok(copy, " \t"); tok != NULL &&
		    n < 9 + RELAY_MAX_OPTS; tok = strtok(NULL, " \t"))
			argv[n++] = tok;
	}
	argv[n] = NULL;
	/* The pipe that says "ready" becomes fd 3, kept across exec. */
	if (ready != 3) {
		if (dup2(ready, 3) == -1)
			_exit(127);
		close(ready);
	} else
		(void)fcntl(3, F_SETFD, 0);
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (fd > 2)
			close(fd);
	}
	snprintf(logname, sizeof logname, "%s.log", base);
	if ((fd = openat(dfd, logname, O_WRONLY | O_CREAT | O_APPEND |
	    O_NOFOLLOW, 0600)) != -1) {
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	closefrom(4);
	/* The relay must not load this library into itself. */
	unsetenv("LD_PRELOAD");
	unsetenv(MESHLOG_ENV_STREAM);
	unsetenv(MESHLOG_ENV_OWNER);
	execve(prog, argv, environ);
	_exit(127);
}

int
shim_start_relay(char **envp, const char *sockpath, long long deadline,
    const char **why)
{
	const char	*upstream = ident_env(envp, "MESHLOG_UPSTREAM");
	struct timespec	 pause = { 0, 10 * 1000 * 1000 };
	char		 lock[PATH_MAX], prog[PATH_MAX], *slash;
	const char	*base = sockpath;
	struct stat	 sb;
	const char	*token = ident_env(envp, "MESHLOG_TOKEN_FILE");
	struct pollfd	 pfd;
	long long	 left;
	char		 buf[16];
	pid_t		 pid;
	int		 dfd, fd, n, rc = -1, status, ready[2];

	if (upstream == NULL || *upstream == '\0')
		return (-1);
	if (token == NULL || *token == '\0') {
		*why = "MESHLOG_UPSTREAM is set without MESHLOG_TOKEN_FILE";
		return (-1);
	}
	*why = "could not start a relay collector for MESHLOG_UPSTREAM (see "
	    "the socket's .log file)";
	if (strlen(sockpath) + 8 >= sizeof lock)
		return (-1);
	strcpy(lock, sockpath);
	if ((slash = strrchr(lock, '/')) != NULL) {
		slash[slash == lock] = '\0';
		base = sockpath + (slash - lock) + 1;
		if (slash != lock)
			(void)mkdir(lock, 0700);
	} else
		strcpy(lock, ".");
	/*
	 * The lock and the relay's log go in the socket's directory only if
	 * it is this user's and no one else may write to it (the rule the
	 * relay itself applies to its socket), never through a link: the
	 * default, /tmp/meshlog-UID, is a name anyone can take first.
	 */
	dfd = open(lock, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd == -1 || shim_fstat(dfd, &sb) != 0 || !dir_is_mine(&sb)) {
		*why = "the socket's directory is not this user's alone; no "
		    "relay started there for MESHLOG_UPSTREAM";
		if (dfd != -1)
			close(dfd);
		return (-1);
	}
	if (strlen(base) + 7 > NAME_MAX) {
		close(dfd);
		return (-1);
	}
	snprintf(lock, sizeof lock, "%s.start", base);
	fd = openat(dfd, lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		close(dfd);
		return (-1);
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) ||
		    shim_now_ms() >= deadline)
			goto out;
		nanosleep(&pause, NULL);
	}
	/* Whoever held the lock may have started it already. */
	if (relay_probe(sockpath)) {
		rc = 0;
		goto out;
	}
	if (relay_find(envp, prog, sizeof prog) != 0) {
		*why = "MESHLOG_UPSTREAM is set but meshlog-collector was not "
		    "found (set MESHLOG_COLLECTOR)";
		goto out;
	}
	if (pipe2(ready, O_CLOEXEC) != 0)
		goto out;
	pid = fork();
	if (pid == -1) {
		close(ready[0]);
		close(ready[1]);
		goto out;
	}
	if (pid == 0) {
		/* A session of its own, and not our child for long. */
		close(ready[0]);
		setsid();
		if (fork() != 0)
			_exit(0);
		relay_exec(prog, upstream, sockpath,
		    ident_env(envp, "MESHLOG_RELAY_OPTIONS"), ready[1], dfd,
		    base);
	}
	close(ready[1]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	/* "ready" once it serves; end of file if it gave up (see its log). */
	pfd.fd = ready[0];
	pfd.events = POLLIN;
	while ((left = deadline - shim_now_ms()) > 0) {
		n = poll(&pfd, 1, (int)left);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 1 && read(ready[0], buf, sizeof buf) > 0 &&
		    relay_probe(sockpath))
			rc = 0;
		break;
	}
	close(ready[0]);
out:
	close(fd);
	close(dfd);
	return (rc);
}
