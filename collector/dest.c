/*
 * Destinations: the original fds 1/2 the shims hand over and the
 * collector's own console. Program data obeys the pass-through contract:
 * the destination gets exactly the bytes, in order, at its own pace. A
 * stream moves bytes with dest_pass(), which takes from its pipe only what
 * the destination can take now and otherwise tells the stream to wait
 * (back-pressure: the writer blocks on its full pipe, as it would have).
 *
 * Pipes are fed with tee(2): the bytes are duplicated into the destination
 * pipe inside the kernel and then read once for the log, so what is logged
 * is exactly what the destination took. Terminals, sockets, character
 * devices and files get a bounded queue written without blocking the loop
 * (terminals and pipes through a private non-blocking open file description
 * reopened through /proc, so O_NONBLOCK never reaches the process sharing
 * the original). A destination whose reader is gone (EPIPE, or a pipe whose
 * read end closed, seen as EPOLLERR) is gone: its streams close their
 * pipes, so the writers get EPIPE/SIGPIPE as they would have.
 *
 * Only the console view (dest_write) may drop, counted, when it cannot
 * keep up; program data is never dropped while its reader lives.
 *
 * A collector may be killed between any two steps of a read: with a
 * keeper, the pipe is spliced into a memfd the keeper shares, whose offset
 * the kernel moves as it takes the bytes, and what the destination took
 * is noted after each write (struct keeper_reading); for a file, where its
 * offset was before the write, so that the offset itself says what it
 * took. A kill just as a write to a pipe, terminal or O_APPEND file
 * returns, before its note, passes those bytes twice; none is lost.
 */

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <linux/kcmp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "collector.h"
#include "keeper.h"

/*
 * Program data queued for one destination past which its writers wait; a
 * read begun below it is taken whole, so the queue may pass it by one.
 */
#define DEST_MAX	(256 * 1024)
/* Most console lines queued before they are dropped (a burst to a pager). */
#define DEST_CONSOLE_MAX	(8 * 1024 * 1024)
/* Waiting streams resume once the queue is down to this. */
#define DEST_LOW	(DEST_MAX / 2)
/* Write out before the end of the loop pass once this much is queued. */
#define DEST_HIGH	(64 * 1024)

enum dest_kind { DEST_FILE, DEST_PIPE, DEST_NB, DEST_SOCK };

struct dest {
	int		 fd;		/* what is written to */
	int		 orig;		/* as received; may equal fd */
	enum dest_kind	 kind;
	struct destq	 q;
	struct event	*ev;		/* room to write */
	struct event	*hup;		/* pipes: the reader went away */
	uint64_t	 dropped;	/* in the current episode */
	int		 dead;		/* nothing more is written */
	int		 gone;		/* dead because the reader is gone */
	int		 err;		/* why it is dead (errno) */
	int		 notify;	/* on the list to tell its streams */
	int		 view;		/* the collector's own console */
	int		 append;	/* a file opened with O_APPEND */
	int		 tty;		/* a terminal */
	int		 dirty;		/* on the list to write this pass */
	int		 refs;
	dev_t		 dev;
	ino_t		 ino;
	char		 name[128];
	TAILQ_HEAD(, dest_watch) watchers;	/* streams feeding it */
	TAILQ_HEAD(, dest_watch) waiting;	/* streams waiting for room */
	RB_ENTRY(dest)	 entry;
	TAILQ_ENTRY(dest) dirty_entry;
	TAILQ_ENTRY(dest) notify_entry;
};

/*
 * Order destinations by the file they write to and, for a regular file,
 * by open description: each has an offset of its own, and a process's
 * bytes go at its own, as without meshlog (`cmd > out` run again while
 * an earlier one still writes). Where kcmp(2) cannot tell, one for all.
 */
static int
dest_cmp(struct dest *a, struct dest *b)
{
	int	c = devino_cmp(a->dev, a->ino, b->dev, b->ino);

	if (c != 0 || a->kind != DEST_FILE || b->kind != DEST_FILE)
		return (c);
	switch (syscall(SYS_kcmp, (long)getpid(), (long)getpid(),
	    (long)KCMP_FILE, (long)a->orig, (long)b->orig)) {
	case 1:
		return (-1);
	case 2:
		return (1);
	default:
		return (0);
	}
}
RB_HEAD(dests, dest);
RB_GENERATE(dests, dest, entry, dest_cmp)
static struct dests	dest_tree = RB_INITIALIZER(&dest_tree);
/* Destinations with bytes queued in this loop pass. */
static TAILQ_HEAD(, dest) dest_dirty = TAILQ_HEAD_INITIALIZER(dest_dirty);
/* Destinations gone whose streams are still to be told. */
static TAILQ_HEAD(, dest) dest_notify = TAILQ_HEAD_INITIALIZER(dest_notify);

static void	dest_write_cb(int, short, void *);
static void	dest_hup_cb(int, short, void *);
static void	dest_free(struct dest *);

/* Record a finished drop episode in the JSON log. */
static void
dest_report(struct dest *d)
{
	struct timespec	 now;
	char		 ts[TS_LEN];
	json_t		*o;

	if (d->dropped == 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "ts", ts, "event",
	    "dropped", "what", d->view ? "console" : "output", "target",
	    d->name, "bytes", (json_int_t)d->dropped);
	jsonlog_event(o);
	json_decref(o);
	log_warn("%s: %llu bytes of %s dropped (%s)", d->name,
	    (unsigned long long)d->dropped, d->view ? "console view" :
	    "output", d->view && !d->dead ? "the console is too slow; the "
	    "JSON log has every line" : "the destination failed");
	d->dropped = 0;
}

struct dest *
dest_get(int fd)
{
	struct stat	 sb;

	if (fstat(fd, &sb) != 0) {
		close(fd);
		return (NULL);
	}
	return (dest_get_stat(fd, &sb));
}

struct dest *
dest_get_stat(int fd, const struct stat *sb)
{
	struct dest	 key, *d;
	char		 proc[64];
	ssize_t		 n;

	key.dev = sb->st_dev;
	key.ino = sb->st_ino;
	key.kind = S_ISREG(sb->st_mode) || S_ISBLK(sb->st_mode) ? DEST_FILE :
	    DEST_NB;
	key.orig = fd;
	if ((d = RB_FIND(dests, &dest_tree, &key)) != NULL) {
		close(fd);
		return (dest_ref(d));
	}
	d = xcalloc(1, sizeof *d);
	d->dev = sb->st_dev;
	d->ino = sb->st_ino;
	d->orig = d->fd = fd;
	d->refs = 1;
	TAILQ_INIT(&d->watchers);
	TAILQ_INIT(&d->waiting);
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	n = readlink(proc, d->name, sizeof d->name - 1);
	if (n <= 0)
		snprintf(d->name, sizeof d->name, "fd %d", fd);
	else
		d->name[n] = '\0';
	d->tty = S_ISCHR(sb->st_mode) && isatty(fd);
	if (S_ISREG(sb->st_mode) || S_ISBLK(sb->st_mode)) {
		d->kind = DEST_FILE;
		d->append = (fcntl(fd, F_GETFL) & O_APPEND) != 0;
	} else if (S_ISSOCK(sb->st_mode))
		d->kind = DEST_SOCK;
	else {
		d->kind = S_ISFIFO(sb->st_mode) ? DEST_PIPE : DEST_NB;
		d->fd = open(proc, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (d->fd == -1) {
			/* A pipe with no reader left cannot be opened. */
			if (errno != ENXIO)
				log_warn("%s: cannot open a private description "
				    "(%s); output to it stops", d->name,
				    strerror(errno));
			d->fd = fd;
			d->dead = 1;
			d->gone = errno == ENXIO;
		}
	}
	destq_init(&d->q, d->orig);
	d->ev = event_new(base, d->fd, EV_WRITE, dest_write_cb, d);
	if (d->ev == NULL)
		fatalx("out of memory for a destination");
	/* A pipe's write end reports EPOLLERR once its last reader closes. */
	if (d->kind == DEST_PIPE && !d->dead) {
		d->hup = event_new(base, d->fd, EV_READ | EV_PERSIST,
		    dest_hup_cb, d);
		if (d->hup == NULL || event_add(d->hup, NULL) != 0)
			fatalx("cannot watch a destination");
	}
	RB_INSERT(dests, &dest_tree, d);
	return (d);
}

struct dest *
dest_ref(struct dest *d)
{
	if (d != NULL)
		d->refs++;
	return (d);
}

/* Forget d: nobody refers to it and nothing is queued. */
static void
dest_free(struct dest *d)
{
	dest_report(d);
	if (d->dirty)
		TAILQ_REMOVE(&dest_dirty, d, dirty_entry);
	RB_REMOVE(dests, &dest_tree, d);
	event_free(d->ev);
	if (d->hup != NULL)
		event_free(d->hup);
	destq_free(&d->q);
	if (d->fd != d->orig)
		close(d->fd);
	close(d->orig);
	free(d);
}

/*
 * The last reference may go while bytes are still queued: the destination
 * then stays open until they are written (its reader sees EOF only after
 * the last byte), and is freed by dest_flush_pending().
 */
void
dest_unref(struct dest *d)
{
	if (d == NULL || --d->refs > 0)
		return;
	if (!d->dead && destq_len(&d->q) > 0) {
		if (!d->dirty) {
			d->dirty = 1;
			TAILQ_INSERT_TAIL(&dest_dirty, d, dirty_entry);
		}
		return;
	}
	dest_free(d);
}

int
dest_is_view(struct dest *d)
{
	return (d != NULL && d->view);
}

void
dest_set_console(struct dest *d)
{
	if (d != NULL)
		d->view = 1;
}

int
dest_fd(struct dest *d)
{
	return (d != NULL ? d->orig : -1);
}

int
dest_is_tty(struct dest *d)
{
	return (d != NULL && d->tty);
}

/* A pipe or a socket: its reader waits for an end of file. */
int
dest_is_stream(struct dest *d)
{
	return (d != NULL && (d->kind == DEST_PIPE || d->kind == DEST_SOCK));
}

int
dest_tty_raw(struct dest *d)
{
	struct termios	t;

	/*
	 * Asked at every read: the shim drains a process's pipes before it
	 * changes the modes, so what is read now was written in these.
	 */
	return (d != NULL && d->tty && !d->dead && tcgetattr(d->fd, &t) == 0 &&
	    !(t.c_lflag & ICANON));
}

int
dest_view_at(dev_t dev, ino_t ino)
{
	struct dest	key, *d;

	key.dev = dev;
	key.ino = ino;
	key.kind = DEST_NB;	/* any description */
	d = RB_FIND(dests, &dest_tree, &key);
	return (d != NULL && d->view);
}

int
dest_known(dev_t dev, ino_t ino)
{
	struct dest	key;

	key.dev = dev;
	key.ino = ino;
	key.kind = DEST_NB;	/* any description */
	return (RB_FIND(dests, &dest_tree, &key) != NULL);
}

int
dest_gone(struct dest *d)
{
	return (d != NULL && d->gone);
}

int
dest_error(struct dest *d)
{
	return (d != NULL && d->dead ? d->err : 0);
}

void
dest_watch(struct dest *d, struct dest_watch *w, dest_watch_cb cb,
    void *arg)
{
	memset(w, 0, sizeof *w);
	w->cb = cb;
	w->arg = arg;
	if (d == NULL)
		return;
	w->d = d;
	TAILQ_INSERT_TAIL(&d->watchers, w, entry);
}

void
dest_unwatch(struct dest_watch *w)
{
	if (w->d == NULL)
		return;
	if (w->waiting)
		TAILQ_REMOVE(&w->d->waiting, w, wentry);
	TAILQ_REMOVE(&w->d->watchers, w, entry);
	w->waiting = 0;
	w->d = NULL;
}

/* Streams waiting for room may go on. */
static void
dest_wake(struct dest *d)
{
	struct dest_watch	*w;

	while ((w = TAILQ_FIRST(&d->waiting)) != NULL) {
		TAILQ_REMOVE(&d->waiting, w, wentry);
		w->waiting = 0;
		w->cb(w->arg, 0);
	}
}

/* Make w wait until d has room, and make sure d says when. */
static void
dest_wait(struct dest *d, struct dest_watch *w)
{
	if (!w->waiting) {
		w->waiting = 1;
		TAILQ_INSERT_TAIL(&d->waiting, w, wentry);
	}
	if (!event_pending(d->ev, EV_WRITE, NULL))
		event_add(d->ev, NULL);
}

/*
 * Nothing more can be written. When the reader is gone the streams feeding
 * d are told at the end of the loop pass (never from inside their own
 * calls), so they close their pipes and the writers see EPIPE.
 */
static void
dest_fail(struct dest *d, int err)
{
	int	gone = err == EPIPE || err == ECONNRESET || err == ENOTCONN;

	if (d->dead)
		return;
	if (!gone)
		log_warn("%s: %s; output to it stops", d->name, strerror(err));
	d->dead = 1;
	d->gone = gone;
	d->err = err;
	d->dropped += destq_len(&d->q);
	destq_drain(&d->q, destq_len(&d->q));
	event_del(d->ev);
	if (d->hup != NULL)
		event_del(d->hup);
	if (!d->notify) {
		d->notify = 1;
		dest_ref(d);
		TAILQ_INSERT_TAIL(&dest_notify, d, notify_entry);
	}
}

/* One write attempt; -1 with errno as write(2). */
static ssize_t
dest_try(struct dest *d, const char *p, size_t n)
{
	ssize_t	r;

	do {
		if (d->kind == DEST_SOCK)
			r = send(d->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			r = write(d->fd, p, n);
	} while (r == -1 && errno == EINTR);
	return (r);
}

/* Write queued bytes until the kernel would block. */
static void
dest_flush(struct dest *d)
{
	const char	*p;
	size_t		 len;
	ssize_t		 n;

	while (!d->dead && (p = destq_peek(&d->q, &len)) != NULL) {
		n = dest_try(d, p, len);
		if (n == -1 && errno == EAGAIN) {
			event_add(d->ev, NULL);
			break;
		}
		if (n <= 0) {
			dest_fail(d, n == 0 ? EIO : errno);
			return;
		}
		destq_drain(&d->q, (size_t)n);
	}
	if (destq_len(&d->q) == 0)
		dest_report(d);
}

/* The destination can take more. */
static void
dest_write_cb(int fd, short what, void *arg)
{
	struct dest	*d = arg;

	dest_flush(d);
	if (d->refs == 0 && (d->dead || destq_len(&d->q) == 0)) {
		dest_free(d);
		return;
	}
	if (!d->dead && destq_len(&d->q) <= DEST_LOW)
		dest_wake(d);
}

/* A pipe destination reported an error: its last reader closed. */
static void
dest_hup_cb(int fd, short what, void *arg)
{
	struct dest	*d = arg;
	struct pollfd	 pfd = { d->fd, POLLOUT, 0 };

	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR))
		dest_fail(d, EPIPE);
}

/* Mark d to be written at the end of the loop pass. */
static void
dest_dirty_add(struct dest *d)
{
	if (!d->dirty) {
		d->dirty = 1;
		TAILQ_INSERT_TAIL(&dest_dirty, d, dirty_entry);
	}
	if (destq_len(&d->q) >= DEST_HIGH &&
	    !event_pending(d->ev, EV_WRITE, NULL))
		dest_flush(d);
}

/*
 * Write straight from the caller's buffer, with nothing queued before it
 * (so order holds): a file takes what it is given without waiting, and a
 * read of DEST_HIGH or more would be written at once anyway, so copying
 * it into the queue first only costs the copy. What a terminal or socket
 * does not take now is queued; what a failing one refuses is dropped and
 * counted, as dest_flush does.
 */
static void
dest_write_now(struct dest *d, const char *p, size_t n,
    const struct dest_note *note, volatile uint32_t *passed)
{
	ssize_t	w;
	off_t	at;

	/* The keeper shares a file's offset: it will say what was taken. */
	if (note != NULL && d->kind == DEST_FILE && !d->append &&
	    (at = lseek(d->fd, 0, SEEK_CUR)) != -1) {
		*note->dest_at = at;
		*passed = KEEPER_PASSED_AT;
	}
	while (n > 0 && !d->dead) {
		if ((w = dest_try(d, p, n)) == -1 && errno == EAGAIN &&
		    d->kind != DEST_FILE) {
			destq_add(&d->q, p, n);
			*passed = KEEPER_PASSED_ALL;
			dest_dirty_add(d);
			return;
		}
		if (w <= 0) {
			dest_fail(d, w == 0 ? EIO : errno);
			*passed = KEEPER_PASSED_ALL;
			d->dropped += n;
			return;
		}
		if (*passed != KEEPER_PASSED_AT)
			*passed += (uint32_t)w;
		p += w;
		n -= (size_t)w;
	}
}

/*
 * Read up to max bytes of pipe in, into buf, or through note (see struct
 * dest_note); 0 at EOF, -1 with errno.
 */
static ssize_t
dest_read(int in, char *buf, size_t max, const struct dest_note *note)
{
	ssize_t	n;

	do
		n = note != NULL ? splice(in, NULL, note->fd, NULL, max,
		    SPLICE_F_NONBLOCK) : read(in, buf, max);
	while (n == -1 && errno == EINTR);
	return (n);
}

/* Copy what pipe in holds into pipe d, without taking it; -1 with errno. */
static ssize_t
dest_tee(struct dest *d, int in, size_t max)
{
	ssize_t	n;

	do
		n = tee(in, d->fd, max, SPLICE_F_NONBLOCK);
	while (n == -1 && errno == EINTR);
	return (n);
}

enum dest_rc
dest_pass(struct dest *d, struct dest_watch *w, int in, char *buf,
    size_t max, size_t *got, const struct dest_note *note)
{
	static uint32_t		 unnoted;
	volatile uint32_t	*passed = note != NULL ? note->passed :
				    &unnoted;
	ssize_t			 n, r;
	int			 avail;

	*got = 0;
	/* A file takes what it is given: write a full queue out now. */
	if (d != NULL && d->kind == DEST_FILE && !d->dead &&
	    destq_len(&d->q) >= DEST_MAX)
		dest_flush(d);
	if (d == NULL || (d->dead && !d->gone)) {
		/* Nothing to pass on (or a failed file): read for the log. */
		*passed = KEEPER_PASSED_ALL;
		n = dest_read(in, buf, max, note);
		if (d != NULL && n > 0)
			d->dropped += (size_t)n;
	} else if (d->gone)
		return (DEST_GONE);
	else if (d->kind == DEST_PIPE) {
		if (destq_len(&d->q) > 0) {
			/* Console lines first: keep their order. */
			dest_wait(d, w);
			return (DEST_FULL);
		}
		n = dest_tee(d, in, max);
		if (n == -1 && errno == EAGAIN) {
			/* Either side may be the one that would block. */
			if (ioctl(in, FIONREAD, &avail) == 0 && avail > 0) {
				dest_wait(d, w);
				return (DEST_FULL);
			}
			return (DEST_EMPTY);
		}
		if (n == -1 && errno == EPIPE) {
			dest_fail(d, EPIPE);
			return (DEST_GONE);
		}
		if (n > 0) {
			*passed = (uint32_t)n;
			/* Ours alone to read: take exactly what was passed. */
			r = dest_read(in, buf, (size_t)n, note);
			if (r != n)
				log_warn("%s: read %zd of %zd bytes passed",
				    d->name, r, n);
			n = r;
		}
	} else {
		if (destq_len(&d->q) >= DEST_MAX) {
			dest_wait(d, w);
			return (DEST_FULL);
		}
		/*
		 * All that was asked for, not just what fits under DEST_MAX:
		 * a read cut to the room left may end inside a write, and
		 * another stream's bytes queued before the rest would cut a
		 * line the program wrote whole.
		 */
		n = dest_read(in, buf, max, note);
		if (n > 0 && destq_len(&d->q) == 0 &&
		    (d->kind == DEST_FILE || (size_t)n >= DEST_HIGH))
			dest_write_now(d, buf, (size_t)n, note, passed);
		else if (n > 0) {
			destq_add(&d->q, buf, (size_t)n);
			*passed = KEEPER_PASSED_ALL;
			dest_dirty_add(d);
		}
	}
	if (n == -1 && errno == EAGAIN)
		return (DEST_EMPTY);
	if (n == -1)
		return (DEST_ERROR);
	if (n == 0)
		return (DEST_EOF);
	*got = (size_t)n;
	return (DEST_OK);
}

/*
 * Queue n bytes of the console view. They are written at the end of the
 * event-loop pass (or sooner once DEST_HIGH is queued), so a burst costs
 * one write(2) per destination, not one per line. Past DEST_CONSOLE_MAX
 * they are dropped and counted: a slow console never holds back a writer.
 */
void
dest_write(struct dest *d, const char *p, size_t n)
{
	if (d == NULL || n == 0)
		return;
	if (d->dead) {
		d->dropped += n;
		return;
	}
	if (destq_len(&d->q) + n > DEST_CONSOLE_MAX) {
		if (d->dropped == 0)
			log_warn("%s: console too slow, dropping lines",
			    d->name);
		d->dropped += n;
		return;
	}
	destq_add(&d->q, p, n);
	dest_dirty_add(d);
}

void
dest_flush_pending(void)
{
	struct dest		*d;
	struct dest_watch	*w;

	while ((d = TAILQ_FIRST(&dest_dirty)) != NULL) {
		TAILQ_REMOVE(&dest_dirty, d, dirty_entry);
		d->dirty = 0;
		/* One waiting for the kernel is written by its event. */
		if (!event_pending(d->ev, EV_WRITE, NULL))
			dest_flush(d);
		/* Nobody's any more: freed once written (or by its event). */
		if (d->refs == 0 && (d->dead ||
		    destq_len(&d->q) == 0))
			dest_free(d);
	}
	/*
	 * Tell the streams of failed destinations. Where the reader is gone
	 * each closes its pipe (its writers get EPIPE, as they would have);
	 * where writing failed otherwise (a full disk, a terminal hung up:
	 * ENOSPC and EIO the writer cannot be given through a pipe), each
	 * goes on for the log, and its writers are not killed by SIGPIPE.
	 */
	while ((d = TAILQ_FIRST(&dest_notify)) != NULL) {
		TAILQ_REMOVE(&dest_notify, d, notify_entry);
		d->notify = 0;
		while ((w = TAILQ_FIRST(&d->watchers)) != NULL) {
			dest_unwatch(w);
			w->cb(w->arg, d->gone);
		}
		dest_unref(d);
	}
}

/* Milliseconds since t0. */
static long
dest_since(const struct timespec *t0)
{
	struct timespec	t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return ((t.tv_sec - t0->tv_sec) * 1000 +
	    (t.tv_nsec - t0->tv_nsec) / 1000000);
}

/*
 * Write d's queue, waiting for its reader while it makes progress: give up
 * (counting what is left as dropped) only after stall_ms without taking a
 * byte. Pipes are also waited for until they have room.
 */
static void
dest_drain(struct dest *d, int stall_ms)
{
	struct pollfd	 pfd;
	struct timespec	 t0;
	size_t		 before;
	long		 left;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!d->dead && destq_len(&d->q) > 0) {
		before = destq_len(&d->q);
		dest_flush(d);
		if (destq_len(&d->q) == 0 || d->dead)
			break;
		if (destq_len(&d->q) < before)
			clock_gettime(CLOCK_MONOTONIC, &t0);
		pfd.fd = d->fd;
		pfd.events = POLLOUT;
		if ((left = stall_ms - dest_since(&t0)) <= 0 ||
		    poll(&pfd, 1, (int)left) < 0) {
			d->dropped += destq_len(&d->q);
			destq_drain(&d->q, destq_len(&d->q));
			break;
		}
	}
	dest_report(d);
}

int
dest_wait_room(struct dest *d, int stall_ms)
{
	struct pollfd	pfd;

	if (d == NULL)
		return (0);
	dest_drain(d, stall_ms);
	if (d->dead)
		return (d->gone ? -1 : 0);
	if (d->kind != DEST_PIPE)
		return (0);
	pfd.fd = d->fd;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, stall_ms) != 1)
		return (-1);
	if (pfd.revents & POLLERR) {
		dest_fail(d, EPIPE);
		return (-1);
	}
	return (0);
}

void
dest_drain_all(int stall_ms)
{
	struct dest	*d, *next;

	RB_FOREACH_SAFE(d, dests, &dest_tree, next) {
		dest_drain(d, stall_ms);
		if (d->refs == 0)
			dest_free(d);
	}
}
