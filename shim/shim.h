/*
 * libmeshlog_preload.so: takes over fds 1 and 2 of every process it is
 * loaded into and hands them to the collector. Internal header; nothing
 * here is exported from the library.
 */
#ifndef MESHLOG_SHIM_H
#define MESHLOG_SHIM_H

#include <time.h>

struct stat;

#define SHIM_HIDDEN	__attribute__((visibility("hidden")))

/*
 * libc's own fn, resolved at the first call (dlfcn.h, errno.h); failing
 * that, the call fails with ENOSYS (it returns fail).
 */
#define SHIM_REAL(fn, fail)						\
	static __typeof__(fn) *real_##fn;				\
	if (real_##fn == NULL &&					\
	    (real_##fn = (__typeof__(fn) *)dlsym(RTLD_NEXT, #fn)) == NULL) { \
		errno = ENOSYS;						\
		return (fail);						\
	}

/* What the constructor left in place; all zero until it ran. */
struct shim_state {
	int			active;		/* a stream is ours */
	int			managed[2];	/* per stream */
	unsigned long long	dev[2];
	unsigned long long	ino[2];
	int			tty[2];		/* original was a terminal */
	long			ttydev[2];	/* its st_rdev, 0 unknown */
	int			file[2];	/* original was a regular file */
	int			linebuf;	/* stdout is a log: line-buffer */
	int			runtime;	/* the hello asked for SIGURG */
	int			margin[2];	/* columns the console's prefix
						 * takes on this stream */
};

extern struct shim_state shim_state SHIM_HIDDEN;

/* register.c */

/* What shim_register returns when no collector is on the socket. */
#define SHIM_ABSENT	(-2)
/*
 * Register this process with the collector and take over fds 1/2. Returns
 * 0 when the streams are now the collector's; otherwise the host is
 * untouched, *why set to a static reason, and the result is SHIM_ABSENT
 * when no collector is there (none listens on the socket), else -1.
 */
int	shim_register(char **argv, char **envp, const char **why)
	    SHIM_HIDDEN;

/*
 * Whether stdbuf(1) set this program's stdout buffering (-o): its library
 * is preloaded with ours and _STDBUF_O says what it asked. That request,
 * made for this command, outranks meshlog's line buffering.
 */
int	shim_stdbuf(char **envp) SHIM_HIDDEN;

/*
 * clock_gettime(2) from the kernel itself, for the shim's few readings:
 * the vDSO's is faster per call, but its first call faults in two pages
 * (10-25 us each on a VM) in a process that may never read the clock.
 */
void	shim_clock(clockid_t clock, struct timespec *ts) SHIM_HIDDEN;
/* Milliseconds on the monotonic clock, read with shim_clock. */
long long shim_now_ms(void) SHIM_HIDDEN;
/*
 * When a wait for the collector that starts now ends (monotonic ms): after
 * MESHLOG_TIMEOUT_MS (default 3000), or cap ms if cap > 0 and shorter.
 */
long long shim_deadline(char **envp, long cap) SHIM_HIDDEN;
/*
 * Wait until the collector has written what this process wrote to its
 * original destinations, at most MESHLOG_TIMEOUT_MS (capped at 2 s).
 * Returns 0 when it answered, -1 otherwise; the host is never affected.
 */
int	shim_drain(void) SHIM_HIDDEN;
/* The same for n pipes given by device and inode. */
int	shim_drain_pipes(const unsigned long long *dev,
	    const unsigned long long *ino, int n) SHIM_HIDDEN;
/*
 * Ask the collector to write what came before on the pipe (dev, ino) and
 * sync its original file, fdatasync(2) when data is set, else fsync(2):
 * 0, or the errno the sync failed with (EIO when it did not answer).
 */
int	shim_sync_pipe(unsigned long long dev, unsigned long long ino,
	    int data) SHIM_HIDDEN;
/*
 * A connection to the collector at path if it accepts at once and is
 * trusted (shim_register's rules); the socket, or -1. Syscalls only.
 */
int	shim_dial(const char *path) SHIM_HIDDEN;

/*
 * Whether this process is a Python interpreter (Py_Initialize resolves),
 * looked up once.
 */
int	shim_is_python(void) SHIM_HIDDEN;
/*
 * The level runtime this process runs, for its hello: "python" when it is
 * a Python interpreter that will run meshlog's hook with SIGURG free, NULL
 * otherwise.
 */
const char *shim_runtime(char **envp) SHIM_HIDDEN;
/*
 * Tell the collector that runtime (NULL: none) now handles level signals
 * in this process. 0 when it answered, -1 otherwise.
 */
int	shim_runtime_say(const char *runtime) SHIM_HIDDEN;
/*
 * After an exec in the same pid, tell the collector the program that now
 * runs (argv, unless NULL), and with say_runtime the runtime that now
 * handles level signals, as shim_runtime_say, waiting for the answer;
 * otherwise without waiting. 0 when said, -1 otherwise.
 */
int	shim_exec_say(char **argv, int say_runtime, const char *runtime)
	    SHIM_HIDDEN;

/* fork.c */

/*
 * Give forked children pipes of their own from now on, registering them
 * with the collector at path (see fork.c), unless MESHLOG_FORK=0.
 */
void	shim_fork_setup(char **envp, const char *path) SHIM_HIDDEN;

/* relay.c */

/*
 * With MESHLOG_UPSTREAM set, make sure a relay collector serves sockpath:
 * start one unless another process did, and wait for it until deadline
 * (monotonic ms). Returns 0 when one answers, -1 (*why set) otherwise.
 */
int	shim_start_relay(char **envp, const char *sockpath,
	    long long deadline, const char **why) SHIM_HIDDEN;

/* tty.c */

/* Whether fd is a terminal, by TCGETS, without libc's isatty. */
int	shim_raw_isatty(int fd) SHIM_HIDDEN;
/*
 * fstat(2) from the kernel, not through the library's own fstat (which
 * answers for a terminal a stream stands for): what the shim itself
 * asks, to know its pipes.
 */
int	shim_fstat(int fd, struct stat *sb) SHIM_HIDDEN;
/* Stream index (0, 1) whose managed pipe fd is, or -1. */
int	shim_managed_stream(int fd) SHIM_HIDDEN;
/* The same for what fstat(2) said of it. */
int	shim_managed_stat(const struct stat *sb) SHIM_HIDDEN;
/* A terminal's device number as MESHLOG_OWNER carries it (0: none). */
long	shim_ttydev(const struct stat *sb) SHIM_HIDDEN;

/* init.c */

/*
 * A small file (/proc, a level file) into buf, NUL-terminated: its length,
 * or -1 when it cannot be read or is empty.
 */
ssize_t	shim_read_small(const char *path, char *buf, size_t cap) SHIM_HIDDEN;

#endif
