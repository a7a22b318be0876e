/*
 * Which waiting group a line with a template none of them has is close
 * to, by the seed's rule: a banded edit distance below 0.15 of the longer
 * line, tried against a few candidates only, the latest groups of the
 * line's stream, severity and rankedness, and the first and latest groups
 * of each of its signatures (its template without its first token,
 * without its last, and without both), so that a line that differs from
 * a group in one word at either end still finds it. A printed group
 * leaves every candidate list.
 */

#include <stdlib.h>
#include <string.h>

#include "aggregate.h"

/* Recent groups per stream and severity tried by edit distance. */
#define AGG_CANDIDATES		8
/*
 * Widest band of the edit distance: past 1,700 bytes the seed's 15% would
 * cost O(length^2) per candidate; lines that long merge when at most this
 * many edits apart, so every line costs O(length).
 */
#define AGG_BAND_MAX		256
/* Groups remembered per signature for edit-distance candidates: the
 * first ones (the seed's representatives) and the latest. */
#define AGG_SIG_FIRST		8
#define AGG_SIG_RING		4
/* Hash buckets for signatures. */
#define AGG_SIG_BUCKETS		4096

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

static struct agg_sig		*sigbucket[AGG_SIG_BUCKETS];
/* Recent groups per stream (2), rankedness (2), severity (0, 10..50). */
static struct agg_group		*recent[2][2][6][AGG_CANDIDATES];
static unsigned			 recent_next[2][2][6];

/*
 * The edit distance of a (1 to 64 bytes) and b if at most k, else k + 1,
 * a column of the DP at a time in the bits of two words (Myers' bit-vector
 * algorithm, in Hyyro's form for the distance of whole strings): bit i of
 * pv (mv) says the cell in row i + 1 is one more (less) than the one
 * above. Row 0 is 0, 1, 2, ..., so each column's top cell is one more
 * than the last column's. The last row's cell, d, falls by at most one a
 * column: past k with fewer columns left than its excess, it ends there.
 */
static size_t
agg_distance_bits(const char *a, size_t la, const char *b, size_t lb,
    size_t k)
{
	static uint64_t	 peq[256];	/* all zero between calls */
	uint64_t	 pv = ~0ULL, mv = 0, eq, xv, xh, ph, mh, top;
	size_t		 i, d = la;

	top = 1ULL << (la - 1);
	for (i = 0; i < la; i++)
		peq[(unsigned char)a[i]] |= 1ULL << i;
	for (i = 0; i < lb; i++) {
		eq = peq[(unsigned char)b[i]];
		xv = eq | mv;
		xh = (((eq & pv) + pv) ^ pv) | eq;
		ph = mv | ~(xh | pv);
		mh = pv & xh;
		if (ph & top)
			d++;
		else if (mh & top)
			d--;
		ph = ph << 1 | 1;
		mh <<= 1;
		pv = mh | ~(xv | ph);
		mv = ph & xv;
		if (d > k + (lb - i - 1))
			break;
	}
	for (i = 0; i < la; i++)
		peq[(unsigned char)a[i]] = 0;
	return (d > k ? k + 1 : d);
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
	if (la == 0 || lb == 0)
		return (la + lb > k ? k + 1 : la + lb);
	if (la <= 64)
		return (agg_distance_bits(a, la, b, lb, k));
	if (lb <= 64)
		return (agg_distance_bits(b, lb, a, la, k));
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

/*
 * Lines at least this long are first measured by their q-grams: the
 * band of the distance (up to 2 x 256 + 1 cells a byte) costs far more.
 */
#define AGG_BOUND_MIN		200
#define AGG_Q			3
/* A sketch has 4 bits per byte of its line, 2^n of them, within these. */
#define AGG_SKETCH_MIN		1024
#define AGG_SKETCH_MAX		16384

/*
 * A line's sketch: the set of bins (by a hash) its q-grams fall in. One
 * edit removes at most AGG_Q q-grams and adds at most AGG_Q, and each
 * such change turns at most one bin on or off, so two lines' sketches
 * differ in at most 2 x AGG_Q x (their distance) bins. A sketch of 2^n
 * bins folds into one of 2^(n-1) by OR-ing its halves (a bin is the
 * hash's low bits), which merges bins and keeps the bound. Random text
 * of 2,000 letters is some 460 edits from another by it, past the widest
 * band; lines alike but for a few words are close by it too, and take
 * the DP. A group's sketch is made once, when it is first a candidate.
 */
struct agg_sketch {
	size_t		bits;
	uint64_t	w[];
};

static size_t
agg_sketch_bits(size_t len)
{
	size_t	bits = AGG_SKETCH_MIN;

	while (bits < 4 * len && bits < AGG_SKETCH_MAX)
		bits <<= 1;
	return (bits);
}

static void
agg_sketch_fill(struct agg_sketch *k, size_t bits, const char *p, size_t n)
{
	const unsigned char	*u = (const unsigned char *)p;
	uint64_t		 h;
	size_t			 i;

	k->bits = bits;
	memset(k->w, 0, bits / 8);
	for (i = 0; i + AGG_Q <= n; i++) {
		h = ((uint64_t)u[i] | (uint64_t)u[i + 1] << 8 |
		    (uint64_t)u[i + 2] << 16) * 0x9e3779b97f4a7c15ULL;
		h = (h >> 29) & (bits - 1);
		k->w[h >> 6] |= 1ULL << (h & 63);
	}
}

/* Bins in which a and b differ, the larger folded to the smaller. */
static inline __attribute__((always_inline)) size_t
agg_sketch_diff_in(const struct agg_sketch *a, const struct agg_sketch *b)
{
	const struct agg_sketch	*t;
	size_t			 i, j, nw, d = 0;
	uint64_t		 x;

	if (a->bits > b->bits) {
		t = a;
		a = b;
		b = t;
	}
	nw = a->bits / 64;
	for (i = 0; i < nw; i++) {
		x = b->w[i];
		for (j = i + nw; j < b->bits / 64; j += nw)
			x |= b->w[j];
		d += (size_t)__builtin_popcountll(a->w[i] ^ x);
	}
	return (d);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* With the POPCNT instruction, where the processor has it. */
__attribute__((target("popcnt"))) static size_t
agg_sketch_diff_popcnt(const struct agg_sketch *a, const struct agg_sketch *b)
{
	return (agg_sketch_diff_in(a, b));
}
#endif

static size_t
agg_sketch_diff(const struct agg_sketch *a, const struct agg_sketch *b)
{
#if defined(__x86_64__) && defined(__GNUC__)
	static int	has = -1;

	if (has == -1)
		has = __builtin_cpu_supports("popcnt") != 0;
	if (has)
		return (agg_sketch_diff_popcnt(a, b));
#endif
	return (agg_sketch_diff_in(a, b));
}

static struct agg_sketch *
agg_sketch_new(const char *p, size_t n)
{
	size_t			 bits = agg_sketch_bits(n);
	struct agg_sketch	*k = xmalloc(sizeof *k + bits / 8);

	agg_sketch_fill(k, bits, p, n);
	return (k);
}

void
aggmatch_forget(struct agg_group *g)
{
	free(g->sketch);
	g->sketch = NULL;
}

size_t
aggregate_distance_bound(const char *a, size_t la, const char *b,
    size_t lb)
{
	struct agg_sketch	*x = agg_sketch_new(a, la), *y;
	size_t			 d;

	y = agg_sketch_new(b, lb);
	d = agg_sketch_diff(x, y) / (2 * AGG_Q);
	free(x);
	free(y);
	return (d);
}

/* The signature entry for sig, created when create is set. */
static struct agg_sig *
agg_sig(uint64_t sig, int create)
{
	struct agg_sig	*e, **b = &sigbucket[sig % AGG_SIG_BUCKETS];

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
	for (pp = &sigbucket[e->sig % AGG_SIG_BUCKETS]; *pp != e;
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
 * Signatures depend on the template only: kept per template key, so that
 * a template's every group (one per line of a flood) costs one lookup.
 */
#define AGG_SIGCACHE	1024
static struct {
	uint64_t	key;
	uint64_t	sig[3];
	size_t		n;
	int		set;
} sigcache[AGG_SIGCACHE];

size_t
aggmatch_signatures(const char *line, size_t len, uint64_t tkey,
    uint64_t sig[3], int which, int severity, int ranked)
{
	struct shape_tokens	t;
	size_t			n = 0, i, nt, slot = tkey % AGG_SIGCACHE;

	if (sigcache[slot].set && sigcache[slot].key == tkey) {
		n = sigcache[slot].n;
		memcpy(sig, sigcache[slot].sig, sizeof sigcache[slot].sig);
	} else {
		shape_tokenize(line, len, &t);
		nt = t.n < SHAPE_MAX_TOKENS ? t.n : SHAPE_MAX_TOKENS;
		if (nt >= 2) {
			sig[n++] = shape_span(&t, 1, nt);
			sig[n++] = shape_span(&t, 0, nt - 1);
		}
		if (nt >= 3)
			sig[n++] = shape_span(&t, 1, nt - 1);
		/* The line's own template is the key it is kept under. */
		if (t.key == tkey) {
			sigcache[slot].key = tkey;
			sigcache[slot].n = n;
			memcpy(sigcache[slot].sig, sig,
			    sizeof sigcache[slot].sig);
			sigcache[slot].set = 1;
		}
	}
	for (i = 0; i < n; i++)
		sig[i] = agg_salt(sig[i], which, severity, ranked);
	return (n);
}

void
aggmatch_add(struct agg_group *g, int ranked, const uint64_t *sig,
    size_t nsig)
{
	struct agg_group	**r, *old;
	struct agg_sig		 *e;
	unsigned		 *next;
	size_t			  i, k;

	g->candidate = 1;
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

void
aggmatch_remove(struct agg_group *g)
{
	struct agg_group	**r;
	size_t			  i;

	if (!g->candidate)
		return;
	g->candidate = 0;
	r = recent[g->which][g->ranked][agg_slot(g->severity)];
	for (i = 0; i < AGG_CANDIDATES; i++) {
		if (r[i] == g)
			r[i] = NULL;
	}
	for (i = 0; i < g->nsigs; i++)
		agg_sig_drop(g->sigs[i], g);
	g->nsigs = 0;
}

/*
 * Distance of line to c if below the seed's threshold and *best, unless
 * no group of c's key was begun after serial after: a process's line
 * joins no group begun before its last one, and a process alone would
 * otherwise compare each new line with its own.
 */
static void
agg_try(struct agg_group *c, const char *line, size_t len,
    struct agg_group **bestg, size_t *best, double *bestr, uint64_t after,
    struct agg_sketch **lk)
{
	size_t	longer, k, d;
	double	r;

	if (c == NULL || c == *bestg || agg_key_newest(c) <= after)
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
	/* Lengths too far apart: no sketch made, no distance taken. */
	if ((c->len > len ? c->len - len : len - c->len) > k)
		return;
	if (longer >= AGG_BOUND_MIN) {
		if (c->sketch == NULL)
			c->sketch = agg_sketch_new(c->text, c->len);
		if (*lk == NULL)
			*lk = agg_sketch_new(line, len);
		if (agg_sketch_diff(c->sketch, *lk) / (2 * AGG_Q) > k)
			return;
	}
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

struct agg_group *
aggmatch_find(int which, int ranked, int slot, const uint64_t *sig,
    size_t nsig, const char *line, size_t len, uint64_t after,
    struct agg_sketch **sketch)
{
	struct agg_group	*bestg = NULL;
	struct agg_sig		*e;
	struct agg_sketch	*lk = NULL;	/* the line's, when asked */
	size_t			 i, k, best = 0;
	double			 bestr = 1;

	for (i = 0; i < AGG_CANDIDATES; i++)
		agg_try(recent[which][ranked][slot][i], line, len, &bestg,
		    &best, &bestr, after, &lk);
	for (i = 0; i < nsig; i++) {
		if ((e = agg_sig(sig[i], 0)) == NULL)
			continue;
		for (k = 0; k < AGG_SIG_FIRST; k++)
			agg_try(e->first[k], line, len, &bestg, &best, &bestr,
			    after, &lk);
		for (k = 0; k < AGG_SIG_RING; k++)
			agg_try(e->ring[k], line, len, &bestg, &best, &bestr,
			    after, &lk);
	}
	*sketch = lk;
	return (bestg);
}
