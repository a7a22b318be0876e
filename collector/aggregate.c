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
 *
 * Kind. A line's template is its text with variable tokens masked (any
 * word containing a digit, numbers, hex) and white space folded, hashed
 * as it is read. A template no waiting group has is compared by a banded
 * edit distance with a few recent groups of its stream and severity, and
 * joins one if the distance is below 0.15 of the longer length (the
 * seed's rule). Lines of launchers (no rank) and of ranks never mix.
 *
 * Blocks. A traceback is taken whole, from its first line to its last,
 * and groups only with the same bytes from other sources. A progress
 * bar's last state stays its process's own line.
 *
 * Bounds. Past a number of waiting groups or bytes, the oldest groups
 * are printed early; memory stays bounded whatever the rate.
 */

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
/* Recent groups per stream and severity tried by edit distance. */
#define AGG_CANDIDATES		8
/*
 * Widest band of the edit distance: past 1,700 bytes the seed's 15% would
 * cost O(length^2) per candidate; lines that long merge when at most this
 * many edits apart, so every line costs O(length).
 */
#define AGG_BAND_MAX		256
/* Literal letters a template needs before it may group different text. */
#define AGG_MIN_LETTERS		3
/* Groups remembered per signature for edit-distance candidates: the
 * first ones (the seed's representatives) and the latest. */
#define AGG_SIG_FIRST		8
#define AGG_SIG_RING		4
/* A block is closed past this many lines or bytes. */
#define AGG_BLOCK_LINES		1000
#define AGG_BLOCK_BYTES		(256 * 1024)

/* Where a source is in a block of lines. */
enum agg_block_state {
	BLK_NONE,
	BLK_HEAD,	/* "Exception in thread ...": a trace may follow */
	BLK_FRAMES,	/* after "Traceback ...": indented frames */
	BLK_AFTER,	/* after the exception line: a chained one may follow */
	BLK_INDENTED,	/* indented lines under a header (Java, others) */
};

struct agg_block {
	enum agg_block_state	 state;
	double			 start;
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

/*
 * Candidates for the edit distance: groups by the template without its
 * first token, without its last, and without both, so that a line that
 * differs from a group in one word at either end still finds it. Each
 * keeps the first groups (the seed's representatives attract most lines)
 * and the latest; a printed group leaves them.
 */
struct agg_sig {
	uint64_t		 sig;
	struct agg_group	*first[AGG_SIG_FIRST];
	struct agg_group	*ring[AGG_SIG_RING];
	unsigned		 next;
	struct agg_sig		*hnext;
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
static struct agg_sig		*sigbucket[AGG_BUCKETS];
/* Recent groups per stream (2), rankedness (2), severity (0, 10..50). */
static struct agg_group		*recent[2][2][6][AGG_CANDIDATES];
static unsigned			 recent_next[2][2][6];
static uint64_t			 agg_lines, agg_printed, agg_serial, agg_bars;

static void	aggregate_timer_cb(int, short, void *);
static void	agg_block_close(struct agg_src *, int);

/* Hash h made particular to a stream, a severity and rankedness. */
static inline uint64_t
agg_salt(uint64_t h, int which, int severity, int ranked)
{
	h = (h ^ ((uint64_t)(unsigned)which << 32 | (uint64_t)ranked << 40 |
	    (unsigned)severity)) * 0x9e3779b97f4a7c15ULL;
	return (h ^ (h >> 32));
}

size_t
aggregate_distance(const char *a, size_t la, const char *b, size_t lb,
    size_t k)
{
	static size_t	*rows;
	static size_t	 caprows;
	size_t		*p, *c, *t, i, j, lo, hi, best, d;

	if ((la > lb ? la - lb : lb - la) > k)
		return (k + 1);
	if (2 * (lb + 2) > caprows) {
		caprows = 2 * (lb + 2);
		rows = xrealloc(rows, caprows * sizeof *rows);
	}
	p = rows;
	c = rows + lb + 2;
	/* Cells outside the band |i - j| <= k hold k + 1. */
	for (j = 0; j <= lb; j++)
		p[j] = j <= k ? j : k + 1;
	p[lb + 1] = k + 1;
	for (i = 1; i <= la; i++) {
		lo = i > k ? i - k : 1;
		hi = i + k < lb ? i + k : lb;
		c[lo - 1] = lo == 1 ? (i <= k ? i : k + 1) : k + 1;
		best = c[lo - 1];
		for (j = lo; j <= hi; j++) {
			d = p[j - 1] + (a[i - 1] != b[j - 1]);
			if (p[j] + 1 < d)
				d = p[j] + 1;
			if (c[j - 1] + 1 < d)
				d = c[j - 1] + 1;
			c[j] = d > k + 1 ? k + 1 : d;
			if (c[j] < best)
				best = c[j];
		}
		c[hi + 1] = k + 1;
		if (best > k)
			return (k + 1);
		t = p;
		p = c;
		c = t;
	}
	return (p[lb] > k ? k + 1 : p[lb]);
}


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

/* Severity slot 0..5 of a level. */
static int
agg_slot(int severity)
{
	return (severity <= 0 ? 0 : severity >= 50 ? 5 : severity / 10);
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

/* The aggregator's entry for the source of o, made up to date. */
static struct agg_src *
agg_src_get(const struct origin *o)
{
	struct agg_src	*s, **b = &sbucket[o->id % AGG_BUCKETS];

	for (s = *b; s != NULL; s = s->hnext) {
		if (s->id == o->id)
			break;
	}
	if (s == NULL) {
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
	q = xcalloc(1, sizeof *q);
	q->key = key;
	q->cap = 4;
	q->v = xcalloc(q->cap, sizeof *q->v);
	q->hnext = *b;
	*b = q;
	return (q);
}

/* Put g in its place in q, which is ordered by serial. */
static void
agg_queue_put(struct agg_queue *q, struct agg_group *g)
{
	size_t	i;

	if (q->n == q->cap) {
		if (q->head > 0) {
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

/* The oldest group of q created after serial after, or NULL. */
static struct agg_group *
agg_queue_after(const struct agg_queue *q, uint64_t after)
{
	size_t	lo = q->head, hi = q->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (q->v[mid]->serial > after)
			hi = mid;
		else
			lo = mid + 1;
	}
	return (lo < q->n ? q->v[lo] : NULL);
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
	free(q->v);
	free(q);
}

/* The signature entry for sig, created when create is set. */
static struct agg_sig *
agg_sig(uint64_t sig, int create)
{
	struct agg_sig	*e, **b = &sigbucket[sig % AGG_BUCKETS];

	for (e = *b; e != NULL; e = e->hnext) {
		if (e->sig == sig)
			return (e);
	}
	if (!create)
		return (NULL);
	e = xcalloc(1, sizeof *e);
	e->sig = sig;
	e->hnext = *b;
	*b = e;
	return (e);
}

/* Drop g from e's slots; e goes when it holds no group. */
static void
agg_sig_drop(struct agg_sig *e, const struct agg_group *g)
{
	struct agg_sig	**pp;
	size_t		  k;
	int		  any = 0;

	for (k = 0; k < AGG_SIG_FIRST; k++) {
		if (e->first[k] == g)
			e->first[k] = NULL;
		any |= e->first[k] != NULL;
	}
	for (k = 0; k < AGG_SIG_RING; k++) {
		if (e->ring[k] == g)
			e->ring[k] = NULL;
		any |= e->ring[k] != NULL;
	}
	if (any)
		return;
	for (pp = &sigbucket[e->sig % AGG_BUCKETS]; *pp != e;
	    pp = &(*pp)->hnext)
		;
	*pp = e->hnext;
	free(e);
}

/* g no longer names e among its signatures. */
static void
agg_group_forget(struct agg_group *g, const struct agg_sig *e)
{
	size_t	i;

	for (i = 0; i < g->nsigs; i++) {
		if (g->sigs[i] == e) {
			g->sigs[i] = g->sigs[--g->nsigs];
			return;
		}
	}
}

/*
 * The three signatures of a line's template (fewer for very short ones).
 * Only a template new to the waiting groups needs them, so the line is
 * tokenized here rather than for every line.
 */
static size_t
agg_signatures(const char *line, size_t len, uint64_t sig[3], int which,
    int severity, int ranked)
{
	struct shape_tokens	t;
	size_t			n = 0, i, nt;

	shape_tokenize(line, len, &t);
	nt = t.n < SHAPE_MAX_TOKENS ? t.n : SHAPE_MAX_TOKENS;
	if (nt >= 2) {
		sig[n++] = shape_span(&t, 1, nt);
		sig[n++] = shape_span(&t, 0, nt - 1);
	}
	if (nt >= 3)
		sig[n++] = shape_span(&t, 1, nt - 1);
	for (i = 0; i < n; i++)
		sig[i] = agg_salt(sig[i], which, severity, ranked);
	return (n);
}

/* Make g a candidate for the edit distance of lines to come. */
static void
agg_candidate_add(struct agg_group *g, int ranked, const uint64_t *sig,
    size_t nsig)
{
	struct agg_group	**r, *old;
	struct agg_sig		 *e;
	unsigned		 *next;
	size_t			  i, k;

	next = &recent_next[g->which][ranked][agg_slot(g->severity)];
	r = recent[g->which][ranked][agg_slot(g->severity)];
	r[(*next)++ % AGG_CANDIDATES] = g;
	for (i = 0; i < nsig; i++) {
		e = agg_sig(sig[i], 1);
		for (k = 0; k < g->nsigs && g->sigs[k] != e; k++)
			;
		if (k < g->nsigs)	/* two signatures alike */
			continue;
		for (k = 0; k < AGG_SIG_FIRST && e->first[k] != NULL; k++)
			;
		if (k < AGG_SIG_FIRST)
			e->first[k] = g;
		else {
			if ((old = e->ring[e->next % AGG_SIG_RING]) != NULL)
				agg_group_forget(old, e);
			e->ring[e->next++ % AGG_SIG_RING] = g;
		}
		g->sigs[g->nsigs++] = e;
	}
}

/* g is printed: it is no candidate any more. */
static void
agg_candidate_remove(struct agg_group *g)
{
	struct agg_group	**r;
	size_t			  i;

	r = recent[g->which][g->ranked][agg_slot(g->severity)];
	for (i = 0; i < AGG_CANDIDATES; i++) {
		if (r[i] == g)
			r[i] = NULL;
	}
	for (i = 0; i < g->nsigs; i++)
		agg_sig_drop(g->sigs[i], g);
	g->nsigs = 0;
}

/* Distance of line to c if below the seed's threshold and *best. */
static void
agg_try(struct agg_group *c, const char *line, size_t len,
    struct agg_group **bestg, size_t *best, double *bestr)
{
	size_t	longer, k, d;
	double	r;

	if (c == NULL || c == *bestg)
		return;
	longer = c->len > len ? c->len : len;
	if (longer == 0) {
		*bestg = c;
		*bestr = 0;
		return;
	}
	k = (longer * 15 - 1) / 100;	/* largest d with d < 0.15 longer */
	if (k > AGG_BAND_MAX)
		k = AGG_BAND_MAX;
	if ((d = aggregate_distance(c->text, c->len, line, len, k)) > k)
		return;
	r = (double)d / (double)longer;
	/* Ties go to the older group, as the seed's scan finds it first. */
	if (*bestg == NULL || r < *bestr ||
	    (r == *bestr && c->serial < (*bestg)->serial)) {
		*bestg = c;
		*bestr = r;
		*best = d;
	}
}

/*
 * The closest group to line by the seed's rule, among few candidates: the
 * latest groups of the stream and severity, and the first and latest
 * groups of each of the line's signatures.
 */
static struct agg_group *
agg_candidate(int which, int ranked, int slot, const uint64_t *sig,
    size_t nsig, const char *line, size_t len)
{
	struct agg_group	*bestg = NULL;
	struct agg_sig		*e;
	size_t			 i, k, best = 0;
	double			 bestr = 1;

	for (i = 0; i < AGG_CANDIDATES; i++)
		agg_try(recent[which][ranked][slot][i], line, len, &bestg,
		    &best, &bestr);
	for (i = 0; i < nsig; i++) {
		if ((e = agg_sig(sig[i], 0)) == NULL)
			continue;
		for (k = 0; k < AGG_SIG_FIRST; k++)
			agg_try(e->first[k], line, len, &bestg, &best, &bestr);
		for (k = 0; k < AGG_SIG_RING; k++)
			agg_try(e->ring[k], line, len, &bestg, &best, &bestr);
	}
	return (bestg);
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
	struct agg_group	*g = xcalloc(1, sizeof *g), *p;

	g->key = key;
	g->serial = serial != 0 ? serial : ++agg_serial;
	g->deadline = deadline;
	g->which = which;
	g->severity = severity;
	g->ranked = ranked;
	g->flags = flags;
	g->block = block;
	g->text = xmalloc(len == 0 ? 1 : len);
	memcpy(g->text, text, len);
	g->len = len;
	g->world = -1;
	g->capmembers = 4;
	g->members = xcalloc(g->capmembers, sizeof *g->members);
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

/* s said text in g; its next line may only join a later group. */
static void
agg_member_add(struct agg_group *g, struct agg_src *s, const char *text,
    size_t len)
{
	struct agg_member	*m;

	if (g->nmembers == g->capmembers) {
		g->capmembers *= 2;
		g->members = xrealloc(g->members, g->capmembers *
		    sizeof *g->members);
	}
	m = &g->members[g->nmembers++];
	m->prefix = s->prefix;
	m->rank = s->rank;
	m->pid = s->pid;
	if (len == g->len && memcmp(text, g->text, len) == 0) {
		m->text = g->text;	/* most members say the same */
		m->len = g->len;
	} else {
		m->text = xmalloc(len == 0 ? 1 : len);
		memcpy((char *)m->text, text, len);
		m->len = len;
		nbytes += len;
	}
	if (s->world > g->world)
		g->world = s->world;
	s->last[g->which] = g->serial;
}

/* Print g, the oldest waiting group, and free it. */
static void
agg_print(struct agg_group *g)
{
	size_t	i;

	TAILQ_REMOVE(&waiting, g, entry);
	agg_queue_pop(g);
	agg_candidate_remove(g);
	aggtext_print(g, print_line, print_group);
	agg_printed++;
	for (i = 0; i < g->nmembers; i++) {
		if (g->members[i].text != g->text) {
			nbytes -= g->members[i].len;
			free((char *)g->members[i].text);
		}
	}
	nbytes -= g->len;
	ngroups--;
	free(g->members);
	free(g->text);
	free(g);
}

/* Join line of s to its group, made if none waits for it. */
static uint64_t
agg_join_line(struct agg_src *s, int which, const char *line, size_t len,
    int flags, const struct shape *sh, double deadline, uint64_t us)
{
	struct agg_group	*g = NULL, *c;
	struct agg_queue	*q;
	uint64_t		 key, sig[3];
	size_t			 nsig = 0;
	int			 severity = sh->severity, ranked = s->rank >= 0;
	int			 slot = agg_slot(severity), have_sig = 0, piece;

	key = sh->key;
	if (sh->letters < AGG_MIN_LETTERS)	/* numbers only: exact text */
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
	 */
	piece = (flags & (SPLIT_TRUNCATED | SPLIT_PARTIAL |
	    SPLIT_PROGRESS)) != 0;
	if (!piece && q == NULL) {
		nsig = agg_signatures(line, len, sig, which, severity, ranked);
		have_sig = 1;
		if ((c = agg_candidate(which, ranked, slot, sig, nsig, line,
		    len)) != NULL) {
			key = c->key;
			q = c->queue;
		}
	}
	if (q != NULL)
		g = agg_queue_after(q, s->last[which]);
	if (g == NULL) {
		g = agg_group_new(key, 0, which, severity, ranked, flags, 0,
		    line, len, deadline);
		g->us = us;
		if (!piece) {
			if (!have_sig)
				nsig = agg_signatures(line, len, sig, which,
				    severity, ranked);
			agg_candidate_add(g, ranked, sig, nsig);
		}
	}
	agg_member_add(g, s, line, len);
	return (g->serial);
}

/* Whether line begins with the literal lit. */
static int
agg_begins(const char *line, size_t len, const char *lit)
{
	size_t	n = strlen(lit);

	return (len >= n && memcmp(line, lit, n) == 0);
}

#define AGG_TRACEBACK	"Traceback (most recent call last):"

/* The state a line opens a block in, or BLK_NONE. */
static enum agg_block_state
agg_block_start(const char *line, size_t len)
{
	if (agg_begins(line, len, AGG_TRACEBACK))
		return (BLK_FRAMES);
	if (agg_begins(line, len, "Exception in thread "))
		return (BLK_HEAD);
	return (BLK_NONE);
}

/*
 * The state after line in a block in state st, or BLK_NONE when line is
 * not part of it. Python: header, indented frames, the exception's line,
 * then a chained traceback may follow ("During handling of ...", "The
 * above exception ..."). Others: a header and indented lines ("\tat"),
 * "Caused by:" continuing.
 */
static enum agg_block_state
agg_block_next(enum agg_block_state st, const char *line, size_t len)
{
	int	indented = len > 0 && (line[0] == ' ' || line[0] == '\t');

	switch (st) {
	case BLK_HEAD:
		if (agg_begins(line, len, AGG_TRACEBACK))
			return (BLK_FRAMES);
		return (indented ? BLK_INDENTED : BLK_NONE);
	case BLK_FRAMES:
		return (indented ? BLK_FRAMES : BLK_AFTER);
	case BLK_AFTER:
		if (agg_begins(line, len, AGG_TRACEBACK))
			return (BLK_FRAMES);
		if (len == 0 || agg_begins(line, len, "During handling of the "
		    "above exception") || agg_begins(line, len, "The above "
		    "exception was the direct cause"))
			return (BLK_AFTER);
		return (BLK_NONE);
	case BLK_INDENTED:
		if (indented || agg_begins(line, len, "Caused by: "))
			return (BLK_INDENTED);
		return (BLK_NONE);
	default:
		return (BLK_NONE);
	}
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
		key = agg_salt(shape_bytes(b->buf, b->len) ^ b->nlines, which,
		    1000, ranked);
		if ((q = agg_queue(key, 0)) != NULL)
			g = agg_queue_after(q, s->last[which]);
		if (g == NULL) {
			g = agg_group_new(key, b->serial, which, b->severity,
			    ranked, 0, 1, b->buf, b->len, b->start +
			    agg_hold);
			g->us = b->us;
		}
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
	enum agg_block_state	 st;
	uint64_t		 serial = 0;
	int			 piece;

	agg_lines++;
	piece = (flags & (SPLIT_TRUNCATED | SPLIT_PARTIAL)) != 0;
	if (b->state != BLK_NONE) {
		st = piece ? BLK_NONE : agg_block_next(b->state, line, len);
		if (st != BLK_NONE) {
			b->state = st;
			agg_block_add(b, line, len, sh->severity);
			if (b->nlines >= AGG_BLOCK_LINES ||
			    b->len >= AGG_BLOCK_BYTES)
				agg_block_close(s, which);
			goto out;
		}
		agg_block_close(s, which);
	}
	if (!piece && (st = agg_block_start(line, len)) != BLK_NONE) {
		b->state = st;
		b->start = agg_now();
		b->serial = ++agg_serial;
		b->us = us;
		agg_block_add(b, line, len, sh->severity);
		TAILQ_INSERT_TAIL(&blocks[which], s, blk[which].entry);
		s->open[which] = 1;
		goto out;
	}
	serial = agg_join_line(s, which, line, len, flags, sh, agg_now() +
	    agg_hold, us);
out:
	agg_bound();
	agg_arm();
	return (serial);
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
aggregate_render(int which, const struct origin *o, const char *const *text,
    const size_t *len, size_t n, aggregate_print_cb cb)
{
	struct agg_group	g;
	size_t			i;

	if (n == 0)
		return;
	memset(&g, 0, sizeof g);
	g.which = which;
	g.world = -1;
	g.text = (char *)(uintptr_t)text[0];
	g.len = len[0];
	g.members = xcalloc(n, sizeof *g.members);
	for (i = 0; i < n; i++) {
		g.members[i].prefix = o[i].prefix;
		g.members[i].rank = o[i].rank;
		g.members[i].pid = o[i].pid;
		g.members[i].text = text[i];
		g.members[i].len = len[i];
		if (o[i].world > g.world)
			g.world = o[i].world;
	}
	g.nmembers = n;
	aggtext_print(&g, cb, cb);
	free(g.members);
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
