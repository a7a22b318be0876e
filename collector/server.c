/*
 * The control socket: accepts shims (and later meshlogctl), checks the
 * peer's uid with SO_PEERCRED, reads one JSON line with its descriptors, and
 * answers. A stranger, a malformed message or a silent peer is refused with
 * a log line and costs nothing else.
 */

#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "collector.h"
#include "fdreserve.h"

/* Most reply bytes a peer may leave unread before it is dropped. */
#define PEER_OUT_MAX	(64 * 1024 * 1024)
/* How long a family connection's fork messages may wait to be read. */
#define FORK_BATCH_MS	25
/* Connections open at once; past this, accepting waits for one to close. */
#define PEER_MAX	4096
/* A peer's first input buffer; it grows to MESHLOG_MSG_MAX as needed. */
#define PEER_BUF_FIRST	1024

struct peer {
	uint64_t		 serial;	/* names it to a late answer */
	int			 fd;
	pid_t			 pid;
	uid_t			 uid;
	struct event		*ev;
	struct event		*timer;
	struct event		*wev;		/* reply waiting for the socket */
	struct evbuffer		*out;
	char			*buf;		/* grows on demand */
	size_t			 cap;
	size_t			 len;
	int			 fds[MESHLOG_FDS_MAX];
	int			 nfds;
	struct hello		 hello;		/* accepted, streams to come */
	int			 accepted;
	int			 owed;		/* answers still to send */
	int			 busy;		/* its message is being handled */
	int			 family;	/* a process's forks come here */
	int			 waiting;	/* a family's, read by fork_batch */
	long			 msg_pid;	/* sender of the line read, or -1 */
	TAILQ_ENTRY(peer)	 entry;
	TAILQ_ENTRY(peer)	 wentry;	/* in waiting, when waiting */
};

static int			 listen_fd = -1;
static int			 lock_fd = -1;
static char			*lock_path;
static struct event		*listen_ev;
static char			*listen_path;
static TAILQ_HEAD(, peer)	 peers = TAILQ_HEAD_INITIALIZER(peers);
static uint64_t			 next_serial;

static struct event		*accept_timer;	/* accepting again */
static struct event		*fork_batch;	/* reads waiting families */
/* Family connections whose messages wait for the batch. */
static TAILQ_HEAD(, peer)	 waiting = TAILQ_HEAD_INITIALIZER(waiting);
static uint64_t			 accept_full;	/* EMFILE in this episode */
static unsigned			 npeers;
static dispatch_fn		 server_dispatch;	/* control requests */
/* Refusals a stranger can provoke at will are rate-limited. */
static struct log_limit		 refusals = { .what = "refusals" };
static int			 accept_capped;	/* PEER_MAX reached */

static void	server_accept_cb(int, short, void *);
static void	peer_idle(struct peer *);
static void	peer_read_cb(int, short, void *);
static void	peer_timeout_cb(int, short, void *);
static void	peer_write_cb(int, short, void *);

/* Close a peer and every descriptor it sent that nobody took. */
static void
peer_free(struct peer *p)
{
	int	i;

	for (i = 0; i < p->nfds; i++)
		close(p->fds[i]);
	if (p->waiting)
		TAILQ_REMOVE(&waiting, p, wentry);
	if (p->accepted)
		hello_clear(&p->hello);
	event_free(p->ev);
	event_free(p->timer);
	event_free(p->wev);
	evbuffer_free(p->out);
	close(p->fd);
	TAILQ_REMOVE(&peers, p, entry);
	free(p->buf);
	free(p);
	/* Room again for one more connection. */
	if (--npeers < PEER_MAX && accept_capped) {
		accept_capped = 0;
		if (listen_fd != -1 && (accept_timer == NULL ||
		    !evtimer_pending(accept_timer, NULL)))
			event_add(listen_ev, NULL);
	}
}

/* Write what is queued for a peer until the socket would block. */
static void
peer_flush(struct peer *p)
{
	while (evbuffer_get_length(p->out) > 0) {
		if (evbuffer_write(p->out, p->fd) <= 0) {
			if (errno == EAGAIN || errno == EINTR)
				event_add(p->wev, NULL);
			else
				evbuffer_drain(p->out,
				    evbuffer_get_length(p->out));
			return;
		}
	}
}

/* The socket can take more of a reply. */
static void
peer_write_cb(int fd, short what, void *arg)
{
	peer_flush(arg);
}

/*
 * Queue one JSON line for a peer and start writing it; a reply larger
 * than the socket buffer (status with many sources) goes out as the peer
 * reads. A peer that leaves too much unread is dropped by the caller.
 */
static void
peer_send(struct peer *p, json_t *msg)
{
	char	*s = json_dumps(msg, JSON_COMPACT);

	if (s == NULL)
		return;
	evbuffer_add(p->out, s, strlen(s));
	evbuffer_add(p->out, "\n", 1);
	free(s);
	peer_flush(p);
}

/* Send one message already written (with its newline). */
static void
peer_send_text(struct peer *p, const char *s, size_t n)
{
	evbuffer_add(p->out, s, n);
	peer_flush(p);
}

/* A flush finished: answer the peer that asked, if it is still there. */
static void
peer_answer_cb(json_t *reply, void *arg)
{
	uint64_t	 serial = (uint64_t)(uintptr_t)arg;
	struct peer	*p;

	TAILQ_FOREACH(p, &peers, entry) {
		if (p->serial == serial) {
			peer_send(p, reply);
			if (--p->owed == 0)
				peer_idle(p);
			return;
		}
	}
}

/*
 * (Re)start the clock of a peer that owes nothing and is owed nothing: it
 * has --hello-timeout to send its next complete message, or is closed. A
 * peer waiting for a flush's answer is not idle.
 */
static void
peer_idle(struct peer *p)
{
	struct timeval	tv = { cfg.hello_timeout, 0 };

	if (p->owed > 0)
		evtimer_del(p->timer);
	else
		evtimer_add(p->timer, &tv);
}

/* Refuse a peer's message with a reason, logged and sent back. */
static void
peer_refuse(struct peer *p, const char *what, const char *why)
{
	json_t	*msg;

	log_warn_limit(&refusals, "refused %s from pid %ld (uid %lu): %s", what,
	    (long)p->pid, (unsigned long)p->uid, why);
	/* Nobody reads a family connection's answers. */
	if (p->family)
		return;
	msg = json_pack("{s:s, s:s}", "type", "error", "message", why);
	peer_send(p, msg);
	json_decref(msg);
}

/*
 * Whether h's stdout and stderr, one open file of a terminal, become one
 * stream: where the raw bytes reach that terminal, one pipe keeps their
 * order on the screen (as `2>&1` into a file does); where the console
 * view replaces them, the streams stay apart, and the view and the log
 * still tell stderr. Then h describes the one stream the shim sends.
 */
#define ACCEPT		"{\"type\":\"accept\"}\n"
#define ACCEPT_MERGE	"{\"type\":\"accept\",\"merge\":true}\n"
static int
peer_merge_tty(struct hello *h)
{
	if (!h->tty_shared || (!cfg.tee && dest_view_at(
	    (dev_t)h->tty_at[0], (ino_t)h->tty_at[1])))
		return (0);
	h->merged = 1;
	h->nstreams = 1;
	h->which[0] = MESHLOG_STDOUT;
	h->tty[0] = 1;
	return (1);
}

/*
 * A shim registers in two steps. Its hello comes alone and is answered
 * with accept; only then does it send its pipes and original descriptors
 * (a streams message), answered with welcome. Returns 1 while more is
 * expected, 0 when the connection is done.
 */
static int
peer_register(struct peer *p, const char *type, json_t *o)
{
	char		*cause = NULL, text[160];
	struct jw	 w;
	struct source	*src;
	uint64_t	 id;
	int		 i;

	if (strcmp(type, "hello") == 0) {
		if (p->nfds > 0 || p->accepted) {
			peer_refuse(p, "hello", p->accepted ? "hello sent "
			    "twice" : "descriptors come after accept, not "
			    "with hello");
			return (0);
		}
		if (hello_from_json(o, &p->hello, &cause) != 0) {
			peer_refuse(p, "hello", cause);
			free(cause);
			return (0);
		}
		if (p->hello.pid != (long)p->pid)
			log_debug("hello says pid %ld, the kernel says %ld",
			    p->hello.pid, (long)p->pid);
		p->hello.pid = p->pid;	/* the kernel's word, in our pid ns */
		p->accepted = 1;
		if (peer_merge_tty(&p->hello))
			peer_send_text(p, ACCEPT_MERGE, sizeof ACCEPT_MERGE - 1);
		else
			peer_send_text(p, ACCEPT, sizeof ACCEPT - 1);
		return (1);
	}
	if (!p->accepted) {
		peer_refuse(p, "streams", "no hello accepted yet");
		return (0);
	}
	src = source_prepare(&p->hello, p->fds, p->nfds, &id, &cause);
	if (src == NULL) {
		peer_refuse(p, "hello", cause);
		free(cause);
		return (0);
	}
	p->nfds = 0;	/* the source owns them now */
	jw_init(&w, text, sizeof text);
	jw_lit(&w, "{\"type\":\"welcome\",\"proto\":");
	jw_int(&w, MESHLOG_PROTO);
	jw_lit(&w, ",\"source\":");
	jw_int(&w, (long long)id);
	jw_lit(&w, p->hello.keep_buffering ? ",\"buffering\":\"keep\"" :
	    ",\"buffering\":\"line\"");
	/* Which capture pipe each original is: the shim cannot always tell. */
	jw_lit(&w, ",\"inherit\":\"");
	for (i = 0; i < 2; i++)
		jw_lit(&w, p->hello.inherit[i] == 0 ? "0" :
		    p->hello.inherit[i] == 1 ? "1" : "-");
	/* Columns the console's prefix takes (the shim narrows the width). */
	jw_lit(&w, "\",\"margin\":[");
	jw_int(&w, (long long)source_console_margin(src, 0));
	jw_lit(&w, ",");
	jw_int(&w, (long long)source_console_margin(src, 1));
	jw_lit(&w, "]}\n");
	/*
	 * The process waits for this answer, not for the rest: what it
	 * writes meanwhile source_start reads.
	 */
	peer_send_text(p, text, w.len);
	(void)source_start(src, &p->hello);
	return (0);
}

/*
 * A forked child hands over the read ends of its new pipes: "of" names,
 * for each, its parent's pipe that it takes over from. Nothing is
 * answered; the child does not wait.
 */
static void
peer_fork(struct peer *p, json_t *o)
{
	const char	*bad = "fork needs of: [[dev, ino], ...], one per "
			    "descriptor";
	json_t		*of = json_object_get(o, "of"), *v, *dev, *ino, *n;
	dev_t		 devs[2];
	ino_t		 inos[2];
	long		 held[2] = { -1, -1 };
	char		*cause = NULL;
	size_t		 i;

	/* The kernel names the child (SCM_CREDENTIALS), not the message. */
	if (!p->family || p->msg_pid <= 0) {
		peer_refuse(p, "fork", "fork comes on a family connection, "
		    "with credentials");
		return;
	}
	if (!json_is_array(of) || json_array_size(of) != (size_t)p->nfds ||
	    p->nfds < 1 || p->nfds > 2) {
		peer_refuse(p, "fork", bad);
		return;
	}
	json_array_foreach(of, i, v) {
		dev = json_array_get(v, 0);
		ino = json_array_get(v, 1);
		if (!json_is_integer(dev) || !json_is_integer(ino) ||
		    json_integer_value(dev) < 0 || json_integer_value(ino) < 0) {
			peer_refuse(p, "fork", bad);
			return;
		}
		devs[i] = (dev_t)json_integer_value(dev);
		inos[i] = (ino_t)json_integer_value(ino);
		/* What the parent's pipe held at the fork (-1: not known). */
		n = json_array_get(v, 2);
		if (json_is_integer(n) && json_integer_value(n) >= 0 &&
		    json_integer_value(n) <= INT32_MAX)
			held[i] = (long)json_integer_value(n);
	}
	if (source_fork(p->msg_pid, devs, inos, held, p->fds, p->nfds,
	    &cause) == 0) {
		peer_refuse(p, "fork", cause);
		free(cause);
		return;
	}
	p->nfds = 0;	/* the source owns them now */
}

/*
 * A process reaped a child: how the child ended, as its wait call said.
 * The kernel names the sender, which source_reaped checks is the child's
 * parent. Nothing is answered.
 */
static void
peer_reaped(struct peer *p, json_t *o)
{
	json_t	*pid = json_object_get(o, "pid");
	json_t	*st = json_object_get(o, "status");

	if (!p->family || p->msg_pid <= 0 || !json_is_integer(pid) ||
	    !json_is_integer(st) || json_integer_value(pid) <= 0 ||
	    json_integer_value(pid) > INT32_MAX ||
	    json_integer_value(st) < 0 || json_integer_value(st) > 0xffff) {
		peer_refuse(p, "reaped", "reaped needs pid and status (0 to "
		    "65535), on a family connection");
		return;
	}
	source_reaped((long)p->msg_pid, (long)json_integer_value(pid),
	    (int)json_integer_value(st));
}

/*
 * The keeper of a collector that died on this socket offers one of its
 * processes back. Only this collector's own user may: the message says
 * who the process is, and the kernel cannot check that. Answered either
 * way; the keeper offers the next on the same connection.
 */
static void
peer_handover(struct peer *p, json_t *o)
{
	char		*cause = NULL, text[96];
	struct jw	 w;
	uint64_t	 id;

	if (p->uid != geteuid()) {
		while (p->nfds > 0)
			close(p->fds[--p->nfds]);
		peer_refuse(p, "handover", "only this collector's user hands "
		    "processes over");
		return;
	}
	id = source_handover(o, p->fds, p->nfds, &cause);
	p->nfds = 0;	/* the source owns them, or they are closed */
	if (id == 0) {
		peer_refuse(p, "handover", cause);
		free(cause);
		return;
	}
	jw_init(&w, text, sizeof text);
	jw_lit(&w, "{\"type\":\"taken\",\"source\":");
	jw_int(&w, (long long)id);
	jw_lit(&w, "}\n");
	peer_send_text(p, text, w.len);
}

/*
 * Handle one complete line. Returns 1 when the connection stays open for
 * more requests (control, a registration under way), 0 when it is done.
 */
static int
peer_dispatch(struct peer *p, const char *line, size_t len)
{
	json_t		*msg, *o;
	const char	*type;
	char		*cause = NULL;
	int		 rc;

	/* Parsed once, here; a hello is read from this. */
	if ((o = hello_load(line, len, &cause)) == NULL) {
		peer_refuse(p, "hello", cause);
		free(cause);
		return (0);
	}
	type = json_string_value(json_object_get(o, "type"));
	if (type == NULL || strcmp(type, "hello") == 0 ||
	    strcmp(type, "streams") == 0) {
		rc = peer_register(p, type != NULL ? type : "hello", o);
		json_decref(o);
		return (rc);
	}
	/*
	 * A process that forks opens one connection for its children's
	 * pipes and keeps it: never idle, nothing answered.
	 */
	if (strcmp(type, "family") == 0 && p->nfds == 0 && !p->accepted) {
		p->family = 1;
		evtimer_del(p->timer);
		json_decref(o);
		return (1);
	}
	if (strcmp(type, "reaped") == 0 && p->nfds == 0) {
		peer_reaped(p, o);
		json_decref(o);
		return (p->family);
	}
	if (strcmp(type, "fork") == 0) {
		peer_fork(p, o);
		json_decref(o);
		if (p->nfds > 0) {	/* refused: close what was sent */
			while (p->nfds > 0)
				close(p->fds[--p->nfds]);
		}
		return (p->family);
	}
	if (strcmp(type, "handover") == 0 && !p->accepted && !p->family) {
		peer_handover(p, o);
		json_decref(o);
		return (1);
	}
	if (p->nfds > 0) {
		peer_refuse(p, "request", "descriptors are only accepted with "
		    "streams, fork or handover");
		json_decref(o);
		return (0);
	}
	/* The program a registered process runs after an exec: not answered.
	 * Only the kernel's pid counts. */
	if (strcmp(type, "exec") == 0 || strcmp(type, "runtime") == 0)
		source_exec((long)p->pid, json_object_get(o, "argv"),
		    json_is_true(json_object_get(o, "argv_truncated")));
	if (strcmp(type, "exec") == 0) {
		json_decref(o);
		return (0);
	}
	/*
	 * A process that learned its rank (the Python runtime), answered
	 * once it is the rank's: what it writes after the answer is read
	 * after it and labelled so.
	 */
	if (strcmp(type, "rank") == 0) {
		source_rank((long)p->pid, o);
		msg = json_pack("{s:s}", "type", "rank");
		peer_send(p, msg);
		json_decref(msg);
		json_decref(o);
		return (0);
	}
	if (strcmp(type, "runtime") == 0) {
		/*
		 * A registered process says whether a level runtime now
		 * handles SIGURG in it (the syslog applier at its first call,
		 * a process after exec). Only the kernel's pid counts.
		 */
		if (source_set_runtime((long)p->pid, json_is_string(
		    json_object_get(o, "runtime"))) != 0) {
			peer_refuse(p, "runtime", "no registered process has "
			    "this pid");
			json_decref(o);
			return (0);
		}
		msg = json_pack("{s:s}", "type", "runtime");
		peer_send(p, msg);
		json_decref(msg);
		json_decref(o);
		return (0);
	}
	/* A flush answers later, when its barrier is done. */
	p->owed++;
	msg = server_dispatch(o, peer_answer_cb, (void *)(uintptr_t)p->serial);
	if (msg == NULL) {
		json_decref(o);
		return (1);
	}
	p->owed--;
	type = json_string_value(json_object_get(msg, "type"));
	if (type != NULL && strcmp(type, "error") == 0)
		log_warn_limit(&refusals, "refused request from pid %ld "
		    "(uid %lu): %s", (long)p->pid, (unsigned long)p->uid,
		    json_string_value(json_object_get(msg, "message")));
	peer_send(p, msg);
	json_decref(msg);
	json_decref(o);
	return (1);
}

/*
 * Read once from a peer and handle its complete lines. Returns 1 when it
 * read something, 0 when there was nothing, -1 when the peer is gone (p
 * freed).
 */
static int
peer_read(struct peer *p)
{
	char		*nl;
	ssize_t		 n;
	long		 pid;
	int		 got, fd = p->fd;

	if (p->len == p->cap) {
		p->cap = p->cap == 0 ? PEER_BUF_FIRST : p->cap * 2;
		if (p->cap > MESHLOG_MSG_MAX)
			p->cap = MESHLOG_MSG_MAX;
		p->buf = xrealloc(p->buf, p->cap);
	}
	/*
	 * Room for every descriptor the message carries (fdreserve.c): a
	 * fork's pipes, or a process's pipes and destinations.
	 */
	if (p->family && !fdreserve_room(2))
		return (0);
	fdreserve_release(p->family ? 2 : MESHLOG_FDS_MAX - p->nfds);
	n = fd_recv_cred(fd, p->buf + p->len, p->cap - p->len,
	    p->fds + p->nfds, &got, MESHLOG_FDS_MAX - p->nfds, &pid);
	fdreserve_refill_errno();
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return (0);
	/* Short of descriptors: a forked child's pipes, not a newcomer's. */
	if (n > 0 && got > 0 && !p->family && fdreserve_short()) {
		p->nfds += got;
		peer_refuse(p, "message", "the collector is at its descriptor "
		    "limit (raise it)");
		peer_free(p);
		return (-1);
	}
	if (n == -1 && errno == EBADMSG && p->family) {
		/* One child's pipes lost; its siblings' still come here. */
		peer_refuse(p, "fork", "no descriptors to receive its pipes");
		return (1);
	}
	if (n == -1 && errno == EBADMSG) {
		peer_refuse(p, "message", "too many descriptors attached");
		peer_free(p);
		return (-1);
	}
	if (n <= 0) {
		if (p->len > 0)
			log_warn_limit(&refusals, "pid %ld closed the "
			    "connection in the middle of a message",
			    (long)p->pid);
		peer_free(p);
		return (-1);
	}
	/*
	 * With SO_PASSCRED no read mixes two senders; a line that spans
	 * reads of two has none.
	 */
	if (p->len == 0)
		p->msg_pid = pid;
	else if (p->msg_pid != pid)
		p->msg_pid = -1;
	p->nfds += got;
	p->len += (size_t)n;
	while ((nl = memchr(p->buf, '\n', p->len)) != NULL) {
		p->busy = 1;
		if (!peer_dispatch(p, p->buf, (size_t)(nl - p->buf))) {
			peer_free(p);
			return (-1);
		}
		p->busy = 0;
		/* An idle client is closed in time; a shim half-way
		 * through registering keeps its first deadline. */
		if (!p->accepted && !p->family)
			peer_idle(p);
		if (evbuffer_get_length(p->out) > PEER_OUT_MAX) {
			log_warn("pid %ld does not read its replies; closed",
			    (long)p->pid);
			peer_free(p);
			return (-1);
		}
		p->len -= (size_t)(nl + 1 - p->buf);
		memmove(p->buf, nl + 1, p->len);
	}
	if (p->len == MESHLOG_MSG_MAX) {
		peer_refuse(p, "message", "message too long");
		peer_free(p);
		return (-1);
	}
	return (1);
}

/*
 * Read a peer until it has nothing more (each read is one sender's on a
 * family connection). 0, or -1 when it is gone.
 */
static int
peer_read_all(struct peer *p)
{
	int	rc;

	while ((rc = peer_read(p)) == 1)
		;
	return (rc);
}

/* Read a family connection whose messages waited for the batch. */
static void
family_read_waiting(struct peer *p)
{
	p->waiting = 0;
	TAILQ_REMOVE(&waiting, p, wentry);
	if (peer_read_all(p) == 0)
		event_add(p->ev, NULL);
}

/*
 * Family connections are read in batches: a fork-heavy program (a shell
 * running $(...) in a loop) would otherwise wake the collector at every
 * fork, and on two cores that wake-up, not the work, was most of what a
 * fork cost. What waits here is found at once by a drain that needs it
 * (server_poll_pending).
 */
static void
fork_batch_cb(int fd, short what, void *arg)
{
	struct timeval	 tv = { 0, FORK_BATCH_MS * 1000 };
	struct peer	*p;

	/* No room for a child's pipes: they wait (fdreserve_room). */
	if (!fdreserve_room(2)) {
		evtimer_add(fork_batch, &tv);
		return;
	}
	while ((p = TAILQ_FIRST(&waiting)) != NULL)
		family_read_waiting(p);
}

/* A peer sent data (or closed). */
static void
peer_read_cb(int fd, short what, void *arg)
{
	struct peer		*p = arg;
	struct timeval		 tv = { 0, FORK_BATCH_MS * 1000 };

	if (!p->family) {
		(void)peer_read(p);
		return;
	}
	event_del(p->ev);
	p->waiting = 1;
	TAILQ_INSERT_TAIL(&waiting, p, wentry);
	if (fork_batch == NULL && (fork_batch = evtimer_new(base,
	    fork_batch_cb, NULL)) == NULL)
		fatalx("out of memory for a timer");
	if (!evtimer_pending(fork_batch, NULL))
		evtimer_add(fork_batch, &tv);
}

/* A peer sent no complete message in time. */
static void
peer_timeout_cb(int fd, short what, void *arg)
{
	struct peer	*p = arg;

	peer_refuse(p, "connection", "no complete message in time");
	peer_free(p);
}

/* Accept one connection, or refuse a stranger. */
static void
server_accept_one(int fd)
{
	struct ucred	 cred;
	socklen_t	 len = sizeof cred;
	struct peer	*p;
	int		 on = 1;

	/* What descriptors are left go to forked children (fdreserve.c). */
	if (fdreserve_short() && fdreserve_refill() == -1) {
		fdreserve_refuse(fd);
		return;
	}
	p = xcalloc(1, sizeof *p);
	npeers++;
	p->serial = ++next_serial;
	p->fd = fd;
	p->pid = -1;
	TAILQ_INSERT_TAIL(&peers, p, entry);
	p->ev = event_new(base, fd, EV_READ | EV_PERSIST, peer_read_cb, p);
	p->timer = evtimer_new(base, peer_timeout_cb, p);
	p->wev = event_new(base, fd, EV_WRITE, peer_write_cb, p);
	p->out = evbuffer_new();
	if (p->ev == NULL || p->timer == NULL || p->wev == NULL ||
	    p->out == NULL)
		fatalx("out of memory for a peer");
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		peer_refuse(p, "connection", "cannot read peer credentials");
		peer_free(p);
		return;
	}
	p->pid = cred.pid;
	p->uid = cred.uid;
	if (cred.uid != geteuid() && cred.uid != 0) {
		peer_refuse(p, "connection", "peer runs as another user");
		peer_free(p);
		return;
	}
	/*
	 * Each message's sender (the forked children on a family
	 * connection), and no read that mixes two senders.
	 */
	(void)setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
	event_add(p->ev, NULL);
	peer_idle(p);
}

/* A second after running out of descriptors: try accepting again. */
static void
server_accept_again_cb(int fd, short what, void *arg)
{
	if (listen_fd == -1)
		return;
	if (event_add(listen_ev, NULL) != 0)
		fatalx("cannot watch the socket");
	server_accept_cb(listen_fd, EV_READ, NULL);
}

/*
 * Out of descriptors: the pending connection stays pending and the socket
 * stays readable, so stop watching it for a second instead of spinning
 * (tmux's server_accept does the same). Said once per episode.
 */
static void
server_accept_pause(int err)
{
	struct timeval	tv = { 1, 0 };

	if (accept_full++ == 0)
		log_warn("accept: %s; not accepting for a second at a time "
		    "until descriptors free up (raise the descriptor limit)",
		    strerror(err));
	event_del(listen_ev);
	if (accept_timer == NULL &&
	    (accept_timer = evtimer_new(base, server_accept_again_cb,
	    NULL)) == NULL)
		fatalx("out of memory for a timer");
	evtimer_add(accept_timer, &tv);
}

/* The listening socket is readable: accept what is pending. */
static void
server_accept_cb(int fd, short what, void *arg)
{
	int	c;

	for (;;) {
		c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if ((errno == EMFILE || errno == ENFILE) &&
			    fdreserve_accept_refuse(fd) == 0)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				server_accept_pause(errno);
			else if (errno != EAGAIN)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (accept_full > 0) {
			log_info("accepting again after %llu attempts found no "
			    "free descriptor", (unsigned long long)accept_full);
			accept_full = 0;
		}
		server_accept_one(c);
		if (npeers >= PEER_MAX) {
			/* The rest wait in the listen queue. */
			accept_capped = 1;
			event_del(listen_ev);
			return;
		}
	}
}

void
server_open(const char *path, dispatch_fn dispatch)
{
	struct sockaddr_un	sun;
	char			*cause = NULL;
	int			fd;

	server_dispatch = dispatch;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path)
		fatalx("socket path too long (at most %zu bytes): %s",
		    sizeof sun.sun_path - 1, path);
	memcpy(sun.sun_path, path, strlen(path));
	if (sockdir_open(path, &cause) != 0)
		fatalx("%s", cause);
	/*
	 * One collector per socket: two started at once (shims starting a
	 * relay) must not both find the socket dead and replace each other.
	 */
	xasprintf(&lock_path, "%s.lock", path);
	lock_fd = sockdir_openat(".lock", O_RDWR | O_CREAT, 0600);
	if (lock_fd == -1)
		fatal("cannot open %s (a link is not followed)", lock_path);
	if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
		fatalx("another collector is already listening on %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		fatal("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0 ||
	    errno == EAGAIN)
		fatalx("another collector is already listening on %s", path);
	if (errno == ECONNREFUSED) {
		/* A dead collector's socket file. */
		if (sockdir_unlink("") == -1)
			fatal("cannot remove stale socket %s", path);
	} else if (errno != ENOENT)
		fatal("%s", path);
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		fatal("socket");
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
		fatal("cannot bind %s", path);
	if (chmod(path, 0600) != 0)
		fatal("chmod %s", path);
	if (listen(fd, 4096) != 0)
		fatal("listen");
	listen_fd = fd;
	listen_path = xstrdup(path);
	fdreserve_init();
	listen_ev = event_new(base, fd, EV_READ | EV_PERSIST, server_accept_cb,
	    NULL);
	if (listen_ev == NULL || event_add(listen_ev, NULL) != 0)
		fatalx("cannot watch the socket");
}

void
server_poll_pending(void)
{
	static int	 polling;
	struct peer	*p, *next;

	/* A request handled in here that polls again would free next. */
	if (listen_fd == -1 || polling)
		return;
	polling = 1;
	server_accept_cb(listen_fd, EV_READ, NULL);
	/* Not one whose message is being handled (a drain asking). */
	TAILQ_FOREACH_SAFE(p, &peers, entry, next) {
		if (!p->busy)
			(void)peer_read_all(p);
	}
	polling = 0;
}

/*
 * Whether p is a family connection nothing was read from yet (it waits
 * for fork_batch): its first message, peeked, is the shim's "family".
 * Only that: a control request read here would be handled in the middle
 * of a stream's end of file.
 */
static int
peer_family_unread(struct peer *p)
{
	static const char	 family[] = "{\"type\":\"family\"}\n";
	char			 buf[sizeof family - 1];

	return (!p->accepted && !p->family && p->len == 0 &&
	    recv(p->fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT) ==
	    (ssize_t)sizeof buf && memcmp(buf, family, sizeof buf) == 0);
}

int
server_read_families(long pid, int wait)
{
	static int	 reading;
	struct peer	*p, *next;

	/* A registration made in here that asks again would free next. */
	if (reading || (wait && TAILQ_EMPTY(&waiting)))
		return (0);
	reading = 1;
	if (wait) {
		TAILQ_FOREACH(p, &waiting, wentry) {
			if (!p->busy && (pid < 0 || (long)p->pid == pid))
				break;
		}
		if (p != NULL)
			family_read_waiting(p);
		reading = 0;
		return (p != NULL);
	}
	/*
	 * A process's family connection is made at its first fork and may
	 * still wait in the listen queue, the child's message in it: a
	 * shell that forks `cmd &` and exits at once had its pipe's end
	 * of file handled first, and the child's pipes were refused and
	 * closed under it (SIGPIPE at its first write).
	 */
	if (listen_fd != -1 && !accept_capped)
		server_accept_cb(listen_fd, EV_READ, NULL);
	TAILQ_FOREACH_SAFE(p, &peers, entry, next) {
		if (p->busy || (pid >= 0 && (long)p->pid != pid))
			continue;
		if (p->waiting)
			family_read_waiting(p);
		else if (p->family || peer_family_unread(p))
			(void)peer_read_all(p);
	}
	reading = 0;
	return (1);
}

void
server_close(void)
{
	struct peer	*p;

	while ((p = TAILQ_FIRST(&peers)) != NULL)
		peer_free(p);
	if (fork_batch != NULL) {
		event_free(fork_batch);
		fork_batch = NULL;
	}
	if (accept_timer != NULL) {
		event_free(accept_timer);
		accept_timer = NULL;
	}
	if (listen_fd == -1)
		return;
	event_free(listen_ev);
	close(listen_fd);
	sockdir_unlink("");
	free(listen_path);
	listen_fd = -1;
	sockdir_unlink(".lock");
	close(lock_fd);
	free(lock_path);
	lock_fd = -1;
}

unsigned
server_peer_count(void)
{
	struct peer	*p;
	unsigned	 n = 0;

	TAILQ_FOREACH(p, &peers, entry)
		n++;
	return (n);
}
