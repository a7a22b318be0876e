/*
 * How an aggregated group reads on the console. A group's members said
 * lines of the same template; a line shown for several ranks must not
 * show one rank's numbers as everyone's, so each word that differs among
 * them is shown as what they said:
 *
 *   [ranks 0-3] eval step=20 acc={0.600,0.610,0.620,0.630}
 *   [ranks 0-1023] rank {0..1023}/1024 pid [31496..40211] starting
 *
 * Up to eight members, one value per member in rank order, runs of
 * consecutive integers as {a..b}; more, the distinct values when few,
 * else the range. Members whose text does not align word for word with
 * the first (different punctuation or number of words, as the edit
 * distance lets through) are shown on a line of their own. Where the
 * world size is known, a line most ranks printed names the ones that did
 * not, and have not ended: "(not: 7)".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"

/* Members listed one by one; past this, sets and ranges. */
#define AT_LIST		8
/* Distinct values listed for larger groups. */
#define AT_DISTINCT	4
/* Lines printed for a group whose members are worded differently. */
#define AT_VARIANTS	8
/* Ranks missing from a group that are named. */
#define AT_MISSING	1048576


struct at_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static struct at_buf	 out, pre;
static struct agg_tok	*toks;		/* members' tokens, row by row */
static size_t		 captoks;
static size_t		*idx;		/* a line's members */
static unsigned char	*done;
static size_t		 capidx;
static const struct agg_tok **rows;	/* a line's members' tokens */
static size_t		*rlo, *rhi;	/* where each may differ from r */
static struct agg_val	*vals;		/* what members said at a word */
static const char	**txt;		/* a line's members' texts */
static int		 at_cut_each;	/* tests: cut every member anew */

static void
at_grow(struct at_buf *b, size_t n)
{
	b->cap = (b->len + n + 1) * 2;
	b->p = xrealloc(b->p, b->cap);
}

/*
 * Copy n bytes to d. Most pieces are a comma or a rank's short value: they
 * are copied inline, where a memcpy() call would cost more than the copy.
 */
static inline void
at_copy(char *d, const char *s, size_t n)
{
	/* Two moves that overlap copy 4 to 16 bytes, three bytes 1 to 3. */
	if (n >= 8 && n <= 16) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4 && n < 8) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else if (n > 0 && n < 4) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	} else if (n > 16)
		memcpy(d, s, n);
}

/* Append n bytes. */
static inline void
at_put(struct at_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
		at_grow(b, n);
	at_copy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

#define AT_PUT(b, lit)	at_put((b), (lit), sizeof(lit) - 1)

static void
at_num(struct at_buf *b, long v)
{
	char	tmp[FMT_INT_LEN], *p = fmt_int(tmp + sizeof tmp, v);

	at_put(b, p, (size_t)(tmp + sizeof tmp - p));
}

/*
 * The value of a number token: 1 for an integer (*l), 2 for another
 * number (*d), 0 for a word that is no number.
 */
static int
at_number(const char *s, size_t n, long long *l, double *d)
{
	char			tmp[48];
	size_t			i = 0, first;
	unsigned long long	u = 0;
	int			frac = 0;

	if (n == 0 || n >= sizeof tmp)
		return (0);
	if (s[i] == '-' || s[i] == '+')
		i++;
	if (i == n || !agg_digit(s[i]))
		return (0);
	for (first = i; i < n && agg_digit(s[i]); i++)
		u = u * 10 + (unsigned)(s[i] - '0');
	/* The common case, an integer of up to 18 digits, read as it is
	 * checked: exact in a long long, and rounded to double as strtod
	 * would. */
	if (i == n && n - first <= 18) {
		*l = s[0] == '-' ? -(long long)u : (long long)u;
		*d = (double)*l;
		return (1);
	}
	if (i < n && s[i] == '.') {
		frac = 1;
		for (i++; i < n && agg_digit(s[i]); i++)
			;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		frac = 1;
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		if (i == n || !agg_digit(s[i]))
			return (0);
		while (i < n && agg_digit(s[i]))
			i++;
	}
	if (i != n)
		return (0);
	/*
	 * So is a decimal of up to 15 digits without an exponent: its digits
	 * and the power of ten are exact doubles, and one division rounds
	 * the quotient as strtod rounds the decimal.
	 */
	if (frac && n - (s[0] == '-' || s[0] == '+') <= 16 &&
	    memchr(s, 'e', n) == NULL && memchr(s, 'E', n) == NULL) {
		static const double	p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5,
					    1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
					    1e12, 1e13, 1e14, 1e15 };
		long long		v = 0, whole = 0;
		int			k = -1;

		for (i = s[0] == '-' || s[0] == '+'; i < n; i++) {
			if (s[i] == '.') {
				whole = v;
				k = 0;
				continue;
			}
			v = v * 10 + (s[i] - '0');
			if (k >= 0)
				k++;
		}
		*l = s[0] == '-' ? -whole : whole;
		*d = (double)v / p10[k];
		if (s[0] == '-')
			*d = -*d;
		return (2);
	}
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	*d = strtod(tmp, NULL);
	*l = strtoll(tmp, NULL, 10);
	return (frac ? 2 : 1);
}

/* For qsort: values by number when both are, else by bytes. */
static int
at_value_cmp(const void *x, const void *y)
{
	const struct agg_val	*a = x, *b = y;
	int			 c;

	if (a->kind != 0 && b->kind != 0 && a->num != b->num)
		return (a->num < b->num ? -1 : 1);
	if ((c = memcmp(a->p, b->p, a->len < b->len ? a->len : b->len)) != 0)
		return (c);
	return (a->len < b->len ? -1 : a->len > b->len);
}

/*
 * Whether values a and b (lengths la, lb) are the same text. Most are a
 * few bytes: compared inline, where a memcmp() call costs more.
 */
static inline int
at_same(const char *a, size_t la, const char *b, size_t lb)
{
	uint64_t	x, y, u, v;
	uint32_t	x4, y4, u4, v4;

	if (la != lb)
		return (0);
	if (la > 16)
		return (memcmp(a, b, la) == 0);
	/* The first and the last 8 (or 4) bytes, overlapping. */
	if (la >= 8) {
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		memcpy(&u, a + la - 8, 8);
		memcpy(&v, b + la - 8, 8);
		return (((x ^ y) | (u ^ v)) == 0);
	}
	if (la >= 4) {
		memcpy(&x4, a, 4);
		memcpy(&y4, b, 4);
		memcpy(&u4, a + la - 4, 4);
		memcpy(&v4, b + la - 4, 4);
		return (((x4 ^ y4) | (u4 ^ v4)) == 0);
	}
	return (la == 0 || (a[0] == b[0] && a[la / 2] == b[la / 2] &&
	    a[la - 1] == b[la - 1]));
}

/* Append vals[0..n) as "{a,b,c}"; bytes: at least their lengths' sum. */
static void
at_set(struct at_buf *b, size_t n, size_t bytes)
{
	size_t	i, need = n + 1 + bytes;
	char	*d;

	if (b->len + need + 1 > b->cap)
		at_grow(b, need);
	/* Room made once: each value is copied without asking again. */
	d = b->p + b->len;
	*d++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*d++ = ',';
		at_copy(d, vals[i].p, vals[i].len);
		d += vals[i].len;
	}
	*d++ = '}';
	*d = '\0';
	b->len = (size_t)(d - b->p);
}

/* Append the first and last of vals[0..n) as open"a..b"close. */
static void
at_span(struct at_buf *b, const char *open, size_t n, const char *close)
{
	at_put(b, open, 1);
	at_put(b, vals[0].p, vals[0].len);
	AT_PUT(b, "..");
	at_put(b, vals[n - 1].p, vals[n - 1].len);
	at_put(b, close, 1);
}

/*
 * Whether vals[0..n) are integers (as at_number reads them) that count up
 * by one. The first value that is no integer ends the reading: a word
 * where ranks differ is mostly not one.
 */
static int
at_run(size_t n)
{
	long long	 l, prev = 0;
	double		 d;
	size_t		 i, j;
	const char	*p;
	char		 a, z;

	/* A word that is no number ("w0", "rank3") is told by its start. */
	p = vals[0].p;
	if (vals[0].len == 0 || !(agg_digit(p[0]) || p[0] == '-' ||
	    p[0] == '+'))
		return (0);
	/*
	 * Counting up by one, a value's last digit is the one before's plus
	 * one (mod 10) unless one is negative: most sets are told at their
	 * first two values without reading a number.
	 */
	for (i = 1; i < n; i++) {
		if (vals[i - 1].len == 0 || vals[i].len == 0)
			return (0);
		if (vals[i - 1].p[0] == '-' || vals[i].p[0] == '-')
			continue;
		a = vals[i - 1].p[vals[i - 1].len - 1];
		z = vals[i].p[vals[i].len - 1];
		if (!agg_digit(a) || z != (a == '9' ? '0' : a + 1))
			return (0);
	}
	for (i = 0; i < n; i++) {
		p = vals[i].p;
		j = p[0] == '-' || p[0] == '+';
		if (vals[i].len == j)
			return (0);
		for (; j < vals[i].len; j++) {
			if (!agg_digit(p[j]))
				return (0);
		}
		if (at_number(p, vals[i].len, &l, &d) != 1 ||
		    (i > 0 && l != prev + 1))
			return (0);
		prev = l;
	}
	return (1);
}

/*
 * What the printing of many values reads of them, when they are all
 * numbers or all words (at_value_cmp is then a total order): how many
 * are distinct, the AT_DISTINCT least of those in order in vals[0..),
 * and the greatest in vals[nd - 1]; what sorting them and keeping one
 * of each gives there, without the sort (a line of 1,024 ranks sorted
 * 1,024 "nodeN" words at each printing). Distinct values are told by
 * their bytes, in a table of the values' hashes (shape_bytes).
 */
static size_t
at_select(size_t n)
{
	static uint32_t		*slot;
	static size_t		 cap;
	struct agg_val		 least[AT_DISTINCT], most;
	size_t			 i, j, k, nd = 0, nl = 0, mask;
	uint64_t		 h;

	for (k = 16; k < 2 * n; k *= 2)
		;
	if (k > cap) {
		cap = k;
		slot = xrealloc(slot, cap * sizeof *slot);
	}
	mask = k - 1;
	memset(slot, 0, k * sizeof *slot);
	most = vals[0];
	for (i = 0; i < n; i++) {
		const struct agg_val	*v = &vals[i];

		/* Its high half folded in: a short value's last bytes reach
		 * the hash's low bits only through its shift. */
		h = shape_bytes(v->p, v->len);
		for (j = (size_t)(h ^ h >> 32) & mask; slot[j] != 0;
		    j = (j + 1) & mask) {
			if (at_same(vals[slot[j] - 1].p, vals[slot[j] - 1].len,
			    v->p, v->len))
				break;
		}
		if (slot[j] != 0)
			continue;
		slot[j] = (uint32_t)i + 1;
		nd++;
		if (at_value_cmp(v, &most) > 0)
			most = *v;
		/* Among the least seen so far: in its place. */
		if (nl == AT_DISTINCT && at_value_cmp(v, &least[nl - 1]) >= 0)
			continue;
		for (j = nl < AT_DISTINCT ? nl++ : nl - 1;
		    j > 0 && at_value_cmp(v, &least[j - 1]) < 0; j--)
			least[j] = least[j - 1];
		least[j] = *v;
	}
	memcpy(vals, least, nl * sizeof *vals);
	if (nd > nl)
		vals[nd - 1] = most;
	return (nd);
}

/*
 * Append what the n members said at one word: their values, in rank
 * order when few, else as distinct values or a range. bytes: the sum of
 * their lengths.
 */
static void
at_values(struct at_buf *b, size_t n, size_t bytes)
{
	long long	 l = 0;
	double		 d = 0;
	size_t		 i, nd;
	int		 ints = 1, nums = 1, anynum = 0, plain = 1, k;

	/* Few values read as a set, or as a span when they count up by one. */
	if (n <= AT_LIST) {
		if (n >= 3 && at_run(n))
			at_span(b, "{", n, "}");
		else
			at_set(b, n, bytes);
		return;
	}
	for (i = 0; i < n; i++) {
		k = vals[i].kind = at_number(vals[i].p, vals[i].len, &l, &d);
		vals[i].num = d;
		vals[i].ll = l;
		nums &= k != 0;
		anynum |= k != 0;
		ints &= k == 1;
		if (plain && (k != 1 || !aggsort_plain_int(vals[i].p,
		    vals[i].len, l)))
			plain = 0;
	}
	if (plain)
		nd = aggsort_ints(vals, n);
	else if (nums || !anynum)
		nd = at_select(n);
	else {
		qsort(vals, n, sizeof *vals, at_value_cmp);
		for (i = 1, nd = 1; i < n; i++) {
			if (!at_same(vals[i].p, vals[i].len, vals[nd - 1].p,
			    vals[nd - 1].len))
				vals[nd++] = vals[i];
		}
	}
	/* Integers all: their values are in ll. */
	if (ints && nd >= 3 && vals[nd - 1].ll - vals[0].ll + 1 ==
	    (long long)nd) {
		at_span(b, "{", nd, "}");
		return;
	}
	if (nd <= AT_DISTINCT) {
		at_set(b, nd, bytes);
		return;
	}
	if (nums) {
		at_span(b, "[", nd, "]");
		return;
	}
	AT_PUT(b, "{");
	for (i = 0; i < AT_DISTINCT - 1; i++) {
		at_put(b, vals[i].p, vals[i].len);
		AT_PUT(b, ",");
	}
	AT_PUT(b, "... ");
	at_num(b, (long)nd);
	AT_PUT(b, " values}");
}

/* Members in order: by rank, then by pid. */
static int
at_member_cmp(const void *x, const void *y)
{
	const struct agg_member	*a = x, *b = y;

	if (a->rank != b->rank)
		return (a->rank < b->rank ? -1 : 1);
	return (a->pid < b->pid ? -1 : a->pid > b->pid);
}

/*
 * Members in order. A group is most often a few ranks: up to
 * AT_SMALL_SORT by insertion, with no call per comparison (qsort cost
 * about 1,000 instructions for eight).
 */
#define AT_SMALL_SORT	32
static void
at_members_sort(struct agg_member *m, size_t n)
{
	struct agg_member	t;
	size_t			i, j;

	if (n > AT_SMALL_SORT) {
		/* Most come in rank order already (one host's, a relay's). */
		for (i = 1; i < n && at_member_cmp(&m[i - 1], &m[i]) <= 0; i++)
			;
		if (i < n)
			qsort(m, n, sizeof *m, at_member_cmp);
		return;
	}
	for (i = 1; i < n; i++) {
		if (at_member_cmp(&m[i - 1], &m[i]) <= 0)
			continue;
		t = m[i];
		for (j = i; j > 0 && at_member_cmp(&m[j - 1], &t) > 0; j--)
			m[j] = m[j - 1];
		m[j] = t;
	}
}

/* Append sorted values v[0..n) as ranges "0-3,7". */
static void
at_ranges(struct at_buf *b, const long *v, size_t n, size_t limit)
{
	size_t	i = 0, j, start = b->len;

	while (i < n) {
		if (b->len - start > limit) {
			AT_PUT(b, ",...");
			return;
		}
		for (j = i; j + 1 < n && v[j + 1] <= v[j] + 1; j++)
			;
		if (i > 0)
			AT_PUT(b, ",");
		at_num(b, v[i]);
		if (v[j] > v[i]) {
			AT_PUT(b, "-");
			at_num(b, v[j]);
		}
		i = j + 1;
	}
}

/*
 * The prefix of members m[idx[0..n)], in order: "[ranks 0-3] ", "[pids
 * 10-12] ", "[6 lines, ranks 0-2] " when a rank printed it twice. With
 * missing, the ranks of g's world not among them go to *missing, but for
 * those that ended and those that said as many lines of its key (a rank
 * ahead, whose line printed apart).
 */
static void
at_prefix(const struct agg_member *m, size_t n, const struct agg_group *g,
    struct at_buf *missing)
{
	static long	*v, *lastv;
	static size_t	 capv, lastnv;
	long		 r, world = g->world;
	size_t		 i, nv = 0, nm = 0;
	int		 ranked = m[idx[0]].rank >= 0;

	if (n + 3 > capv) {
		capv = (n + 3) * 2;
		v = xrealloc(v, capv * sizeof *v);
		lastv = xrealloc(lastv, capv * sizeof *lastv);
		lastnv = 0;
	}
	for (i = 0; i < n; i++) {
		r = ranked ? m[idx[i]].rank : m[idx[i]].pid;
		if (nv == 0 || v[nv - 1] != r)
			v[nv++] = r;
	}
	/* Groups in a row mostly have the same ranks: pre says it still. */
	v[nv] = (long)n;
	v[nv + 1] = ranked;
	if (nv + 2 == lastnv && memcmp(v, lastv, lastnv * sizeof *v) == 0)
		goto missing;
	lastnv = nv + 2;
	memcpy(lastv, v, lastnv * sizeof *v);
	pre.len = 0;
	AT_PUT(&pre, "[");
	if (nv < n) {
		at_num(&pre, (long)n);
		AT_PUT(&pre, " lines, ");
	}
	if (ranked && nv == 1)
		AT_PUT(&pre, "rank ");
	else if (ranked)
		AT_PUT(&pre, "ranks ");
	else if (nv == 1)
		AT_PUT(&pre, "pid ");
	else
		AT_PUT(&pre, "pids ");
	at_ranges(&pre, v, nv, 400);
	AT_PUT(&pre, "] ");
missing:
	if (missing != NULL && ranked && world > 0 && world <= AT_MISSING &&
	    nv >= 2 && (long)nv < world && 2 * (long)nv > world &&
	    v[nv - 1] < world) {
		long	*miss = xcalloc((size_t)world - nv, sizeof *miss);

		for (r = 0, i = 0; r < world; r++) {
			if (i < nv && v[i] == r)
				i++;
			else if (!agg_rank_ended(r) &&
			    agg_rank_said(r, g->key) < g->occ)
				miss[nm++] = r;
		}
		if (nm > 0) {
			AT_PUT(missing, " (not: ");
			at_ranges(missing, miss, nm, 120);
			AT_PUT(missing, ")");
		}
		free(miss);
	}
}

/* Room for n members' tokens and indices. */
static void
at_room(size_t n, size_t nt)
{
	if (n > capidx) {
		capidx = n;
		idx = xrealloc(idx, capidx * sizeof *idx);
		done = xrealloc(done, capidx);
		vals = xrealloc(vals, capidx * sizeof *vals);
		rows = xrealloc(rows, capidx * sizeof *rows);
		txt = xrealloc(txt, capidx * sizeof *txt);
		rlo = xrealloc(rlo, capidx * sizeof *rlo);
		rhi = xrealloc(rhi, capidx * sizeof *rhi);
	}
	if (n * nt > captoks) {
		captoks = n * nt;
		toks = xrealloc(toks, captoks * sizeof *toks);
	}
}

/* Print the lines of a block, each with prefix. */
static void
at_block(const struct agg_group *g, aggregate_print_cb cb, const char *prefix,
    const char *suffix)
{
	const char	*p = g->text, *end = g->text + g->len, *nl;
	int		 first = 1;

	if (cb == NULL)
		return;
	for (;;) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (first && suffix[0] != '\0') {
			out.len = 0;
			at_put(&out, p, (size_t)(nl - p));
			at_put(&out, suffix, strlen(suffix));
			cb(g->which, prefix, out.p, out.len, 0, g->us);
		} else
			cb(g->which, prefix, p, (size_t)(nl - p), 0, g->us);
		first = 0;
		if (nl == end)
			break;
		p = nl + 1;
	}
}

/* The lines of a block's text p[0..len), joined by '\n'. */
static size_t
at_lines(const char *p, size_t len)
{
	const char	*end = p + len;
	size_t		 n = 1;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return (n);
}

/*
 * A block whose members differ (the same templates line by line, other
 * numbers or files): each line printed once as a group of the members'
 * lines, the ranks missing said after the first. A member of another
 * number of lines (two blocks of one key) is printed whole, apart. 0 when
 * the members are all the first's bytes. Not inlined: the print of every
 * line group paid for its room (+55 instructions a group).
 */
static __attribute__((noinline)) int
at_block_lines(struct agg_group *g, aggregate_print_cb line,
    aggregate_print_cb group)
{
	struct agg_member	*m = g->members, *lm;
	struct agg_group	 t;
	const char		**at, *end, *nl;
	size_t			 n = g->nmembers, nl0, k, i, nm;

	/* Sorted by rank: the group's own text may be any member's. */
	for (k = 0; k < n && m[k].text == g->text; k++)
		;
	if (k == n)
		return (0);
	nl0 = at_lines(g->text, g->len);
	lm = xcalloc(n, sizeof *lm);
	at = xcalloc(n, sizeof *at);
	for (k = 0; k < n; k++)
		at[k] = at_lines(m[k].text, m[k].len) == nl0 ? m[k].text : NULL;
	for (i = 0; i < nl0; i++) {
		for (k = 0, nm = 0; k < n; k++) {
			if (at[k] == NULL)
				continue;
			end = m[k].text + m[k].len;
			if ((nl = memchr(at[k], '\n', (size_t)(end - at[k]))) ==
			    NULL)
				nl = end;
			lm[nm] = m[k];
			lm[nm].text = at[k];
			lm[nm].len = (size_t)(nl - at[k]);
			lm[nm++].dfrom = AGG_UNALIGNED;
			at[k] = nl + 1;
		}
		t = *g;
		t.block = 0;
		t.members = lm;
		t.nmembers = nm;
		t.text = (char *)lm[0].text;
		t.len = lm[0].len;
		t.world = i == 0 ? g->world : -1;
		aggtext_print(&t, line, group);
	}
	for (k = 0; k < n; k++) {
		if (at[k] != NULL)
			continue;
		t = *g;
		t.members = &m[k];
		t.nmembers = 1;
		t.text = (char *)m[k].text;
		t.len = m[k].len;
		at_block(&t, line, m[k].prefix, "");
	}
	free(lm);
	free(at);
	return (1);
}

/*
 * Past AT_VARIANTS wordings, the members left (those not done, from
 * m[i]) are counted on one line rather than shown one by one.
 */
static void
at_rest(const struct agg_group *g, const struct agg_member *m, size_t i,
    aggregate_print_cb group)
{
	size_t	n = 0, j;

	for (j = i; j < g->nmembers; j++) {
		if (!done[j])
			idx[n++] = j;
	}
	at_prefix(m, n, g, NULL);
	out.len = 0;
	at_num(&out, (long)n);
	AT_PUT(&out, " more lines like the above, each worded differently");
	if (group != NULL)
		group(g->which, pre.p, out.p, out.len, g->flags, g->us);
}

/*
 * A group whose members all differ from its first line in digits only
 * (the spans agg_member_add found) reads as one line of r's tokens: only
 * words within the spans' union may differ, and only there are members
 * compared. What the general way in aggtext_print prints, without cutting
 * or aligning each member. 0 when some member differs otherwise.
 */
static int
at_print_aligned(struct agg_group *g, aggregate_print_cb group,
    struct at_buf *missing)
{
	const struct agg_member	*m = g->members, *r = &m[0];
	struct agg_tok		 rt[AGG_TOK_MAX];
	size_t			 n = g->nmembers, k, nt, pos, last = 0;
	size_t			 from = SIZE_MAX, to = 0, dlo, dhi;

	for (k = 0; k < n; k++) {
		if (m[k].dfrom == AGG_UNALIGNED)
			return (0);
		if (m[k].dfrom < from)
			from = m[k].dfrom;
		if (m[k].dto > to)
			to = m[k].dto;
		txt[k] = m[k].text;
	}
	nt = aggtok_prev(r->text, r->len, rt);
	/* Digits that differ in the rest of a line cut short: a mark, which
	 * the cutting of each member compares. */
	if (nt == AGG_TOK_MAX && to > rt[nt - 1].off)
		return (0);
	aggtok_span(rt, nt, from, to, &dlo, &dhi);
	out.len = 0;
	for (pos = dlo; pos < dhi; pos++) {
		const struct agg_tok	*t = &rt[pos];

		if (!t->word)
			continue;
		for (k = 1; k < n; k++) {
			if (!at_same(r->text + t->off, t->len, txt[k] + t->off,
			    t->len))
				break;
		}
		if (k == n)
			continue;
		at_put(&out, r->text + last, t->off - last);
		for (k = 0; k < n; k++) {
			vals[k].p = txt[k] + t->off;
			vals[k].len = t->len;
		}
		at_values(&out, n, n * t->len);
		last = t->off + t->len;
	}
	at_put(&out, r->text + last, r->len - last);
	at_prefix(m, n, g, missing);
	if (missing->len > 0)
		at_put(&out, missing->p, missing->len);
	if (group != NULL)
		group(g->which, pre.p, out.p, out.len, g->flags, g->us);
	return (1);
}

void
aggtext_print(struct agg_group *g, aggregate_print_cb line,
    aggregate_print_cb group)
{
	struct agg_member	*m = g->members;
	struct agg_tok		 rt[AGG_TOK_MAX], *mt;
	struct at_buf		 missing = { NULL, 0, 0 };
	const struct agg_member	*r;
	size_t			 n = g->nmembers, i, j, k, nt, ns, pos, last;
	size_t			 bytes;
	size_t			 lo, hi, dlo, dhi, dlo2, dhi2, like;
	int			 variants = 0, al;

	if (n == 1) {
		if (g->block)
			at_block(g, line, m[0].prefix, "");
		else if (line != NULL)
			line(g->which, m[0].prefix, g->text,
			    g->len, g->flags, g->us);
		return;
	}
	aggtok_init();
	at_members_sort(m, n);
	at_room(n, 1);
	for (i = 0; i < n; i++)
		idx[i] = i;
	if (g->block && at_block_lines(g, line, group))
		return;
	if (g->block) {
		at_prefix(m, n, g, &missing);
		at_block(g, group, pre.p, missing.p != NULL ? missing.p : "");
		free(missing.p);
		return;
	}
	if (at_print_aligned(g, group, &missing)) {
		free(missing.p);
		return;
	}
	memset(done, 0, n);
	for (i = 0; i < n; i++) {
		if (done[i])
			continue;
		r = &m[i];
		if (++variants == AT_VARIANTS) {
			at_rest(g, m, i, group);
			break;
		}
		nt = aggtok_prev(r->text, r->len, rt);
		at_room(n, nt + 1);
		done[i] = 1;
		idx[0] = i;
		rows[0] = rt;
		txt[0] = r->text;
		/*
		 * Its members: those whose text aligns with r's. Words may
		 * differ only from dlo to dhi; the rest is r's bytes.
		 */
		dlo = nt;
		dhi = 0;
		/*
		 * A member's tokens are cut straight into their row (at_room
		 * left room for the one more that tells a longer line apart),
		 * unless they are r's.
		 */
		for (j = i + 1, ns = 1, like = 0; j < n; j++) {
			mt = toks + ns * nt;
			if (done[j])
				continue;
			/*
			 * Both differ from the group's first line in digits
			 * only: then from each other too, within the two
			 * spans (compared word by word below).
			 */
			if (r->dfrom != AGG_UNALIGNED &&
			    m[j].dfrom != AGG_UNALIGNED) {
				aggtok_span(rt, nt, r->dfrom < m[j].dfrom ?
				    r->dfrom : m[j].dfrom, r->dto > m[j].dto ?
				    r->dto : m[j].dto, &lo, &hi);
				if (!aggtok_rest_same(r->text, rt, nt,
				    m[j].text, hi))
					continue;
				rows[ns] = rt;
			} else if (like != 0 && !at_cut_each &&
			    nt < AGG_TOK_MAX && m[j].len == m[idx[like]].len &&
			    aggtok_digit_diffs(txt[like], m[j].text,
			    m[j].len, &dlo2, &dhi2)) {
				/*
				 * Its numbers of the same widths as the last
				 * member cut (ranks in a row: node12 and
				 * node13): that member's tokens are its own,
				 * and it differs from r where that one did
				 * and where their digits differ. (Not when
				 * the last token is the rest of a long line,
				 * a mark compared as it is.)
				 */
				aggtok_span(rows[like], nt, dlo2, dhi2, &lo,
				    &hi);
				if (rlo[like] < lo)
					lo = rlo[like];
				if (rhi[like] > hi)
					hi = rhi[like];
				rows[ns] = rows[like];
				like = ns;
			} else if ((al = aggtok_member(r->text, r->len, rt,
			    nt, m[j].text, m[j].len, mt, &lo, &hi)) == 0)
				continue;
			else if (al == 2)	/* its tokens are r's */
				rows[ns] = rt;
			else {
				rows[ns] = mt;
				like = ns;
			}
			done[j] = 1;
			txt[ns] = m[j].text;
			rlo[ns] = lo;
			rhi[ns] = hi;
			idx[ns++] = j;
			if (lo < dlo)
				dlo = lo;
			if (hi > dhi)
				dhi = hi;
		}
		if (ns == 1) {
			if (line != NULL)
				line(g->which, r->prefix, r->text,
				    r->len, g->flags, g->us);
			continue;
		}
		/* The text: r's, each word that differs as the values. */
		out.len = 0;
		last = 0;
		for (pos = dlo; pos < dhi; pos++) {
			const struct agg_tok	*t = &rt[pos];

			if (!t->word)
				continue;
			/* Outside its [rlo, rhi), a member has r's bytes. */
			for (k = 1; k < ns; k++) {
				const struct agg_tok *u = &rows[k][pos];

				if (pos >= rlo[k] && pos < rhi[k] &&
				    !at_same(r->text + t->off, t->len,
				    txt[k] + u->off, u->len))
					break;
			}
			if (k == ns)
				continue;
			at_put(&out, r->text + last, t->off - last);
			for (k = 0, bytes = 0; k < ns; k++) {
				const struct agg_tok *u = &rows[k][pos];

				vals[k].p = txt[k] + u->off;
				vals[k].len = u->len;
				bytes += u->len;
			}
			at_values(&out, ns, bytes);
			last = t->off + t->len;
		}
		at_put(&out, r->text + last, r->len - last);
		missing.len = 0;
		at_prefix(m, ns, g, ns == n ? &missing : NULL);
		if (missing.len > 0)
			at_put(&out, missing.p, missing.len);
		if (group != NULL)
			group(g->which, pre.p, out.p, out.len, g->flags,
			    g->us);
	}
	free(missing.p);
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
	g.occ = 1;	/* its lines are counted nowhere: missing is missing */
	g.text = (char *)(uintptr_t)text[0];
	g.len = len[0];
	g.colour = memchr(text[0], 0x1b, len[0]) != NULL;
	g.members = xcalloc(n, sizeof *g.members);
	for (i = 0; i < n; i++) {
		g.members[i].prefix = o[i].prefix;
		g.members[i].rank = o[i].rank;
		g.members[i].pid = o[i].pid;
		g.members[i].text = text[i];
		g.members[i].len = len[i];
		g.nmembers = i + 1;
		agg_member_diffs(&g.members[i], &g, text[i], len[i]);
		if (o[i].world > g.world)
			g.world = o[i].world;
	}
	g.nmembers = n;
	aggtext_print(&g, cb, cb);
	free(g.members);
}
