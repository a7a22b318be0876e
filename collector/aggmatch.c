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

/*
 * Lines at least this long are first measured by their q-grams: the
 * band of the distance (up to 2 x 256 + 1 cells a byte) then costs far
 * more than a pass over both lines.
 */
#define AGG_BOUND_MIN		200
#define AGG_Q			3
#define AGG_QBINS		8192

/*
 * One edit changes at most AGG_Q of a line's q-grams, each counted out
 * and in: the q-grams of a and b, counted in bins by a hash, differ in
 * at most 2 x AGG_Q x (their distance). Binning only merges counts, so
 * the bound holds for any hash. Random text of 2,000 letters is some 400
 * edits from another by this bound, past the widest band (AGG_BAND_MAX);
 * lines alike but for a few words are close by it too, and take the DP.
 */
static inline uint32_t
agg_qgram(const char *p)
{
	const unsigned char	*u = (const unsigned char *)p;

	return (((uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16) *
	    2654435761U >> (32 - 13));
}

size_t
aggregate_distance_bound(const char *a, size_t la, const char *b,
    size_t lb)
{
	static int32_t	 bins[AGG_QBINS];	/* all zero between calls */
	size_t		 i, l1 = 0;
	uint32_t	 h;

	if (la < AGG_Q || lb < AGG_Q)
		return (0);
	for (i = 0; i + AGG_Q <= la; i++)
		bins[agg_qgram(a + i)]++;
	for (i = 0; i + AGG_Q <= lb; i++)
		bins[agg_qgram(b + i)]--;
	/* Each bin counted once: it is zeroed once counted. */
	for (i = 0; i + AGG_Q <= la; i++) {
		h = agg_qgram(a + i);
		l1 += (size_t)(bins[h] < 0 ? -bins[h] : bins[h]);
		bins[h] = 0;
	}
	for (i = 0; i + AGG_Q <= lb; i++) {
		h = agg_qgram(b + i);
		l1 += (size_t)(bins[h] < 0 ? -bins[h] : bins[h]);
		bins[h] = 0;
	}
	return (l1 / (2 * AGG_Q));
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
    struct agg_group **bestg, size_t *best, double *bestr, uint64_t after)
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
	if (longer >= AGG_BOUND_MIN &&
	    aggregate_distance_bound(c->text, c->len, line, len) > k)
		return;
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
    size_t nsig, const char *line, size_t len, uint64_t after)
{
	struct agg_group	*bestg = NULL;
	struct agg_sig		*e;
	size_t			 i, k, best = 0;
	double			 bestr = 1;

	for (i = 0; i < AGG_CANDIDATES; i++)
		agg_try(recent[which][ranked][slot][i], line, len, &bestg,
		    &best, &bestr, after);
	for (i = 0; i < nsig; i++) {
		if ((e = agg_sig(sig[i], 0)) == NULL)
			continue;
		for (k = 0; k < AGG_SIG_FIRST; k++)
			agg_try(e->first[k], line, len, &bestg, &best, &bestr,
			    after);
		for (k = 0; k < AGG_SIG_RING; k++)
			agg_try(e->ring[k], line, len, &bestg, &best, &bestr,
			    after);
	}
	return (bestg);
}
