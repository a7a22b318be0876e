/*
 * Launch mode: run the command with the shim preloaded and the collector's
 * socket in its environment, and pass its exit status through.
 */

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"
#include "keeper.h"
#include "launch.h"

static pid_t	child = -1;
static int	child_status = -1;
static int	child_raw;	/* its wait status */
static sigset_t	inherited_ignores;	/* ignored when we were started */
static sigset_t	inherited_mask;		/* blocked when we started */
static struct rlimit inherited_nofile;	/* main() raises ours */
static int	have_nofile;
static int	inherited_closed[3];	/* fds 0-2 closed when started */

/*
 * The signals passed on: every one whose default ends a process and that
 * only another process sends (Slurm's --signal takes any), and a stop and
 * a continue, as the command would get them without us. Not those the
 * kernel sends a process for its own doing (SIGSEGV, SIGXCPU, SIGTTIN,
 * ...).
 */
static const int launch_sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT,
    SIGUSR1, SIGUSR2, SIGALRM, SIGPWR, SIGVTALRM, SIGPROF, SIGIO,
    SIGSTKFLT, SIGTSTP, SIGCONT };

/* The signals whose inherited disposition the job gets back. */
static void
launch_sigset(sigset_t *set, int pipe_too)
{
	size_t	i;
	int	sig;

	sigemptyset(set);
	for (i = 0; i < sizeof launch_sigs / sizeof launch_sigs[0]; i++)
		sigaddset(set, launch_sigs[i]);
	for (sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaddset(set, sig);
	if (pipe_too)
		sigaddset(set, SIGPIPE);
}

void
launch_note_inherited(void)
{
	struct sigaction	sa;
	sigset_t		set;
	size_t			i;
	int			sig;

	/*
	 * A descriptor 0-2 left closed would be the next file opened (the
	 * keeper's socket, the JSON log) and take our messages for
	 * stderr's: /dev/null holds it. The command gets it closed.
	 */
	for (i = 0; i < 3; i++) {
		if (fcntl((int)i, F_GETFD) != -1 || errno != EBADF)
			continue;
		if (open("/dev/null", O_RDWR) != (int)i)
			_exit(1);	/* no stderr to say it on */
		inherited_closed[i] = 1;
	}
	have_nofile = getrlimit(RLIMIT_NOFILE, &inherited_nofile) == 0;
	if (sigprocmask(SIG_SETMASK, NULL, &inherited_mask) != 0)
		sigemptyset(&inherited_mask);
	sigemptyset(&inherited_ignores);
	launch_sigset(&set, 1);
	for (sig = 1; sig < NSIG; sig++) {
		if (sigismember(&set, sig) == 1 &&
		    sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			sigaddset(&inherited_ignores, sig);
	}
}

int
launch_foreground(void)
{
	pid_t	fg = -1;
	int	fd;

	/* The terminal is stdin's, else stdout's or stderr's, else ours. */
	for (fd = 0; fd < 3 && fg == -1; fd++)
		fg = tcgetpgrp(fd);
	if (fg == -1 && (fd = open("/dev/tty", O_RDONLY | O_NOCTTY |
	    O_CLOEXEC)) != -1) {
		fg = tcgetpgrp(fd);
		close(fd);
	}
	return (fg != -1 && fg == getpgrp());
}

int
launch_ignored(int sig)
{
	return (sigismember(&inherited_ignores, sig) == 1);
}

/* Whether path names a readable file. */
static int
launch_exists(const char *path)
{
	return (access(path, R_OK) == 0);
}

const char *
launch_shim_path(void)
{
	static char	 path[PATH_MAX];
	static const char *const rel[] = {
		"/../shim/.libs/libmeshlog_preload.so",	/* build tree */
		"/../lib/meshlog/libmeshlog_preload.so",	/* moved prefix */
		NULL
	};
	char		 exe[PATH_MAX - 64], *slash;
	const char	*env;
	ssize_t		 n;
	int		 i;

	if ((env = getenv("MESHLOG_PRELOAD")) != NULL && *env != '\0')
		return (env);
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL)
			*slash = '\0';
		/* libtool may run us from collector/.libs */
		for (i = 0; rel[i] != NULL; i++) {
			snprintf(path, sizeof path, "%s%s", exe, rel[i]);
			if (launch_exists(path))
				return (path);
			snprintf(path, sizeof path, "%s/..%s", exe, rel[i]);
			if (i == 0 && launch_exists(path))
				return (path);
		}
	}
	return (PKGLIBDIR "/libmeshlog_preload.so");
}

/*
 * LD_PRELOAD for the job: the shim first, so that what it interposes is
 * found before other preloaded libraries, unless the list inherited
 * begins with a sanitizer's runtime, which refuses to run anywhere but
 * first (AddressSanitizer: "runtime does not come first in initial
 * library list"); the shim then comes second.
 */
static char *
launch_preload(const char *shim, const char *old)
{
	static const char *const first[] = { "libasan.so", "libhwasan.so",
	    "libclang_rt.asan", "libclang_rt.hwasan", NULL };
	char		*preload;
	const char	*end, *name;
	size_t		 i, len;

	if (old == NULL || *old == '\0')
		return (xstrdup(shim));
	/* The loader splits the list at colons and spaces. */
	len = strcspn(old, ": ");
	for (name = end = old + len; name > old && name[-1] != '/'; name--)
		;
	for (i = 0; first[i] != NULL; i++) {
		if ((size_t)(end - name) >= strlen(first[i]) &&
		    strncmp(name, first[i], strlen(first[i])) == 0) {
			xasprintf(&preload, "%.*s:%s%s", (int)len, old, shim,
			    end);
			return (preload);
		}
	}
	xasprintf(&preload, "%s:%s", shim, old);
	return (preload);
}

void
launch_start(char *const *argv, const char *socket_path)
{
	const char	*shim = launch_shim_path(), *old;
	char		*preload;
	char		 resolved[PATH_MAX];
	sigset_t	 set;
	size_t		 i;
	int		 sig;

	if (!launch_exists(shim))
		fatalx("preload library not found: %s (set MESHLOG_PRELOAD)",
		    shim);
	if (realpath(shim, resolved) != NULL)
		shim = resolved;
	if (strpbrk(shim, " :") != NULL)
		fatalx("preload path has a space or colon, which the loader "
		    "splits: %s", shim);
	old = getenv("LD_PRELOAD");
	preload = launch_preload(shim, old);
	switch (child = fork()) {
	case -1:
		fatal("fork");
	case 0:
		/*
		 * What we inherited, as if we were not there: the mask, the
		 * ignores (nohup) and the descriptor limit, which a soft
		 * limit past FD_SETSIZE would break select() with.
		 */
		sigprocmask(SIG_SETMASK, &inherited_mask, NULL);
		for (i = 0; i < 3; i++) {
			if (inherited_closed[i])
				close((int)i);
		}
		if (have_nofile)
			(void)setrlimit(RLIMIT_NOFILE, &inherited_nofile);
		launch_sigset(&set, 1);
		for (sig = 1; sig < NSIG; sig++) {
			if (sigismember(&set, sig) == 1)
				signal(sig, launch_ignored(sig) ? SIG_IGN :
				    SIG_DFL);
		}
		setenv("LD_PRELOAD", preload, 1);
		setenv(MESHLOG_ENV_SOCKET, socket_path, 1);
		execvp(argv[0], argv);
		fprintf(stderr, "meshlog-collector: cannot run %s: %s\n",
		    argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	free(preload);
	log_debug("started %s as pid %ld", argv[0], (long)child);
}

int
launch_done(int *status)
{
	int	st;
	pid_t	r;

	if (child == -1)
		return (0);
	if (child_status == -1) {
		do
			r = waitpid(child, &st, WNOHANG);
		while (r == -1 && errno == EINTR);
		if (r != child)
			return (0);
		child_raw = st;
		if (WIFEXITED(st))
			child_status = WEXITSTATUS(st);
		else if (WIFSIGNALED(st))
			child_status = 128 + WTERMSIG(st);
		else
			return (0);
	}
	*status = child_status;
	return (1);
}

void
launch_end_as_child(void)
{
	sigset_t	one;
	int		sig;

	if (child_status == -1 || !WIFSIGNALED(child_raw))
		return;
	/*
	 * Killed by a signal, the command ends its parent's wait as if it
	 * had been that parent's child: killed by the same signal (a shell
	 * then says "Segmentation fault"; Python's returncode is -11, not
	 * 139). Not dumpable: the command's core is the one that counts.
	 */
	sig = WTERMSIG(child_raw);
	fflush(NULL);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)signal(sig, SIG_DFL);
	sigemptyset(&one);
	sigaddset(&one, sig);
	(void)sigprocmask(SIG_UNBLOCK, &one, NULL);
	(void)raise(sig);
}

long
launch_child(int *raw)
{
	if (raw != NULL)
		*raw = child_raw;
	return ((long)child);
}

void
launch_signal(int sig)
{
	if (child > 0 && child_status == -1)
		kill(child, sig);
}

int
launch_in_our_group(void)
{
	return (child > 0 && child_status == -1 && getpgid(child) ==
	    getpgrp());
}

void
launch_hold(sigset_t *set)
{
	launch_sigset(set, 0);
}

/* The signals pending in the keeper, sent to its process group; -1: none
 * to ask. */
static int
launch_keeper_pending(unsigned long long *pending)
{
	char			 path[64], line[128];
	pid_t			 keeper = keeper_pid_of();
	FILE			*f;
	int			 rc = -1;

	if (keeper <= 0)
		return (-1);
	snprintf(path, sizeof path, "/proc/%ld/status", (long)keeper);
	if ((f = fopen(path, "re")) == NULL)
		return (-1);
	/* Signals sent to the process, pending: a mask in hexadecimal. */
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "ShdPnd:", 7) == 0) {
			*pending = strtoull(line + 7, NULL, 16);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return (rc);
}

int
launch_group_signal(int sig)
{
	unsigned long long	pending;
	int			seen;

	if (sig <= 0 || sig > 64 || launch_keeper_pending(&pending) != 0)
		return (-1);
	if ((seen = (pending >> (sig - 1)) & 1) == 1)
		keeper_drop(sig);
	return (seen);
}

int
launch_group_ending(void)
{
	static const int	ends[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	unsigned long long	pending;
	size_t			i;

	if (launch_keeper_pending(&pending) != 0 || !launch_in_our_group())
		return (0);
	for (i = 0; i < sizeof ends / sizeof ends[0]; i++) {
		if ((pending >> (ends[i] - 1)) & 1)
			return (ends[i]);
	}
	return (0);
}
