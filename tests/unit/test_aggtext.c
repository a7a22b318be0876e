/*
 * How a group reads (collector/aggtext.c), from the inside: a member's
 * tokens cut from what it shares with another line must be the tokens the
 * whole cut gives, on random lines and their edits, whatever the limit.
 * The file is included, so its static pieces are what is tested.
 */

#include <stdlib.h>

#include <criterion/criterion.h>

#include "collector/aggtext.c"
#include "collector/aggtok.c"
#include "collector/aggsort.c"
#include "tests/unit/viewprint.h"

struct config		 cfg;
struct event_base	*base;

/* Bytes the tokenizer treats apart, and some it does not. */
static const char	alphabet[] = "a1.-+eE \t_x[]9=\xc3";

static size_t
random_line(char *s, size_t cap)
{
	size_t	n = (size_t)rand() % cap, i;

	for (i = 0; i < n; i++)
		s[i] = alphabet[rand() % (int)(sizeof alphabet - 1)];
	return (n);
}

/* y: x with a few bytes replaced, inserted or removed. */
static size_t
edit_line(const char *x, size_t xn, char *y, size_t cap)
{
	size_t	yn = xn, at, k, edits = 1 + (size_t)rand() % 3;

	memcpy(y, x, xn);
	for (k = 0; k < edits; k++) {
		at = yn > 0 ? (size_t)rand() % (yn + 1) : 0;
		switch (rand() % 3) {
		case 0:
			if (at < yn)
				y[at] = alphabet[rand() %
				    (int)(sizeof alphabet - 1)];
			break;
		case 1:
			if (yn + 1 < cap) {
				memmove(y + at + 1, y + at, yn - at);
				y[at] = alphabet[rand() %
				    (int)(sizeof alphabet - 1)];
				yn++;
			}
			break;
		default:
			if (at < yn) {
				memmove(y + at, y + at + 1, yn - at - 1);
				yn--;
			}
		}
	}
	return (yn);
}

Test(aggtext, tokens_like_another_line_are_the_tokens)
{
	static const size_t	 maxes[] = { 2, 3, 5, 8, AGG_TOK_MAX };
	struct agg_tok		 xt[AGG_TOK_MAX], want[AGG_TOK_MAX];
	struct agg_tok		 got[AGG_TOK_MAX];
	char			 x[200], y[200];
	size_t			 xn, yn, xnt, nw, ng, max, k, lo, hi;
	int			 i, same = 0;

	aggtok_init();
	srand(17);
	for (i = 0; i < 300000; i++) {
		max = maxes[i % (int)(sizeof maxes / sizeof maxes[0])];
		xn = random_line(x, 120);
		yn = i % 7 == 0 ? random_line(y, 120) :
		    edit_line(x, xn, y, sizeof y);
		xnt = at_tokens(x, xn, xt, max);
		nw = at_tokens(y, yn, want, max);
		/* Told that y's tokens are x's (none written), take x's. */
		ng = at_tokens_like(x, xn, xt, xnt, y, yn, got, max, &lo,
		    &hi, i % 2 ? &same : NULL);
		if (i % 2 && same)
			memcpy(got, xt, ng * sizeof *got);
		cr_assert_eq(ng, nw, "%zu tokens, not %zu: x '%.*s' y '%.*s' "
		    "max %zu", ng, nw, (int)xn, x, (int)yn, y, max);
		/* Outside [lo, hi) the tokens are x's, with the same bytes. */
		cr_assert(lo <= hi && hi <= ng);
		for (k = 0; k < ng; k++) {
			long	d = (long)xn - (long)yn;
			size_t	kx = k < lo ? k : k - ng + xnt;

			if (k >= lo && k < hi)
				continue;
			cr_assert(kx < xnt && got[k].len == xt[kx].len &&
			    memcmp(y + got[k].off, x + xt[kx].off,
			    got[k].len) == 0 && (k < lo || (long)got[k].off +
			    d == (long)xt[kx].off), "token %zu is not x's "
			    "%zu: x '%.*s' y '%.*s' max %zu", k, kx, (int)xn,
			    x, (int)yn, y, max);
		}
		for (k = 0; k < nw; k++) {
			cr_assert(got[k].off == want[k].off &&
			    got[k].len == want[k].len &&
			    got[k].word == want[k].word,
			    "token %zu: %u+%u, not %u+%u: x '%.*s' y '%.*s' "
			    "max %zu", k, got[k].off, got[k].len, want[k].off,
			    want[k].len, (int)xn, x, (int)yn, y, max);
		}
	}
}

Test(aggtext, numbers_parse_as_strtod_does)
{
	static const char *const nums[] = { "0", "-0", "7", "+7", "-12",
	    "123456789012345678", "1234567890123456789", "2.5", "-0.001",
	    "0.1", "0.3", "1.", "3.00e-04", "1e5", "999999999999999.9",
	    "12345678901234.56", "0.000000000000001", "2.4975", "1.7976" };
	long long	 l;
	double		 d;
	size_t		 i;
	int		 k;

	aggtok_init();
	for (i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		k = at_number(nums[i], strlen(nums[i]), &l, &d);
		cr_assert(k != 0, "%s", nums[i]);
		cr_assert(d == strtod(nums[i], NULL), "%s: %.17g, not %.17g",
		    nums[i], d, strtod(nums[i], NULL));
		if (k == 1)
			cr_assert_eq(l, strtoll(nums[i], NULL, 10), "%s",
			    nums[i]);
	}
}

/*
 * The reference for the readings of vals[0..n): sorted into want with qsort
 * and at_value_cmp, one of each kept; returns how many.
 */
static size_t
sorted_once(struct agg_val *want, size_t n)
{
	size_t	i, wn;

	memcpy(want, vals, n * sizeof *vals);
	qsort(want, n, sizeof *want, at_value_cmp);
	for (i = 1, wn = 1; i < n; i++) {
		if (!at_same(want[i].p, want[i].len, want[wn - 1].p,
		    want[wn - 1].len))
			want[wn++] = want[i];
	}
	return (wn);
}

/*
 * Values that are all plain integers are sorted by a radix sort; it must
 * keep the values, in the order, that qsort with at_value_cmp keeps.
 */
Test(aggtext, integers_sort_as_the_comparison_sorts)
{
	static char	text[300][24];
	static struct agg_val	want[300];
	long long	span[] = { 3, 1000, 1LL << 40, 1LL << 53 }, v, l;
	double		d;
	size_t		n, i, nd, wn;
	int		round;

	aggtok_init();
	srand(17);
	for (round = 0; round < 20000; round++) {
		n = 9 + (size_t)rand() % 290;
		at_room(n, 1);
		for (i = 0; i < n; i++) {
			v = (long long)((((unsigned long long)rand() << 31) ^
			    (unsigned long long)rand()) % (unsigned long long)
			    span[round % 4]);
			if (round % 4 == 3)
				v -= 1LL << 52;	/* near both ends of plain */
			else if (rand() % 2)
				v = -v;
			snprintf(text[i], sizeof text[i], "%lld", v);
			vals[i].p = text[i];
			vals[i].len = strlen(text[i]);
			vals[i].kind = at_number(vals[i].p, vals[i].len, &l, &d);
			vals[i].num = d;
			vals[i].ll = l;
			cr_assert(aggsort_plain_int(vals[i].p, vals[i].len, l),
			    "%s", text[i]);
		}
		/* Values already in order (they count up with the rank). */
		if (round % 3 == 0)
			qsort(vals, n, sizeof *vals, at_value_cmp);
		wn = sorted_once(want, n);
		nd = aggsort_ints(vals, n);
		cr_assert_eq(nd, wn, "round %d: %zu values, not %zu", round,
		    nd, wn);
		for (i = 0; i < nd; i++)
			cr_assert(at_same(vals[i].p, vals[i].len, want[i].p,
			    want[i].len), "round %d, value %zu: %.*s, not %.*s",
			    round, i, (int)vals[i].len, vals[i].p,
			    (int)want[i].len, want[i].p);
	}
}

static int
by_ll(const void *x, const void *y)
{
	const struct agg_val	*a = x, *b = y;

	return (a->ll < b->ll ? -1 : a->ll > b->ll);
}

/*
 * Many values all numbers, or all words, are not sorted: what is read of
 * them (how many are distinct, the AT_DISTINCT least in order, the
 * greatest) must be what qsort with at_value_cmp and keeping one of each
 * gives.
 */
Test(aggtext, many_values_read_as_their_sort_reads_them)
{
	static const char *const words[] = { "node", "w", "rank", "gpu-",
	    "a", "ab", "" };
	static char	text[300][32];
	static struct agg_val	want[300];
	long long	l;
	double		d;
	size_t		n, i, nd, wn, k;
	int		round, kind, numbers;

	aggtok_init();
	srand(23);
	for (round = 0; round < 20000; round++) {
		n = 9 + (size_t)rand() % 290;
		numbers = round % 2;
		at_room(n, 1);
		for (i = 0; i < n; i++) {
			unsigned	r = (unsigned)rand() % (round % 5 == 0 ?
					    6 : 400);

			if (numbers)
				switch (rand() % 4) {
				case 0:
					snprintf(text[i], sizeof text[i],
					    "%03u", r);
					break;
				case 1:
					snprintf(text[i], sizeof text[i],
					    "%u.%u", r / 10, r % 10);
					break;
				case 2:
					snprintf(text[i], sizeof text[i],
					    "%ue%d", r, rand() % 3);
					break;
				default:
					snprintf(text[i], sizeof text[i],
					    "-%u", r);
				}
			else
				snprintf(text[i], sizeof text[i], "%s%u",
				    words[rand() % 6], r);
			vals[i].p = text[i];
			vals[i].len = strlen(text[i]);
			vals[i].kind = kind = at_number(vals[i].p,
			    vals[i].len, &l, &d);
			vals[i].num = d;
			vals[i].ll = l;
			cr_assert_eq(kind != 0, numbers, "%s", text[i]);
		}
		if (round % 7 == 0)
			qsort(vals, n, sizeof *vals, by_ll);
		wn = sorted_once(want, n);
		nd = at_select(n);
		cr_assert_eq(nd, wn, "round %d: %zu values, not %zu", round,
		    nd, wn);
		for (i = 0; i < nd; i++) {
			k = i < AT_DISTINCT || i == nd - 1;
			if (!k)
				continue;
			cr_assert(at_same(vals[i].p, vals[i].len, want[i].p,
			    want[i].len), "round %d, value %zu of %zu: %.*s, "
			    "not %.*s", round, i, nd, (int)vals[i].len,
			    vals[i].p, (int)want[i].len, want[i].p);
		}
	}
}

/* Only integers written as %lld writes them, exact in a double. */
Test(aggtext, plain_integers_are_the_canonical_ones)
{
	static const char *const yes[] = { "0", "7", "-12",
	    "9007199254740991", "-9007199254740991" };
	static const char *const no[] = { "-0", "+7", "007", "-01",
	    "9007199254740992", "-9007199254740992", "123456789012345678" };
	long long	l;
	double		d;
	size_t		i;

	aggtok_init();
	for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		cr_assert_eq(at_number(yes[i], strlen(yes[i]), &l, &d), 1);
		cr_assert(aggsort_plain_int(yes[i], strlen(yes[i]), l), "%s",
		    yes[i]);
	}
	for (i = 0; i < sizeof no / sizeof no[0]; i++) {
		cr_assert_eq(at_number(no[i], strlen(no[i]), &l, &d), 1);
		cr_assert(!aggsort_plain_int(no[i], strlen(no[i]), l), "%s",
		    no[i]);
	}
}

/*
 * Members sort by rank, then pid, with many ties: up to AT_SMALL_SORT by
 * insertion, equals kept in their order; more by qsort, which orders
 * equals as the C library does.
 */
Test(aggtext, members_sort_as_merge_sort_does)
{
	struct agg_member	m[80], want[80];
	size_t			n, i, j;
	int			r;

	srand(5);
	for (r = 0; r < 20000; r++) {
		n = (size_t)rand() % 80;
		for (i = 0; i < n; i++) {
			m[i].rank = rand() % 4 == 0 ? -1 : rand() % 12;
			m[i].pid = rand() % 6;
			m[i].len = i;	/* where it came from */
		}
		memcpy(want, m, n * sizeof *m);
		/* A stable reference: by key, then by first place. */
		for (i = 1; i < n; i++)
			for (j = i; j > 0 && (at_member_cmp(&want[j - 1],
			    &want[j]) > 0); j--) {
				struct agg_member t = want[j];

				want[j] = want[j - 1];
				want[j - 1] = t;
			}
		/* Members in order already stay as they are. */
		if (r % 3 == 0)
			memcpy(m, want, n * sizeof *m);
		at_members_sort(m, n);
		for (i = 0; i < n; i++)
			cr_assert(m[i].rank == want[i].rank &&
			    m[i].pid == want[i].pid && (n > AT_SMALL_SORT ||
			    r % 3 == 0 || m[i].len == want[i].len),
			    "round %d, %zu members: place %zu", r, n, i);
	}
}

/* The common end of two texts, 16 bytes at a time, is the bytewise one. */
Test(aggtext, common_tail_is_the_bytewise_one)
{
	char	x[200], y[200];
	size_t	xn, yn, max, want;
	int	i;

	srand(3);
	for (i = 0; i < 200000; i++) {
		xn = random_line(x, 120);
		yn = i % 5 == 0 ? random_line(y, 120) :
		    edit_line(x, xn, y, sizeof y);
		max = xn < yn ? xn : yn;
		if (max > 0)
			max = (size_t)rand() % (max + 1);
		for (want = 0; want < max && x[xn - want - 1] ==
		    y[yn - want - 1]; want++)
			;
		cr_assert_eq(at_common_tail(x, xn, y, yn, max), want,
		    "round %d", i);
	}
}

/*
 * A group's prefix, whether built or kept from the group before, is the
 * one its members' ranks (or pids) give: groups in a row repeat ranks,
 * change how many lines they have, or switch from ranks to pids.
 */
Test(aggtext, prefixes_in_a_row_name_their_own_members)
{
	struct agg_member	m[12];
	struct agg_group	g = { .world = -1 };
	char			want[512];
	long			v[12];
	size_t			n = 0, i, nv, w, j;
	int			r, ranked = 1;

	srand(11);
	for (r = 0; r < 50000; r++) {
		/* Half the time the members of the group before. */
		if (r == 0 || rand() % 2 == 0) {
			ranked = rand() % 3 != 0;
			n = 1 + (size_t)rand() % 12;
			for (i = 0; i < n; i++) {
				m[i].rank = ranked ? rand() % 8 : -1;
				m[i].pid = rand() % 8;
			}
			at_members_sort(m, n);
		}
		at_room(n, 1);
		for (i = 0; i < n; i++)
			idx[i] = i;
		at_prefix(m, n, &g, NULL);
		for (i = 0, nv = 0; i < n; i++) {
			long x = ranked ? m[i].rank : m[i].pid;

			if (nv == 0 || v[nv - 1] != x)
				v[nv++] = x;
		}
		w = (size_t)snprintf(want, sizeof want, "[");
		if (nv < n)
			w += (size_t)snprintf(want + w, sizeof want - w,
			    "%zu lines, ", n);
		w += (size_t)snprintf(want + w, sizeof want - w, "%s%s ",
		    ranked ? "rank" : "pid", nv > 1 ? "s" : "");
		for (i = 0; i < nv; i = j + 1) {
			for (j = i; j + 1 < nv && v[j + 1] == v[j] + 1; j++)
				;
			w += (size_t)snprintf(want + w, sizeof want - w,
			    "%s%ld", i > 0 ? "," : "", v[i]);
			if (j > i)
				w += (size_t)snprintf(want + w, sizeof want - w,
				    "-%ld", v[j]);
		}
		snprintf(want + w, sizeof want - w, "] ");
		cr_assert_str_eq(pre.p, want, "round %d", r);
	}
}

/*
 * Lines of one length that differ only in digits take x's tokens without
 * a cut: numbers, marks around them and lines past the token limit, each
 * edited in a few digits, cut alike or not at all.
 */
Test(aggtext, lines_differing_in_digits_cut_as_x)
{
	static const char	 digits_alphabet[] = "0123456789.-+eE _x=";
	static const size_t	 maxes[] = { 2, 3, 5, 8, AGG_TOK_MAX };
	struct agg_tok		 xt[AGG_TOK_MAX], want[AGG_TOK_MAX];
	struct agg_tok		 got[AGG_TOK_MAX];
	char			 x[200], y[200];
	size_t			 n, xnt, nw, ng, max, k, lo, hi, e, at;
	int			 i, same = 0;

	aggtok_init();
	srand(23);
	for (i = 0; i < 200000; i++) {
		max = maxes[i % (int)(sizeof maxes / sizeof maxes[0])];
		n = (size_t)rand() % 150;
		for (k = 0; k < n; k++)
			x[k] = digits_alphabet[rand() %
			    (int)(sizeof digits_alphabet - 1)];
		memcpy(y, x, n);
		/* A few digits changed; now and then a digit for a mark. */
		for (e = 0; n > 0 && e < 1 + (size_t)rand() % 4; e++) {
			at = (size_t)rand() % n;
			if (i % 50 == 0 || (y[at] >= '0' && y[at] <= '9'))
				y[at] = (char)('0' + rand() % 10);
		}
		xnt = at_tokens(x, n, xt, max);
		/* Or as a member is cut: x with the most, y one more. */
		if (i % 3 == 0) {
			xnt = at_tokens(x, n, xt, AGG_TOK_MAX);
			max = xnt < AGG_TOK_MAX ? xnt + 1 : AGG_TOK_MAX;
		}
		nw = at_tokens(y, n, want, max);
		ng = at_tokens_like(x, n, xt, xnt, y, n, got, max, &lo, &hi,
		    i % 2 ? &same : NULL);
		if (i % 2 && same)
			memcpy(got, xt, ng * sizeof *got);
		cr_assert_eq(ng, nw, "x '%.*s' y '%.*s' max %zu", (int)n, x,
		    (int)n, y, max);
		cr_assert(lo <= hi && hi <= ng);
		for (k = 0; k < nw; k++) {
			cr_assert(got[k].off == want[k].off &&
			    got[k].len == want[k].len &&
			    got[k].word == want[k].word, "token %zu: x '%.*s' "
			    "y '%.*s' max %zu", k, (int)n, x, (int)n, y, max);
			if (k < lo || k >= hi)
				cr_assert(memcmp(x + xt[k].off, y + got[k].off,
				    got[k].len) == 0, "token %zu outside "
				    "[%zu, %zu) differs: x '%.*s' y '%.*s'", k,
				    lo, hi, (int)n, x, (int)n, y);
		}
	}
}

/* Whether s is [+-]?[0-9]+ of a value that fits, and that value. */
static int
ref_int(const char *s, long long *v)
{
	size_t	i = s[0] == '-' || s[0] == '+';

	if (s[i] == '\0')
		return (0);
	for (; s[i] != '\0'; i++)
		if (s[i] < '0' || s[i] > '9')
			return (0);
	*v = strtoll(s, NULL, 10);
	return (1);
}

/*
 * A few members' values read as a span "{a..b}" exactly when they are
 * integers counting up by one (three or more), else as the set: on
 * random values with signs, leading zeros, runs and near-runs.
 */
Test(aggtext, few_values_read_as_a_span_only_when_they_count_up)
{
	static const char *const	 odd[] = { "", "-", "+", "x", "1x",
					    "9a", "-0", "+0", "1.5" };
	char				 text[8][16], want[256];
	long long			 v, prev = 0, start;
	size_t				 n, i, w;
	int				 r, run, spans = 0;
	struct at_buf			 b = { NULL, 0, 0 };

	at_room(8, 1);
	srand(31);
	for (r = 0; r < 100000; r++) {
		n = 2 + (size_t)rand() % 7;
		start = rand() % 40 - 20;
		for (i = 0; i < n; i++) {
			v = start + (long long)i;
			if (rand() % 6 == 0)
				v += rand() % 3 - 1;	/* near a run */
			if (rand() % 15 == 0)
				snprintf(text[i], sizeof text[i], "%s",
				    odd[rand() % 9]);
			else if (rand() % 4 == 0)
				snprintf(text[i], sizeof text[i], "%s%03lld",
				    v < 0 ? "-" : rand() % 2 ? "+" : "",
				    v < 0 ? -v : v);
			else
				snprintf(text[i], sizeof text[i], "%lld", v);
			vals[i].p = text[i];
			vals[i].len = strlen(text[i]);
		}
		run = n >= 3;
		for (i = 0; i < n && run; i++) {
			run = ref_int(text[i], &v) && (i == 0 || v == prev + 1);
			prev = v;
		}
		if (run)
			w = (size_t)snprintf(want, sizeof want, "{%s..%s}",
			    text[0], text[n - 1]);
		else {
			w = (size_t)snprintf(want, sizeof want, "{");
			for (i = 0; i < n; i++)
				w += (size_t)snprintf(want + w, sizeof want - w,
				    "%s%s", i > 0 ? "," : "", text[i]);
			snprintf(want + w, sizeof want - w, "}");
		}
		spans += run;
		b.len = 0;
		for (i = 0, w = 0; i < n; i++)
			w += vals[i].len;
		at_values(&b, n, w);
		cr_assert_str_eq(b.p, want, "round %d", r);
	}
	cr_assert_gt(spans, 1000);
	free(b.p);
}

/*
 * Members that differ from the group's first line in digits only carry
 * where (agg_member_add, aggtok_digit_diffs), and printing takes those
 * spans instead of cutting each member: what prints is what cutting every
 * member prints, whichever member came first and whatever the others
 * changed (digits, or bytes of any kind).
 */
Test(aggtext, spans_from_joining_print_as_cutting_every_member)
{
	static const char	digits[] = "0123456789";
	static char		text[12][200], first[200];
	static char		pres[12][32];
	struct agg_group	g;
	struct agg_member	m[12], copy[12];
	char			want[65536];
	size_t			n, i, j, len, f, e, aligned = 0;
	int			r;

	srand(17);
	for (r = 0; r < 20000; r++) {
		len = random_line(first, 120);
		for (i = 0; i < len; i++)	/* plenty of numbers */
			if (rand() % 3 == 0)
				first[i] = digits[rand() % 10];
		n = 2 + (size_t)rand() % 10;
		for (i = 0; i < n; i++) {
			memcpy(text[i], first, len);
			m[i].len = len;
			if (rand() % 6 == 0)
				m[i].len = edit_line(first, len, text[i],
				    sizeof text[i]);
			else
				for (j = 0; j < len; j++)
					if (agg_digit(first[j]) &&
					    rand() % 4 == 0)
						text[i][j] = digits[rand() %
						    10];
			m[i].text = text[i];
			m[i].rank = rand() % 8;
			m[i].pid = 100 + (long)i;
			snprintf(pres[i], sizeof pres[i], "[rank %ld] ",
			    m[i].rank);
			m[i].prefix = pres[i];
			m[i].chunk = NULL;
		}
		/* The first to join is the group's line. */
		f = (size_t)rand() % n;
		memset(&g, 0, sizeof g);
		g.text = text[f];
		g.len = m[f].len;
		g.world = 8;
		g.nmembers = n;
		for (i = 0; i < n; i++) {
			m[i].dfrom = AGG_UNALIGNED;
			if (m[i].len == g.len && aggtok_digit_diffs(m[i].text,
			    g.text, g.len, &j, &e)) {
				m[i].dfrom = (uint32_t)j;
				m[i].dto = (uint32_t)e;
				aligned++;
			}
		}
		memcpy(copy, m, n * sizeof *m);
		g.members = copy;
		nprinted = 0;
		aggtext_print(&g, print_cb, print_cb);
		memcpy(want, printed, nprinted + 1);
		for (i = 0; i < n; i++)
			m[i].dfrom = AGG_UNALIGNED;
		g.members = m;
		nprinted = 0;
		at_cut_each = 1;
		aggtext_print(&g, print_cb, print_cb);
		at_cut_each = 0;
		cr_assert_str_eq(printed, want, "round %d", r);
	}
	cr_assert_gt(aligned, 20000 * 3);
}

/*
 * Ranks' lines whose numbers have widths of their own (node3 and node12,
 * [7] and [1023]): a member whose widths are the last cut member's takes
 * that member's tokens. It prints as cutting every member does, whatever
 * else differs (a word, a mark, a line cut short).
 */
Test(aggtext, members_like_the_last_one_print_as_cutting_each)
{
	static char		text[40][200], pres[40][32];
	struct agg_group	g;
	struct agg_member	m[40], copy[40];
	char			want[65536];
	size_t			n, i, j;
	int			r, v[6], k;

	srand(29);
	for (r = 0; r < 20000; r++) {
		n = 2 + (size_t)rand() % 39;
		for (i = 0; i < n; i++) {
			/* Widths change every few ranks, as rank numbers do. */
			for (k = 0; k < 6; k++) {
				static const int	w[] = { 1, 10, 100, 1000 };

				v[k] = (int)i * (k + 1) + w[((int)i / (2 + k) +
				    k) % 4] * (1 + rand() % 3);
				if (rand() % 9 == 0)
					v[k] = rand() % 100000;
			}
			m[i].len = (size_t)snprintf(text[i], sizeof text[i],
			    "node%d:%d:%d [%d] NCCL INFO Channel %02d/32 : "
			    "%d[%d] -> %d[%d] via P2P/IPC", v[0], v[1], v[1],
			    v[2], r % 32, v[3], v[2], v[4], v[5]);
			switch (rand() % 12) {
			case 0:		/* a word */
				memcpy(text[i] + m[i].len - 3, "TCP", 3);
				break;
			case 1:		/* a mark */
				text[i][m[i].len - 4] = ':';
				break;
			case 2:		/* a line cut short */
				m[i].len -= (size_t)rand() % 10;
				break;
			case 3:		/* a decimal point in a number */
				for (j = 0; j < m[i].len; j++)
					if (agg_digit(text[i][j]) &&
					    j + 1 < m[i].len &&
					    agg_digit(text[i][j + 1])) {
						text[i][j + 1] = '.';
						break;
					}
				break;
			}
			m[i].text = text[i];
			m[i].rank = rand() % 5 == 0 ? rand() % 40 : (long)i;
			m[i].pid = 100 + (long)i;
			snprintf(pres[i], sizeof pres[i], "[rank %ld] ",
			    m[i].rank);
			m[i].prefix = pres[i];
			m[i].chunk = NULL;
			m[i].dfrom = AGG_UNALIGNED;
		}
		memset(&g, 0, sizeof g);
		g.text = text[0];
		g.len = m[0].len;
		g.world = 40;
		g.nmembers = n;
		memcpy(copy, m, n * sizeof *m);
		g.members = copy;
		nprinted = 0;
		aggtext_print(&g, print_cb, print_cb);
		memcpy(want, printed, nprinted + 1);
		g.members = m;
		nprinted = 0;
		at_cut_each = 1;
		aggtext_print(&g, print_cb, print_cb);
		at_cut_each = 0;
		cr_assert_str_eq(want, printed, "round %d", r);
	}
}

/* Values compared a word or two at a time are equal as memcmp() says. */
Test(aggtext, values_compare_as_memcmp_does)
{
	char	a[40], b[40];
	size_t	la, lb, i;
	int	r, equal = 0;

	srand(19);
	for (r = 0; r < 200000; r++) {
		la = (size_t)rand() % 24;
		lb = rand() % 4 == 0 ? (size_t)rand() % 24 : la;
		for (i = 0; i < la; i++)
			a[i] = "01"[rand() % 2];
		memcpy(b, a, la);
		for (i = 0; i < lb; i++)
			if (i >= la || rand() % 12 == 0)
				b[i] = "01"[rand() % 2];
		equal += la == lb && memcmp(a, b, la) == 0;
		cr_assert_eq(at_same(a, la, b, lb), la == lb &&
		    memcmp(a, b, la) == 0, "round %d: %zu, %zu", r, la, lb);
	}
	cr_assert_gt(equal, 50000);
}

/*
 * A line of more than AGG_TOK_MAX tokens is cut short: its last token is
 * the rest, compared as it is. Ranks whose lines differ only in a number
 * there said different things: each value must show, whichever way the
 * group is printed (the rest was taken as the first line's: "loss=1.5"
 * stood for all four ranks).
 */
Test(aggtext, numbers_past_the_last_token_are_not_hidden)
{
	static char		text[4][8192];
	static char		pres[4][32];
	struct agg_group	g;
	struct agg_member	m[4], copy[4];
	size_t			i, k, len, f, e;
	int			way;
	char			want[32];

	for (i = 0; i < 4; i++) {
		len = (size_t)snprintf(text[i], sizeof text[i], "cfg");
		for (k = 0; k < AGG_TOK_MAX; k++)
			len += (size_t)snprintf(text[i] + len,
			    sizeof text[i] - len, " k%zu=v", k);
		len += (size_t)snprintf(text[i] + len, sizeof text[i] - len,
		    " loss=%zu.5 end", i + 1);
		m[i].text = text[i];
		m[i].len = len;
		m[i].rank = (long)i;
		m[i].pid = 100 + (long)i;
		snprintf(pres[i], sizeof pres[i], "[rank %zu] ", i);
		m[i].prefix = pres[i];
		m[i].chunk = NULL;
	}
	memset(&g, 0, sizeof g);
	g.text = text[0];
	g.len = m[0].len;
	g.world = 4;
	g.nmembers = 4;
	for (way = 0; way < 3; way++) {
		for (i = 0; i < 4; i++) {
			m[i].dfrom = AGG_UNALIGNED;
			if (way < 2 && aggtok_digit_diffs(m[i].text, g.text,
			    g.len, &f, &e)) {
				m[i].dfrom = (uint32_t)f;
				m[i].dto = (uint32_t)e;
			}
		}
		/* Way 1: not all aligned, so members are cut in turn. */
		if (way == 1)
			m[2].dfrom = AGG_UNALIGNED;
		memcpy(copy, m, sizeof m);
		g.members = copy;
		nprinted = 0;
		at_cut_each = way == 2;
		aggtext_print(&g, print_cb, print_cb);
		at_cut_each = 0;
		for (i = 0; i < 4; i++) {
			snprintf(want, sizeof want, "%zu.5", i + 1);
			cr_assert_not_null(strstr(printed, want), "way %d: %s "
			    "not shown: %.200s ... %s", way, want, printed,
			    printed + (nprinted > 200 ? nprinted - 200 : 0));
		}
	}
}

/*
 * A trainer's iteration line of about 70 tokens (Megatron's, with its
 * throughput) groups whole: one line, each rank's values at each word.
 * At 64 tokens its last values were in the rest, and each rank printed
 * a line of its own.
 */
Test(aggtext, a_trainers_long_line_groups_whole)
{
	static char		text[4][512], pres[4][32];
	struct agg_group	g;
	struct agg_member	m[4];
	size_t			i, f, e, lines = 0;

	for (i = 0; i < 4; i++) {
		m[i].len = (size_t)snprintf(text[i], sizeof text[i],
		    " iteration      100/  500000 | consumed samples:         "
		    "3200 | elapsed time per iteration (ms): %.1f | learning "
		    "rate: 1.200E-04 | global batch size:    32 | lm loss: "
		    "7.12345%zuE+00 | loss scale: 65536.0 | grad norm: 1.23%zu "
		    "| number of skipped iterations:   0 | number of nan "
		    "iterations:   0 | samples per second: 25.%zu | TFLOPs: "
		    "123.%zu |", 1234.5 + (double)i, i, i, i, i);
		m[i].text = text[i];
		m[i].rank = (long)i;
		m[i].pid = 100 + (long)i;
		snprintf(pres[i], sizeof pres[i], "[rank %zu] ", i);
		m[i].prefix = pres[i];
		m[i].chunk = NULL;
		m[i].dfrom = AGG_UNALIGNED;
		if (aggtok_digit_diffs(text[i], text[0], m[i].len, &f, &e)) {
			m[i].dfrom = (uint32_t)f;
			m[i].dto = (uint32_t)e;
		}
	}
	memset(&g, 0, sizeof g);
	g.text = text[0];
	g.len = m[0].len;
	g.world = 4;
	g.nmembers = 4;
	g.members = m;
	nprinted = 0;
	aggtext_print(&g, print_cb, print_cb);
	for (i = 0; i < nprinted; i++)
		lines += printed[i] == '\n';
	cr_assert_eq(lines, 1, "%s", printed);
	cr_assert_not_null(strstr(printed, "grad norm: {1.230,1.231,1.232,"
	    "1.233} |"), "%s", printed);
	cr_assert_not_null(strstr(printed, "TFLOPs: {123.0,123.1,123.2,"
	    "123.3} |"), "%s", printed);
}

/*
 * The live line of progress bars (console.c) is rendered from states that
 * never joined a group, so no member carries where it differs: each
 * rank's numbers must still be its own, not the first bar's for all.
 */
Test(aggtext, rendered_bars_show_each_ranks_values)
{
	static char		text[4][80], pres[4][32];
	struct origin		o[4];
	const char		*t[4];
	size_t			len[4], i;

	for (i = 0; i < 4; i++) {
		len[i] = (size_t)snprintf(text[i], sizeof text[i],
		    "rank%zu:  %zu%% %zu/50 [00:01<00:09, %zu.00it/s]", i,
		    10 * (i + 1), 5 * (i + 1), 5 + i);
		t[i] = text[i];
		view_rank(&o[i], pres[i], (long)i, 4);
	}
	nprinted = 0;
	aggregate_render(MESHLOG_STDERR, o, t, len, 4, print_cb);
	cr_assert_str_eq(printed, "[ranks 0-3] {rank0,rank1,rank2,rank3}:  "
	    "{10,20,30,40}% {5,10,15,20}/50 [00:01<00:09, {5.00it,6.00it,"
	    "7.00it,8.00it}/s]\n");
}

/*
 * A block whose members differ prints line by line, each line once for
 * the members whose blocks have its number of lines (the first's), the
 * values that differ as sets; a member of another number of lines (two
 * blocks of one key: a hash's collision) is printed whole on its own.
 * Members all of the first's bytes print the block as it is.
 */
Test(aggtext, a_block_whose_members_differ_prints_line_by_line)
{
	static const char	*texts[] = {
	    "Traceback:\n  line 7\nOSError: shard-000",
	    "Traceback:\n  line 7\nOSError: shard-001",
	    "Traceback:\n  line 7\nOSError: shard-002\nextra 5",
	    "Traceback:\n  line 7\nOSError: shard-003" };
	static char		pres[4][32];
	struct agg_group	g;
	struct agg_member	m[4];
	size_t			i;

	/* The group's text is rank 1's: it closed first. */
	memset(&g, 0, sizeof g);
	g.block = 1;
	g.text = (char *)texts[1];
	g.len = strlen(texts[1]);
	g.world = -1;
	g.members = m;
	g.nmembers = 4;
	for (i = 0; i < 4; i++) {
		memset(&m[i], 0, sizeof m[i]);
		m[i].text = i == 1 ? g.text : texts[i];
		m[i].len = strlen(texts[i]);
		m[i].rank = (long)i;
		m[i].pid = 100 + (long)i;
		m[i].dfrom = AGG_UNALIGNED;
		snprintf(pres[i], sizeof pres[i], "[rank %zu] ", i);
		m[i].prefix = pres[i];
	}
	nprinted = 0;
	aggtext_print(&g, print_cb, print_cb);
	cr_assert_str_eq(printed,
	    "[ranks 0-1,3] Traceback:\n"
	    "[ranks 0-1,3]   line 7\n"
	    "[ranks 0-1,3] OSError: shard-{000,001,003}\n"
	    "[rank 2] Traceback:\n"
	    "[rank 2]   line 7\n"
	    "[rank 2] OSError: shard-002\n"
	    "[rank 2] extra 5\n");
	/* Two: the first by rank differs, the other is the group's text. */
	g.nmembers = 2;
	nprinted = 0;
	aggtext_print(&g, print_cb, print_cb);
	cr_assert_str_eq(printed,
	    "[ranks 0-1] Traceback:\n"
	    "[ranks 0-1]   line 7\n"
	    "[ranks 0-1] OSError: shard-{000,001}\n");
	g.nmembers = 4;
	/* The same bytes: the block once. */
	for (i = 0; i < 4; i++) {
		m[i].text = g.text;
		m[i].len = g.len;
	}
	nprinted = 0;
	aggtext_print(&g, print_cb, print_cb);
	cr_assert_str_eq(printed,
	    "[ranks 0-3] Traceback:\n"
	    "[ranks 0-3]   line 7\n"
	    "[ranks 0-3] OSError: shard-001\n");
}
