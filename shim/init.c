/*
 * The constructor: decide whether this process registers, keeps the source
 * it inherited through exec, or stays untouched. It never exits, never
 * prints more than one line, and keeps errno.
 */

#include <sys/stat.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "shim.h"

struct shim_state shim_state;

extern char **environ;

/* Whether this is one of meshlog's own programs, which never register. */
static int
shim_is_meshlog(char **argv)
{
	const char	*base;

	if (argv == NULL || argv[0] == NULL)
		return (0);
	base = strrchr(argv[0], '/');
	base = base != NULL ? base + 1 : argv[0];
	return (strcmp(base, "meshlog-collector") == 0 ||
	    strcmp(base, "meshlogctl") == 0);
}

/*
 * After exec in the same pid, fds 1/2 are still the pipes this pid
 * registered: keep that source. Returns 0 when adopted.
 */
static int
shim_adopt(char **envp)
{
	struct ident_streams	st;
	struct stat		sb;
	long			pid, bits, tty[2];
	int			i;

	if (ident_parse_owner(ident_env(envp, MESHLOG_ENV_OWNER), &pid,
	    &bits, tty) != 0 || pid != (long)getpid())
		return (-1);
	if (ident_parse_streams(ident_env(envp, MESHLOG_ENV_STREAM), &st) != 0)
		return (-1);
	for (i = 0; i < 2; i++) {
		if (!st.present[i])
			continue;
		if (shim_fstat(i + 1, &sb) != 0 || !S_ISFIFO(sb.st_mode) ||
		    (unsigned long long)sb.st_dev != st.dev[i] ||
		    (unsigned long long)sb.st_ino != st.ino[i])
			return (-1);
	}
	for (i = 0; i < 2; i++) {
		shim_state.managed[i] = st.present[i];
		shim_state.dev[i] = st.dev[i];
		shim_state.ino[i] = st.ino[i];
		shim_state.tty[i] = (bits >> i) & 1;
		shim_state.ttydev[i] = tty[i];
		shim_state.file[i] = (bits >> (i + 2)) & 1;
	}
	shim_state.linebuf = (bits & MESHLOG_OWNER_LINEBUF) != 0;
	shim_state.runtime = (bits & MESHLOG_OWNER_RUNTIME) != 0;
	shim_state.active = 1;
	return (0);
}

/*
 * The environment entry for name in environ, or NULL. Edited in place
 * below, not with setenv/unsetenv: a program may define its own (bash
 * does, and ignores them before its main).
 */
static char **
shim_env_entry(const char *name)
{
	size_t	 len = strlen(name);
	char	**ep;

	for (ep = environ; ep != NULL && *ep != NULL; ep++)
		if (strncmp(*ep, name, len) == 0 && (*ep)[len] == '=')
			return (ep);
	return (NULL);
}

/* Remove name from environ, in place. */
static void
shim_env_drop(const char *name)
{
	char	**ep;

	if ((ep = shim_env_entry(name)) == NULL)
		return;
	for (; *ep != NULL; ep++)
		ep[0] = ep[1];
}

/*
 * Room for the entries this library sets, and for an environ that grows
 * by one: most processes need no malloc for them before main() (a first
 * allocation there costs the host its heap's first pages).
 */
static char	*shim_envv[1024];
static char	 shim_envpool[2048];
static size_t	 shim_envpool_used;

/* "name=value", kept for good: the pool's, or allocated when it is full. */
static char *
shim_env_format(const char *name, const char *value)
{
	size_t	 n = strlen(name), v = strlen(value);
	char	*e;

	if (n + v + 2 > sizeof shim_envpool - shim_envpool_used)
		return (asprintf(&e, "%s=%s", name, value) == -1 ? NULL : e);
	e = shim_envpool + shim_envpool_used;
	memcpy(e, name, n);
	e[n] = '=';
	memcpy(e + n + 1, value, v + 1);
	shim_envpool_used += n + v + 2;
	return (e);
}

/*
 * setenv(3) that a program's own setenv cannot bypass: an existing entry
 * is replaced in place (like setenv's, the old string stays), a new one
 * appended to a copy of environ in shim_envv. libc's setenv copies an
 * environ it did not allocate before it grows it; bash reads environ at
 * main(). Only an environment too large for shim_envv goes to setenv.
 */
static void
shim_setenv(const char *name, const char *value)
{
	char	**ep, *entry;
	size_t	  n;

	if ((ep = shim_env_entry(name)) != NULL) {
		if (strcmp(*ep + strlen(name) + 1, value) != 0 &&
		    (entry = shim_env_format(name, value)) != NULL)
			*ep = entry;
		return;
	}
	for (n = 0; environ != NULL && environ[n] != NULL; n++)
		;
	if (n + 2 > sizeof shim_envv / sizeof shim_envv[0] ||
	    (entry = shim_env_format(name, value)) == NULL) {
		setenv(name, value, 1);
		return;
	}
	if (environ != shim_envv && n > 0)
		memcpy(shim_envv, environ, n * sizeof *environ);
	shim_envv[n] = entry;
	shim_envv[n + 1] = NULL;
	environ = shim_envv;
}

/* Mark the managed streams for descendants (after the takeover). */
static void
shim_mark(void)
{
	struct ident_streams	st;
	char			buf[128];
	struct jw		w;
	int			i;

	memset(&st, 0, sizeof st);
	for (i = 0; i < 2; i++) {
		st.present[i] = shim_state.managed[i];
		st.dev[i] = shim_state.dev[i];
		st.ino[i] = shim_state.ino[i];
	}
	if (ident_format_streams(&st, buf, sizeof buf) == 0)
		shim_setenv(MESHLOG_ENV_STREAM, buf);
	jw_init(&w, buf, sizeof buf);
	jw_int(&w, (long long)getpid());
	jw_lit(&w, ":");
	jw_int(&w, shim_state.tty[0] | (shim_state.tty[1] << 1) |
	    (shim_state.file[0] << 2) | (shim_state.file[1] << 3) |
	    (shim_state.linebuf ? MESHLOG_OWNER_LINEBUF : 0) |
	    (shim_state.runtime ? MESHLOG_OWNER_RUNTIME : 0));
	if (shim_state.ttydev[0] != 0 || shim_state.ttydev[1] != 0) {
		/* Where terminal questions go (tty.c), for descendants too. */
		for (i = 0; i < 2; i++) {
			jw_lit(&w, ":");
			jw_int(&w, shim_state.ttydev[i]);
		}
	}
	if (!w.overflow)
		shim_setenv(MESHLOG_ENV_OWNER, buf);
}

/*
 * Put back a PYTHONPATH that a Python process changed for its hook but
 * never restored (python -E, -I, -S skip the hook).
 */
static void
shim_python_path_restore(void)
{
	char	**was;
	char	 *v;

	if ((was = shim_env_entry("MESHLOG_PYTHONPATH")) == NULL)
		return;
	v = *was + sizeof "MESHLOG_PYTHONPATH";
	if (*v == '=')
		shim_setenv("PYTHONPATH", v + 1);
	else
		shim_env_drop("PYTHONPATH");
	shim_env_drop("MESHLOG_PYTHONPATH");
}

/*
 * In a Python process, put the directory of meshlog's sitecustomize.py
 * (beside this library when installed, one level up in the build tree)
 * first on PYTHONPATH, and what PYTHONPATH was in MESHLOG_PYTHONPATH ("-"
 * unset, "=value" set); the hook puts both back before the program starts.
 * Other programs see neither, nor this function's 16 KiB frame (not
 * inlined: each page of stack first touched is a page fault).
 */
static __attribute__((noinline)) void
shim_python_path(void)
{
	static const char *const rel[] = { "/python", "/../python", NULL };
	char		 dir[PATH_MAX], file[PATH_MAX + 32], val[8192];
	const char	*old;
	char		*slash;
	Dl_info		 info;
	int		 i;

	if (dladdr(&shim_state, &info) == 0 || info.dli_fname == NULL ||
	    strlen(info.dli_fname) >= sizeof dir - 16)
		return;
	for (i = 0; rel[i] != NULL; i++) {
		strcpy(dir, info.dli_fname);
		if ((slash = strrchr(dir, '/')) == NULL)
			return;
		strcpy(slash, rel[i]);
		snprintf(file, sizeof file, "%s/sitecustomize.py", dir);
		if (access(file, R_OK) == 0)
			break;
	}
	if (rel[i] == NULL)
		return;
	old = getenv("PYTHONPATH");
	if (snprintf(val, sizeof val, "%s%s", old != NULL ? "=" : "-",
	    old != NULL ? old : "") >= (int)sizeof val)
		return;
	shim_setenv("MESHLOG_PYTHONPATH", val);
	if (snprintf(val, sizeof val, "%s%s%s", dir, old != NULL &&
	    *old != '\0' ? ":" : "", old != NULL ? old : "") >=
	    (int)sizeof val) {
		shim_env_drop("MESHLOG_PYTHONPATH");
		return;
	}
	shim_setenv("PYTHONPATH", val);
}

/*
 * Keep lines of a log from sitting in user-space buffers when a process
 * dies: where stdout is a log (shim_register decides: see
 * shim_linebuf in register.c), C stdio's stdout and Python's sys.stdout
 * (through sitecustomize.py) become line-buffered. Data for another
 * program keeps the program's own buffering, and so does one run by
 * stdbuf -o. An exec'd program is asked again: the pid that registered
 * may have been stdbuf itself.
 */
static void
shim_buffering(char **envp)
{
	/* Python's runtime (level changes) comes with the same file. */
	if (shim_is_python())
		shim_python_path();
	if (shim_state.managed[MESHLOG_STDOUT] && shim_state.linebuf &&
	    !shim_stdbuf(envp))
		setvbuf(stdout, NULL, _IOLBF, 0);
}

/*
 * Whether this is an unprivileged process that looked in another user's
 * collector directory: one that switched uid (setpriv, su, a daemon
 * dropping privileges) is not the job's to warn about. Root always says
 * why (it may have refused a collector of another user).
 */
static int
shim_other_user(const char *sockpath)
{
	char		 dir[108], *slash;
	struct stat	 sb;

	memcpy(dir, sockpath, sizeof dir);
	dir[sizeof dir - 1] = '\0';
	if ((slash = strrchr(dir, '/')) == NULL)
		return (0);
	*slash = '\0';
	return (getuid() != 0 && stat(dir[0] != '\0' ? dir : "/", &sb) == 0 &&
	    sb.st_uid != getuid());
}

ssize_t
shim_read_small(const char *path, char *buf, size_t cap)
{
	ssize_t	n;
	int	fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0)
		return (-1);
	buf[n] = '\0';
	return (n);
}

/* A directory of ours alone (owner us, no group or other bits): fd, or -1. */
static int
shim_own_dir(const char *path)
{
	struct stat	sb;
	int		fd;

	if (path == NULL || path[0] != '/' ||
	    (fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return (-1);
	if (shim_fstat(fd, &sb) != 0 || sb.st_uid != getuid() ||
	    (sb.st_mode & 077) != 0) {
		close(fd);
		return (-1);
	}
	return (fd);
}

/* When process pid started (clock ticks after boot), or 0. */
static unsigned long long
shim_start_time(pid_t pid)
{
	char			 path[64], buf[1024], *p;
	unsigned long long	 v = 0;
	int			 field;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (shim_read_small(path, buf, sizeof buf) == -1)
		return (0);
	/* Fields after the command's name, which ends at the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return (0);
	for (field = 2; *p != '\0' && field < 22; p++) {
		if (*p == ' ')
			field++;
	}
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (unsigned long long)(*p++ - '0');
	return (v);
}

/*
 * Whether this process is the first of its job (its process group on its
 * terminal) to come here: processes a launcher or shell started side by
 * side do not inherit each other's MESHLOG_QUIET. The first leaves a mark
 * in XDG_RUNTIME_DIR, or else in the collector's socket directory, when
 * either is ours alone; marks of groups that are gone are cleared then.
 * 1 (also when there is nowhere to mark), or 0.
 */
static int
shim_notice_first(char **envp, const char *sockpath)
{
	char		 name[128], dir[108], *slash;
	struct stat	 sb;
	struct dirent	*de;
	DIR		*d;
	pid_t		 pgid = getpgrp(), other;
	int		 dfd, fd, first = 1;

	dfd = shim_own_dir(ident_env(envp, "XDG_RUNTIME_DIR"));
	if (dfd == -1 && strlen(sockpath) < sizeof dir) {
		memcpy(dir, sockpath, strlen(sockpath) + 1);
		if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
			*slash = '\0';
			dfd = shim_own_dir(dir);
		}
	}
	if (dfd == -1)
		return (1);
	if (shim_fstat(2, &sb) != 0)
		sb.st_rdev = 0;
	snprintf(name, sizeof name, "meshlog-notice.%llx.%d.%llu",
	    (unsigned long long)sb.st_rdev, (int)pgid, shim_start_time(pgid));
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1 && errno == EEXIST)
		first = 0;
	if (fd != -1) {
		close(fd);
		/* The marks of jobs that are gone, so that none piles up. */
		if ((fd = dup(dfd)) != -1 && (d = fdopendir(fd)) != NULL) {
			while ((de = readdir(d)) != NULL) {
				if (sscanf(de->d_name, "meshlog-notice.%*x.%d.",
				    &other) == 1 && other > 0 &&
				    kill(-other, 0) == -1 && errno == ESRCH)
					(void)unlinkat(dfd, de->d_name, 0);
			}
			closedir(d);
		} else if (fd != -1)
			close(fd);
	}
	close(dfd);
	return (first);
}

/*
 * Say once per job, on the terminal it was started from, that output is
 * not captured, why, and which socket was tried. Only the first process
 * that loads the library may say it (a descendant of one that did, or
 * that registered, stays quiet: MESHLOG_QUIET, MESHLOG_OWNER; a sibling
 * finds the first one's mark, shim_notice_first), only on a terminal (a
 * pipe or file is program data, a launcher's or the job's), and never in
 * a set-user-ID program or one run by another user.
 */
static void
shim_notice(char **envp, const char *why)
{
	const char	*quiet = ident_env(envp, "MESHLOG_QUIET");
	char		 line[384], path[108];
	struct jw	 w;
	ssize_t		 n;

	/* Descendants stay quiet, whether this one says anything or not. */
	shim_setenv("MESHLOG_QUIET", "1");
	if ((quiet != NULL && strcmp(quiet, "0") != 0) ||
	    ident_env(envp, MESHLOG_ENV_OWNER) != NULL ||
	    getuid() != geteuid() || !shim_raw_isatty(2))
		return;
	if (ident_socket_path(envp, path, sizeof path) != 0)
		memcpy(path, "(path too long)", sizeof "(path too long)");
	else if (shim_other_user(path))
		return;
	if (!shim_notice_first(envp, path))
		return;
	jw_init(&w, line, sizeof line);
	jw_lit(&w, "meshlog: output not captured: ");
	jw_lit(&w, why);
	jw_lit(&w, " (");
	jw_lit(&w, path);
	jw_lit(&w, "; set MESHLOG_QUIET=1 to silence)\n");
	if (w.overflow)
		return;
	do
		n = write(2, line, w.len);
	while (n == -1 && errno == EINTR);
}

/*
 * After exec the program is another: tell the collector which (env python3
 * train.py, a pyenv shim and a script's own exec would otherwise be named
 * by their first program), and, waiting for its answer, when it now runs a
 * level runtime where the old one did not, or the other way round (exec
 * reset the old handler).
 */
static void
shim_readopt(char **argv, char **envp)
{
	int	now = shim_runtime(envp) != NULL;

	if (now == shim_state.runtime) {
		(void)shim_exec_say(argv, 0, NULL);
		return;
	}
	/* Unheard, the collector keeps doing what it did: so does the mark. */
	if (shim_exec_say(argv, 1, now ? "python" : NULL) != 0)
		return;
	shim_state.runtime = now;
	shim_mark();
}

/*
 * No collector on this host: with MESHLOG_UPSTREAM set, start this host's
 * relay (or wait for the one another process is starting) and register.
 */
static int
shim_relay(char **argv, char **envp, const char **why)
{
	char	path[108];

	if (ident_socket_path(envp, path, sizeof path) != 0)
		return (-1);
	if (shim_start_relay(envp, path, shim_deadline(envp, 0), why) != 0)
		return (-1);
	return (shim_register(argv, envp, why));
}

/* Runs before main() in every process the library is loaded into. */
__attribute__((constructor)) static void
shim_init(int argc, char **argv, char **envp)
{
	const char	*off, *why = NULL;
	char		 sockpath[108];
	int		 saved = errno, rc;

	(void)argc;
	if (envp == NULL)
		envp = environ;
	off = ident_env(envp, "MESHLOG_DISABLE");
	if ((off != NULL && strcmp(off, "0") != 0) || shim_is_meshlog(argv))
		goto out;
	shim_python_path_restore();
	if (shim_adopt(envp) == 0) {
		if (ident_socket_path(envp, sockpath, sizeof sockpath) == 0)
			shim_fork_setup(envp, sockpath);
		shim_readopt(argv, envp);
		shim_buffering(envp);
		goto out;
	}
	if ((rc = shim_register(argv, envp, &why)) == 0 ||
	    (rc == SHIM_ABSENT && shim_relay(argv, envp, &why) == 0)) {
		shim_mark();
		/* Descendants and the runtimes use the collector we reached. */
		if (ident_socket_path(envp, sockpath, sizeof sockpath) == 0) {
			shim_setenv(MESHLOG_ENV_SOCKET, sockpath);
			shim_fork_setup(envp, sockpath);
		}
		shim_buffering(envp);
	} else if (why != NULL)
		shim_notice(envp, why);
out:
	errno = saved;
}

/*
 * Whether this process may have written anything: the kernel counts the
 * bytes of every write(2) it made (wchar in /proc/self/io). 1 when it did
 * or when that cannot be read.
 */
static int
shim_wrote(void)
{
	char	buf[512], *p;

	if (shim_read_small("/proc/self/io", buf, sizeof buf) == -1 ||
	    (p = strstr(buf, "wchar: ")) == NULL)
		return (1);
	p += sizeof "wchar: " - 1;
	return (p[0] != '0' || p[1] != '\n');
}

/*
 * At exit, when this process's output is bound for a regular file or a
 * terminal, wait until the collector has put there what was written:
 * whoever reads the file next (`cmd > out; cat out`) must find it whole,
 * and the shell's next line on the terminal must come after this
 * process's, as without meshlog. Output to a pipe needs no wait (its
 * reader waits for the collector to close it). Lines still in a stdio
 * buffer here (MESHLOG_BUFFERING=keep) are written after this, by exit.
 * A process that wrote nothing has nothing to wait for: most short
 * commands of a shell script save a round trip to the collector.
 */
__attribute__((destructor)) static void
shim_fini(void)
{
	struct stat	sb;
	int		saved = errno, i, k, wait = 0;

	for (i = 0; i < 2; i++) {
		/*
		 * The stream on fd i+1: a pipe of ours, or, closed (coreutils
		 * closes its streams before exit), the one it was. Something
		 * else (a subshell's stdout a shell pointed at $(...)) has
		 * nothing of ours to wait for.
		 */
		k = shim_fstat(i + 1, &sb) != 0 ? i : shim_managed_stat(&sb);
		if (k >= 0 && shim_state.managed[k] && (shim_state.file[k] ||
		    shim_state.tty[k]))
			wait = 1;
	}
	if (shim_state.active && wait && shim_wrote())
		(void)shim_drain();
	errno = saved;
}
