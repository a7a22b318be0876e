/*
 * Destinations: the original fds 1/2 the shims hand over (for the raw tee)
 * and the collector's own console. Writes never block the event loop: pipes
 * and terminals get a private non-blocking open file description (reopened
 * through /proc, so the O_NONBLOCK flag never reaches the process sharing
 * the original), sockets get MSG_DONTWAIT, regular files are written
 * directly. Each queue is bounded; what does not fit is dropped, counted,
 * warned about and recorded in the JSON log.
 */

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "collector.h"

/* Most bytes queued for one destination. */
#define DEST_MAX	(8 * 1024 * 1024)
/* Write out before the end of the loop pass once this much is queued. */
#define DEST_HIGH	(256 * 1024)

enum dest_kind { DEST_FILE, DEST_NB, DEST_SOCK };

struct dest {
	int		 fd;		/* what is written to */
	int		 orig;		/* as received; may equal fd */
	enum dest_kind	 kind;
	struct evbuffer	*q;
	struct event	*ev;
	uint64_t	 dropped;	/* in the current episode */
	int		 dead;
	int		 view;		/* a terminal or the console */
	int		 dirty;		/* on the list to write this pass */
	int		 refs;
	dev_t		 dev;
	ino_t		 ino;
	char		 name[128];
	RB_ENTRY(dest)	 entry;
	TAILQ_ENTRY(dest) dirty_entry;
};

/* Order destinations by the file they write to. */
static int
dest_cmp(struct dest *a, struct dest *b)
{
	return (devino_cmp(a->dev, a->ino, b->dev, b->ino));
}
RB_HEAD(dests, dest);
RB_GENERATE(dests, dest, entry, dest_cmp)
static struct dests	dest_tree = RB_INITIALIZER(&dest_tree);
/* Destinations with bytes queued in this loop pass. */
static TAILQ_HEAD(, dest) dest_dirty = TAILQ_HEAD_INITIALIZER(dest_dirty);

static void	dest_write_cb(int, short, void *);

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
	    "dropped", "what", "output", "target", d->name, "bytes",
	    (json_int_t)d->dropped);
	jsonlog_event(o);
	json_decref(o);
	log_warn("%s: %llu bytes of output dropped (destination too slow "
	    "or gone; the JSON log has every line)", d->name,
	    (unsigned long long)d->dropped);
	d->dropped = 0;
}

struct dest *
dest_get(int fd)
{
	struct dest	 key, *d;
	struct stat	 sb;
	char		 proc[64];
	ssize_t		 n;

	if (fstat(fd, &sb) != 0) {
		close(fd);
		return (NULL);
	}
	key.dev = sb.st_dev;
	key.ino = sb.st_ino;
	if ((d = RB_FIND(dests, &dest_tree, &key)) != NULL) {
		close(fd);
		return (dest_ref(d));
	}
	d = xcalloc(1, sizeof *d);
	d->dev = sb.st_dev;
	d->ino = sb.st_ino;
	d->orig = d->fd = fd;
	d->refs = 1;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	n = readlink(proc, d->name, sizeof d->name - 1);
	if (n <= 0)
		snprintf(d->name, sizeof d->name, "fd %d", fd);
	else
		d->name[n] = '\0';
	d->view = S_ISCHR(sb.st_mode) && isatty(fd);
	if (S_ISREG(sb.st_mode) || S_ISBLK(sb.st_mode))
		d->kind = DEST_FILE;
	else if (S_ISSOCK(sb.st_mode))
		d->kind = DEST_SOCK;
	else {
		d->kind = DEST_NB;
		d->fd = open(proc, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (d->fd == -1) {
			log_warn("%s: cannot open a private description (%s); "
			    "output to it is dropped", d->name,
			    strerror(errno));
			d->fd = fd;
			d->dead = 1;
		}
	}
	d->q = evbuffer_new();
	d->ev = event_new(base, d->fd, EV_WRITE, dest_write_cb, d);
	if (d->q == NULL || d->ev == NULL)
		fatalx("out of memory for a destination");
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

void
dest_unref(struct dest *d)
{
	if (d == NULL || --d->refs > 0)
		return;
	if (evbuffer_get_length(d->q) > 0)
		dest_drain_all(100);
	dest_report(d);
	if (d->dirty)
		TAILQ_REMOVE(&dest_dirty, d, dirty_entry);
	RB_REMOVE(dests, &dest_tree, d);
	event_free(d->ev);
	evbuffer_free(d->q);
	if (d->fd != d->orig)
		close(d->fd);
	close(d->orig);
	free(d);
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

/* A write failed for good: stop writing, count from now on. */
static void
dest_fail(struct dest *d, int err)
{
	if (err != EPIPE)
		log_warn("%s: %s; output to it stops", d->name, strerror(err));
	d->dead = 1;
	d->dropped += evbuffer_get_length(d->q);
	evbuffer_drain(d->q, evbuffer_get_length(d->q));
	event_del(d->ev);
}

/* Write queued bytes until the kernel would block. */
static void
dest_flush(struct dest *d)
{
	struct evbuffer_iovec	v;
	ssize_t			n;

	while (!d->dead && evbuffer_peek(d->q, -1, NULL, &v, 1) > 0) {
		n = dest_try(d, v.iov_base, v.iov_len);
		if (n == -1 && errno == EAGAIN) {
			event_add(d->ev, NULL);
			return;
		}
		if (n <= 0) {
			dest_fail(d, n == 0 ? EIO : errno);
			return;
		}
		evbuffer_drain(d->q, (size_t)n);
	}
	dest_report(d);
}

/* The destination can take more. */
static void
dest_write_cb(int fd, short what, void *arg)
{
	dest_flush(arg);
}

/*
 * Queue n bytes. They are written at the end of the event-loop pass (or
 * sooner once DEST_HIGH is queued), so a burst costs one write(2) per
 * destination, not one per line.
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
	if (evbuffer_get_length(d->q) + n > DEST_MAX) {
		if (d->dropped == 0)
			log_warn("%s: too slow, dropping output", d->name);
		d->dropped += n;
		return;
	}
	evbuffer_add(d->q, p, n);
	if (!d->dirty) {
		d->dirty = 1;
		TAILQ_INSERT_TAIL(&dest_dirty, d, dirty_entry);
	}
	if (evbuffer_get_length(d->q) >= DEST_HIGH &&
	    !event_pending(d->ev, EV_WRITE, NULL))
		dest_flush(d);
}

void
dest_flush_pending(void)
{
	struct dest	*d;

	while ((d = TAILQ_FIRST(&dest_dirty)) != NULL) {
		TAILQ_REMOVE(&dest_dirty, d, dirty_entry);
		d->dirty = 0;
		/* One waiting for the kernel is written by its event. */
		if (!event_pending(d->ev, EV_WRITE, NULL))
			dest_flush(d);
	}
}

void
dest_drain_all(int ms)
{
	struct dest	*d;
	struct pollfd	 pfd;
	struct timespec	 t0, t;
	long		 left;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	RB_FOREACH(d, dests, &dest_tree) {
		while (!d->dead && evbuffer_get_length(d->q) > 0) {
			dest_flush(d);
			if (evbuffer_get_length(d->q) == 0 || d->dead)
				break;
			clock_gettime(CLOCK_MONOTONIC, &t);
			left = ms - ((t.tv_sec - t0.tv_sec) * 1000 +
			    (t.tv_nsec - t0.tv_nsec) / 1000000);
			pfd.fd = d->fd;
			pfd.events = POLLOUT;
			if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
				d->dropped += evbuffer_get_length(d->q);
				evbuffer_drain(d->q, evbuffer_get_length(d->q));
				break;
			}
		}
		dest_report(d);
	}
}
