/*
 * Interposed calls that keep the takeover invisible to programs that ask
 * their terminal something through fd 1 or 2. A managed pipe whose
 * original destination was a terminal answers as that terminal: isatty
 * says yes, fstat gives the terminal's stat, and every terminal request
 * (termios, window size, process group, ttyname) is carried out on the
 * terminal itself, reached through /dev/tty or /dev/pts/N and checked
 * against the device number recorded at registration. Changing the
 * terminal's modes first waits until the collector has written what the
 * process wrote before, so output keeps its place relative to the mode
 * change. Reading such a stream, or polling or selecting it for input,
 * reads the terminal (util-linux more(1), and vim reading a pipe, take
 * their keys from stderr).
 *
 * isatty, ioctl, fstat, read, poll and select are safe before the
 * constructor
 * has run (shim_state is then all zero), call no other interposed
 * function, resolve nothing with dlsym, and keep errno on success. The
 * termios functions resolve libc's own with dlsym(RTLD_NEXT) at their
 * first call.
 */

#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "shim.h"

/* libc's own read(2) and poll(2), under the names it exports them by. */
extern ssize_t	__read(int, void *, size_t);
extern int	__poll(struct pollfd *, nfds_t, int);
extern int	__select(int, fd_set *, fd_set *, fd_set *, struct timeval *);
extern void	__chk_fail(void) __attribute__((noreturn));

/* The device numbers of Unix 98 pseudo-terminal slaves (devices.txt). */
#define SHIM_PTS_MAJOR_FIRST	136
#define SHIM_PTS_MAJOR_LAST	143

int
shim_raw_isatty(int fd)
{
	/* Room for any kernel termios layout. */
	unsigned char	buf[128];

	return (syscall(SYS_ioctl, fd, TCGETS, buf) == 0);
}

int
shim_fstat(int fd, struct stat *sb)
{
	return ((int)syscall(SYS_fstat, fd, sb));
}

long
shim_ttydev(const struct stat *sb)
{
	/* Only what MESHLOG_OWNER can carry; 0 means "ask /dev/tty". */
	if (sb->st_rdev == 0 || sb->st_rdev > 0x7fffffffULL)
		return (0);
	return ((long)sb->st_rdev);
}

int
shim_managed_stream(int fd)
{
	struct stat	sb;

	if (!shim_state.active || shim_fstat(fd, &sb) != 0)
		return (-1);
	return (shim_managed_stat(&sb));
}

/* Stream index (0, 1) whose managed pipe sb describes, or -1. */
int
shim_managed_stat(const struct stat *sb)
{
	int	i;

	if (!shim_state.active || !S_ISFIFO(sb->st_mode))
		return (-1);
	for (i = 0; i < 2; i++) {
		if (shim_state.managed[i] &&
		    (unsigned long long)sb->st_dev == shim_state.dev[i] &&
		    (unsigned long long)sb->st_ino == shim_state.ino[i])
			return (i);
	}
	return (-1);
}

/* Open path and keep it if it is the terminal with device want. */
static int
shim_tty_try(const char *path, long want)
{
	struct stat	sb;
	int		fd;

	fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return (-1);
	if (shim_fstat(fd, &sb) == 0 && S_ISCHR(sb.st_mode) &&
	    (want == 0 || shim_ttydev(&sb) == want))
		return (fd);
	close(fd);
	return (-1);
}

/*
 * The terminal stream i stands for: a new descriptor on it (the caller
 * closes it), or -1 with errno set when it cannot be reached.
 */
static int
shim_tty_of(int i)
{
	char		 path[32];
	struct jw	 w;
	long		 want = shim_state.ttydev[i];
	unsigned int	 maj;
	int		 t;

	if ((t = shim_tty_try("/dev/tty", want)) != -1)
		return (t);
	/* No controlling terminal, or another one: name the device. */
	maj = major((dev_t)want);
	if (want != 0 && maj >= SHIM_PTS_MAJOR_FIRST &&
	    maj <= SHIM_PTS_MAJOR_LAST) {
		jw_init(&w, path, sizeof path);
		jw_lit(&w, "/dev/pts/");
		jw_int(&w, (long long)(maj - SHIM_PTS_MAJOR_FIRST) * 256 +
		    minor((dev_t)want));
		if (!w.overflow && (t = shim_tty_try(path, want)) != -1)
			return (t);
	}
	errno = EIO;
	return (-1);
}

/*
 * The terminal that fd stands for: a new descriptor on it (the caller
 * closes it), SHIM_TTY_SELF when fd is not a managed terminal stream (ask
 * fd itself), or -1 with errno set when the terminal cannot be reached.
 */
#define SHIM_TTY_SELF	(-2)
static int
shim_tty_open(int fd)
{
	int	i;

	if ((i = shim_managed_stream(fd)) == -1 || !shim_state.tty[i])
		return (SHIM_TTY_SELF);
	return (shim_tty_of(i));
}

/*
 * Whether fd is itself the terminal a managed stream stands for: a
 * program that changes the modes through stdin or /dev/tty (less, vim),
 * whose output before the change the collector must pass in the old
 * modes (shim_drain first).
 */
static int
shim_our_tty(int fd)
{
	struct stat	sb;
	int		i;

	if (!shim_state.active || shim_fstat(fd, &sb) != 0 ||
	    !S_ISCHR(sb.st_mode) || !shim_raw_isatty(fd))
		return (0);
	for (i = 0; i < 2; i++) {
		if (shim_state.managed[i] && shim_state.tty[i] &&
		    (shim_state.ttydev[i] == 0 ||
		    shim_state.ttydev[i] == shim_ttydev(&sb)))
			return (1);
	}
	return (0);
}

/* Finish a forwarded call: close the terminal, keep the call's errno. */
static int
shim_tty_done(int t, int rc)
{
	int	saved = errno;

	close(t);
	errno = saved;
	return (rc);
}

/*
 * Whether an ioctl request asks the terminal (and so is forwarded): the
 * 'T' requests, except the ones that apply to any file (on the pipe).
 */
static int
shim_tty_request(unsigned long request)
{
	switch (request) {
	case FIONBIO:
	case FIOASYNC:
	case FIOCLEX:
	case FIONCLEX:
	case FIONREAD:
	case FIOQSIZE:
		return (0);
	default:
		return (_IOC_TYPE(request) == 'T');
	}
}

/* Whether a request changes how the terminal treats output to come. */
static int
shim_tty_changes(unsigned long request)
{
	/* TCSETS[WF], TCSETA[WF], TCSETS[WF]2 (asm-generic/ioctls.h). */
	switch (_IOC_NR(request)) {
	case 0x02: case 0x03: case 0x04:
	case 0x06: case 0x07: case 0x08:
	case 0x2b: case 0x2c: case 0x2d:
		return (_IOC_TYPE(request) == 'T');
	default:
		return (0);
	}
}

/*
 * The window size of the terminal a managed stream stands for, less the
 * columns the console's prefix takes there ("[rank 3] "), so that a bar
 * drawn to the width fits on the console's line. Never below 20.
 */
static void
shim_narrow(int fd, void *arg)
{
	struct winsize	*ws = arg;
	int		 i = shim_managed_stream(fd);

	if (i == -1 || ws == NULL || shim_state.margin[i] <= 0 ||
	    ws->ws_col < shim_state.margin[i] + 20)
		return;
	ws->ws_col = (unsigned short)(ws->ws_col - shim_state.margin[i]);
}

/* isatty(3): a managed pipe answers as the original destination did. */
__attribute__((visibility("default"))) int
isatty(int fd)
{
	int	saved = errno, i;

	if ((i = shim_managed_stream(fd)) != -1) {
		if (shim_state.tty[i]) {
			errno = saved;
			return (1);
		}
		errno = ENOTTY;
		return (0);
	}
	errno = saved;
	if (shim_raw_isatty(fd)) {
		errno = saved;
		return (1);
	}
	return (0);	/* errno from TCGETS, as glibc's isatty leaves it */
}

/*
 * ioctl(2): a terminal request on a managed pipe whose original was a
 * terminal goes to that terminal. Everything else goes straight to the
 * kernel, a change of modes on that terminal after earlier output.
 */
__attribute__((visibility("default"))) int
ioctl(int fd, unsigned long request, ...)
{
	va_list	 ap;
	void	*arg;
	int	 t, rc;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (shim_state.active && shim_tty_request(request) &&
	    (t = shim_tty_open(fd)) != SHIM_TTY_SELF) {
		if (t == -1)
			return (-1);
		if (shim_tty_changes(request))
			(void)shim_drain();
		rc = (int)syscall(SYS_ioctl, t, request, arg);
		if (rc == 0 && request == TIOCGWINSZ)
			shim_narrow(fd, arg);
		return (shim_tty_done(t, rc));
	}
	/* Through another descriptor of our terminal: as tcsetattr. */
	if (shim_state.active && shim_tty_changes(request) &&
	    shim_our_tty(fd))
		(void)shim_drain();
	return ((int)syscall(SYS_ioctl, fd, request, arg));
}

/*
 * Forward a termios call: on the terminal a managed stream stands for,
 * else on fd itself. drain: wait for earlier output first.
 */
#define SHIM_FORWARD(fn, fd, drain, ...) do {				\
	int	t_;							\
	SHIM_REAL(fn, -1);							\
	if ((t_ = shim_tty_open(fd)) == SHIM_TTY_SELF) {		\
		if (drain && shim_our_tty(fd))				\
			(void)shim_drain();				\
		return (real_##fn(fd, ##__VA_ARGS__));			\
	}								\
	if (t_ == -1)							\
		return (-1);						\
	if (drain)							\
		(void)shim_drain();					\
	return (shim_tty_done(t_, real_##fn(t_, ##__VA_ARGS__)));	\
} while (0)

__attribute__((visibility("default"))) int
tcgetattr(int fd, struct termios *tio)
{
	SHIM_FORWARD(tcgetattr, fd, 0, tio);
}

__attribute__((visibility("default"))) int
tcsetattr(int fd, int action, const struct termios *tio)
{
	SHIM_FORWARD(tcsetattr, fd, 1, action, tio);
}

__attribute__((visibility("default"))) int
tcdrain(int fd)
{
	SHIM_FORWARD(tcdrain, fd, 1);
}

__attribute__((visibility("default"))) int
tcflush(int fd, int queue)
{
	SHIM_FORWARD(tcflush, fd, 0, queue);
}

__attribute__((visibility("default"))) int
tcflow(int fd, int action)
{
	SHIM_FORWARD(tcflow, fd, 0, action);
}

__attribute__((visibility("default"))) int
tcsendbreak(int fd, int duration)
{
	SHIM_FORWARD(tcsendbreak, fd, 1, duration);
}

__attribute__((visibility("default"))) pid_t
tcgetpgrp(int fd)
{
	SHIM_FORWARD(tcgetpgrp, fd, 0);
}

__attribute__((visibility("default"))) int
tcsetpgrp(int fd, pid_t pgrp)
{
	SHIM_FORWARD(tcsetpgrp, fd, 0, pgrp);
}

__attribute__((visibility("default"))) pid_t
tcgetsid(int fd)
{
	SHIM_FORWARD(tcgetsid, fd, 0);
}

__attribute__((visibility("default"))) int
ttyname_r(int fd, char *buf, size_t len)
{
	int	t, rc;

	SHIM_REAL(ttyname_r, ENOSYS);
	if ((t = shim_tty_open(fd)) == SHIM_TTY_SELF)
		return (real_ttyname_r(fd, buf, len));
	if (t == -1)
		return (errno);
	rc = real_ttyname_r(t, buf, len);
	close(t);
	return (rc);
}

/*
 * For a read or poll of fd: the terminal it stands for (a new descriptor,
 * blocking when fd is and the caller reads), SHIM_TTY_SELF when fd is no
 * managed terminal stream, or -1. Only fds 1 and 2 are asked about (with
 * an fstat), so any other read costs two comparisons; errno is kept.
 */
static int
shim_tty_input(int fd, int reads)
{
	int	saved = errno, t, fl;

	if ((fd != 1 && fd != 2) || !shim_state.active)
		return (SHIM_TTY_SELF);
	if ((t = shim_tty_open(fd)) >= 0 && reads &&
	    (fl = fcntl(fd, F_GETFL)) != -1 && !(fl & O_NONBLOCK))
		(void)fcntl(t, F_SETFL, 0);
	if (t != -1)
		errno = saved;
	return (t);
}

/*
 * read(2): a managed stream whose original was a terminal reads that
 * terminal, as the original descriptor (opened for reading and writing)
 * did. util-linux more(1) takes its keys from stderr.
 */
__attribute__((visibility("default"))) ssize_t
read(int fd, void *buf, size_t len)
{
	ssize_t	rc;
	int	saved = errno, t;

	if ((t = shim_tty_input(fd, 1)) == SHIM_TTY_SELF)
		return (__read(fd, buf, len));
	if (t == -1)
		return (-1);
	rc = __read(t, buf, len);
	saved = rc < 0 ? errno : saved;
	close(t);
	errno = saved;
	return (rc);
}

/* read(2) as programs built with _FORTIFY_SOURCE call it. */
__attribute__((visibility("default"))) ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		__chk_fail();
	return (read(fd, buf, len));
}

/*
 * poll(2): an entry asking for input on a managed stream whose original
 * was a terminal polls that terminal (more(1) polls stdin and stderr for
 * its keys), up to SHIM_POLL_AT such entries. ppoll(2), pselect(2) and
 * epoll are not redirected.
 */
#define SHIM_POLL_AT	8
__attribute__((visibility("default"))) int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	int	t[3] = { SHIM_TTY_SELF, SHIM_TTY_SELF, SHIM_TTY_SELF };
	int	saved = errno, rc, fd, asked = 0;
	nfds_t	i, at[SHIM_POLL_AT];
	size_t	nat = 0, k;

	for (i = 0; shim_state.active && i < n && nat < SHIM_POLL_AT; i++) {
		if (((fd = fds[i].fd) != 1 && fd != 2) ||
		    !(fds[i].events & POLLIN))
			continue;
		if (!(asked & fd)) {	/* a bit each: 1 and 2 */
			asked |= fd;
			t[fd] = shim_tty_input(fd, 0);
		}
		if (t[fd] >= 0) {
			fds[i].fd = t[fd];
			at[nat++] = i;
		}
	}
	if (!asked)
		return (__poll(fds, n, timeout));
	rc = __poll(fds, n, timeout);
	saved = rc >= 0 ? saved : errno;
	for (k = 0; k < nat; k++)
		fds[at[k]].fd = fds[at[k]].fd == t[1] ? 1 : 2;
	for (fd = 1; fd <= 2; fd++) {
		if (t[fd] >= 0)
			close(t[fd]);
	}
	errno = saved;
	return (rc);
}

/* poll(2) as programs built with _FORTIFY_SOURCE call it. */
__attribute__((visibility("default"))) int
__poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (fdslen / sizeof *fds < n)
		__chk_fail();
	return (poll(fds, n, timeout));
}

/*
 * select(2): descriptor 1 or 2 in the read set (and in the exception set),
 * a managed stream whose original was a terminal, is the terminal there
 * (vim reading a pipe, cmd | vim -, takes its keys from stderr with
 * select). The terminal's descriptor goes in its place when it falls in
 * the words of the sets that n implies, which the caller surely has.
 */
__attribute__((visibility("default"))) int
select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	int	t[3] = { SHIM_TTY_SELF, SHIM_TTY_SELF, SHIM_TTY_SELF };
	int	saved = errno, rc, fd, m = n, room;

	if (!shim_state.active || r == NULL || n < 2 ||
	    (!FD_ISSET(1, r) && (n < 3 || !FD_ISSET(2, r))))
		return (__select(n, r, w, e, tv));
	room = (n + NFDBITS - 1) / NFDBITS * NFDBITS;
	for (fd = 1; fd <= 2 && fd < n; fd++) {
		if (!FD_ISSET(fd, r) || (t[fd] = shim_tty_input(fd, 0)) < 0)
			continue;
		if (t[fd] >= room || t[fd] >= FD_SETSIZE) {
			close(t[fd]);
			t[fd] = SHIM_TTY_SELF;
			continue;
		}
		FD_CLR(fd, r);
		FD_SET(t[fd], r);
		if (e != NULL && FD_ISSET(fd, e)) {
			FD_CLR(fd, e);
			FD_SET(t[fd], e);
		}
		if (t[fd] >= m)
			m = t[fd] + 1;
	}
	rc = __select(m, r, w, e, tv);
	saved = rc >= 0 ? saved : errno;
	for (fd = 1; fd <= 2; fd++) {
		if (t[fd] < 0)
			continue;
		/* Ready, or (on an error) as the caller gave it. */
		if (rc < 0 || FD_ISSET(t[fd], r)) {
			FD_CLR(t[fd], r);
			FD_SET(fd, r);
		}
		if (e != NULL && (rc < 0 || FD_ISSET(t[fd], e))) {
			FD_CLR(t[fd], e);
			FD_SET(fd, e);
		}
		close(t[fd]);
	}
	errno = saved;
	return (rc);
}

/* ttyname(3): the terminal's name, in a buffer of ours (as glibc's). */
__attribute__((visibility("default"))) char *
ttyname(int fd)
{
	static char	name[4096];
	int		rc;

	if ((rc = ttyname_r(fd, name, sizeof name)) != 0) {
		errno = rc;
		return (NULL);
	}
	return (name);
}

/*
 * fstat(2) of a managed pipe whose original was a terminal answers as that
 * terminal: a program that tells a terminal by its file type (GNU grep's
 * --color=auto) sees one, as isatty(3) does. The terminal's own answer,
 * or, when it cannot be reached, the pipe's.
 */
static int
shim_fstat_as(int fd, struct stat *sb)
{
	struct stat	tsb;
	int		saved = errno, i, t;

	if (shim_fstat(fd, sb) != 0)
		return (-1);
	if ((i = shim_managed_stat(sb)) == -1 || !shim_state.tty[i] ||
	    (t = shim_tty_of(i)) < 0) {
		errno = saved;
		return (0);
	}
	if (shim_fstat(t, &tsb) == 0)
		*sb = tsb;
	close(t);
	errno = saved;
	return (0);
}

__attribute__((visibility("default"))) int
fstat(int fd, struct stat *sb)
{
	return (shim_fstat_as(fd, sb));
}

#if defined(__x86_64__)
/*
 * On x86-64, struct stat64 is struct stat; programs built before glibc
 * 2.33 (conda's Python) call __fxstat64 with version 1, as they call
 * fstat now. (What else calls fstat through fstatat or statx is not
 * answered for: libc's own stdio, Rust's std.)
 */
_Static_assert(sizeof(struct stat64) == sizeof(struct stat),
    "struct stat64 is struct stat");

__attribute__((visibility("default"))) int
fstat64(int fd, struct stat64 *sb)
{
	return (shim_fstat_as(fd, (struct stat *)sb));
}

__attribute__((visibility("default"))) int
__fxstat(int ver, int fd, struct stat *sb)
{
	if (ver != 0 && ver != 1) {
		errno = EINVAL;
		return (-1);
	}
	return (shim_fstat_as(fd, sb));
}

__attribute__((visibility("default"))) int
__fxstat64(int ver, int fd, struct stat64 *sb)
{
	return (__fxstat(ver, fd, (struct stat *)sb));
}
#endif
