/*
 * A stream's bytes become records, and each record goes where it belongs:
 * the JSON log, the console view, the upstream (record_route() says why).
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "source.h"
#include "keeper.h"

/* Records of whole lines committed to the log at once, at most. */
#define STREAM_RUN	64

static char		 cur_ts[TS_LEN];	/* of the chunk read */
static uint64_t		 cur_us;

/* Where record_route() sends a record. */
#define ROUTE_LOG	0x1	/* the JSON log */
#define ROUTE_UPSTREAM	0x2	/* this relay's upstream */
#define ROUTE_VIEW	0x4	/* the console view: filter, aggregator */
#define ROUTE_LIVE	0x8	/* the console view, straight: a progress state */

/* Whether s's lines are shown on the console view (not raw just now). */
static inline int
stream_shown(const struct stream *s)
{
	return (s->console && !s->raw);
}

/*
 * Whether a line ends by moving the cursor up (ESC [ n A or F), to be
 * drawn over: a state of a bar below another one (tqdm's nested bars
 * write "\n\r<state>\x1b[A" for each), not a line that stays.
 */
static int
line_redrawn(const char *line, size_t len)
{
	size_t		 k = len < 8 ? len : 8;
	const char	*esc;

	if (len < 3 || (line[len - 1] != 'A' && line[len - 1] != 'F') ||
	    (esc = memrchr(line + len - k, '\x1b', k)) == NULL)
		return (0);
	k = (size_t)(line + len - esc);
	return (visible_redraw((const unsigned char *)esc, k) == k);
}

/*
 * Where a record of stream s goes. With stream_route(), which decides
 * once per stream whether it is shown on the console and whether its raw
 * bytes are copied to the original destination (the tee: bytes, not
 * records), this is the whole answer to "why is this line (not) there":
 *
 * - the JSON log takes every record but a progress state (SPLIT_UPDATE):
 *   a bar's final state is a record, its updates say nothing more;
 * - a launcher's copy of a rank's line (SPLIT_COPY, forward.c) goes to
 *   the log, marked, and upstream, never to the console;
 * - the upstream, on a relay, takes what the log takes, and the progress
 *   states of a stream shown on the console, at most one a second, for
 *   the root's console view (a relay's own view is off);
 * - the console view takes the records of a stream shown there while the
 *   view is on (console_mode): progress states at most one a second,
 *   straight, since each replaces the last (a bar's state cut off by the
 *   writer's pause, SPLIT_PAUSED, is one of them, and so is a line the
 *   writer draws over, redrawn); every other record through the level
 *   filter and the aggregator (console_record).
 */
static unsigned
record_route(struct stream *s, int flags, int redrawn)
{
	unsigned	to = 0;
	time_t		now;

	if (flags & SPLIT_UPDATE) {
		now = time(NULL);
		if (!stream_shown(s) || now == s->last_update)
			return (0);
		s->last_update = now;
		if (console_mode()->on)
			to |= ROUTE_LIVE;
		if (upstream_active())
			to |= ROUTE_UPSTREAM;
		return (to);
	}
	if (jsonlog_active())
		to |= ROUTE_LOG;
	if (upstream_active())
		to |= ROUTE_UPSTREAM;
	/* A launcher's copy: its rank's line is the one shown. */
	if (!stream_shown(s) || !console_mode()->on || (flags & SPLIT_COPY))
		return (to);
	/* A bar cut off by a pause is a state to see, like an update. */
	if ((flags & SPLIT_PAUSED) || redrawn) {
		now = time(NULL);
		if (now != s->last_update)
			to |= ROUTE_LIVE;
		s->last_update = now;
	} else
		to |= ROUTE_VIEW;
	return (to);
}

/*
 * The level of s's record of a whole line (or a cut line's first piece)
 * of this severity: in a traceback, its first line's (severity.c).
 */
static inline int
stream_level(struct stream *s, const char *line, size_t len, int severity,
    int *within)
{
	*within = 0;
	if (s->blk == BLK_NONE && severity == 0)
		return (0);
	return (severity_in_block(&s->blk, &s->blk_level, line, len,
	    severity, within));
}

/*
 * A line of s's of this severity, counted for the summary: not when it
 * continues a block, nor a traceback right after an error line
 * (logging.exception's ERROR line and its traceback are one error); a
 * helper's only where it is its rank's output, not what it answers
 * through a pipe (pyenv's helpers in $(...), nvidia-smi read by the
 * rank).
 */
static inline void
stream_count(struct source *src, struct stream *s, int severity,
    int within)
{
	int	after = s->after_error;

	s->after_error = severity >= 40;
	if (within || (after && s->blk == BLK_FRAMES) || stream_piped(s))
		return;
	if (severity >= 40)
		src->errors++;
	else if (severity >= 30)
		src->warnings++;
}

/*
 * One record of stream s, read here or taken from a relay (ts and us its
 * time), to where record_route() says.
 */
void
stream_emit(struct stream *s, const char *ts, uint64_t us, uint64_t seq,
    const char *line, size_t len, int flags)
{
	struct source	*src = s->src;
	struct shape	 sh = { 0, 0, 0 };
	unsigned	 to;
	size_t		 skip, n;
	struct fwd_match fm;
	int		 copy = 0, plain = flags & SPLIT_PLAIN, level = 0;
	int		 within;
	char		*p;

	/* Only the record is made differently for a plain line. */
	flags &= ~SPLIT_PLAIN;
	if (!src->announced)
		source_fork_event(src);
	/* The dead collector's log has it (a read handed over). */
	if (s->skip > 0 && !(flags & SPLIT_UPDATE)) {
		s->skip--;
		return;
	}
	/* A launcher's copy of a rank's line: the log only, marked. */
	if (src->fwd != NULL && !(flags & SPLIT_UPDATE) &&
	    forward_copy(src, line, len, &fm)) {
		copy = 1;
		flags |= SPLIT_COPY;
	}
	to = record_route(s, flags, !(flags & SPLIT_UPDATE) &&
	    line_redrawn(line, len));
	/* A launcher's copies (here, or its relay's) are not its lines. */
	if ((flags & (SPLIT_COPY | SPLIT_UPDATE)) == SPLIT_COPY)
		src->copies++;
	/*
	 * A line's severity is counted for the summary, from its first
	 * piece when it was cut; the console filters and groups every piece
	 * by its shape.
	 */
	if (!(flags & (SPLIT_UPDATE | SPLIT_COPY))) {
		/* A relay's line is looked at here first (the splitter
		 * marked a local one): its record is a copy when no byte
		 * needs escaping. */
		if (!s->continued || ((to & ROUTE_VIEW) &&
		    (console_mode()->level > 0 ||
		    console_mode()->window > 0))) {
			if (plain)
				shape_of(line, len, &sh);
			else if (shape_whole(line, len, &sh))
				plain = SPLIT_PLAIN;
		}
		within = 0;
		level = s->continued ? sh.severity : stream_level(s, line, len,
		    sh.severity, &within);
		if (!s->continued)
			stream_count(src, s, sh.severity, within);
		s->continued = (flags & SPLIT_TRUNCATED) != 0;
		ending_tail(src, line, len, flags);
	}
	if (to & ROUTE_LOG) {
		p = jsonlog_reserve(RECORD_MAX(len, s->jplen));
		n = record_line(p, ts, us, s->jprefix, s->jplen, seq, line,
		    len, flags | plain, level);
		if (copy)
			n = record_copy_of(p, n, fm.src, fm.seq);
		jsonlog_commit_counted(n, s->slot >= 0 ? keeper_slot(s->slot) :
		    NULL);
	}
	if (src->fwd_to != NULL && s->fwd && !(flags & SPLIT_UPDATE))
		forward_note(src, s->which, seq, line, len,
		    (to & ROUTE_VIEW) != 0);
	/*
	 * The rank's line went only to its launcher (mpirun's pipe): shown
	 * now, as the rank's, where the launcher's copy would have been;
	 * after an earlier line of that rank's found ended only now.
	 */
	if (copy && fm.blen > 0 && !fm.bshown && stream_shown(s) &&
	    console_mode()->on) {
		shape_of(fm.before, fm.blen, &sh);
		console_record(s->which, &fm.borigin, fm.before, fm.blen,
		    flags & ~SPLIT_COPY, &sh, us);
	}
	if (copy && !fm.shown && stream_shown(s) && console_mode()->on) {
		shape_of(fm.text, fm.len, &sh);
		console_record(s->which, &fm.origin, fm.text, fm.len,
		    flags & ~SPLIT_COPY, &sh, us);
	}
	if (to & ROUTE_UPSTREAM)
		upstream_record(src->id, s->which, flags, seq, us, line, len);
	if (!(flags & SPLIT_UPDATE))
		s->seq = seq + 1;
	if (to & ROUTE_LIVE)
		console_live(s->which, &src->origin, line, len);
	if ((to & ROUTE_VIEW) && s->partial_shown > 0) {
		/* Its beginning is on the console already (a prompt). */
		skip = s->partial_shown < len ? s->partial_shown : len;
		console_rest(s->which, &src->origin, line + skip, len - skip,
		    flags, us);
	} else if (to & ROUTE_VIEW)
		console_record(s->which, &src->origin, line, len, flags, &sh,
		    us);
	/* A line is finished: what was shown of it is behind us. */
	if (!(flags & SPLIT_UPDATE))
		s->partial_shown = 0;
}

/* One record from the splitter. */
static void
stream_record_cb(void *arg, const char *line, size_t len, int flags)
{
	struct stream	*s = arg;

	stream_emit(s, cur_ts, cur_us, s->seq, line, len, flags);
}

/* A line left unfinished for this long is shown as it is (a prompt). */
static const struct timeval partial_wait = { 0, 500000 };

/* The unfinished line has waited: show it, unless more came. */
static void
stream_partial_cb(int fd, short what, void *arg)
{
	struct stream	*s = arg;
	const char	*text;
	size_t		 len;

	if (s->bytes != s->partial_at || s->partial_shown > 0 ||
	    !stream_shown(s) || !console_mode()->on ||
	    (text = split_partial(&s->split, &len)) == NULL)
		return;
	console_partial(s->which, &s->src->origin, text, len);
	s->partial_shown = len;
}

/* The pipe ran dry in the middle of a line: watch whether it stays so. */
void
stream_watch_partial(struct stream *s)
{
	size_t	len;

	if (!stream_shown(s) || s->partial_shown > 0 ||
	    split_partial(&s->split, &len) == NULL)
		return;
	if (s->partial_ev == NULL)
		s->partial_ev = evtimer_new(base, stream_partial_cb, s);
	s->partial_at = s->bytes;
	evtimer_add(s->partial_ev, &partial_wait);
}

/*
 * Where s's next whole lines go when they may take stream_lines(): to the
 * log, the console view or both (ROUTE_*), nowhere upstream, nothing
 * skipped, its source no launcher's and forwarding nothing; else 0.
 */
static unsigned
stream_direct(struct stream *s)
{
	struct source	*src = s->src;
	unsigned	 to = record_route(s, 0, 0);

	if ((to & ~(unsigned)(ROUTE_LOG | ROUTE_VIEW)) || s->skip > 0 ||
	    !src->announced || src->fwd != NULL || src->fwd_to != NULL ||
	    s->continued || s->partial_shown > 0)
		return (0);
	return (to);
}

/*
 * The whole lines at the front of p, each to where to says (the log, the
 * console view): what stream_emit() does for them, in a loop that asks
 * where records go once per read. Returns the bytes taken; the splitter
 * takes the rest.
 */
static size_t
stream_lines(struct stream *s, unsigned to, const char *p, size_t n)
{
	struct source		*src = s->src;
	struct keeper_slot	*slot;
	const char		*q = p, *end = p + n;
	struct shape		 sh;
	ssize_t			 len;
	size_t			 k = 0, pend = 0, run;
	size_t			 max = s->split.max;
	uint64_t		 seq0 = s->seq;	/* the lines before, kept */
	int			 plain, level, within;
	char			*rec;

	if (!split_idle(&s->split))
		return (0);
	slot = s->slot >= 0 ? keeper_slot(s->slot) : NULL;
	/*
	 * Records bound for the log alone are committed STREAM_RUN at a
	 * time; the console view may write the log (a destination's drop
	 * notice), so its lines' records are committed one by one.
	 */
	run = to == ROUTE_LOG ? STREAM_RUN : 1;
	for (;;) {
		/* Most lines are plain: their end and shape in one pass. */
		if ((len = shape_line(q, (size_t)(end - q), max, &sh)) >= 0)
			plain = 1;
		else if ((len = split_whole(q, (size_t)(end - q), max,
		    &plain)) >= 0)
			shape_of(q, (size_t)len, &sh);
		else
			break;
		/* A line drawn over is the splitter's (stream_emit). */
		if (!plain && (to & ROUTE_VIEW) && line_redrawn(q,
		    (size_t)len))
			break;
		level = stream_level(s, q, (size_t)len, sh.severity, &within);
		stream_count(src, s, sh.severity, within);
		/* The last lines are kept once the run is through. */
		if (sh.severity >= 40 || src->lead_want > 0)
			ending_traceback(src, q, (size_t)len, s->seq - seq0);
		if (to & ROUTE_LOG) {
			rec = jsonlog_room(pend, RECORD_MAX((size_t)len,
			    s->jplen));
			pend += record_line(rec, cur_ts, cur_us, s->jprefix,
			    s->jplen, s->seq, q, (size_t)len, plain ?
			    SPLIT_PLAIN : 0, level);
			if (++k == run) {
				jsonlog_commit_run(pend, k, slot);
				pend = k = 0;
			}
		}
		s->seq++;
		if (to & ROUTE_VIEW)
			console_record(s->which, &src->origin, q, (size_t)len,
			    0, &sh, cur_us);
		q += len + 1;
	}
	if (k > 0)
		jsonlog_commit_run(pend, k, slot);
	ending_keep_lines(src, p, q, s->seq - seq0);
	return ((size_t)(q - p));
}

/* Bytes of a stream's pipe, read at time *at. */
void
stream_bytes_at(struct stream *s, const char *p, size_t n,
    const struct timespec *at)
{
	const char	*e;
	size_t		 k;
	unsigned	 to;

	record_ts(cur_ts, at);
	cur_us = (uint64_t)at->tv_sec * 1000000 + (uint64_t)at->tv_nsec / 1000;
	s->last_read = *at;
	s->bytes += n;
	outdir_bytes(s, p, n);
	handover_slot_begin(s);
	ending_tail_defer(s->src, p, n);
	/*
	 * Whole lines bound for the log and the view take the short way;
	 * the rest (a line begun in the last read, a progress bar, a line
	 * too long for one record) goes to the splitter, up to its line's
	 * end.
	 */
	while (n > 0 && (to = stream_direct(s)) != 0) {
		k = stream_lines(s, to, p, n);
		p += k;
		n -= k;
		if ((e = memchr(p, '\n', n)) == NULL)
			break;
		k = (size_t)(e - p) + 1;
		split_feed(&s->split, p, k, stream_record_cb, s);
		p += k;
		n -= k;
	}
	split_feed(&s->split, p, n, stream_record_cb, s);
	ending_tail_flush();
	handover_slot_end(s);
}

/* End of stream: what is left of a line is its last record. */
void
stream_bytes_end(struct stream *s)
{
	split_finish(&s->split, stream_record_cb, s);
}
