/*
 * Forked children get pipes of their own. A process that forks without
 * exec (DataLoader and multiprocessing workers, shell subshells) would
 * otherwise write into its parent's capture pipe, where its lines and its
 * siblings' interleave mid-line and no record can say who wrote it. So
 * fork(2) is interposed: before the fork a pipe is made for each captured
 * stream; the child sends the read ends to the collector and, only once
 * they are sent, puts the write ends on 1/2. They go on the parent's
 * family connection, opened at its first fork and kept (close-on-exec):
 * one sendmsg per fork, no connect, and with SO_PASSCRED the kernel names
 * the sending child to the collector. The collector records the child as a forked
 * worker of its parent's source, tees its bytes to the parent's
 * destination, and reads the parent's pipe first, so what the parent wrote
 * before the fork stays before.
 *
 * Causality the other way (what the parent writes after it reaped the
 * child comes after the child's output) is kept at the reap: the parent
 * holds a write end of each live child's pipe (never written, only asked
 * with FIONREAD) and, when a wait reaps a child whose pipe still holds
 * bytes, asks the collector to move them before the wait returns.
 *
 * Every child reaped is reported on the same connection with the status
 * the wait returned ("reaped"), so that the collector can say how each
 * process ended even when it could not read the status itself: a parent
 * such as a shell reaps at once.
 *
 * Everything in the child is a system call; nothing blocks: a collector
 * that does not accept at once leaves the child on its parent's pipe, as
 * before. vfork and posix_spawn run no code of ours and exec at once; the
 * program they run registers itself.
 */

#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "shim.h"

/* Children whose pipes the parent watches at once; more fork without. */
#define SHIM_KIDS		64
/*
 * Descriptors kept here start at this number, out of the way of the
 * lowest-free rule, yet low: a fork copies the whole descriptor table,
 * and one near a high limit made every fork cost half a millisecond.
 */
#define SHIM_FD_BASE		200

enum { KID_FREE, KID_BUSY, KID_LIVE };

/* A live forked child: its pid and the write ends of its pipes. */
struct shim_kid {
	int			state;
	pid_t			pid;
	int			npipes;
	int			fd[2];
	unsigned long long	dev[2];
	unsigned long long	ino[2];
};

/* One fork's pipes, made before it. */
struct shim_slot {
	int			ok;
	int			kid;		/* reserved entry of kids */
	int			use[2];		/* stream gets a pipe */
	int			map[2];		/* stream -> pipe */
	int			npipes;
	int			r[2], w[2];
	unsigned long long	dev[2], ino[2];	/* the new pipes */
	unsigned long long	odev[2], oino[2]; /* the pipes they split */
	int			unread[2];	/* bytes those held, or -1 */
};

static struct shim_kid	kids[SHIM_KIDS];
static char		sockpath[108];
static int		fd_base = -1;
static int		fork_pipes;	/* forked children get pipes */
/* A thread is opening the family connection. */
static int		fam_opening;

/* The family connection: -1 not open; after 3 failures, not tried again. */
static int			fam_fd = -1;
static int			fam_failed;
static unsigned long long	fam_dev, fam_ino;

void
shim_fork_setup(char **envp, const char *path)
{
	const char	*off = ident_env(envp, "MESHLOG_FORK");
	struct rlimit	 rl;
	size_t		 len = strlen(path);

	if (len >= sizeof sockpath)
		return;
	/* MESHLOG_FORK=0: forked children share their parent's pipes. */
	fork_pipes = off == NULL || strcmp(off, "0") != 0;
	memcpy(sockpath, path, len + 1);
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		rl.rlim_cur = 1024;
	fd_base = rl.rlim_cur > 2 * SHIM_FD_BASE ? SHIM_FD_BASE :
	    (int)rl.rlim_cur / 2;
}

/* Whether fd still is the pipe (dev, ino): a program may have reused it. */
static int
shim_fd_is(int fd, unsigned long long dev, unsigned long long ino)
{
	struct stat	sb;

	return (fd >= 0 && shim_fstat(fd, &sb) == 0 &&
	    (unsigned long long)sb.st_dev == dev &&
	    (unsigned long long)sb.st_ino == ino);
}

/* Close a kid's descriptors that are still its own. */
static void
shim_kid_close(struct shim_kid *k)
{
	int	i;

	for (i = 0; i < k->npipes; i++) {
		if (shim_fd_is(k->fd[i], k->dev[i], k->ino[i]))
			close(k->fd[i]);
	}
	k->npipes = 0;
}

/*
 * Take a free entry, or that of a child reaped by someone else (SIGCHLD
 * ignored, a double fork); -1 when all are taken.
 */
static int
shim_kid_reserve(void)
{
	int	i, want;

	for (i = 0; i < SHIM_KIDS; i++) {
		want = KID_FREE;
		if (__atomic_compare_exchange_n(&kids[i].state, &want,
		    KID_BUSY, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return (i);
	}
	for (i = 0; i < SHIM_KIDS; i++) {
		want = KID_LIVE;
		if (__atomic_load_n(&kids[i].state, __ATOMIC_ACQUIRE) !=
		    KID_LIVE || kill(kids[i].pid, 0) == 0 || errno != ESRCH)
			continue;	/* alive, or a zombie still to reap */
		if (__atomic_compare_exchange_n(&kids[i].state, &want,
		    KID_BUSY, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			shim_kid_close(&kids[i]);
			return (i);
		}
	}
	return (-1);
}

/*
 * Open the family connection, out of the program's way: its messages carry
 * the sender's credentials. 0, or -1 when the collector does not take it
 * (tried at three forks at most).
 */
static int
shim_family(void)
{
	static const char	 hello[] = "{\"type\":\"family\"}\n";
	struct stat		 sb;
	int			 sock, fd, on = 1;

	if (fam_fd != -1) {
		/* The program may have closed or reused the descriptor. */
		if (shim_fd_is(fam_fd, fam_dev, fam_ino))
			return (0);
		fam_fd = -1;
	}
	if (fam_failed >= 3 || (sock = shim_dial(sockpath)) == -1)
		goto fail;
	fd = fcntl(sock, F_DUPFD_CLOEXEC, fd_base);
	close(sock);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0 ||
	    send(fd, hello, sizeof hello - 1, MSG_DONTWAIT | MSG_NOSIGNAL) !=
	    (ssize_t)(sizeof hello - 1) || shim_fstat(fd, &sb) != 0) {
		close(fd);
		goto fail;
	}
	fam_dev = (unsigned long long)sb.st_dev;
	fam_ino = (unsigned long long)sb.st_ino;
	/* Other threads use it once they see it, its identity with it. */
	__atomic_store_n(&fam_fd, fd, __ATOMIC_RELEASE);
	return (0);
fail:
	fam_failed++;
	return (-1);
}

/*
 * The family connection, opened if need be: 0 when it is open. Threads
 * share it once open (each message is one small send); one opens it at a
 * time, and a thread that finds another opening it goes without (this
 * fork keeps its parent's pipe, this report is not sent), as without
 * meshlog.
 */
static int
shim_family_ready(void)
{
	int	free_ = 0, rc;

	if (__atomic_load_n(&fam_fd, __ATOMIC_ACQUIRE) != -1 &&
	    shim_fd_is(fam_fd, fam_dev, fam_ino))
		return (0);
	if (!__atomic_compare_exchange_n(&fam_opening, &free_, 1, 0,
	    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return (-1);
	rc = shim_family();
	__atomic_store_n(&fam_opening, 0, __ATOMIC_RELEASE);
	return (rc);
}

/* Undo what shim_prepare made. */
static void
shim_slot_close(struct shim_slot *sl)
{
	int	i;

	for (i = 0; i < sl->npipes; i++) {
		if (sl->r[i] != -1)
			close(sl->r[i]);
		if (sl->w[i] != -1)
			close(sl->w[i]);
	}
	if (sl->kid != -1)
		__atomic_store_n(&kids[sl->kid].state, KID_FREE,
		    __ATOMIC_RELEASE);
	sl->ok = 0;
}

/* Before the fork: a pipe per captured stream still on 1/2. */
static void
shim_prepare(struct shim_slot *sl)
{
	struct stat	sb;
	int		i, k, p[2], saved = errno;

	memset(sl, 0, sizeof *sl);
	sl->kid = -1;
	memset(sl->r, -1, sizeof sl->r);
	memset(sl->w, -1, sizeof sl->w);
	if (!shim_state.active || sockpath[0] == '\0' || !fork_pipes)
		goto out;
	for (i = 0; i < 2; i++) {
		sl->use[i] = shim_state.managed[i] &&
		    shim_fstat(i + 1, &sb) == 0 && S_ISFIFO(sb.st_mode) &&
		    (unsigned long long)sb.st_dev == shim_state.dev[i] &&
		    (unsigned long long)sb.st_ino == shim_state.ino[i];
	}
	if ((!sl->use[0] && !sl->use[1]) || shim_family_ready() != 0 ||
	    (sl->kid = shim_kid_reserve()) == -1)
		goto out;
	for (i = 0; i < 2; i++) {
		if (!sl->use[i])
			continue;
		/* `2>&1`: one pipe for both, as the parent has. */
		if (i == 1 && sl->use[0] && shim_state.dev[0] ==
		    shim_state.dev[1] && shim_state.ino[0] == shim_state.ino[1]) {
			sl->map[1] = sl->map[0];
			continue;
		}
		k = sl->npipes;
		if (pipe2(p, O_CLOEXEC) != 0)
			goto fail;
		sl->npipes++;
		sl->r[k] = p[0];
		/* The parent keeps the write end: out of the program's way. */
		sl->w[k] = fcntl(p[1], F_DUPFD_CLOEXEC, fd_base);
		close(p[1]);
		if (sl->w[k] == -1 || shim_fstat(p[0], &sb) != 0)
			goto fail;
		sl->dev[k] = (unsigned long long)sb.st_dev;
		sl->ino[k] = (unsigned long long)sb.st_ino;
		sl->odev[k] = shim_state.dev[i];
		sl->oino[k] = shim_state.ino[i];
		sl->map[i] = k;
	}
	/*
	 * Last, as near the fork as we can: what the parent's pipes hold
	 * unread was written before it. The collector lets no byte of the
	 * child's overtake them, and no more of the parent's than it must.
	 */
	for (i = 0; i < 2; i++) {
		if (sl->use[i] &&
		    ioctl(i + 1, FIONREAD, &sl->unread[sl->map[i]]) != 0)
			sl->unread[sl->map[i]] = -1;
	}
	sl->ok = 1;
	goto out;
fail:
	shim_slot_close(sl);
out:
	errno = saved;
}

/* In the child: no pipes of the parent's children are ours to watch. */
static void
shim_kids_forget(void)
{
	int	i;

	for (i = 0; i < SHIM_KIDS; i++) {
		if (kids[i].state == KID_LIVE)
			shim_kid_close(&kids[i]);
		kids[i].state = KID_FREE;
	}
}

/* In the child: hand the read ends over, then write to the new pipes. */
static void
shim_child(struct shim_slot *sl)
{
	char		 msg[256];
	struct jw	 w;
	int		 i, k, fam = fam_fd, saved = errno;

	shim_kids_forget();
	/* The parent's family connection is not ours: ours opens if we fork. */
	fam_fd = -1;
	if (!sl->ok) {
		if (fam != -1 && shim_fd_is(fam, fam_dev, fam_ino))
			close(fam);
		goto out;
	}
	sl->kid = -1;	/* the parent's entry */
	jw_init(&w, msg, sizeof msg);
	jw_lit(&w, "{\"type\":\"fork\",\"of\":[");
	for (k = 0; k < sl->npipes; k++) {
		jw_lit(&w, k == 0 ? "[" : ",[");
		jw_int(&w, (long long)sl->odev[k]);
		jw_lit(&w, ",");
		jw_int(&w, (long long)sl->oino[k]);
		jw_lit(&w, ",");
		jw_int(&w, (long long)sl->unread[k]);
		jw_lit(&w, "]");
	}
	jw_lit(&w, "]}\n");
	/* A collector that cannot take it now leaves us on our parent's pipe. */
	k = !w.overflow && fd_send_flags(fam, msg, w.len, sl->r, sl->npipes,
	    MSG_DONTWAIT) == (ssize_t)w.len;
	close(fam);
	if (!k)
		goto done;
	for (i = 0; i < 2; i++) {
		if (!sl->use[i] || dup3(sl->w[sl->map[i]], i + 1, 0) != i + 1)
			continue;
		shim_state.dev[i] = sl->dev[sl->map[i]];
		shim_state.ino[i] = sl->ino[sl->map[i]];
	}
done:
	shim_slot_close(sl);
out:
	errno = saved;
}

/* In the parent: watch the child's pipes until it is reaped. */
static void
shim_parent(struct shim_slot *sl, pid_t pid)
{
	struct shim_kid	*kid;
	int		 k, saved = errno;

	if (!sl->ok)
		goto out;
	if (pid == -1) {
		shim_slot_close(sl);
		goto out;
	}
	kid = &kids[sl->kid];
	kid->pid = pid;
	kid->npipes = sl->npipes;
	for (k = 0; k < sl->npipes; k++) {
		close(sl->r[k]);
		kid->fd[k] = sl->w[k];
		kid->dev[k] = sl->dev[k];
		kid->ino[k] = sl->ino[k];
	}
	__atomic_store_n(&kid->state, KID_LIVE, __ATOMIC_RELEASE);
out:
	errno = saved;
}

__attribute__((visibility("default"))) pid_t
fork(void)
{
	static pid_t		(*real)(void);
	struct shim_slot	sl;
	pid_t			pid;

	if (real == NULL)
		real = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
	if (real == NULL) {
		errno = ENOSYS;
		return (-1);
	}
	if (!shim_state.active)
		return (real());
	shim_prepare(&sl);
	pid = real();
	if (pid == 0) {
		/* Alone in the child: no other thread is opening anything. */
		fam_opening = 0;
		shim_child(&sl);
	} else
		shim_parent(&sl, pid);
	return (pid);
}

/*
 * Tell the collector how child pid ended (its wait status): one send that
 * never waits; lost when the connection is busy or full. Safe in a signal
 * handler (a SIGCHLD handler that reaps): system calls only.
 */
static void
shim_report(pid_t pid, int status)
{
	char		msg[96];
	struct jw	w;

	if (sockpath[0] == '\0' || shim_family_ready() != 0)
		return;
	jw_init(&w, msg, sizeof msg);
	jw_lit(&w, "{\"type\":\"reaped\",\"pid\":");
	jw_int(&w, (long long)pid);
	jw_lit(&w, ",\"status\":");
	jw_int(&w, (long long)status);
	jw_lit(&w, "}\n");
	if (!w.overflow)
		(void)send(fam_fd, msg, w.len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * A wait reaped pid with status: said to the collector, and if its pipes
 * still hold bytes, the collector moves them before the parent goes on.
 * Keeps errno.
 */
static void
shim_reaped(pid_t pid, int status)
{
	unsigned long long	 dev[2], ino[2];
	struct shim_kid		*k;
	int			 i, j, n = 0, avail, want, saved = errno;

	if (pid <= 0)
		return;
	shim_report(pid, status);
	for (i = 0; i < SHIM_KIDS; i++) {
		k = &kids[i];
		want = KID_LIVE;
		if (__atomic_load_n(&k->state, __ATOMIC_ACQUIRE) != KID_LIVE ||
		    k->pid != pid || !__atomic_compare_exchange_n(&k->state,
		    &want, KID_BUSY, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		/* Asking a descriptor that is no longer ours is harmless. */
		for (j = 0; j < k->npipes; j++) {
			if (ioctl(k->fd[j], FIONREAD, &avail) == 0 &&
			    avail > 0) {
				dev[n] = k->dev[j];
				ino[n++] = k->ino[j];
			}
		}
		shim_kid_close(k);
		__atomic_store_n(&k->state, KID_FREE, __ATOMIC_RELEASE);
		if (n > 0)
			(void)shim_drain_pipes(dev, ino, n);
		break;
	}
	errno = saved;
}

/* Whether a wait status says the child is gone (not stopped, continued). */
static int
shim_gone(int status)
{
	return (WIFEXITED(status) || WIFSIGNALED(status));
}

/* libc's own function name, found at the first call. */
static void *
shim_next(void **cache, const char *name)
{
	if (*cache == NULL)
		*cache = dlsym(RTLD_NEXT, name);
	return (*cache);
}

__attribute__((visibility("default"))) pid_t
waitpid(pid_t pid, int *status, int options)
{
	static void	*real;
	pid_t		(*fn)(pid_t, int *, int);
	int		 st;
	pid_t		 rc;

	if ((fn = (pid_t (*)(pid_t, int *, int))shim_next(&real,
	    "waitpid")) == NULL) {
		errno = ENOSYS;
		return (-1);
	}
	rc = fn(pid, &st, options);
	if (rc > 0 && status != NULL)
		*status = st;
	if (rc > 0 && shim_gone(st))
		shim_reaped(rc, st);
	return (rc);
}

__attribute__((visibility("default"))) pid_t
wait(int *status)
{
	return (waitpid(-1, status, 0));
}

__attribute__((visibility("default"))) pid_t
wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	static void	*real;
	pid_t		(*fn)(pid_t, int *, int, struct rusage *);
	int		 st;
	pid_t		 rc;

	if ((fn = (pid_t (*)(pid_t, int *, int, struct rusage *))shim_next(
	    &real, "wait4")) == NULL) {
		errno = ENOSYS;
		return (-1);
	}
	rc = fn(pid, &st, options, ru);
	if (rc > 0 && status != NULL)
		*status = st;
	if (rc > 0 && shim_gone(st))
		shim_reaped(rc, st);
	return (rc);
}

__attribute__((visibility("default"))) pid_t
wait3(int *status, int options, struct rusage *ru)
{
	return (wait4(-1, status, options, ru));
}

__attribute__((visibility("default"))) int
waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
	static void	*real;
	int		(*fn)(idtype_t, id_t, siginfo_t *, int);
	int		 rc;

	if ((fn = (int (*)(idtype_t, id_t, siginfo_t *, int))shim_next(&real,
	    "waitid")) == NULL) {
		errno = ENOSYS;
		return (-1);
	}
	rc = fn(idtype, id, info, options);
	if (rc == 0 && info != NULL && !(options & WNOWAIT) &&
	    (info->si_code == CLD_EXITED || info->si_code == CLD_KILLED ||
	    info->si_code == CLD_DUMPED))
		shim_reaped(info->si_pid, info->si_code == CLD_EXITED ?
		    (info->si_status & 0xff) << 8 : (info->si_status & 0x7f) |
		    (info->si_code == CLD_DUMPED ? 0x80 : 0));
	return (rc);
}
