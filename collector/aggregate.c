/*
 * Aggregation of the console view: lines of different processes that say
 * the same thing are printed once, with who said them.
 *
 * Order. Groups are printed in the order they were created, each at most
 * the window (default 0.25 s, never more than 0.5 s) after its first line
 * arrived, so a line is seen soon and nothing overtakes what was written
 * before it. A line joins the oldest waiting group of its kind created
 * after the group of its source's previous line on the same stream (two
 * pipes keep no order between them), or starts a new one:
 * so one source's lines are always printed in the order it wrote them,
 * and the n-th "step N" of every rank pairs with the n-th of the others.
 * Across its two streams, a source's lines print in the order they were
 * read where that splits no group (agg_group_later).
 *
 * Kind. A line's template is its text with variable tokens masked (any
 * word containing a digit, numbers, hex) and white space folded, hashed
 * as it is read. A template no waiting group has is compared by a banded
 * edit distance with a few recent groups of its stream and severity, and
 * joins one if the distance is below 0.15 of the longer length (the
 * seed's rule). Lines of launchers (no rank) and of ranks never mix.
 *
 * Blocks. A traceback is taken whole, from its first line to its last,
 * and groups with other sources' of the same templates line by line,
 * shown once with the values that differ. A progress bar's last state
 * stays its process's own line.
 *
 * Bounds. Past a number of waiting groups or bytes, the oldest groups
 * are printed early; memory stays bounded whatever the rate.
 */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "aggregate.h"

/* The longest a line waits, whatever the window asked: the console stays
 * live (a line on screen within half a second). */
#define AGG_HOLD_MAX		0.5
/* Waiting groups and bytes; past either the oldest are printed. */
#define AGG_MAX_GROUPS		16384
#define AGG_MAX_BYTES		(16 * 1024 * 1024)
/* Hash buckets for templates, sources and signatures. */
#define AGG_BUCKETS		4096
/* Literal letters a template needs before it may group different text. */
#define AGG_MIN_LETTERS		3
/* A traceback whose exception line came this long ago (s) is whole: a
 * chained one would have followed at once. */
#define AGG_BLOCK_QUIET		0.1
/* A block is closed past this many lines or bytes. */
#define AGG_BLOCK_LINES		1000
#define AGG_BLOCK_BYTES		(256 * 1024)

struct agg_block {
	enum block_state	 state;
	double			 start;
	double			 last;		/* when its last line came */
	char			*buf;		/* lines joined by '\n' */
	size_t			 len;
	size_t			 cap;
	size_t			 nlines;
	int			 severity;	/* the highest of its lines */
	uint64_t		 serial;	/* its place, from its start */
	uint64_t		 us;		/* when its first line was read */
	TAILQ_ENTRY(agg_src)	 entry;		/* open blocks, by start */
};

struct agg_src {
	uint64_t		 id;
	uint64_t		 last[2];	/* serial of its last group, per
						 * stream (two pipes: no order
						 * between them) */
	long			 rank;
	long			 pid;
	long			 world;
	char			 prefix[64];
	/* Where its last group was when it joined: a guess, checked. */
	const struct agg_queue	*hint_q[2];
	size_t			 hint_i[2];
	struct agg_block	 blk[2];
	int			 open[2];	/* on the open list */
	struct agg_src		*hnext;
};

/* The waiting groups of one key, oldest first. */
struct agg_queue {
	uint64_t		 key;
	struct agg_group	**v;
	size_t			 head;
	size_t			 n;
	size_t			 cap;
	struct agg_queue	*hnext;
};

TAILQ_HEAD(agg_groups, agg_group);
TAILQ_HEAD(agg_blocks, agg_src);

static double			 agg_window;	/* as asked */
static double			 agg_hold;	/* the longest a line waits */
static double			 (*agg_clock)(void);
static struct event		*agg_timer;
static double			 agg_armed;	/* 0: not armed */
static aggregate_print_cb	 print_line, print_group;
static struct agg_groups	 waiting = TAILQ_HEAD_INITIALIZER(waiting);
static struct agg_blocks	 blocks[2] = { TAILQ_HEAD_INITIALIZER(blocks[0]),
				    TAILQ_HEAD_INITIALIZER(blocks[1]) };
static size_t			 ngroups, nbytes, nsrcs, sweep_at = 1024;
static struct agg_queue		*qbucket[AGG_BUCKETS];
static struct agg_src		*sbucket[AGG_BUCKETS];
static uint64_t			 agg_lines, agg_printed, agg_serial, agg_bars;

static void	aggregate_timer_cb(int, short, void *);
static void	agg_block_close(struct agg_src *, int);

/* Now, in seconds: the loop's time, or the tests' clock. */
static double
agg_now(void)
{
	struct timeval	tv;

	if (agg_clock != NULL)
		return (agg_clock());
	if (base == NULL || event_base_gettimeofday_cached(base, &tv) == -1)
		gettimeofday(&tv, NULL);
	return ((double)tv.tv_sec + (double)tv.tv_usec / 1e6);
}

/*
 * Forget sources that have no open block and no waiting group: the
 * table follows the live processes, not every process ever seen.
 */
static void
agg_sweep(void)
{
	struct agg_group	*h = TAILQ_FIRST(&waiting);
	struct agg_src		*s, **pp;
	uint64_t		 oldest = h != NULL ? h->serial : UINT64_MAX;
	size_t			 i;

	for (i = 0; i < AGG_BUCKETS; i++) {
		for (pp = &sbucket[i]; (s = *pp) != NULL;) {
			if (s->open[0] || s->open[1] || s->last[0] >= oldest ||
			    s->last[1] >= oldest) {
				pp = &s->hnext;
				continue;
			}
			*pp = s->hnext;
			free(s->blk[0].buf);
			free(s->blk[1].buf);
			free(s);
			nsrcs--;
		}
	}
	sweep_at = nsrcs * 2 > 1024 ? nsrcs * 2 : 1024;
}

/* The aggregator's entry for source id, or NULL. */
static struct agg_src *
agg_src_find(uint64_t id)
{
	struct agg_src	*s;

	for (s = sbucket[id % AGG_BUCKETS]; s != NULL; s = s->hnext) {
		if (s->id == id)
			break;
	}
	return (s);
}

/* The aggregator's entry for the source of o, made up to date. */
static struct agg_src *
agg_src_get(const struct origin *o)
{
	struct agg_src	*s, **b = &sbucket[o->id % AGG_BUCKETS];

	if ((s = agg_src_find(o->id)) == NULL) {
		if (nsrcs >= sweep_at)
			agg_sweep();
		s = xcalloc(1, sizeof *s);
		s->id = o->id;
		s->rank = -2;
		s->hnext = *b;
		*b = s;
		nsrcs++;
	}
	if (s->rank != o->rank || s->pid != o->pid) {
		s->rank = o->rank;
		s->pid = o->pid;
		strlcpy(s->prefix, o->prefix, sizeof s->prefix);
	}
	s->world = o->world;
	return (s);
}

/*
 * Up to AGG_QSPARE emptied queues of at most AGG_QSMALL slots are kept
 * for the next: a template seen once (a line of numbers only, which is
 * its own template) makes a queue and empties it.
 */
#define AGG_QSPARE		256
#define AGG_QSMALL		16
static struct agg_queue	*agg_qspare[AGG_QSPARE];
static size_t		 agg_nqspare;

/* The queue of key's waiting groups; made when create is set. */
static struct agg_queue *
agg_queue(uint64_t key, int create)
{
	struct agg_queue	*q, **b = &qbucket[key % AGG_BUCKETS];

	for (q = *b; q != NULL; q = q->hnext) {
		if (q->key == key)
			return (q);
	}
	if (!create)
		return (NULL);
	if (agg_nqspare > 0) {
		q = agg_qspare[--agg_nqspare];
		q->head = q->n = 0;
	} else {
		q = xcalloc(1, sizeof *q);
		q->cap = 4;
		q->v = xcalloc(q->cap, sizeof *q->v);
	}
	q->key = key;
	q->hnext = *b;
	*b = q;
	return (q);
}

/* An emptied queue, off its bucket: kept for the next, or freed. */
static void
agg_queue_release(struct agg_queue *q)
{
	if (q->cap <= AGG_QSMALL && agg_nqspare < AGG_QSPARE) {
		agg_qspare[agg_nqspare++] = q;
		return;
	}
	free(q->v);
	free(q);
}

/* Put g in its place in q, which is ordered by serial. */
static void
agg_queue_put(struct agg_queue *q, struct agg_group *g)
{
	size_t	i;

	if (q->n == q->cap) {
		/* Moved down once half is printed: each put costs O(1). */
		if (q->head >= q->cap / 2) {
			memmove(q->v, q->v + q->head, (q->n - q->head) *
			    sizeof *q->v);
			q->n -= q->head;
			q->head = 0;
		} else {
			q->cap *= 2;
			q->v = xrealloc(q->v, q->cap * sizeof *q->v);
		}
	}
	for (i = q->n; i > q->head && q->v[i - 1]->serial > g->serial; i--)
		q->v[i] = q->v[i - 1];
	q->v[i] = g;
	q->n++;
	g->queue = q;
}

/* Where in q the oldest group created after serial after is, or q->n. */
static size_t
agg_queue_index(const struct agg_queue *q, uint64_t after)
{
	size_t	lo = q->head, hi = q->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (q->v[mid]->serial > after)
			hi = mid;
		else
			lo = mid + 1;
	}
	return (lo);
}

/* The oldest group of q created after serial after, or NULL. */
static struct agg_group *
agg_queue_after(const struct agg_queue *q, uint64_t after)
{
	size_t	i = agg_queue_index(q, after);

	return (i < q->n ? q->v[i] : NULL);
}

/* How many groups past the oldest a line looks for its very text. */
#define AGG_LOOK	8

/*
 * Where in q the oldest group after s's last one is. A source most often
 * joins the group after the one it joined last, in the same queue: that
 * place is remembered and checked before the queue is searched.
 */
static size_t
agg_queue_next(const struct agg_queue *q, const struct agg_src *s,
    int which)
{
	size_t	i = s->hint_i[which];

	if (s->hint_q[which] == q && i >= q->head && i < q->n &&
	    q->v[i]->serial == s->last[which])
		return (i + 1);
	return (agg_queue_index(q, s->last[which]));
}

/* Whether a and b, n bytes each, are the same; most differ early. */
static inline int
agg_same(const char *a, const char *b, size_t n)
{
	uint64_t	x, y;

	if (n >= 8) {
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y)
			return (0);
	}
	return (memcmp(a, b, n) == 0);
}

/*
 * The group of q that line of s joins, or NULL for a new one: one begun
 * after s's last line, saying the very same text if one of the first few
 * does, else the oldest its rank is not in yet.
 */
static struct agg_group *
agg_queue_pick(const struct agg_queue *q, const struct agg_src *s,
    int which, const char *line, size_t len, size_t *at)
{
	struct agg_group	*c;
	uint64_t		*rl;
	size_t			 i, end, first;

	if ((first = agg_queue_next(q, s, which)) == q->n)
		return (NULL);
	end = first + AGG_LOOK < q->n ? first + AGG_LOOK : q->n;
	for (i = first; i < end; i++) {
		c = q->v[i];
		if (c->len == len && agg_same(c->text, line, len)) {
			*at = i;
			return (c);
		}
	}
	if ((rl = agg_rank_last(s->rank)) != NULL &&
	    rl[which] >= q->v[first]->serial)
		first = agg_queue_index(q, rl[which]);
	*at = first;
	return (first < q->n ? q->v[first] : NULL);
}

uint64_t
agg_key_newest(const struct agg_group *g)
{
	return (g->queue->v[g->queue->n - 1]->serial);
}

/* Take g, the oldest, off its queue; the queue goes when empty. */
static void
agg_queue_pop(struct agg_group *g)
{
	struct agg_queue	*q = g->queue, **pp;

	if (q->v[q->head] != g)
		fatalx("aggregate: printing out of order");
	if (++q->head < q->n)
		return;
	for (pp = &qbucket[q->key % AGG_BUCKETS]; *pp != q; pp = &(*pp)->hnext)
		;
	*pp = q->hnext;
	agg_queue_release(q);
}

/*
 * A new waiting group for key, in its place by serial (0: the next) in
 * the print order and in its queue.
 */
static struct agg_group *
agg_group_new(uint64_t key, uint64_t serial, int which, int severity,
    int ranked, int flags, int block, const char *text, size_t len,
    double deadline)
{
	/*
	 * The first line is kept with the group, and so is room for
	 * AGG_INLINE members: a node's ranks, without growing (torchrun's
	 * usual), in one allocation.
	 */
	struct agg_group	*g = agg_group_alloc(len), *p;

	g->key = key;
	g->serial = serial != 0 ? serial : ++agg_serial;
	g->deadline = deadline;
	g->which = which;
	g->severity = severity;
	g->ranked = ranked;
	g->flags = flags;
	g->block = block;
	g->members = AGG_INLINE_MEMBERS(g);
	g->capmembers = AGG_INLINE;
	g->text = (char *)(g->members + AGG_INLINE);
	memcpy(g->text, text, len);
	g->len = len;
	g->colour = memchr(text, 0x1b, len) != NULL;
	g->world = -1;
	agg_queue_put(agg_queue(key, 1), g);
	p = TAILQ_LAST(&waiting, agg_groups);
	while (p != NULL && p->serial > g->serial)
		p = TAILQ_PREV(p, agg_groups, entry);
	if (p == NULL)
		TAILQ_INSERT_HEAD(&waiting, g, entry);
	else
		TAILQ_INSERT_AFTER(&waiting, p, g, entry);
	ngroups++;
	nbytes += len;
	return (g);
}

/*
 * Remember where g, the group s just joined, is in its queue: at i when
 * it was found there, else most often the newest (a new group).
 */
static void
agg_hint(struct agg_src *s, const struct agg_group *g, size_t i)
{
	const struct agg_queue	*q = g->queue;

	if (i < q->head || i >= q->n || q->v[i] != g)
		i = q->n - 1;
	s->hint_q[g->which] = q->v[i] == g ? q : NULL;
	s->hint_i[g->which] = i;
}

/* The newest serial s holds on stream w: its last group's, or its open
 * block's. */
static inline uint64_t
agg_src_newest(const struct agg_src *s, int w)
{
	return (s->open[w] && s->blk[w].serial > s->last[w] ?
	    s->blk[w].serial : s->last[w]);
}

/* The source of a waiting group's member: its prefix is the source's. */
static struct agg_src *
agg_member_src(const struct agg_member *m)
{
	return ((struct agg_src *)(void *)((char *)(uintptr_t)m->prefix -
	    offsetof(struct agg_src, prefix)));
}

/*
 * A process joins g, begun before the process's newest line on its other
 * stream. Two pipes keep no order between them, but the collector read
 * that line first: g moves to the end of the print order (a new serial),
 * so the process's lines print as they were read, when that keeps every
 * member's order (none has a later group, open block, or rank's group)
 * and g is not yet due (it then prints at most a window after its
 * deadline). Else only each stream's order is kept.
 */
static void
agg_group_later(struct agg_group *g)
{
	struct agg_queue	*q = g->queue;
	struct agg_src		*t;
	uint64_t		*rl, old = g->serial;
	double			 now = agg_now();
	size_t			 i;

	if (now >= g->deadline)
		return;
	for (i = 0; i < g->nmembers; i++) {
		t = agg_member_src(&g->members[i]);
		rl = agg_rank_last(t->rank);
		if (agg_src_newest(t, 0) > old || agg_src_newest(t, 1) > old ||
		    (rl != NULL && (rl[0] > old || rl[1] > old)))
			return;
	}
	if ((i = agg_queue_index(q, old - 1)) == q->n || q->v[i] != g)
		return;
	memmove(&q->v[i], &q->v[i + 1], (q->n - i - 1) * sizeof *q->v);
	q->v[q->n - 1] = g;
	g->serial = ++agg_serial;
	TAILQ_REMOVE(&waiting, g, entry);
	TAILQ_INSERT_TAIL(&waiting, g, entry);
	/* After what its joiner read first, were that an open block. */
	if (g->deadline < now + agg_hold)
		g->deadline = now + agg_hold;
	for (i = 0; i < g->nmembers; i++) {
		t = agg_member_src(&g->members[i]);
		t->last[g->which] = g->serial;
		if ((rl = agg_rank_last(t->rank)) != NULL &&
		    rl[g->which] == old)
			rl[g->which] = g->serial;
	}
}

/* s said text in g; its next line may only join a later group. */
static void
agg_member_add(struct agg_group *g, struct agg_src *s, const char *text,
    size_t len)
{
	struct agg_member	*m;
	uint64_t		*rl;
	uint32_t		 said;

	if (g->nmembers == g->capmembers) {
		g->capmembers *= 2;
		if (g->members == AGG_INLINE_MEMBERS(g)) {
			m = xmalloc(g->capmembers * sizeof *g->members);
			memcpy(m, g->members, g->nmembers * sizeof *m);
			g->members = m;
		} else
			g->members = xrealloc(g->members, g->capmembers *
			    sizeof *g->members);
	}
	m = &g->members[g->nmembers++];
	/* The fewest (occ is 0 in a new group, said never). */
	said = agg_rank_say(s->rank, g->key);
	if (said - 1 < g->occ - 1)
		g->occ = said;
	m->prefix = s->prefix;
	m->rank = s->rank;
	m->pid = s->pid;
	agg_member_diffs(m, g, text, len);
	if (m->dfrom == len) {
		m->text = g->text;
		m->len = g->len;
		m->chunk = NULL;
	} else {
		m->text = agg_text_keep(text, len, &m->chunk);
		m->len = len;
		nbytes += len;
	}
	if (s->world > g->world)
		g->world = s->world;
	s->last[g->which] = g->serial;
	if ((rl = agg_rank_last(s->rank)) != NULL && rl[g->which] < g->serial)
		rl[g->which] = g->serial;
}

/* Print g, the oldest waiting group, and free it. */
static void
agg_print(struct agg_group *g)
{
	size_t	i;

	TAILQ_REMOVE(&waiting, g, entry);
	agg_queue_pop(g);
	aggmatch_remove(g);
	aggtext_print(g, print_line, print_group);
	agg_printed++;
	for (i = 0; i < g->nmembers; i++) {
		if (g->members[i].text != g->text) {
			nbytes -= g->members[i].len;
			agg_text_drop(&g->members[i]);
		}
	}
	nbytes -= g->len;
	ngroups--;
	if (g->members != AGG_INLINE_MEMBERS(g))
		free(g->members);
	agg_group_release(g);
}

/*
 * Join line of s to its group, made if none waits for it, to be printed
 * by deadline (-1: the window from now).
 */
static uint64_t
agg_join_line(struct agg_src *s, int which, const char *line, size_t len,
    int flags, const struct shape *sh, double deadline, uint64_t us)
{
	struct agg_group	*g = NULL, *c;
	struct agg_queue	*q;
	struct agg_sketch	*sketch = NULL;
	uint64_t		 key, sig[3];
	size_t			 nsig = 0;
	int			 severity = sh->severity, ranked = s->rank >= 0;
	int			 slot = agg_slot(severity), have_sig = 0, apart;
	int			 exact = sh->letters < AGG_MIN_LETTERS;
	size_t			 at = SIZE_MAX;

	key = sh->key;
	if (exact)		/* numbers only: exact text */
		key = shape_bytes(line, len);
	/* A bar's last state is its rank's own: bars never merge. */
	if (flags & SPLIT_PROGRESS)
		key = ++agg_bars;
	key = agg_salt(key, which, severity, ranked);
	q = agg_queue(key, 0);
	/*
	 * A template no group has: is the line close to a waiting group?
	 * Pieces of a cut line (and output without a newline) group by
	 * template only, and are no candidates for others: comparing or
	 * signing each 4 KiB piece would cost far more than reading it.
	 * Nor is a line of numbers only, which groups with its own text
	 * alone (AGG_MIN_LETTERS): each of seq's lines was compared with
	 * eight others, and one close enough joined them.
	 */
	apart = (flags & (SPLIT_TRUNCATED | SPLIT_PARTIAL |
	    SPLIT_PROGRESS)) != 0 || exact;
	if (!apart && q == NULL) {
		nsig = aggmatch_signatures(line, len, sh->key, sig, which,
		    severity, ranked);
		have_sig = 1;
		if ((c = aggmatch_find(which, ranked, slot, sig, nsig, line,
		    len, s->last[which], &sketch)) != NULL) {
			key = c->key;
			q = c->queue;
		}
	}
	if (q != NULL)
		g = agg_queue_pick(q, s, which, line, len, &at);
	if (g == NULL) {
		/* The clock is read for a new group only, not for each line. */
		if (deadline < 0)
			deadline = agg_now() + agg_hold;
		g = agg_group_new(key, 0, which, severity, ranked, flags, 0,
		    line, len, deadline);
		g->us = us;
		if (!apart) {
			if (!have_sig)
				nsig = aggmatch_signatures(line, len, sh->key,
				    sig, which, severity, ranked);
			aggmatch_add(g, ranked, sig, nsig);
			g->sketch = sketch;	/* of its first line */
			sketch = NULL;
		}
	} else if (agg_src_newest(s, !which) > g->serial)
		agg_group_later(g);
	if (sketch != NULL)	/* the line's, when no group kept it */
		free(sketch);
	agg_member_add(g, s, line, len);
	agg_hint(s, g, at);
	return (g->serial);
}

/* Add a line to s's open block on stream which. */
static void
agg_block_add(struct agg_block *b, const char *line, size_t len,
    int severity)
{
	size_t	need = b->len + len + 1;

	if (need > b->cap) {
		b->cap = need * 2;
		b->buf = xrealloc(b->buf, b->cap);
	}
	if (b->nlines > 0)
		b->buf[b->len++] = '\n';
	memcpy(b->buf + b->len, line, len);
	b->len += len;
	b->nlines++;
	nbytes += len + 1;
	if (severity > b->severity)
		b->severity = severity;
}

/* The block s has open on stream which is whole: group it. */
static void
agg_block_close(struct agg_src *s, int which)
{
	struct agg_block	*b = &s->blk[which];
	struct agg_group	*g = NULL;
	struct agg_queue	*q;
	struct shape		 sh;
	uint64_t		 key;
	int			 ranked = s->rank >= 0;

	TAILQ_REMOVE(&blocks[which], s, blk[which].entry);
	s->open[which] = 0;
	b->state = BLK_NONE;
	nbytes -= b->len + 1;
	if (b->nlines == 1) {	/* a header alone is a line */
		shape_of(b->buf, b->len, &sh);
		agg_join_line(s, which, b->buf, b->len, 0, &sh,
		    b->start + agg_hold, b->us);
	} else {
		key = agg_salt(aggtok_block_key(b->buf, b->len,
		    AGG_MIN_LETTERS) ^ b->nlines, which, 1000, ranked);
		if ((q = agg_queue(key, 0)) != NULL)
			g = agg_queue_after(q, s->last[which]);
		if (g == NULL) {
			g = agg_group_new(key, b->serial, which, b->severity,
			    ranked, 0, 1, b->buf, b->len, b->start +
			    agg_hold);
			g->us = b->us;
		} else if (agg_src_newest(s, !which) > g->serial)
			agg_group_later(g);
		agg_member_add(g, s, b->buf, b->len);
	}
	b->len = b->nlines = 0;
	b->severity = 0;
	if (b->cap > 65536) {
		free(b->buf);
		b->buf = NULL;
		b->cap = 0;
	}
}

/* Arm the timer for the next deadline of a group or an open block. */
static void
agg_arm(void)
{
	struct agg_group	*g = TAILQ_FIRST(&waiting);
	struct agg_src		*s;
	struct timeval		 tv;
	double			 next = 0, d;
	int			 have = 0, w;

	if (agg_timer == NULL || agg_hold <= 0)
		return;
	if (g != NULL) {
		next = g->deadline;
		have = 1;
	}
	for (w = 0; w < 2; w++) {
		if ((s = TAILQ_FIRST(&blocks[w])) != NULL && (!have ||
		    s->blk[w].start + agg_hold < next)) {
			next = s->blk[w].start + agg_hold;
			have = 1;
		}
	}
	if (!have || (agg_armed != 0 && agg_armed <= next))
		return;
	d = next - agg_now();
	if (d < 0)
		d = 0;
	tv.tv_sec = (time_t)d;
	tv.tv_usec = (suseconds_t)((d - (double)tv.tv_sec) * 1e6);
	evtimer_add(agg_timer, &tv);
	agg_armed = next;
}

/* Past the bounds: print the oldest groups, close the oldest blocks. */
static void
agg_bound(void)
{
	struct agg_group	*g;
	struct agg_src		*s;

	while (ngroups > AGG_MAX_GROUPS || nbytes > AGG_MAX_BYTES) {
		if ((g = TAILQ_FIRST(&waiting)) != NULL)
			agg_print(g);
		else if ((s = TAILQ_FIRST(&blocks[0])) != NULL)
			agg_block_close(s, 0);
		else if ((s = TAILQ_FIRST(&blocks[1])) != NULL)
			agg_block_close(s, 1);
		else
			break;
	}
}

uint64_t
aggregate_line(int which, const struct origin *o, const char *line,
    size_t len, int flags, const struct shape *sh, uint64_t us)
{
	struct agg_src		*s = agg_src_get(o);
	struct agg_block	*b = &s->blk[which];
	enum block_state	 st;
	uint64_t		 serial = 0;
	int			 piece;

	agg_lines++;
	piece = (flags & (SPLIT_TRUNCATED | SPLIT_PARTIAL)) != 0;
	if (b->state != BLK_NONE) {
		st = piece ? BLK_NONE : block_next(b->state, line, len);
		if (block_in_view(st)) {
			b->state = st;
			b->last = agg_now();
			agg_block_add(b, line, len, sh->severity);
			if (b->nlines >= AGG_BLOCK_LINES ||
			    b->len >= AGG_BLOCK_BYTES)
				agg_block_close(s, which);
			goto out;
		}
		agg_block_close(s, which);
	}
	if (!piece && block_in_view(st = block_start(line, len))) {
		b->state = st;
		b->start = b->last = agg_now();
		b->serial = ++agg_serial;
		b->us = us;
		agg_block_add(b, line, len, sh->severity);
		TAILQ_INSERT_TAIL(&blocks[which], s, blk[which].entry);
		s->open[which] = 1;
		goto out;
	}
	serial = agg_join_line(s, which, line, len, flags, sh, -1, us);
out:
	agg_bound();
	agg_arm();
	return (serial);
}

/*
 * Before groups print, the tracebacks that are whole (their exception
 * line came AGG_BLOCK_QUIET ago, nothing after) close and join them:
 * several ranks' tracebacks of one error, begun a moment apart, print as
 * one block, though each would close at its own deadline or end.
 */
static void
agg_close_whole(double now)
{
	struct agg_src	*s, *sn;
	int		 w;

	for (w = 0; w < 2; w++) {
		TAILQ_FOREACH_SAFE(s, &blocks[w], blk[w].entry, sn) {
			if (s->blk[w].state == BLK_AFTER &&
			    s->blk[w].last + AGG_BLOCK_QUIET <= now)
				agg_block_close(s, w);
		}
	}
}

double
aggregate_news_in(uint64_t id, int ranked)
{
	struct agg_src		*s, *t;
	struct agg_group	*g;
	double			 now = agg_now(), in = 0;
	uint64_t		 last;
	int			 w;

	s = agg_src_find(id);
	/* What the view holds of it, its groups and blocks, when due. */
	last = s == NULL ? 0 : s->last[0] > s->last[1] ? s->last[0] :
	    s->last[1];
	TAILQ_FOREACH(g, &waiting, entry) {
		if (g->serial > last)
			break;
		if (g->deadline - now > in)
			in = g->deadline - now;
	}
	for (w = 0; w < 2; w++) {
		if (s != NULL && s->open[w] &&
		    s->blk[w].start + agg_hold - now > in)
			in = s->blk[w].start + agg_hold - now;
		/* The tracebacks its kind (ranks, or not) write, whole. */
		TAILQ_FOREACH(t, &blocks[w], blk[w].entry) {
			if ((t->rank >= 0) == ranked &&
			    t->blk[w].last + AGG_BLOCK_QUIET - now > in)
				in = t->blk[w].last + AGG_BLOCK_QUIET - now;
		}
	}
	return (in);
}

void
aggregate_tick(void)
{
	struct agg_group	*g;
	struct agg_src		*s;
	double			 now = agg_now() + 0.001;	/* timer slack */
	int			 w;

	for (w = 0; w < 2; w++) {
		while ((s = TAILQ_FIRST(&blocks[w])) != NULL &&
		    s->blk[w].start + agg_hold <= now)
			agg_block_close(s, w);
	}
	if ((g = TAILQ_FIRST(&waiting)) != NULL && g->deadline <= now)
		agg_close_whole(now);
	while ((g = TAILQ_FIRST(&waiting)) != NULL && g->deadline <= now)
		agg_print(g);
	agg_arm();
}

/* A deadline has come. */
static void
aggregate_timer_cb(int fd, short what, void *arg)
{
	agg_armed = 0;
	aggregate_tick();
}

void
aggregate_flush(void)
{
	struct agg_group	*g;
	struct agg_src		*s;
	int			 w;

	for (w = 0; w < 2; w++) {
		while ((s = TAILQ_FIRST(&blocks[w])) != NULL)
			agg_block_close(s, w);
	}
	while ((g = TAILQ_FIRST(&waiting)) != NULL)
		agg_print(g);
}

void
aggregate_source_ended(uint64_t id)
{
	struct agg_src	*s = agg_src_find(id);
	int		 w;

	for (w = 0; s != NULL && w < 2; w++) {
		if (s->open[w])
			agg_block_close(s, w);
	}
}

void
aggregate_flush_source(uint64_t id)
{
	struct agg_src		*s;
	struct agg_group	*g;
	uint64_t		 last;
	int			 w;

	s = agg_src_find(id);
	if (s == NULL)
		return;
	for (w = 0; w < 2; w++) {
		if (s->open[w])
			agg_block_close(s, w);
	}
	agg_close_whole(agg_now());
	/* Groups wait in the order they began: print those up to its last. */
	last = s->last[0] > s->last[1] ? s->last[0] : s->last[1];
	while ((g = TAILQ_FIRST(&waiting)) != NULL && g->serial <= last)
		agg_print(g);
	agg_arm();
}

void
aggregate_set_output(aggregate_print_cb line, aggregate_print_cb group)
{
	print_line = line;
	print_group = group;
}

void
aggregate_set_clock(double (*clock)(void))
{
	agg_clock = clock;
}

void
aggregate_set_window(double secs)
{
	aggregate_flush();
	agg_window = secs;
	agg_hold = secs < AGG_HOLD_MAX ? secs : AGG_HOLD_MAX;
	if (agg_timer == NULL && base != NULL)
		agg_timer = evtimer_new(base, aggregate_timer_cb, NULL);
}

double
aggregate_window(void)
{
	return (agg_window);
}

void
aggregate_stats(uint64_t *lines, uint64_t *printed, size_t *pending)
{
	*lines = agg_lines;
	*printed = agg_printed;
	*pending = ngroups;
}
