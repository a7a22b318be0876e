/*
 * Registration: connect to the collector, send hello, and only once the
 * collector has accepted it send the pipe read ends and the original fds
 * 1/2; wait for welcome, then put the pipes' write ends on 1/2. A collector
 * that is stopped or saturated therefore never holds the original fds (and
 * with them a reader's EOF) in an unread message. Only syscalls and stack
 * buffers until the takeover is done; every failure leaves the host as it
 * was.
 */

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "shim.h"

/* kcmp(2) type comparing open file descriptions (linux/kcmp.h). */
#define SHIM_KCMP_FILE		0

extern char **environ;

/*
 * The long messages (a hello, an exec), built here: static, not on the
 * stack, as only the constructor sends them, and a deep frame would put
 * every callee on pages no one touched yet.
 */
static char	shim_msg[MESHLOG_MSG_MAX];

/* Default wait for the collector: connect plus welcome, in ms. */
#define SHIM_TIMEOUT_MS		3000
/* Longest wait at exit for the collector to write this process's output. */
#define SHIM_DRAIN_MS		2000
/* Pipe capacity asked for; the kernel may give less. */
#define SHIM_PIPE_SIZE		(256 * 1024)

/* Everything one registration creates, to undo on failure. */
struct shim_reg {
	int	sock;
	int	pipe[2][2];	/* [stream][read, write] */
	int	capture[2];
	int	merged;		/* 1 and 2 share one open file: one pipe */
	int	tty_shared;	/* ... that file a terminal, if accepted */
	long long tty_at[2];	/* that terminal's st_dev, st_ino */
	int	tty[2];
	long	ttydev[2];	/* that terminal's device, 0 unknown */
	int	file[2];	/* the original is a regular file */
	int	program[2];	/* the original is a pipe or socket to a program */
	int	linebuf;	/* line-buffer stdout (shim_linebuf) */
	int	buffering_asked; /* MESHLOG_BUFFERING decided */
	const char *runtime;	/* shim_runtime */
	char	answer[512];	/* the collector's last message */
	char	path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/*
 * Whether the peer of sock is a collector this process may trust with its
 * descriptors: one running as its own user or as root. Whoever else
 * listens on the path gets nothing.
 */
static int
shim_trusted(int sock, const char **why)
{
	struct ucred	cred;
	socklen_t	len = sizeof cred;

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		*why = "cannot tell who the collector is";
		return (-1);
	}
	if (cred.uid != getuid() && cred.uid != geteuid() && cred.uid != 0) {
		*why = "the collector socket belongs to another user";
		return (-1);
	}
	return (0);
}

/* Connect r->sock to r->path before deadline: 0, or SHIM_ABSENT (nothing
 * listens there) or -1, with *why set. */
static int
shim_connect(struct shim_reg *r, long long deadline, const char **why)
{
	struct sockaddr_un	sun;
	struct pollfd		pfd;
	struct timespec		pause = { 0, 10 * 1000 * 1000 };
	int			rc, err;
	socklen_t		len = sizeof err;
	long long		left;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, r->path, strlen(r->path));
	r->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (r->sock == -1) {
		*why = "cannot create a socket";
		return (-1);
	}
	for (;;) {
		rc = connect(r->sock, (struct sockaddr *)&sun, sizeof sun);
		if (rc == 0)
			return (shim_trusted(r->sock, why));
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && shim_now_ms() < deadline) {
			/* The listen backlog is full: the collector is busy. */
			nanosleep(&pause, NULL);
			continue;
		}
		if (errno != EINPROGRESS)
			break;
		pfd.fd = r->sock;
		pfd.events = POLLOUT;
		left = deadline - shim_now_ms();
		if (poll(&pfd, 1, left > 0 ? (int)left : 0) != 1)
			errno = ETIMEDOUT;
		else if (getsockopt(r->sock, SOL_SOCKET, SO_ERROR, &err,
		    &len) == 0 && err == 0)
			return (shim_trusted(r->sock, why));
		else
			errno = err;
		break;
	}
	switch (errno) {
	case ENOENT:
		*why = "no collector socket";
		return (SHIM_ABSENT);
	case ECONNREFUSED:
		*why = "no collector listening on the socket";
		return (SHIM_ABSENT);
	case EACCES:
	case EPERM:
		*why = "permission denied on the collector socket";
		break;
	case ETIMEDOUT:
	case EAGAIN:
		*why = "the collector did not accept in time";
		break;
	default:
		*why = "cannot connect to the collector";
		break;
	}
	return (-1);
}

/*
 * Decide which streams to capture and whether each original is a terminal.
 * An original that is an inherited managed pipe answers as its owner's did.
 */
static void
shim_probe_streams(char **envp, struct shim_reg *r)
{
	struct ident_streams	 st;
	struct stat		 sb;
	long			 pid, bits = 0, tty[2];
	int			 i, k, marked, node = -1, *kind;

	marked = ident_parse_streams(ident_env(envp, MESHLOG_ENV_STREAM),
	    &st) == 0 && ident_parse_owner(ident_env(envp, MESHLOG_ENV_OWNER),
	    &pid, &bits, tty) == 0;
	for (i = 0; i < 2; i++) {
		r->capture[i] = shim_fstat(i + 1, &sb) == 0;
		/*
		 * Node.js writes a regular file synchronously but a pipe
		 * asynchronously, and process.exit() drops what is still
		 * queued: its file stays a file, uncaptured, rather than lose
		 * data. Asked only where a stream is a file.
		 */
		if (r->capture[i] && S_ISREG(sb.st_mode)) {
			if (node == -1)
				node = elfsym_loaded("napi_module_register");
			r->capture[i] = !node;
		}
		r->tty[i] = 0;
		r->ttydev[i] = 0;
		r->file[i] = 0;
		r->program[i] = 0;
		if (!r->capture[i])
			continue;
		if (!S_ISFIFO(sb.st_mode)) {
			r->tty[i] = shim_raw_isatty(i + 1);
			if (r->tty[i])
				r->ttydev[i] = shim_ttydev(&sb);
			r->file[i] = S_ISREG(sb.st_mode);
			r->program[i] = S_ISSOCK(sb.st_mode);
			continue;
		}
		r->program[i] = 1;	/* unless it is an ancestor's capture */
		for (k = 0; marked && k < 2; k++) {
			if (st.present[k] &&
			    (unsigned long long)sb.st_dev == st.dev[k] &&
			    (unsigned long long)sb.st_ino == st.ino[k]) {
				r->tty[i] = (bits >> k) & 1;
				r->ttydev[i] = tty[k];
				r->file[i] = (bits >> (k + 2)) & 1;
				r->program[i] = 0;
			}
		}
	}
	/*
	 * `> f 2>&1`, `2>&1 | cmd`: writes to 1 and 2 land in one file in
	 * the program's order. One pipe for both keeps that order. Where
	 * order cannot be observed (/dev/null) the streams stay apart, so
	 * the log still says which is stderr; so they do without kcmp
	 * (seccomp, old kernels).
	 */
	/*
	 * A terminal shows the order too, unless the collector's console
	 * view replaces what reaches it: the collector decides (accept).
	 */
	if (!r->capture[0] || !r->capture[1] || shim_fstat(1, &sb) != 0)
		return;
	if (S_ISREG(sb.st_mode) || S_ISFIFO(sb.st_mode) ||
	    S_ISSOCK(sb.st_mode))
		kind = &r->merged;
	else if (S_ISCHR(sb.st_mode) && r->tty[0] && r->tty[1])
		kind = &r->tty_shared;
	else
		return;
	*kind = syscall(SYS_kcmp, (long)getpid(), (long)getpid(),
	    SHIM_KCMP_FILE, 1L, 2L) == 0;
	r->tty_at[0] = (long long)sb.st_dev;
	r->tty_at[1] = (long long)sb.st_ino;
}

int
shim_stdbuf(char **envp)
{
	const char	*preload = ident_env(envp, "LD_PRELOAD");

	return (ident_env(envp, "_STDBUF_O") != NULL && preload != NULL &&
	    strstr(preload, "libstdbuf") != NULL);
}

/*
 * Whether stdout is a log, to be line-buffered so that its lines are not
 * lost with the process: a terminal, a file, /dev/null (the JSON log is
 * then the only copy), an ancestor's capture pipe (part of a job's log).
 * A pipe or socket to another program carries that program's data and
 * keeps the program's own buffering, unless the collector answers that it
 * passes the output nowhere raw. MESHLOG_BUFFERING=line or keep decides
 * for every destination; stdbuf -o (shim_stdbuf) before either.
 */
static int
shim_linebuf(char **envp, struct shim_reg *r)
{
	const char	*mode = ident_env(envp, "MESHLOG_BUFFERING");

	if (shim_stdbuf(envp))
		mode = "keep";
	r->buffering_asked = mode != NULL && (strcmp(mode, "keep") == 0 ||
	    strcmp(mode, "line") == 0);
	if (!r->capture[0] || (mode != NULL && strcmp(mode, "keep") == 0))
		return (0);
	if (mode != NULL && strcmp(mode, "line") == 0)
		return (1);
	return (!r->program[0]);
}

/* A hello's integer field, unless it is unknown (-1: null). */
static void
shim_hello_int(struct jw *w, const char *field, long long v)
{
	if (v < 0)
		return;
	jw_lit(w, field);
	jw_int(w, v);
}

/* ,"argv":[...] of at most MESHLOG_ARGV_MAX bytes of argv into w. */
static void
shim_argv(struct jw *w, char **argv)
{
	size_t	used = 0, n;
	int	i, cut = 0;

	jw_lit(w, ",\"argv\":[");
	for (i = 0; argv != NULL && argv[i] != NULL; i++) {
		n = strlen(argv[i]);
		if (used + n > MESHLOG_ARGV_MAX) {
			cut = 1;
			break;
		}
		used += n;
		if (i > 0)
			jw_lit(w, ",");
		jw_str(w, argv[i], n);
	}
	jw_lit(w, cut ? "],\"argv_truncated\":true" : "]");
}

/* Write the hello message for r into w. */
static void
shim_hello(struct jw *w, struct shim_reg *r, char **argv, char **envp)
{
	static const char *const names[2] = { "stdout", "stderr" };
	struct ident_rank	 rk;
	struct utsname		 u;
	struct timespec		 now;
	int			 i, first = 1;

	ident_ranks(envp, &rk);
	shim_clock(CLOCK_REALTIME, &now);
	if (uname(&u) != 0)
		memcpy(u.nodename, "unknown", sizeof "unknown");
	jw_lit(w, "{\"type\":\"hello\",\"proto\":");
	jw_int(w, MESHLOG_PROTO);
	jw_lit(w, ",\"pid\":");
	jw_int(w, getpid());
	jw_lit(w, ",\"ppid\":");
	jw_int(w, getppid());
	jw_lit(w, ",\"uid\":");
	jw_int(w, getuid());
	jw_lit(w, ",\"host\":");
	jw_str(w, u.nodename, strnlen(u.nodename, sizeof u.nodename));
	jw_lit(w, ",\"start_us\":");
	jw_int(w, (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000);
	shim_argv(w, argv);
	/*
	 * What is absent is null, false or "line": the collector parses
	 * every byte of this, so a short hello is a cheap registration.
	 */
	shim_hello_int(w, ",\"rank\":", rk.rank);
	shim_hello_int(w, ",\"local_rank\":", rk.local_rank);
	shim_hello_int(w, ",\"world_size\":", rk.world_size);
	if (rk.rank_var != NULL) {
		jw_lit(w, ",\"rank_var\":");
		jw_str(w, rk.rank_var, strlen(rk.rank_var));
	}
	if (ident_env(envp, MESHLOG_ENV_OWNER) != NULL)
		jw_lit(w, ",\"nested\":true");
	if (r->runtime != NULL) {
		jw_lit(w, ",\"runtime\":\"");
		jw_lit(w, r->runtime);
		jw_lit(w, "\"");
	}
	if (!r->linebuf)
		jw_lit(w, r->buffering_asked ? ",\"buffering\":\"keep\"" :
		    ",\"buffering\":\"program\"");
	if (r->tty_shared) {
		jw_lit(w, ",\"tty_shared\":[");
		jw_int(w, r->tty_at[0]);
		jw_lit(w, ",");
		jw_int(w, r->tty_at[1]);
		jw_lit(w, "]");
	}
	jw_lit(w, ",\"streams\":[");
	for (i = 0; i < (r->merged ? 1 : 2); i++) {
		if (!r->capture[i])
			continue;
		jw_lit(w, first ? "{\"name\":\"" : ",{\"name\":\"");
		first = 0;
		jw_lit(w, names[i]);
		jw_lit(w, "\"");
		if (r->tty[i])
			jw_lit(w, ",\"tty\":true");
		jw_lit(w, r->merged ? ",\"merged\":true}" : "}");
	}
	jw_lit(w, "]}\n");
}

/*
 * Wait for one line of answer that starts with prefix, before deadline;
 * 0, or -1 with *why set.
 */
static int
shim_expect(struct shim_reg *r, long long deadline, const char *prefix,
    const char **why)
{
	char		 buf[512];
	size_t		 have = 0;
	struct pollfd	 pfd;
	ssize_t		 n;
	long long	 left;

	while (memchr(buf, '\n', have) == NULL) {
		left = deadline - shim_now_ms();
		pfd.fd = r->sock;
		pfd.events = POLLIN;
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			*why = "the collector did not answer in time";
			return (-1);
		}
		n = read(r->sock, buf + have, sizeof buf - 1 - have);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0 || (have += (size_t)n) == sizeof buf - 1) {
			*why = "the collector closed the connection";
			return (-1);
		}
	}
	buf[have] = '\0';
	memcpy(r->answer, buf, have + 1);
	if (have < strlen(prefix) || memcmp(buf, prefix, strlen(prefix)) != 0) {
		*why = "the collector refused this process";
		return (-1);
	}
	return (0);
}

/*
 * A pipe the probe took for another program's may be a capture pipe all
 * the same: a forked child's, which MESHLOG_STREAM does not name. The
 * welcome says which stream of the owner each original is ("inherit":
 * "0", "1" or "-" per stream); such a stream answers as the owner's did.
 */
static void
shim_inherit(struct shim_reg *r, char **envp)
{
	const char	*p = strstr(r->answer, "\"inherit\":\"");
	long		 pid, bits, tty[2];
	int		 i, k;
	char		 c;

	if (p == NULL || ident_parse_owner(ident_env(envp, MESHLOG_ENV_OWNER),
	    &pid, &bits, tty) != 0)
		return;
	p += sizeof "\"inherit\":\"" - 1;
	for (i = 0; i < 2 && p[i] != '\0' && p[i] != '"'; i++) {
		/* `2>&1`: one pipe, answered for as stdout. */
		c = r->merged ? p[0] : p[i];
		if (!r->capture[i] || !r->program[i] || (c != '0' && c != '1'))
			continue;
		k = c - '0';
		r->program[i] = 0;
		r->tty[i] = (bits >> k) & 1;
		r->ttydev[i] = tty[k];
		r->file[i] = (bits >> (k + 2)) & 1;
	}
}

/*
 * The welcome's "margin":[out,err]: columns the collector's console puts
 * before each line of a stream it shows instead of the raw bytes. A
 * program asking its terminal's width is told that much less.
 */
static void
shim_margin(const char *answer)
{
	const char	*p = strstr(answer, "\"margin\":[");
	int		 i, v;

	if (p == NULL)
		return;
	p += sizeof "\"margin\":[" - 1;
	for (i = 0; i < 2; i++) {
		for (v = 0; *p >= '0' && *p <= '9' && v < 1000; p++)
			v = v * 10 + (*p - '0');
		shim_state.margin[i] = v < 1000 ? v : 0;
		if (*p++ != (i == 0 ? ',' : ']'))
			return;
	}
}

/* A registration that holds nothing yet. */
static void
shim_reg_init(struct shim_reg *r)
{
	memset(r, 0, sizeof *r);
	r->sock = -1;
	memset(r->pipe, -1, sizeof r->pipe);
}

/* Close every descriptor r still holds. */
static void
shim_reg_close(struct shim_reg *r)
{
	int	i, j;

	if (r->sock != -1)
		close(r->sock);
	for (i = 0; i < 2; i++) {
		for (j = 0; j < 2; j++) {
			if (r->pipe[i][j] != -1)
				close(r->pipe[i][j]);
		}
	}
}

void
shim_clock(clockid_t clock, struct timespec *ts)
{
	if (syscall(SYS_clock_gettime, clock, ts) != 0)
		clock_gettime(clock, ts);
}

long long
shim_now_ms(void)
{
	struct timespec	ts;

	shim_clock(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

long long
shim_deadline(char **envp, long cap)
{
	long	ms;

	if (ident_parse_uint(ident_env(envp, "MESHLOG_TIMEOUT_MS"), &ms) != 0)
		ms = SHIM_TIMEOUT_MS;
	if (cap > 0 && ms > cap)
		ms = cap;
	return (shim_now_ms() + ms);
}

int
shim_register(char **argv, char **envp, const char **why)
{
	char		*msg = shim_msg;
	struct shim_reg	 r;
	struct jw	 w;
	struct stat	 sb;
	int		 fds[MESHLOG_HELLO_FDS], nfds = 0, i, k, rc = -1;
	long long	 deadline;
	ssize_t		 n;

	shim_reg_init(&r);
	*why = NULL;
	shim_probe_streams(envp, &r);
	r.linebuf = shim_linebuf(envp, &r);
	r.runtime = shim_runtime(envp);
	if (!r.capture[0] && !r.capture[1])
		goto out;	/* nothing to capture, nothing to say */
	deadline = shim_deadline(envp, 0);
	if (ident_socket_path(envp, r.path, sizeof r.path) != 0) {
		*why = "socket path too long";
		goto out;
	}
	if ((k = shim_connect(&r, deadline, why)) != 0) {
		rc = k;
		goto out;
	}
	jw_init(&w, msg, sizeof shim_msg);
	shim_hello(&w, &r, argv, envp);
	if (w.overflow) {
		*why = "hello message too long";
		goto out;
	}
	/* First the hello alone: nothing of ours is held until accepted. */
	if (send(r.sock, msg, w.len, MSG_NOSIGNAL) != (ssize_t)w.len) {
		*why = "cannot send to the collector";
		goto out;
	}
	if (shim_expect(&r, deadline, "{\"type\":\"accept\"", why) != 0)
		goto out;
	if (r.tty_shared && strstr(r.answer, "\"merge\":true") != NULL)
		r.merged = 1;
	for (i = 0; i < (r.merged ? 1 : 2); i++) {
		if (!r.capture[i])
			continue;
		if (pipe2(r.pipe[i], O_CLOEXEC) != 0) {
			*why = "cannot create a pipe";
			goto out;
		}
		/* Best effort: a smaller pipe still works. */
		if (fcntl(r.pipe[i][1], F_SETPIPE_SZ, SHIM_PIPE_SIZE) == -1)
			(void)fcntl(r.pipe[i][1], F_SETPIPE_SZ, 65536);
		fds[nfds++] = r.pipe[i][0];
		fds[nfds++] = i + 1;
	}
	jw_init(&w, msg, sizeof shim_msg);
	jw_lit(&w, "{\"type\":\"streams\"}\n");
	n = fd_send(r.sock, msg, w.len, fds, nfds);
	if (n != (ssize_t)w.len) {
		*why = "cannot send to the collector";
		goto out;
	}
	if (shim_expect(&r, deadline, "{\"type\":\"welcome\"", why) != 0)
		goto out;
	/* The collector knows when stdout is its log only (shim_linebuf). */
	if (strstr(r.answer, "\"buffering\":\"line\"") != NULL)
		r.linebuf = 1;
	shim_inherit(&r, envp);
	shim_margin(r.answer);
	for (i = 0; i < 2; i++) {
		/* A merged stream's one pipe goes on both 1 and 2. */
		k = r.merged ? 0 : i;
		if (!r.capture[i])
			continue;
		/*
		 * A stream that cannot be installed stays as it was; its pipe
		 * closes with this function and the collector sees EOF.
		 */
		if (shim_fstat(r.pipe[k][1], &sb) != 0 ||
		    dup3(r.pipe[k][1], i + 1, 0) == -1)
			continue;
		shim_state.managed[i] = 1;
		shim_state.dev[i] = (unsigned long long)sb.st_dev;
		shim_state.ino[i] = (unsigned long long)sb.st_ino;
		shim_state.tty[i] = r.tty[i];
		shim_state.ttydev[i] = r.ttydev[i];
		shim_state.file[i] = r.file[i];
	}
	shim_state.linebuf = r.linebuf;
	shim_state.runtime = r.runtime != NULL;
	shim_state.active = shim_state.managed[0] || shim_state.managed[1];
	if (shim_state.active)
		rc = 0;
	else
		*why = "cannot install the pipes";
out:
	shim_reg_close(&r);
	return (rc);
}

/*
 * One request on a connection of its own, within the drain's deadline: 0
 * when the collector answered with a line starting with expect.
 */
static int
shim_ask(const char *msg, size_t len, const char *expect, char *answer,
    size_t cap)
{
	struct shim_reg	 r;
	const char	*why;
	long long	 deadline = shim_deadline(environ, SHIM_DRAIN_MS);
	size_t		 n;
	int		 rc = -1;

	shim_reg_init(&r);
	/* MSG_NOSIGNAL: a collector gone by now must not kill its host. */
	if (ident_socket_path(environ, r.path, sizeof r.path) == 0 &&
	    shim_connect(&r, deadline, &why) == 0 &&
	    send(r.sock, msg, len, MSG_NOSIGNAL) == (ssize_t)len &&
	    shim_expect(&r, deadline, expect, &why) == 0) {
		rc = 0;
		if (answer != NULL) {
			n = strlen(r.answer);
			n = n < cap ? n : cap - 1;
			memcpy(answer, r.answer, n);
			answer[n] = '\0';
		}
	}
	shim_reg_close(&r);
	return (rc);
}

int
shim_drain_pipes(const unsigned long long *dev, const unsigned long long *ino,
    int n)
{
	char		 msg[256];
	struct jw	 w;
	int		 i;

	if (n == 0)
		return (0);
	jw_init(&w, msg, sizeof msg);
	jw_lit(&w, "{\"type\":\"drain\",\"pipes\":[");
	for (i = 0; i < n; i++) {
		jw_lit(&w, i == 0 ? "[" : ",[");
		jw_int(&w, (long long)dev[i]);
		jw_lit(&w, ",");
		jw_int(&w, (long long)ino[i]);
		jw_lit(&w, "]");
	}
	jw_lit(&w, "]}\n");
	if (w.overflow)
		return (-1);
	return (shim_ask(msg, w.len, "{\"type\":\"drained\"", NULL, 0));
}

int
shim_drain(void)
{
	unsigned long long	dev[2], ino[2];
	int			i, n = 0;

	for (i = 0; i < 2; i++) {
		if (!shim_state.managed[i])
			continue;
		dev[n] = shim_state.dev[i];
		ino[n++] = shim_state.ino[i];
	}
	return (shim_drain_pipes(dev, ino, n));
}

int
shim_sync_pipe(unsigned long long dev, unsigned long long ino, int data)
{
	char		 msg[160], answer[160];
	const char	*p;
	struct jw	 w;
	long		 err = 0;

	jw_init(&w, msg, sizeof msg);
	jw_lit(&w, "{\"type\":\"drain\",\"pipes\":[[");
	jw_int(&w, (long long)dev);
	jw_lit(&w, ",");
	jw_int(&w, (long long)ino);
	jw_lit(&w, data ? "]],\"sync\":\"data\"}\n" :
	    "]],\"sync\":\"all\"}\n");
	if (w.overflow || shim_ask(msg, w.len, "{\"type\":\"drained\"",
	    answer, sizeof answer) != 0)
		return (EIO);
	/* The errno of the collector's sync; none: it did not sync. */
	if ((p = strstr(answer, "\"sync_errno\":")) == NULL)
		return (EIO);
	p += strlen("\"sync_errno\":");
	while (*p >= '0' && *p <= '9' && err < 10000)
		err = err * 10 + (*p++ - '0');
	return (err > 0 && err < 10000 ? (int)err : 0);
}

int
shim_dial(const char *path)
{
	struct shim_reg	 r;
	const char	*why;
	size_t		 len = strlen(path);

	shim_reg_init(&r);
	if (len == 0 || len >= sizeof r.path)
		return (-1);
	memcpy(r.path, path, len + 1);
	/* No waiting: a deadline already past. */
	if (shim_connect(&r, 0, &why) != 0) {
		shim_reg_close(&r);
		return (-1);
	}
	return (r.sock);
}

int
shim_is_python(void)
{
	static int	python = -1;

	if (python == -1)
		python = elfsym_loaded("Py_Initialize");
	return (python);
}

const char *
shim_runtime(char **envp)
{
	const char		*off = ident_env(envp, "MESHLOG_RUNTIME");
	struct sigaction	 sa;

	if ((off != NULL && strcmp(off, "0") == 0) || !shim_is_python())
		return (NULL);
	/* The hook takes SIGURG only where it is at its default. */
	if (sigaction(SIGURG, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL ||
	    (sa.sa_flags & SA_SIGINFO))
		return (NULL);
	return ("python");
}

int
shim_runtime_say(const char *runtime)
{
	return (shim_exec_say(NULL, 1, runtime));
}

int
shim_exec_say(char **argv, int say_runtime, const char *runtime)
{
	struct jw	 w;
	char		 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char		 small[128], *msg = small;
	size_t		 cap = sizeof small;
	int		 sock, rc = -1;

	/* An argv only in the constructor; syslog's first call, anywhere,
	 * says its runtime alone. */
	if (argv != NULL) {
		msg = shim_msg;
		cap = sizeof shim_msg;
	}
	jw_init(&w, msg, cap);
	if (say_runtime) {
		jw_lit(&w, "{\"type\":\"runtime\",\"runtime\":");
		if (runtime != NULL) {
			jw_lit(&w, "\"");
			jw_lit(&w, runtime);
			jw_lit(&w, "\"");
		} else
			jw_lit(&w, "null");
	} else
		jw_lit(&w, "{\"type\":\"exec\"");
	if (argv != NULL)
		shim_argv(&w, argv);
	jw_lit(&w, "}\n");
	if (w.overflow)
		return (-1);
	if (say_runtime)
		return (shim_ask(msg, w.len, "{\"type\":\"runtime\"", NULL,
		    0));
	/* Nothing to wait for: said if the collector takes it at once. */
	if (ident_socket_path(environ, path, sizeof path) != 0 ||
	    (sock = shim_dial(path)) == -1)
		return (-1);
	if (send(sock, msg, w.len, MSG_NOSIGNAL | MSG_DONTWAIT) ==
	    (ssize_t)w.len)
		rc = 0;
	close(sock);
	return (rc);
}
