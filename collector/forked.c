/*
 * Processes forked without exec: each gets pipes of its own (the shim's
 * fork.c), registered here as a source of its own that tees to its
 * parent's destination. Its pipe is read after what its parent had written
 * when it forked, and a parent that reaped it holds its later bytes back
 * until the child's are through. New pipes are polled, not watched, until
 * they show life: most children of a fork-heavy program write nothing.
 */

#include <sys/stat.h>

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "source.h"

/*
 * New pipes, polled until they show life: watching each would wake the
 * collector twice per fork (the registration, then end of file), and on
 * two cores those wake-ups were most of what a fork cost.
 */
static TAILQ_HEAD(, stream)	 quiet = TAILQ_HEAD_INITIALIZER(quiet);
static struct event		*quiet_timer;
static unsigned			 quiet_gen;
static int			(*pending_forks)(long, int);
/* How often quiet pipes are polled (a forked child's first line waits). */
#define QUIET_POLL_MS	40

static void	source_quiet_arm(void);
static void	stream_hold_update(struct stream *);

/* The open stream a forked child's stream s was split from, or NULL. */
static struct stream *
stream_up(struct stream *s)
{
	struct stream	key, *up;

	if (s->updev == 0)
		return (NULL);
	key.dev = s->updev;
	key.ino = s->upino;
	up = RB_FIND(streams, &stream_tree, &key);
	return (up != NULL && up->fd != -1 ? up : NULL);
}

/*
 * Whether a forked child's stream s must wait for its parent's: what the
 * parent wrote before the fork goes first, and a reaped child's bytes
 * (holding) come after exactly what its parent had written when it reaped
 * it. Moves the parent's bytes that come first; 1 when some of them could
 * not move yet (a slow destination).
 */
int
stream_order(struct stream *s)
{
	struct stream	*up = stream_up(s);

	if (up == NULL)
		return (0);
	if (s->holding) {
		if (up->bytes < s->hold_off)
			(void)stream_move(up, (size_t)(s->hold_off - up->bytes));
		return ((up = stream_up(s)) != NULL && up->bytes < s->hold_off);
	}
	/*
	 * Running alongside its parent: what the parent wrote before the
	 * fork goes first, even past a slow destination (then the child
	 * waits, as it would have in a full pipe).
	 */
	if (s->fork_off != 0) {
		if (up->bytes < s->fork_off)
			(void)stream_move(up, (size_t)(s->fork_off - up->bytes));
		if ((up = stream_up(s)) != NULL && up->bytes < s->fork_off) {
			if (s->fork_off < up->wait_at)
				up->wait_at = s->fork_off;
			return (1);
		}
		s->fork_off = 0;
	}
	/*
	 * The rest keeps the order the pipes became readable in (the event
	 * loop's): a parent's bytes still unread when its child's pipe is
	 * read are most often newer, a pool's result printed after its
	 * workers' lines.
	 */
	return (0);
}

/*
 * The parent stream up became readable while children's pipes are still
 * quiet (polled, not watched) or not yet registered (their fork messages
 * wait for the batch): what they hold waited unseen and was most often
 * written first (a pool's workers print, then their parent prints what
 * they returned). Those are read first, this pass; up is read on the next
 * (its event is level-triggered). 1 when up waits for them, or is gone.
 */
int
forked_kids_first(struct stream *up)
{
	struct stream	*s, *next, key;
	struct pollfd	 pfd;
	int		 any = 0;

	key.dev = up->dev;
	key.ino = up->ino;
	/* A reaped child's drain may have ended it. */
	if (pending_forks != NULL && pending_forks(up->src->pid, 1) &&
	    RB_FIND(streams, &stream_tree, &key) != up)
		return (1);
	if (TAILQ_EMPTY(&quiet))
		return (0);
	TAILQ_FOREACH_SAFE(s, &quiet, qentry, next) {
		if (s->updev != up->dev || s->upino != up->ino ||
		    s->fork_off > up->bytes)
			continue;
		pfd.fd = s->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
			continue;
		forked_unquiet(s);
		if (event_add(s->ev, NULL) != 0)
			fatalx("cannot watch a pipe");
		event_active(s->ev, EV_READ, 0);
		any = 1;
	}
	return (any);
}

/*
 * The parent stream up read up to some waiting children's places, or
 * closed: they go on; the others wait for the next place.
 */
void
stream_kids_wake(struct stream *up)
{
	struct source	*src;
	struct stream	*c;
	int		 i;

	up->wait_at = UINT64_MAX;
	TAILQ_FOREACH(src, &sources, entry) {
		for (i = 0; i < 2; i++) {
			c = src->st[i];
			if (c == NULL || c->fork_off == 0 ||
			    c->updev != up->dev || c->upino != up->ino)
				continue;
			if (up->fd != -1 && up->bytes < c->fork_off) {
				if (c->fork_off < up->wait_at)
					up->wait_at = c->fork_off;
				continue;
			}
			c->fork_off = 0;
			if (c->paused && c->fd != -1)
				stream_watch_cb(c, 0);
		}
	}
}

/*
 * Recount the reaped children holding up: it reads up to the first one's
 * place, and waits there until that child's bytes are through. Whoever
 * may go on now is watched again.
 */
static void
stream_hold_update(struct stream *up)
{
	struct source	*src;
	struct stream	*c;
	int		 i;

	up->held = 0;
	up->hold_at = UINT64_MAX;
	TAILQ_FOREACH(src, &sources, entry) {
		for (i = 0; i < 2; i++) {
			c = src->st[i];
			if (c == NULL || !c->holding || c->updev != up->dev ||
			    c->upino != up->ino)
				continue;
			up->held++;
			if (c->hold_off < up->hold_at)
				up->hold_at = c->hold_off;
			if (c->paused && c->fd != -1)
				stream_watch_cb(c, 0);
		}
	}
	if (up->paused && (up->held == 0 || up->bytes < up->hold_at))
		stream_watch_cb(up, 0);
}

/*
 * Whether s has read up to the place of a reaped child holding it: then it
 * waits, and that child (waiting for s to get there) is woken.
 */
int
stream_held(struct stream *s)
{
	if (!s->held || s->bytes < s->hold_at)
		return (0);
	stream_pause(s);
	stream_hold_update(s);
	return (1);
}

/* A reaped child's bytes are through (or gone): its parent goes on. */
void
stream_release(struct stream *s)
{
	struct stream	*up;

	s->holding = 0;
	if ((up = stream_up(s)) != NULL)
		stream_hold_update(up);
}

/*
 * A parent reaped the forked child whose stream is s, and waits for
 * nothing more: if s's pipe still holds bytes (its destination is slow),
 * the parent's pipe is read no further than what it held now until they
 * are through, so they keep their place before what the parent writes
 * next.
 */
void
stream_hold(struct stream *s)
{
	struct stream	*up = stream_up(s);

	if (up == NULL || s->holding || s->fd == -1 || stream_avail(s) == 0)
		return;
	s->holding = 1;
	s->hold_off = up->bytes + stream_avail(up);
	stream_hold_update(up);
}

/*
 * One pass over the quiet pipes: what a child wrote is read (and its
 * source announced); a pipe at end of file closes; one that showed life,
 * or outlived a pass, is watched like any other from now on.
 */
static void
source_quiet_cb(int fd, short what, void *arg)
{
	struct stream	*s;
	unsigned	 gen = ++quiet_gen;

	while ((s = TAILQ_FIRST(&quiet)) != NULL && s->qgen != gen) {
		TAILQ_REMOVE(&quiet, s, qentry);
		s->quiet = 0;
		/* Its parent's bytes first (stream_move); it may close. */
		if (stream_move(s, 0) != 0)
			continue;
		if (s->bytes == 0 && s->qgen + 1 == gen) {
			s->quiet = 1;
			s->qgen = gen;
			TAILQ_INSERT_TAIL(&quiet, s, qentry);
			continue;
		}
		if (event_add(s->ev, NULL) != 0)
			fatalx("cannot watch a pipe");
	}
	source_quiet_arm();
}

/* Poll the quiet pipes soon, if there are any. */
static void
source_quiet_arm(void)
{
	struct timeval	tv = { 0, QUIET_POLL_MS * 1000 };

	if (TAILQ_EMPTY(&quiet))
		return;
	if (quiet_timer == NULL && (quiet_timer = evtimer_new(base,
	    source_quiet_cb, NULL)) == NULL)
		fatalx("out of memory for a timer");
	if (!evtimer_pending(quiet_timer, NULL))
		evtimer_add(quiet_timer, &tv);
}

/* What a forked child's source_open says besides the common fields. */
static void
source_fork_fields(struct jw *w, struct source *src, const void *arg)
{
	(void)arg;
	jw_lit(w, ",\"ppid\":");
	jw_int(w, src->ppid);
	jw_lit(w, ",\"forked\":true,\"parent_source\":");
	jw_int(w, (long long)src->fork_of);
	source_argv_json(w, src->argv);
	source_streams_json(w, src, "streams", STREAMS_ALL);
}

/*
 * The source_open event of a forked child, written before its first
 * record: the program is its parent's (argv), the pid its own.
 */
void
source_fork_event(struct source *src)
{
	src->announced = 1;
	source_open_log(src, source_fork_fields, NULL);
}

uint64_t
source_fork(long pid, const dev_t *dev, const ino_t *ino, const long *held,
    int *fds, int nfds, char **cause)
{
	struct source	*src, *up = NULL;
	struct stream	*s, key, *parent[2];
	struct stat	 sb[2];
	size_t		 avail;
	int		 i;

	if (nfds < 1 || nfds > 2) {
		xasprintf(cause, "fork carries %d descriptors", nfds);
		return (0);
	}
	for (i = 0; i < nfds; i++) {
		key.dev = dev[i];
		key.ino = ino[i];
		parent[i] = RB_FIND(streams, &stream_tree, &key);
		if (parent[i] == NULL ||
		    parent[i]->fd == -1 || (up != NULL && parent[i]->src != up) ||
		    (i == 1 && parent[1] == parent[0])) {
			xasprintf(cause, "fork names a pipe that is not an "
			    "open capture pipe of one source");
			return (0);
		}
		up = parent[i]->src;
		if (source_check_pipe(fds[i], &sb[i]) != 0) {
			xasprintf(cause, "fork: descriptor is not a pipe's "
			    "read end");
			return (0);
		}
		key.dev = sb[i].st_dev;
		key.ino = sb[i].st_ino;
		if (RB_FIND(streams, &stream_tree, &key) != NULL ||
		    dest_known(sb[i].st_dev, sb[i].st_ino)) {
			xasprintf(cause, "fork: the pipe is one the collector "
			    "already reads or writes");
			return (0);
		}
	}
	src = source_new(pid, up->rank, up->world_size, up->host, up->argv);
	src->ppid = up->pid;
	src->rank_late = up->rank_late;
	src->fork_of = up->id;
	src->anchor = up->fork_of != 0 ? up->anchor : up->id;
	/* A helper's worker is one; so is a fork that already ran a program
	 * of its own (its registration came first). */
	src->helper = up->helper || (up->rank >= 0 &&
	    source_registered_as(pid, up->rank));
	/* On the console a worker is its parent: its rank, its group. */
	memcpy(src->prefix, up->prefix, sizeof src->prefix);
	src->origin = up->origin;
	src->origin.prefix = src->prefix;
	for (i = 0; i < nfds; i++) {
		s = stream_new(src, parent[i]->which, fds[i], &sb[i]);
		s->updev = parent[i]->dev;
		s->upino = parent[i]->ino;
		/*
		 * Its parent's bytes written before the fork go first. They
		 * are at most those read and those the pipe holds now, and
		 * at most those read and those it held at the fork (bytes
		 * read since then count twice: never too few).
		 */
		avail = stream_avail(parent[i]);
		if (held[i] >= 0 && (size_t)held[i] < avail)
			avail = (size_t)held[i];
		s->fork_off = parent[i]->bytes + avail;
		stream_route_as(s, parent[i]);
		fds[i] = -1;
		/* Polled until it shows life, not watched (source_quiet_cb). */
		stream_attach(s, 0);
		s->quiet = 1;
		s->qgen = quiet_gen;
		TAILQ_INSERT_TAIL(&quiet, s, qentry);
	}
	source_add(src);
	forward_fork(src, up);
	source_quiet_arm();
	log_debug("source %llu: pid %ld, forked from source %llu",
	    (unsigned long long)src->id, pid, (unsigned long long)up->id);
	/* Its parent's reader already gone: EPIPE at the first write. */
	return (source_check_gone(src));
}

void
source_on_pending_forks(int (*fn)(long, int))
{
	pending_forks = fn;
}

/*
 * The stream reading the pipe of key. A pipe not known may be a forked
 * child's whose registration is still queued (its exec'd program
 * registering, its parent asking to drain it): those are read first.
 */
struct stream *
source_find_pipe(struct stream *key)
{
	struct stream	*s;

	if ((s = RB_FIND(streams, &stream_tree, key)) != NULL ||
	    pending_forks == NULL)
		return (s);
	(void)pending_forks(-1, 0);
	return (RB_FIND(streams, &stream_tree, key));
}

void
forked_unquiet(struct stream *s)
{
	TAILQ_REMOVE(&quiet, s, qentry);
	s->quiet = 0;
}

/*
 * A stream of destination d closed: the quiet pipes feeding d whose
 * writers are all gone (a script's subshells, ended before it) close now,
 * not at the next poll, so that d's reader (`| wc`) sees its end of file
 * when the last writer goes.
 */
void
forked_quiet_ended(struct dest *d)
{
	static int	 busy;
	struct stream	*s;
	struct pollfd	 pfd;

	/* Only a pipe's or a socket's reader waits for an end of file. */
	if (busy || !dest_is_stream(d))
		return;
	busy = 1;
	for (;;) {
		TAILQ_FOREACH(s, &quiet, qentry) {
			pfd.fd = s->fd;
			pfd.events = POLLIN;
			if (s->dest == d && poll(&pfd, 1, 0) == 1 &&
			    (pfd.revents & POLLHUP))
				break;
		}
		if (s == NULL)
			break;
		/* Open still (its end not read yet): watched from now on. */
		if (stream_move(s, 0) != -1 && s->quiet) {
			forked_unquiet(s);
			if (event_add(s->ev, NULL) != 0)
				fatalx("cannot watch a pipe");
		}
	}
	busy = 0;
}

void
forked_pending(long pid)
{
	if (pending_forks != NULL)
		(void)pending_forks(pid, 0);
}

void
forked_close(void)
{
	if (quiet_timer != NULL) {
		event_free(quiet_timer);
		quiet_timer = NULL;
	}
}
