/*
 * Aggregation of the console view. Within a window, lines of the same
 * stream and detected severity that are similar are kept as one group with
 * a count and the set of ranks (or pids); at the end of the window, at a
 * flush barrier and at exit every group is printed once.
 *
 * Similarity costs O(line length): a line's template is its text with
 * variable tokens masked (any word containing a digit, numbers, hex) and
 * white space folded, hashed as it is read. A line whose template is new
 * is compared by a banded edit distance with the few groups created last
 * for its stream and severity, and joins one if the distance is below
 * 0.15 of the longer length (the seed's rule). Groups print in the order
 * their first source first spoke and, within a source, in its line order,
 * so one source's consecutive lines (a traceback) stay together.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "collector.h"

/* Bounds per window; reaching one prints the window early. */
#define AGG_MAX_GROUPS		8192
#define AGG_MAX_BYTES		(16 * 1024 * 1024)
/* Hash buckets for templates and for sources. */
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
/* Members a group holds in itself before it needs an array. */
#define AGG_INLINE		8
/* Window memory is taken in chunks of this size and given back at once. */
#define AGG_CHUNK		(256 * 1024)

struct agg_member {
	long	rank;
	long	pid;
};

struct agg_group {
	uint64_t		 key;
	uint32_t		 occ;		/* n-th use by each source */
	uint64_t		 serial;
	int			 which;
	int			 severity;
	int			 flags;
	char			*text;
	size_t			 len;
	char			 prefix[64];
	unsigned		 count;
	struct agg_member	*members;	/* inline, or heap past it */
	size_t			 nmembers;
	size_t			 capmembers;
	struct agg_member	 inline_members[AGG_INLINE];
	struct agg_group	*hnext;
	struct agg_group	*snext;		/* the creator's next group */
};

/* How often a source used a template in this window. */
struct agg_occ {
	uint64_t		 src;
	uint64_t		 key;
	uint32_t		 n;
	struct agg_occ		*hnext;
};

/*
 * A source in this window. A source's groups are created in its line
 * order, so printing every source's list, sources in the order they first
 * spoke, prints groups in the order the seed's readers expect, unsorted.
 */
struct agg_source {
	uint64_t		 id;
	struct agg_group	*first;		/* groups it created */
	struct agg_group	*last;
	struct agg_source	*hnext;
};

static double			 agg_window;
static struct event		*agg_timer;
static struct agg_source	**srcs;		/* in the order they spoke */
static size_t			 nsrcs, capsrcs;
static size_t			 ngroups, nbytes;
static struct agg_group		*gbucket[AGG_BUCKETS];
static struct agg_source	*sbucket[AGG_BUCKETS];
static struct agg_occ		*obucket[AGG_BUCKETS];
/*
 * Candidates for the edit distance: groups by the template without its
 * first token, without its last, and without both, so that a line that
 * differs from a group in one word at either end still finds it. Each
 * keeps the first groups (the seed's representatives attract most lines)
 * and the latest.
 */
struct agg_sig {
	uint64_t		 sig;
	struct agg_group	*first[AGG_SIG_FIRST];	/* like the seed's */
	struct agg_group	*ring[AGG_SIG_RING];	/* the latest */
	unsigned		 nfirst;
	unsigned		 next;
	struct agg_sig		*hnext;
};
static struct agg_sig		*sigbucket[AGG_BUCKETS];
/* Ring of recent groups per stream (2) and severity (0, 10..50: 6). */
static struct agg_group		*recent[2][6][AGG_CANDIDATES];
static unsigned			 recent_next[2][6];
static uint64_t			 agg_lines, agg_printed, agg_serial;

/*
 * A window's groups, texts, sources and counters live in chunks that
 * are given back together when the window is printed: a window creates
 * thousands of small objects and frees them all at once.
 */
struct agg_chunk {
	struct agg_chunk	*next;
	size_t			 used;
	size_t			 size;
	max_align_t		 data[];
};
static aggregate_print_cb	 print_line, print_group;
static struct agg_chunk		*chunks;	/* the current one first */
static struct agg_chunk		*spare;		/* kept for the next window */

/* n zeroed bytes until the window ends. */
static void *
agg_alloc(size_t n)
{
	struct agg_chunk	*c;
	size_t			 size;
	void			*p;

	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (chunks == NULL || chunks->size - chunks->used < n) {
		size = n > AGG_CHUNK ? n : AGG_CHUNK;
		if (spare != NULL && spare->size >= size) {
			c = spare;
			spare = NULL;
		} else {
			c = xmalloc(sizeof *c + size);
			c->size = size;
		}
		c->used = 0;
		c->next = chunks;
		chunks = c;
	}
	p = (char *)chunks->data + chunks->used;
	chunks->used += n;
	memset(p, 0, n);
	return (p);
}

/* Give back the window's memory, keeping one chunk for the next. */
static void
agg_release(void)
{
	struct agg_chunk	*c, *next;

	for (c = chunks; c != NULL; c = next) {
		next = c->next;
		if (spare == NULL && c->size == AGG_CHUNK)
			spare = c;
		else
			free(c);
	}
	chunks = NULL;
}

static void	aggregate_timer_cb(int, short, void *);

/* Hash h made particular to a stream and a severity. */
static inline uint64_t
agg_salt(uint64_t h, int which, int severity)
{
	h = (h ^ ((uint64_t)(unsigned)which << 32 | (unsigned)severity)) *
	    0x9e3779b97f4a7c15ULL;
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


/* Order and line number of a source within this window. */
static struct agg_source *
agg_source(uint64_t id)
{
	struct agg_source	*s, **b = &sbucket[id % AGG_BUCKETS];

	for (s = *b; s != NULL; s = s->hnext) {
		if (s->id == id)
			return (s);
	}
	s = agg_alloc(sizeof *s);
	s->id = id;
	s->hnext = *b;
	*b = s;
	if (nsrcs == capsrcs) {
		capsrcs = capsrcs == 0 ? 64 : capsrcs * 2;
		srcs = xrealloc(srcs, capsrcs * sizeof *srcs);
	}
	srcs[nsrcs++] = s;
	return (s);
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
	e = agg_alloc(sizeof *e);
	e->sig = sig;
	e->hnext = *b;
	*b = e;
	return (e);
}

/*
 * The three signatures of a line's template (fewer for very short ones).
 * Only a template new to the window needs them, so the line is tokenized
 * here rather than for every line.
 */
static size_t
agg_signatures(const char *line, size_t len, uint64_t sig[3], int which,
    int severity)
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
		sig[i] = agg_salt(sig[i], which, severity);
	return (n);
}

/* Count one more use of key by source src; returns the previous count. */
static uint32_t
agg_occurrence(uint64_t src, uint64_t key)
{
	struct agg_occ	*o, **b = &obucket[(src * 31 + key) % AGG_BUCKETS];

	for (o = *b; o != NULL; o = o->hnext) {
		if (o->src == src && o->key == key)
			return (o->n++);
	}
	o = agg_alloc(sizeof *o);
	o->src = src;
	o->key = key;
	o->n = 1;
	o->hnext = *b;
	*b = o;
	return (0);
}

/* The group for key's occ-th use, or NULL. */
static struct agg_group *
agg_find(uint64_t key, uint32_t occ)
{
	struct agg_group	*g;

	for (g = gbucket[(key + occ) % AGG_BUCKETS]; g != NULL; g = g->hnext) {
		if (g->key == key && g->occ == occ)
			return (g);
	}
	return (NULL);
}

/* Add o to g's members. */
static void
agg_member_add(struct agg_group *g, const struct origin *o)
{
	if (g->nmembers == g->capmembers) {
		/* Past the inline members: an array of twice as many. */
		g->capmembers *= 2;
		if (g->members == g->inline_members) {
			g->members = xcalloc(g->capmembers,
			    sizeof *g->members);
			memcpy(g->members, g->inline_members,
			    sizeof g->inline_members);
		} else
			g->members = xrealloc(g->members, g->capmembers *
			    sizeof *g->members);
	}
	g->members[g->nmembers].rank = o->rank;
	g->members[g->nmembers].pid = o->pid;
	g->nmembers++;
	g->count++;
}

/* Members in order: ranked first by rank, then by pid. */
static int
agg_member_before(const struct agg_member *x, const struct agg_member *y)
{
	if ((x->rank < 0) != (y->rank < 0))
		return (x->rank >= 0);
	if (x->rank != y->rank)
		return (x->rank < y->rank);
	return (x->pid < y->pid);
}

/* Sort members; few and mostly in order already, so by insertion. */
static void
agg_member_sort(struct agg_member *m, size_t n)
{
	struct agg_member	t;
	size_t			i, j;

	for (i = 1; i < n; i++) {
		t = m[i];
		for (j = i; j > 0 && agg_member_before(&t, &m[j - 1]); j--)
			m[j] = m[j - 1];
		m[j] = t;
	}
}

/* Append the n bytes of p to buf (size bytes in all), as room allows. */
static void
agg_put(char *buf, size_t size, size_t *len, const char *p, size_t n)
{
	if (*len + n >= size)
		n = size - 1 - *len;
	memcpy(buf + *len, p, n);
	*len += n;
	buf[*len] = '\0';
}

/* Append a string literal. */
#define AGG_PUT(buf, size, len, lit)	agg_put((buf), (size), (len), \
					    (lit), sizeof(lit) - 1)

/* Append the decimal v. */
static void
agg_num(char *buf, size_t size, size_t *len, long v)
{
	char	tmp[24];
	size_t	i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	agg_put(buf, size, len, tmp + i, sizeof tmp - i);
}

/* Append "[name a-b,c] " for sorted distinct values v[0..n). */
static void
agg_ranges(char *buf, size_t size, size_t *len, const char *name,
    const long *v, size_t n)
{
	size_t	i = 0, j;

	AGG_PUT(buf, size, len, "[");
	agg_put(buf, size, len, name, strlen(name));
	AGG_PUT(buf, size, len, " ");
	while (i < n && *len + 52 < size) {
		for (j = i; j + 1 < n && v[j + 1] == v[j] + 1; j++)
			;
		if (i > 0)
			AGG_PUT(buf, size, len, ",");
		agg_num(buf, size, len, v[i]);
		if (j > i) {
			AGG_PUT(buf, size, len, "-");
			agg_num(buf, size, len, v[j]);
		}
		i = j + 1;
	}
	if (i < n)
		AGG_PUT(buf, size, len, ",...");
	AGG_PUT(buf, size, len, "] ");
}

/* The prefix of a group of several lines. */
static void
agg_group_prefix(struct agg_group *g, char *buf, size_t size)
{
	static long	*vals;
	static size_t	 capvals;
	long		*ranks, *pids;
	size_t		 i, nr = 0, np = 0, len = 0;

	if (2 * g->nmembers > capvals) {
		capvals = 2 * g->nmembers;
		vals = xrealloc(vals, capvals * sizeof *vals);
	}
	ranks = vals;
	pids = vals + g->nmembers;
	agg_member_sort(g->members, g->nmembers);
	for (i = 0; i < g->nmembers; i++) {
		if (g->members[i].rank >= 0) {
			if (nr == 0 || ranks[nr - 1] != g->members[i].rank)
				ranks[nr++] = g->members[i].rank;
		} else
			pids[np++] = g->members[i].pid;
	}
	buf[0] = '\0';
	AGG_PUT(buf, size, &len, "[");
	agg_num(buf, size, &len, (long)g->count);
	AGG_PUT(buf, size, &len, " similar lines] ");
	if (nr > 0)
		agg_ranges(buf, size, &len, "ranks", ranks, nr);
	if (np > 0)
		agg_ranges(buf, size, &len, np == 1 ? "pid" : "pids", pids,
		    np);
}

void
aggregate_set_output(aggregate_print_cb line, aggregate_print_cb group)
{
	print_line = line;
	print_group = group;
}

void
aggregate_flush(void)
{
	struct agg_group	*g, *gnext;
	char			 prefix[512];
	size_t			 i;

	if (agg_timer != NULL)
		evtimer_del(agg_timer);
	for (i = 0; i < nsrcs; i++) {
		for (g = srcs[i]->first; g != NULL; g = gnext) {
			gnext = g->snext;
			if (g->count == 1) {
				if (print_line != NULL)
					print_line(g->which, g->prefix,
					    g->text, g->len, g->flags);
			} else if (print_group != NULL) {
				agg_group_prefix(g, prefix, sizeof prefix);
				print_group(g->which, prefix, g->text,
				    g->len, g->flags);
			}
			agg_printed++;
			if (g->members != g->inline_members)
				free(g->members);
		}
	}
	ngroups = nbytes = nsrcs = 0;
	memset(gbucket, 0, sizeof gbucket);
	memset(recent, 0, sizeof recent);
	memset(recent_next, 0, sizeof recent_next);
	memset(sbucket, 0, sizeof sbucket);
	memset(obucket, 0, sizeof obucket);
	memset(sigbucket, 0, sizeof sigbucket);
	agg_release();
}

/* The window is over. */
static void
aggregate_timer_cb(int fd, short what, void *arg)
{
	aggregate_flush();
}

void
aggregate_set_window(double secs)
{
	aggregate_flush();
	agg_window = secs;
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

/* Severity slot 0..5 of a level. */
static int
agg_slot(int severity)
{
	return (severity <= 0 ? 0 : severity >= 50 ? 5 : severity / 10);
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
agg_candidate(int which, int slot, const uint64_t *sig, size_t nsig,
    const char *line, size_t len)
{
	struct agg_group	*bestg = NULL;
	struct agg_sig		*e;
	size_t			 i, k, best = 0;
	double			 bestr = 1;

	for (i = 0; i < AGG_CANDIDATES; i++)
		agg_try(recent[which][slot][i], line, len, &bestg, &best,
		    &bestr);
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

uint64_t
aggregate_line(int which, const struct origin *o, const char *line,
    size_t len, int flags, const struct shape *sh)
{
	struct agg_group	*g, *c;
	struct agg_source	*src;
	struct agg_sig		*e;
	struct timeval		 tv;
	uint64_t		 key, sig[3];
	uint32_t		 occ;
	size_t			 nsig, i;
	int			 severity = sh->severity;
	int			 slot = agg_slot(severity), have_sig = 0, piece;

	agg_lines++;
	if (ngroups >= AGG_MAX_GROUPS || nbytes + len > AGG_MAX_BYTES)
		aggregate_flush();
	key = sh->key;
	if (sh->letters < AGG_MIN_LETTERS)	/* numbers only: exact text */
		key = shape_bytes(line, len);
	key = agg_salt(key, which, severity);
	/*
	 * A template never seen: is the line close to a known group? Pieces
	 * of a cut line (and output without a newline) group by template
	 * only, and are no candidates for others: comparing or signing each
	 * 4 KiB piece would cost far more than reading it.
	 */
	nsig = 0;
	piece = (flags & (SPLIT_TRUNCATED | SPLIT_PARTIAL)) != 0;
	if (!piece && agg_find(key, 0) == NULL) {
		nsig = agg_signatures(line, len, sig, which, severity);
		have_sig = 1;
		if ((c = agg_candidate(which, slot, sig, nsig, line,
		    len)) != NULL)
			key = c->key;
	}
	src = agg_source(o->id);
	occ = agg_occurrence(o->id, key);
	if ((g = agg_find(key, occ)) == NULL) {
		g = agg_alloc(sizeof *g);
		g->members = g->inline_members;
		g->capmembers = AGG_INLINE;
		g->key = key;
		g->occ = occ;
		g->serial = ++agg_serial;
		g->which = which;
		g->severity = severity;
		g->flags = flags;
		g->text = agg_alloc(len == 0 ? 1 : len);
		memcpy(g->text, line, len);
		g->len = len;
		strlcpy(g->prefix, o->prefix, sizeof g->prefix);
		if (src->last != NULL)
			src->last->snext = g;
		else
			src->first = g;
		src->last = g;
		g->hnext = gbucket[(key + occ) % AGG_BUCKETS];
		gbucket[(key + occ) % AGG_BUCKETS] = g;
		if (occ == 0 && !piece) {
			if (!have_sig)
				nsig = agg_signatures(line, len, sig, which,
				    severity);
			recent[which][slot][recent_next[which][slot]++ %
			    AGG_CANDIDATES] = g;
			for (i = 0; i < nsig; i++) {
				e = agg_sig(sig[i], 1);
				if (e->nfirst < AGG_SIG_FIRST)
					e->first[e->nfirst++] = g;
				else
					e->ring[e->next++ % AGG_SIG_RING] = g;
			}
		}
		ngroups++;
		nbytes += len;
	}
	agg_member_add(g, o);
	if (ngroups == 1 && g->count == 1 && agg_timer != NULL) {
		tv.tv_sec = (time_t)agg_window;
		tv.tv_usec = (suseconds_t)((agg_window - (double)tv.tv_sec) *
		    1e6);
		evtimer_add(agg_timer, &tv);
	}
	return (g->serial);
}
