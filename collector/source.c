/*
 * Sources: one per registered process, with a stream per captured fd. Each
 * stream's pipe is read by the event loop, split into records, written to
 * the JSON log and the console view, and teed raw to its destination.
 */

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "source.h"
#include "keeper.h"

const char *const stream_names[2] = { "stdout", "stderr" };

/* Order streams by their pipe, to find a child's inherited pipe. */
static int
stream_cmp(struct stream *a, struct stream *b)
{
	return (devino_cmp(a->dev, a->ino, b->dev, b->ino));
}
RB_GENERATE(streams, stream, entry, stream_cmp)

struct streams		 stream_tree = RB_INITIALIZER(&stream_tree);
struct sourcelist	 sources = TAILQ_HEAD_INITIALIZER(sources);
static uint64_t	 source_next_id;
unsigned		 nsources;

unsigned
source_count(void)
{
	return (nsources);
}

/*
 * Free a source whose streams are all closed, recording the counts unless
 * its relay's own record says them (CLOSE_RELAYED).
 */
void
source_free(struct source *src, enum close_reason reason)
{
	struct summary_proc	 sp;
	struct ending_lines	 tail;
	char		 buf[2048];	/* a host of 255 bytes, escaped */
	struct jw	 w;
	int		 i, k;

	/* A forked child that never wrote was never announced either. */
	if (!src->announced)
		goto out;
	ending_summary(src, &sp);
	sp.relay_lost = reason == CLOSE_RELAY_LOST;
	ending_lines(src, &tail);
	summary_add(&sp, &tail);
	if (reason == CLOSE_RELAYED)
		goto out;
	jw_init(&w, buf, sizeof buf);
	source_event_head(&w, src, "source_closed");
	jw_lit(&w, ",\"reason\":\"");
	jw_lit(&w, close_reason_name(reason));
	jw_lit(&w, "\"");
	ending_fields(&w, src, reason);
	for (k = 0; k < 2; k++) {
		jw_lit(&w, k == 0 ? ",\"lines\":{" : ",\"bytes\":{");
		for (i = 0; i < 2; i++) {
			if (src->st[i] == NULL)
				continue;
			jw_lit(&w, i == 1 && src->st[0] != NULL ? ",\"" : "\"");
			jw_lit(&w, stream_names[i]);
			jw_lit(&w, "\":");
			jw_int(&w, (long long)(k == 0 ? src->st[i]->seq :
			    src->st[i]->bytes));
		}
		jw_lit(&w, "}");
	}
	jw_lit(&w, "}");
	source_log_text(&w);
	log_debug("source %llu (pid %ld) closed: %s",
	    (unsigned long long)src->id, src->pid, close_reason_name(reason));
out:
	aggregate_rank_process(src->live_rank, -1);
	forward_close(src);
	flush_leave(&src->part);
	for (i = 0; i < 2; i++) {
		if (src->st[i] == NULL)
			continue;
		if (src->st[i]->dest != NULL)
			dest_unref(src->st[i]->dest);
		if (src->st[i]->partial_ev != NULL)
			event_free(src->st[i]->partial_ev);
		split_free(&src->st[i]->split);
		keeper_slot_free(src->st[i]->slot);
		outdir_close(src->st[i]);
		free(src->st[i]->jprefix);
		free(src->st[i]);
	}
	if (src->death != NULL)
		event_free(src->death);
	if (src->ending_timer != NULL)
		event_free(src->ending_timer);
	free(src->tail);
	free(src->lead);
	free(src->oom_path);
	if (src->pidfd != -1)
		close(src->pidfd);
	free(src->host);
	json_decref(src->argv);
	json_decref(src->opened);
	free(src);
}

/*
 * Close one stream: emit what is left; the last one closes the source.
 * Unless the collector is exiting (the keeper then forwards what writers
 * still write), the keeper lets go of the stream's pipe too: at EOF it has
 * nothing left to hold, and when the destination's reader is gone the
 * writers must see EPIPE, which needs every read end closed. The
 * destination goes too: its reader (`wc` in `seq | wc`) sees EOF when the
 * writers are gone, not when the process's status comes, nor when quiet
 * pipes of ended children are next polled.
 */
void
stream_close(struct stream *s, enum close_reason reason)
{
	struct source	*src = s->src;
	struct dest	*d;

	if (s->quiet)
		forked_unquiet(s);
	stream_bytes_end(s);
	dest_unwatch(&s->watch);
	event_free(s->ev);
	s->ev = NULL;
	close(s->fd);
	s->fd = -1;
	RB_REMOVE(streams, &stream_tree, s);
	/* A reaped child's bytes are through, or lost with its reader. */
	if (s->holding)
		stream_release(s);
	/* Children waiting for its bytes wait no more. */
	if (s->wait_at != UINT64_MAX)
		stream_kids_wake(s);
	if (reason != CLOSE_COLLECTOR_EXIT) {
		keeper_close(src->id, 1u << s->which);
		d = s->dest;
		s->dest = NULL;
		forked_quiet_ended(d);
		dest_unref(d);
	}
	if (--src->nopen == 0)
		source_end(src, reason);
}

/* Stop reading s until its destination has room (back-pressure). */
void
stream_pause(struct stream *s)
{
	if (s->paused)
		return;
	s->paused = 1;
	/* Watched from now on: room for it wakes it. */
	if (s->quiet)
		forked_unquiet(s);
	event_del(s->ev);
}

/*
 * The view replaces its terminal's raw bytes, line by line, prefixed. A
 * program that takes the terminal out of canonical mode (less, vim, top,
 * a line editor at its prompt) draws on it: while it is so, the bytes
 * bound for it pass raw, as without meshlog, after what the view still
 * held, and the log has their lines still.
 */
static void
stream_raw(struct stream *s)
{
	int	raw = s->viewtty && dest_tty_raw(s->dest);

	/* A line begun raw ends raw: its start is on the screen already. */
	if (!raw && s->raw && split_holding(&s->split))
		raw = 1;
	if (raw && !s->raw) {
		aggregate_flush();
		console_live_stop();
	} else if (raw)
		/* Its process's lines the view holds go first: an error
		 * written before its prompt (readline, pdb) was drawn. */
		aggregate_flush_source(s->src->id);
	s->raw = raw;
}

/* s's pipe ran dry: a line it ends in may be a prompt; its bytes are in. */
static void
stream_dry(struct stream *s)
{
	split_pause(&s->split);
	stream_watch_partial(s);
	if (s->holding)
		stream_release(s);
}

/*
 * Move at most max bytes (0: as many as there are) in at most reads reads
 * (0: any number) from s's pipe to its destination and its records, until
 * the pipe would block or the destination is full. Returns -1 when the
 * stream closed (and s may be gone), 1 when it waits for its destination,
 * else 0.
 */
static int
stream_move_at_most(struct stream *s, size_t max, int reads)
{
	static char		 own[SOURCE_READ];
	const struct dest_note	*note;
	char			*buf;
	size_t			 n, done = 0, want;
	enum dest_rc		 rc;
	struct timespec		 now;
	int			 nread = 0;

	if (stream_order(s) != 0) {
		stream_pause(s);
		return (1);
	}
	/* Held by a reaped child: no further than what came before it. */
	if (stream_held(s))
		return (1);
	if (s->held && (max == 0 || s->hold_at - s->bytes < max))
		max = (size_t)(s->hold_at - s->bytes);
	for (;;) {
		want = SOURCE_READ;
		if (max > 0 && max - done < want)
			want = max - done;
		/* Read to a count (a drain's): dry as if a read found it so. */
		if (want == 0) {
			if (stream_avail(s) == 0)
				stream_dry(s);
			return (stream_held(s));
		}
		/* Where the keeper finds it if we die reading or cutting it. */
		buf = handover_read_buf(s, own, &note);
		stream_raw(s);
		rc = dest_pass(s->tee || s->raw ? s->dest : NULL, &s->watch,
		    s->fd, buf, want, &n, note);
		switch (rc) {
		case DEST_OK:
			clock_gettime(CLOCK_REALTIME, &now);
			if (note != NULL)
				handover_read_done(n, &now);
			stream_bytes_at(s, buf, n, &now);
			if (s->raw && n > 0)
				console_raw_passed(s->which, s->src->prefix,
				    buf[n - 1] != '\n');
			done += n;
			if (s->bytes >= s->wait_at)
				stream_kids_wake(s);
			/*
			 * The rest waits for the next pass; a pipe dry now is
			 * read once more, to see it dry (DEST_EMPTY).
			 */
			if (reads > 0 && ++nread >= reads &&
			    stream_avail(s) > 0)
				return (0);
			continue;
		case DEST_EMPTY:
			stream_dry(s);
			return (0);
		case DEST_FULL:
			stream_pause(s);
			return (1);
		case DEST_GONE:
			stream_close(s, CLOSE_READER_GONE);
			return (-1);
		case DEST_ERROR:
			log_warn("source %llu %s: read: %s",
			    (unsigned long long)s->src->id,
			    stream_names[s->which], strerror(errno));
			/* FALLTHROUGH */
		case DEST_EOF:
			/* Children it forked name this pipe: register them. */
			forked_pending(s->src->pid);
			stream_close(s, CLOSE_EOF);
			return (-1);
		}
	}
}

int
stream_move(struct stream *s, size_t max)
{
	return (stream_move_at_most(s, max, 0));
}

/*
 * A pipe is readable: a bounded share of work per loop pass, in bytes and
 * reads (a writer as fast as we read never lets its pipe run dry, and held
 * the loop for thousands of one-line reads); the rest is read next pass
 * (the event is level-triggered). Its quiet children's bytes go first.
 */
void
source_read_cb(int fd, short what, void *arg)
{
	if (!forked_kids_first(arg))
		stream_move_at_most(arg, SOURCE_READ * SOURCE_READS,
		    SOURCE_READS);
}

/* s's destination has room again, or its reader is gone. */
void
stream_watch_cb(void *arg, int gone)
{
	struct stream	*s = arg;

	if (gone) {
		stream_close(s, CLOSE_READER_GONE);
		return;
	}
	/* Held at a reaped child's place: that child resumes it. */
	if (s->held && s->bytes >= s->hold_at)
		return;
	if (s->paused) {
		s->paused = 0;
		if (event_add(s->ev, NULL) != 0)
			fatalx("cannot watch a pipe");
	}
}

/* Check that fd is a pipe's read end; 0 or -1. */
int
source_check_pipe(int fd, struct stat *sb)
{
	int	fl;

	if (fstat(fd, sb) != 0 || !S_ISFIFO(sb->st_mode))
		return (-1);
	if ((fl = fcntl(fd, F_GETFL)) == -1 || (fl & O_ACCMODE) != O_RDONLY)
		return (-1);
	return (fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}

/*
 * Decide where a stream with its own destination goes. Bytes bound for a
 * file or pipe are program data and always reach it; the copy to what a
 * person watches (a terminal, the collector's console) is the tee that
 * --no-tee turns off, since the console view stands in for it. The console
 * view shows what would have reached that person: everything from a
 * process at the top of a job, and from processes inside it only what was
 * bound for a terminal or the console (not a $(...) or a file).
 */
static void
stream_route(struct stream *s, int nested)
{
	int	view = dest_is_view(s->dest);

	s->tee = s->dest != NULL && (!view || cfg.tee);
	s->console = !nested || view;
	s->viewtty = view && !s->tee && dest_is_tty(s->dest);
}

void
stream_route_as(struct stream *s, const struct stream *parent)
{
	s->dest = parent->dest != NULL ? dest_ref(parent->dest) : NULL;
	s->tee = parent->tee;
	s->console = parent->console;
	s->viewtty = parent->viewtty;
	/* Its rank's output when the parent's was: not a helper's answer
	 * through a pipe, passed on by a subshell. */
	s->inherited = parent->inherited || !parent->src->helper;
	if (s->src->helper)	/* a forked helper's: made before this */
		stream_prefix(s, s->src);
}

/* Build a stream's constant JSON fields. */
void
stream_prefix(struct stream *s, struct source *src)
{
	char		buf[2048];	/* a host of 255 bytes, escaped */
	struct jw	w;

	jw_init(&w, buf, sizeof buf);
	jw_lit(&w, "\"host\":");
	jw_str(&w, src->host, strlen(src->host));
	jw_lit(&w, ",\"pid\":");
	jw_int(&w, src->pid);
	jw_lit(&w, ",\"rank\":");
	jw_int_or_null(&w, src->rank);
	jw_lit(&w, ",\"source\":");
	jw_int(&w, (long long)src->id);
	jw_lit(&w, ",\"stream\":\"");
	jw_lit(&w, stream_names[s->which]);
	jw_lit(&w, "\",");
	/* What a rank's helper answered through a pipe: no line of the
	 * rank's (stream_count); meshlogctl logs leaves it out. */
	if (stream_piped(s))
		jw_lit(&w, "\"piped\":true,");
	if (w.overflow)
		fatalx("a source's record prefix does not fit");
	free(s->jprefix);
	s->jprefix = xmalloc(w.len + 1);
	memcpy(s->jprefix, buf, w.len + 1);
	s->jplen = w.len;
}

void
source_rank_set(struct source *src, long rank, long world)
{
	int	i;

	/* What the view holds of it was said under its old label. */
	aggregate_flush_source(src->id);
	src->rank = rank;
	src->world_size = world;
	if (src->ending_reason < 0) {
		aggregate_rank_process(src->live_rank, -1);
		src->live_rank = rank;
		aggregate_rank_process(rank, 1);
	}
	source_label(src);
	for (i = 0; i < 2; i++) {
		if (src->st[i] != NULL)
			stream_prefix(src->st[i], src);
	}
	outdir_rank(src);
}

/*
 * Refuse descriptors that would make the collector feed itself: a pipe it
 * already reads or writes to, or an original that is one of the pipes of
 * the same hello (the tee would write into the pipe it reads). Inherited
 * capture pipes as originals are fine: they are routed to the owner's
 * destination, never written. Returns 0, or -1 with an allocated *cause.
 */
static int
source_check_loops(const struct hello *h, const struct stat *sb,
    const struct stat *ob, const int *ob_ok, char **cause)
{
	struct stream	 key;
	int		 i, k;

	for (i = 0; i < h->nstreams; i++) {
		key.dev = sb[i].st_dev;
		key.ino = sb[i].st_ino;
		if (RB_FIND(streams, &stream_tree, &key) != NULL ||
		    dest_known(sb[i].st_dev, sb[i].st_ino)) {
			xasprintf(cause, "%s: the pipe is one the collector "
			    "already reads or writes", stream_names[h->which[i]]);
			return (-1);
		}
		for (k = 0; k < h->nstreams; k++) {
			if (ob_ok[k] && ob[k].st_dev == sb[i].st_dev &&
			    ob[k].st_ino == sb[i].st_ino) {
				xasprintf(cause, "%s: the destination is the "
				    "pipe being captured",
				    stream_names[h->which[k]]);
				return (-1);
			}
		}
	}
	return (0);
}

struct stream *
stream_new(struct source *src, int which, int fd, const struct stat *sb)
{
	struct stream	*s = xcalloc(1, sizeof *s);

	s->src = src;
	s->which = which;
	s->fd = fd;
	s->dev = sb->st_dev;
	s->ino = sb->st_ino;
	s->wait_at = UINT64_MAX;
	s->slot = keeper_slot_new();
	split_init(&s->split, cfg.line_max);
	stream_prefix(s, src);
	return (s);
}

void
stream_attach(struct stream *s, int watch)
{
	if (s->tee || s->viewtty)
		dest_watch(s->dest, &s->watch, stream_watch_cb, s);
	RB_INSERT(streams, &stream_tree, s);
	s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST, source_read_cb,
	    s);
	if (s->ev == NULL || (watch && event_add(s->ev, NULL) != 0))
		fatalx("cannot watch a pipe");
	s->src->st[s->which] = s;
	s->src->nopen++;
}

static int	source_drain_written(struct source *);

/*
 * A flush asks a local source to drain: the collector owns the pipes, so
 * reading what each one held when the barrier started needs nothing from
 * the writers, and a stopped or busy writer is flushed up to its last
 * byte all the same.
 */
static int
source_part_drain(struct flush_part *p, uint64_t version, int timeout_ms)
{
	return (source_drain_written(p->arg));
}

/* source_describe as a flush participant. */
static json_t *
source_part_describe(struct flush_part *p)
{
	return (source_describe(p->arg));
}

static const struct flush_ops source_flush_ops = {
	source_part_drain, source_part_describe
};

void
source_add(struct source *src)
{
	static char	id[MESHLOG_MSG_MAX / 2];
	size_t		idlen;
	int		i, pipes[2] = { -1, -1 }, dests[2] = { -1, -1 };
	int		slots[2] = { -1, -1 };

	for (i = 0; i < 2; i++) {
		if (src->st[i] == NULL)
			continue;
		pipes[i] = src->st[i]->fd;
		slots[i] = src->st[i]->slot;
		if (src->st[i]->dest != NULL)
			dests[i] = dest_fd(src->st[i]->dest);
	}
	TAILQ_INSERT_TAIL(&sources, src, entry);
	nsources++;
	flush_join(&src->part, FLUSH_SOURCE, &source_flush_ops, src);
	ending_watch(src);
	idlen = handover_identity(src, id, sizeof id);
	keeper_add(src->id, pipes, dests, slots, src->pidfd, src->claim,
	    idlen > 0 ? id : NULL, idlen);
}

uint64_t
source_check_gone(struct source *src)
{
	uint64_t	 id = src->id;
	struct stream	*s;
	int		 i, last;

	for (i = 0; i < 2; i++) {
		if ((s = src->st[i]) == NULL || !s->tee ||
		    !dest_gone(s->dest))
			continue;
		/* Closing the last open stream frees src. */
		last = src->nopen == 1;
		stream_close(s, CLOSE_READER_GONE);
		if (last)
			break;
	}
	return (id);
}

struct source *
source_new(long pid, long rank, long world_size, const char *host,
    json_t *argv)
{
	struct source	*src = xcalloc(1, sizeof *src);

	src->id = ++source_next_id;
	src->pid = pid;
	src->rank = rank;
	src->world_size = world_size;
	src->host = xstrdup(host);
	src->argv = argv != NULL ? json_incref(argv) : json_array();
	src->pidfd = -1;		/* none until watched */
	src->claim = -1;
	src->ending_reason = -1;	/* open */
	src->outplain = -1;		/* --output-dir: not written yet */
	clock_gettime(CLOCK_REALTIME, &src->start);
	/* A rank runs while one of its processes does: "(not: 7)". */
	src->live_rank = rank;
	aggregate_rank_process(rank, 1);
	return (src);
}

/*
 * Helpers of a rank: src is one when its parent is a process of this host
 * with src's rank; and the forked child src was before its exec (its pid,
 * registered first) was no worker of the rank: it became this program.
 * A linear walk, for ranked processes only: a host has few.
 */
static void
source_rank_helpers(struct source *src)
{
	struct source	*p;

	TAILQ_FOREACH(p, &sources, entry) {
		if (p->link != 0 || p->rank != src->rank || p == src)
			continue;
		if (p->pid == src->ppid)
			src->helper = 1;
		else if (p->pid == src->pid && p->fork_of != 0)
			p->helper = 1;
	}
}

struct source *
source_newest_open(long pid)
{
	struct source	*src, *found = NULL;

	TAILQ_FOREACH(src, &sources, entry) {
		if (src->pid == pid && src->nopen > 0)
			found = src;
	}
	return (found);
}

/* Whether a program registered with pid and rank on this host. */
int
source_registered_as(long pid, long rank)
{
	struct source	*p;

	TAILQ_FOREACH(p, &sources, entry) {
		if (p->pid == pid && p->rank == rank && p->link == 0 &&
		    p->fork_of == 0)
			return (1);
	}
	return (0);
}

/*
 * A registering process's source, checked and routed but not yet read or
 * known to the keeper, so that the welcome goes out before the rest of
 * the work (source_start); or NULL with an allocated *cause. Each
 * descriptor is asked fstat once.
 */
struct source *
source_prepare(struct hello *h, int *fds, int nfds, uint64_t *id,
    char **cause)
{
	struct source	*src, *up = NULL;
	struct stream	*s, key, *parent;
	struct stat	 sb[2], ob[2];
	int		 i, ob_ok[2];

	if (nfds != 2 * h->nstreams) {
		xasprintf(cause, "hello names %d streams but carries %d "
		    "descriptors", h->nstreams, nfds);
		return (NULL);
	}
	for (i = 0; i < h->nstreams; i++) {
		if (source_check_pipe(fds[2 * i], &sb[i]) != 0) {
			xasprintf(cause, "%s: descriptor is not a pipe's read "
			    "end", stream_names[h->which[i]]);
			return (NULL);
		}
		ob_ok[i] = fstat(fds[2 * i + 1], &ob[i]) == 0;
	}
	if (source_check_loops(h, sb, ob, ob_ok, cause) != 0)
		return (NULL);
	src = source_new(h->pid, h->rank, h->world_size, h->host, h->argv);
	src->ppid = h->ppid;
	src->announced = 1;
	source_label(src);
	h->inherit[0] = h->inherit[1] = -1;
	h->parent = -1;
	for (i = 0; i < h->nstreams; i++) {
		s = stream_new(src, h->which[i], fds[2 * i], &sb[i]);
		/*
		 * An original that is another source's pipe (a child of a
		 * registered process) is teed where that source's goes,
		 * never into the pipe, so every line is recorded once.
		 */
		key.dev = 0;
		if (ob_ok[i] && S_ISFIFO(ob[i].st_mode)) {
			key.dev = ob[i].st_dev;
			key.ino = ob[i].st_ino;
		}
		parent = key.dev != 0 ? source_find_pipe(&key) : NULL;
		if (parent != NULL) {
			close(fds[2 * i + 1]);
			stream_route_as(s, parent);
			h->inherit[s->which] = parent->which;
			/* A forked child that never wrote is not in the log. */
			h->parent = (long long)(parent->src->announced ?
			    parent->src->id : parent->src->anchor);
			/*
			 * A program a rank's process ran (pyenv's helpers,
			 * git, nvidia-smi) carries the rank in its
			 * environment but is not the rank; the same
			 * process after an exec is.
			 */
			src->helper |= src->rank >= 0 &&
			    parent->src->rank == src->rank &&
			    parent->src->pid != src->pid;
			up = parent->src;
		} else {
			s->dest = ob_ok[i] ? dest_get_stat(fds[2 * i + 1],
			    &ob[i]) : dest_get(fds[2 * i + 1]);
			stream_route(s, h->nested);
		}
		fds[2 * i] = fds[2 * i + 1] = -1;
		src->st[s->which] = s;
	}
	/*
	 * A program started by a process whose rank was told after its
	 * start (a DataLoader worker of mp.spawn's) is its rank's, as a
	 * child of a rank from the environment is.
	 */
	if (src->rank < 0 && up != NULL && up->rank_late) {
		source_rank_set(src, up->rank, up->world_size);
		src->rank_late = src->helper = 1;
	}
	if (src->rank >= 0)
		source_rank_helpers(src);
	for (i = 0; i < 2; i++) {
		if (src->st[i] != NULL && stream_piped(src->st[i]))
			stream_prefix(src->st[i], src);
	}
	/*
	 * Output that passes nowhere raw (only to the log and the view) is
	 * a log, whatever the shim saw: line-buffered, so that lines are not
	 * lost with the process. So is a capture pipe the shim could not
	 * tell from another program's (a forked child's). The welcome says
	 * so.
	 */
	if (h->auto_buffering && src->st[MESHLOG_STDOUT] != NULL &&
	    (!src->st[MESHLOG_STDOUT]->tee || h->inherit[MESHLOG_STDOUT] != -1))
		h->keep_buffering = 0;
	/*
	 * The pidfd now, while the process waits for its welcome: once
	 * answered, it may be gone and its pid another's. After the routing,
	 * which registers the forked child this process was before its exec
	 * (source_find_pipe): watched later, this source hears of the death
	 * first, and the failure is named by it (its rank), not by the fork.
	 */
	ending_watch(src);
	*id = src->id;
	return (src);
}

/*
 * Read src's pipes, give them to the keeper, log that it opened: what
 * source_prepare left. Its id, which is no longer open if every
 * destination's reader had already left.
 */
uint64_t
source_start(struct source *src, struct hello *h)
{
	uint64_t	id;
	int		i;

	for (i = 0; i < 2; i++) {
		if (src->st[i] != NULL)
			stream_attach(src->st[i], 1);
	}
	/* Before source_add: the keeper keeps that too. */
	if (h->runtime)
		source_runtime_on(src);
	source_add(src);
	forward_open(src);

	source_open_event(src, h, h->parent);
	log_debug("source %llu: pid %ld rank %ld", (unsigned long long)src->id,
	    src->pid, src->rank);
	id = source_check_gone(src);
	/* What it wrote since its welcome, before what others wrote since
	 * (`sh -c "echo x >&2"; echo y`: y, in a pipe watched longer). */
	if ((src = source_find(id)) != NULL)
		(void)source_drain_written(src);
	return (id);
}

void
source_runtime_on(struct source *src)
{
	src->runtime = 1;
	/* A pidfd is close-on-exec. */
	if (src->pidfd == -1)
		src->pidfd = (int)syscall(SYS_pidfd_open, (pid_t)src->pid, 0);
}

/*
 * The bytes s's pipe holds now (FIONREAD): whole writes, since a write of
 * up to PIPE_BUF bytes lands in a pipe at once. Moving exactly that many
 * ends where a write ended; asking for more takes the first bytes of a
 * write that lands meanwhile, and a stream sharing the destination (a
 * forked child's, a sibling's) could come between them and the rest,
 * cutting a line the program wrote whole.
 */
size_t
stream_avail(struct stream *s)
{
	int	avail;

	if (ioctl(s->fd, FIONREAD, &avail) == -1 || avail < 0)
		avail = 0;
	return ((size_t)avail);
}

/*
 * What a drain moves: the bytes s's pipe holds now, and one more when no
 * writer is left (none can land, and reading past them finds the end, so
 * the stream closes). Writers are asked first: one that writes and closes
 * after the count must not give a byte the count did not see.
 */
size_t
stream_pending(struct stream *s)
{
	struct pollfd	pfd;

	pfd.fd = s->fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP))
		return (stream_avail(s) + 1);
	return (stream_avail(s));
}

/*
 * At exit: move what s's pipe holds now, waiting for a slow destination
 * while it takes bytes. What it does not take stays in the pipe for the
 * keeper, which goes on once the collector is gone. -1 when s closed.
 */
static int
stream_drain_exit(struct stream *s)
{
	size_t		left = stream_pending(s), before;
	int		rc;

	while (left > 0) {
		before = s->bytes;
		if ((rc = stream_move(s, left)) == -1)
			return (-1);
		left -= s->bytes - before;	/* never more than asked */
		if (rc == 0 || dest_wait_room(s->dest, 2000) != 0)
			break;
	}
	return (0);
}

void
source_drain_all(void)
{
	struct source	*src, *next;
	struct stream	*s;
	int		 i, last;

	TAILQ_FOREACH_SAFE(src, &sources, entry, next) {
		for (i = 0; i < 2; i++) {
			if ((s = src->st[i]) == NULL || s->fd == -1)
				continue;
			/* Closing the last open stream frees src. */
			last = src->nopen == 1;
			if (stream_drain_exit(s) == -1 && last)
				break;
		}
	}
}

void
source_close_all(enum close_reason reason)
{
	struct source	*src;
	struct stream	*s;
	int		 i, last;

	while ((src = TAILQ_FIRST(&sources)) != NULL) {
		for (i = 0; i < 2; i++) {
			if ((s = src->st[i]) == NULL || s->fd == -1)
				continue;
			last = src->nopen == 1;
			stream_close(s, reason);
			if (last)
				break;
		}
	}
	forked_close();
}

size_t
source_console_margin(const struct source *src, int which)
{
	const struct stream	*s;

	if ((s = src->st[which]) == NULL || !s->console ||
	    s->tee || !console_mode()->on)
		return (0);
	return (strlen(src->prefix) + 1);
}

/* The open source with this id, or NULL. */
struct source *
source_find(uint64_t id)
{
	struct source	*src;

	TAILQ_FOREACH(src, &sources, entry) {
		if (src->id == id)
			return (src);
	}
	return (NULL);
}

/*
 * Read every byte src had written to its pipes when called (what FIONREAD
 * counts), not what comes later: 0, or -1 when it closed while draining
 * (then it is freed). What a writer held back by a slow destination has
 * in its pipe stays there: the log follows what the destination took,
 * never gets ahead.
 */
static int
source_drain_written(struct source *src)
{
	struct stream	*s;
	size_t		 n;
	int		 i, last;

	for (i = 0; i < 2; i++) {
		if ((s = src->st[i]) == NULL || s->fd == -1)
			continue;
		/* A pipe whose writers are all gone closes here. */
		last = src->nopen == 1;
		if ((n = stream_pending(s)) > 0 && stream_move(s, n) == -1 &&
		    last)
			return (-1);
	}
	return (0);
}

void
source_drain_now(struct source *src)
{
	(void)source_drain_written(src);
}

int
source_sync_pipe(dev_t dev, ino_t ino, int data)
{
	struct stream	 key, *s;
	int		 fd;

	key.dev = dev;
	key.ino = ino;
	if ((s = source_find_pipe(&key)) == NULL || s->dest == NULL)
		return (EIO);
	(void)source_drain_written(s->src);
	dest_flush_pending();
	/*
	 * Found again: a drain that reads the end of file closes the
	 * stream. The file's own sync, here: the writer waits for it, as
	 * without meshlog, and so does every other stream meanwhile (a
	 * program that syncs its stdout often slows the job's console).
	 */
	if ((s = source_find_pipe(&key)) == NULL || s->dest == NULL ||
	    (fd = dest_fd(s->dest)) == -1)
		return (EIO);
	/* Writes that failed (a full disk) are not on it: the sync says so. */
	if (dest_error(s->dest) != 0)
		return (dest_error(s->dest));
	if ((data ? fdatasync(fd) : fsync(fd)) != 0)
		return (errno);
	return (0);
}

int
source_drain_pipe(dev_t dev, ino_t ino)
{
	struct stream	 key, *s;
	struct source	*src;
	uint64_t	 id;
	int		 i;

	key.dev = dev;
	key.ino = ino;
	if ((s = source_find_pipe(&key)) == NULL)
		return (-1);
	id = s->src->id;
	(void)source_drain_written(s->src);
	/* Asked by a parent that reaped the child: keep the bytes' place. */
	if ((src = source_find(id)) != NULL) {
		for (i = 0; i < 2; i++) {
			if (src->st[i] != NULL)
				stream_hold(src->st[i]);
		}
	}
	return (0);
}
