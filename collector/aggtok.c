/*
 * A line cut into tokens for aggtext.c: words (a number with its decimal
 * point, exponent and sign is one word) and single marks (a colour's
 * escape sequence is one), blanks only separating; and a line cut knowing
 * the tokens of a line like it, where only the part between their common
 * start and end is cut.
 */

#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AT_AVX2
#endif

#include "aggregate.h"

/*
 * Byte classes: a word's bytes (letters, digits, '_' and any byte past
 * ASCII), blanks, and the marks a number may hold inside ('.', '-', '+')
 * or start with ('-', '+'). Digits are told by agg_digit.
 */
#define AT_W	1
#define AT_B	4
#define AT_IN	8
#define AT_SIGN	16
static unsigned char	at_class[256];

void
aggtok_init(void)
{
	int	c;

	if (at_class['a'] != 0)
		return;
	for (c = 0; c < 256; c++) {
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c >= 0x80)
			at_class[c] = AT_W;
	}
	at_class[' '] = at_class['\t'] = AT_B;
	at_class['.'] = AT_IN;
	at_class['-'] = at_class['+'] = AT_IN | AT_SIGN;
}

static int
at_wordc(unsigned char c)
{
	return (at_class[c] & AT_W);
}

/*
 * What at_tokens_from may take from a text x already cut (xt, xnt tokens)
 * while it cuts y: from byte from of y on, y's bytes (and the one before)
 * are x's, delta bytes further on in x.
 */
struct at_like {
	const struct agg_tok	*xt;
	size_t			 xnt;
	size_t			 from;
	long			 delta;
	size_t			 took;	/* out: from this token on, x's */
};

/*
 * Cut s into tokens: words (a decimal point, an exponent's sign and a
 * leading sign belong to the number they are in) and single marks; blanks
 * only separate. At most max tokens; the last takes the rest of a longer
 * line, as a mark. Starts at byte i with nt tokens cut; with like, a token
 * that starts where x has its token of the same number, in their common
 * end, is followed by x's. Returns the number of tokens.
 */
static size_t
at_tokens_from(const char *s, size_t n, struct agg_tok *t, size_t max,
    size_t i, size_t nt, struct at_like *like)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 j, kx = nt, from, sgr;
	unsigned		 c;

	from = like != NULL ? like->from : SIZE_MAX;
	while (i < n && nt < max) {
		c = at_class[u[i]];
		if (c & AT_B) {
			i++;
			continue;
		}
		if (i >= from) {
			while (kx < like->xnt &&
			    (long)like->xt[kx].off < (long)i + like->delta)
				kx++;
			if (kx == nt && kx < like->xnt &&
			    (long)like->xt[kx].off == (long)i + like->delta) {
				like->took = nt;
				/* Lines of one length: x's as they are. */
				if (like->delta == 0) {
					memcpy(t + nt, like->xt + kx,
					    (like->xnt - kx) * sizeof *t);
					return (like->xnt);
				}
				for (; kx < like->xnt; kx++, nt++) {
					t[nt] = like->xt[kx];
					t[nt].off = (uint32_t)((long)t[nt].off -
					    like->delta);
				}
				return (nt);
			}
		}
		if (nt == max - 1) {	/* the rest, compared as it is */
			t[nt].off = (uint32_t)i;
			t[nt].len = (uint32_t)(n - i);
			t[nt++].word = 0;
			return (nt);
		}
		j = i;
		if ((c & AT_SIGN) && j + 1 < n && agg_digit(s[j + 1]) &&
		    (j == 0 || !at_wordc(u[j - 1]))) {
			j++;
			c = AT_W;	/* a digit follows */
		}
		if (c & AT_W) {
			for (j++;; j++) {
				while (j < n && (at_class[u[j]] & AT_W))
					j++;
				if (j + 1 >= n || !(at_class[u[j]] & AT_IN))
					break;
				/* 2.5, 10.0.0.1 */
				if (u[j] == '.' && agg_digit(s[j - 1]) &&
				    agg_digit(s[j + 1]))
					continue;
				/* 1e-05 */
				if ((u[j] == '-' || u[j] == '+') && j >= 2 &&
				    (s[j - 1] == 'e' || s[j - 1] == 'E') &&
				    agg_digit(s[j - 2]) && agg_digit(s[j + 1]))
					continue;
				break;
			}
			t[nt].word = 1;
		} else {
			/* A colour (ESC [ 1 ; 32 m) is one mark: none of its
			 * digits start a word, nor is it cut. */
			sgr = u[i] == 0x1b ? visible_sgr(u + i, n - i) : 0;
			j = i + (sgr > 0 ? sgr : 1);
			t[nt].word = 0;
		}
		t[nt].off = (uint32_t)i;
		t[nt].len = (uint32_t)(j - i);
		nt++;
		i = j;
	}
	return (nt);
}

static size_t
at_tokens(const char *s, size_t n, struct agg_tok *t, size_t max)
{
	return (at_tokens_from(s, n, t, max, 0, 0, NULL));
}

/* Bytes a and b (n each at most) have in common from their start. */
static size_t
at_common_head(const char *a, const char *b, size_t n)
{
	uint64_t	x, y;
	size_t		i = 0;

	while (i + 8 <= n) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			break;
		i += 8;
	}
	while (i < n && a[i] == b[i])
		i++;
	return (i);
}

/* Bytes a and b have in common at their ends (ending at a + n, b + m). */
static size_t
at_common_tail(const char *a, size_t n, const char *b, size_t m, size_t max)
{
	uint64_t	x, y;
	size_t		i = 0;
#ifdef __SSE2__
	__m128i		u, v;
	unsigned	ne;

	/* Sixteen bytes at a time; where they differ, the equal ones after
	 * the last difference count too. */
	while (i + 16 <= max) {
		u = _mm_loadu_si128((const __m128i *)(const void *)
		    (a + n - i - 16));
		v = _mm_loadu_si128((const __m128i *)(const void *)
		    (b + m - i - 16));
		ne = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(u, v)) &
		    0xffff;
		if (ne != 0)
			return (i + (size_t)__builtin_clz(ne) - 16);
		i += 16;
	}
#endif
	while (i + 8 <= max) {
		memcpy(&x, a + n - i - 8, 8);
		memcpy(&y, b + m - i - 8, 8);
		if (x != y)
			break;
		i += 8;
	}
	while (i < max && a[n - i - 1] == b[m - i - 1])
		i++;
	return (i);
}

#ifdef AT_AVX2
/*
 * Whether x and y (n bytes each) differ inside a colour's escape sequence
 * of x's: "\x1b[31m" against "\x1b[33m" is no number that differs but
 * another colour, which the mark the sequence is cut as could not show.
 */
static int
at_colour_differs(const char *x, const char *y, size_t n)
{
	const char	*e;
	size_t		 i = 0, k;

	while ((e = memchr(x + i, 0x1b, n - i)) != NULL) {
		i = (size_t)(e - x);
		k = visible_sgr((const unsigned char *)e, n - i);
		if (k > 0 && memcmp(e, y + i, k) != 0)
			return (1);
		i += k > 0 ? k : 1;
	}
	return (0);
}

/* Whether the processor has AVX2: -1 before it is asked. */
static int	at_avx2 = -1;

/*
 * aggtok_digit_diffs 32 bytes at a time, for n >= 32: a member is most
 * often one line of a hundred bytes or so, and every member is compared.
 */
__attribute__((target("avx2")))
static int
at_digit_diffs32(const char *x, const char *y, size_t n, size_t *first,
    size_t *end)
{
	/* c - '0' below 10 unsigned: moved by 0x80, below 0x8a signed. */
	const __m256i	shift = _mm256_set1_epi8((char)(0x80 - '0'));
	const __m256i	ten = _mm256_set1_epi8((char)(0x80 + 10));
	__m256i		u, v, dd;
	uint32_t	ne;
	size_t		i, at;

	for (i = 0; i < n; i = at + 32) {
		at = i + 32 <= n ? i : n - 32;
		u = _mm256_loadu_si256((const __m256i *)(const void *)(x + at));
		v = _mm256_loadu_si256((const __m256i *)(const void *)(y + at));
		ne = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(u, v));
		if (ne == 0)
			continue;
		dd = _mm256_and_si256(
		    _mm256_cmpgt_epi8(ten, _mm256_add_epi8(u, shift)),
		    _mm256_cmpgt_epi8(ten, _mm256_add_epi8(v, shift)));
		if (ne & ~(uint32_t)_mm256_movemask_epi8(dd))
			return (0);
		if (*first == n)
			*first = at + (size_t)__builtin_ctz(ne);
		*end = at + 32 - (size_t)__builtin_clz(ne);
	}
	return (1);
}
#endif

int
aggtok_digit_diffs_raw(const char *x, const char *y, size_t n,
    size_t *first, size_t *end)
{
	size_t		i = 0;
#ifdef __SSE2__
	const __m128i	lo = _mm_set1_epi8('0' - 1);
	const __m128i	hi = _mm_set1_epi8('9' + 1);
	__m128i		u, v, du, dv;
	unsigned	ne, dd;
	size_t		at;
#endif

	*first = n;
	*end = 0;
#ifdef AT_AVX2
	if (at_avx2 < 0) {
		__builtin_cpu_init();
		at_avx2 = __builtin_cpu_supports("avx2") != 0;
	}
	if (at_avx2 && n >= 32)
		return (at_digit_diffs32(x, y, n, first, end));
#endif
#ifdef __SSE2__
	/* Sixteen bytes at a time, the last load moved back to end at n. */
	for (; n >= 16 && i < n; i = at + 16) {
		at = i + 16 <= n ? i : n - 16;
		u = _mm_loadu_si128((const __m128i *)(const void *)(x + at));
		v = _mm_loadu_si128((const __m128i *)(const void *)(y + at));
		ne = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(u, v)) &
		    0xffff;
		if (ne == 0)
			continue;
		du = _mm_and_si128(_mm_cmpgt_epi8(u, lo),
		    _mm_cmplt_epi8(u, hi));
		dv = _mm_and_si128(_mm_cmpgt_epi8(v, lo),
		    _mm_cmplt_epi8(v, hi));
		dd = (unsigned)_mm_movemask_epi8(_mm_and_si128(du, dv));
		if (ne & ~dd)
			return (0);
		if (*first == n)
			*first = at + (size_t)__builtin_ctz(ne);
		*end = at + 32 - (size_t)__builtin_clz(ne);
	}
#endif
	for (; i < n; i++) {
		if (x[i] == y[i])
			continue;
		if (!agg_digit(x[i]) || !agg_digit(y[i]))
			return (0);
		if (*first == n)
			*first = i;
		*end = i + 1;
	}
	return (1);
}

int
aggtok_digit_diffs(const char *x, const char *y, size_t n, size_t *first,
    size_t *end)
{
	return (aggtok_digit_diffs_raw(x, y, n, first, end) && (*first == n ||
	    !at_colour_differs(x, y, n)));
}

void
aggtok_span(const struct agg_tok *xt, size_t xnt, size_t first, size_t end,
    size_t *lo, size_t *hi)
{
	size_t	a = 0;

	/* A token's end is decided by the byte after it too. */
	while (a < xnt && xt[a].off + xt[a].len + 1 < first)
		a++;
	*lo = a;
	while (a < xnt && xt[a].off < end)
		a++;
	*hi = a;
}

/*
 * The tokens of y, as at_tokens cuts them, knowing x's (xnt of them): a
 * group's members differ in a few words, so only the part between their
 * common start and common end is cut; the tokens around it are x's. Those
 * before *lo and from *hi on are x's, the same bytes.
 */
static size_t
at_tokens_like(const char *x, size_t xn, const struct agg_tok *xt,
    size_t xnt, const char *y, size_t yn, struct agg_tok *t, size_t max,
    size_t *lo, size_t *hi, int *same)
{
	struct at_like	like;
	size_t		lim = xn < yn ? xn : yn, head, tail, a = 0, nt, end;

	/*
	 * Most members differ from the first line in numbers of one width
	 * (a rank, a step, a loss with four decimals): x's tokens are theirs,
	 * at the same places (with same, not copied: *same is 1).
	 */
	if (xn == yn && (same != NULL ? aggtok_digit_diffs(x, y, xn, &head,
	    &end) : aggtok_digit_diffs_raw(x, y, xn, &head, &end))) {
		if (same != NULL)
			*same = 1;
		else
			memcpy(t, xt, xnt * sizeof *t);
		aggtok_span(xt, xnt, head, end, lo, hi);
		return (xnt);
	}
	if (same != NULL)
		*same = 0;
	head = at_common_head(x, y, lim);
	tail = at_common_tail(x, xn, y, yn, lim - head);
	while (a < xnt && xt[a].off + xt[a].len + 1 < head)
		a++;
	memcpy(t, xt, a * sizeof *t);
	like.xt = xt;
	like.xnt = xnt;
	like.from = yn - tail + 1;
	like.delta = (long)xn - (long)yn;
	like.took = SIZE_MAX;
	nt = at_tokens_from(y, yn, t, max, a > 0 ? xt[a - 1].off +
	    xt[a - 1].len : 0, a, &like);
	*lo = a;
	*hi = like.took != SIZE_MAX ? like.took : nt;
	return (nt);
}

/*
 * The tokens of a group's first line, cut like the one before it: in a
 * stream of groups the first lines are mostly one template, so only the
 * part that differs from the last one is cut (at_tokens_like is exact for
 * any two lines).
 */
uint64_t
aggtok_block_key(const char *p, size_t len, int min_letters)
{
	const char	*end = p + len, *nl;
	struct shape	 sh;
	uint64_t	 h = 0;

	for (;;) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		shape_of(p, (size_t)(nl - p), &sh);
		h = (h ^ (sh.letters < min_letters ? shape_bytes(p,
		    (size_t)(nl - p)) : sh.key)) * 0x9e3779b97f4a7c15ULL;
		if (nl == end)
			return (h ^ (h >> 29));
		p = nl + 1;
	}
}

size_t
aggtok_prev(const char *s, size_t n, struct agg_tok *t)
{
	static char		 prev[4096];
	static struct agg_tok	 prevt[AGG_TOK_MAX];
	static size_t		 prevn, prevnt;
	static int		 have;
	size_t			 nt, lo, hi;

	nt = have ? at_tokens_like(prev, prevn, prevt, prevnt, s, n, t,
	    AGG_TOK_MAX, &lo, &hi, NULL) : at_tokens(s, n, t, AGG_TOK_MAX);
	have = n <= sizeof prev;
	if (have) {
		memcpy(prev, s, n);
		memcpy(prevt, t, nt * sizeof *t);
		prevn = n;
		prevnt = nt;
	}
	return (nt);
}

/* Whether the tokens b of text y align with a of text x, from lo to hi. */
static int
at_align(const char *x, const struct agg_tok *a, const char *y,
    const struct agg_tok *b, size_t lo, size_t hi)
{
	size_t	i;

	for (i = lo; i < hi; i++) {
		if (a[i].word != b[i].word)
			return (0);
		if (!a[i].word && (a[i].len != b[i].len ||
		    memcmp(x + a[i].off, y + b[i].off, a[i].len) != 0))
			return (0);
	}
	return (1);
}

int
aggtok_member(const char *x, size_t xn, const struct agg_tok *xt,
    size_t xnt, const char *y, size_t yn, struct agg_tok *t, size_t *lo,
    size_t *hi)
{
	int	same;

	/* A line with more tokens than x's is told apart at xnt + 1. */
	if (at_tokens_like(x, xn, xt, xnt, y, yn, t, xnt < AGG_TOK_MAX ?
	    xnt + 1 : AGG_TOK_MAX, lo, hi, &same) != xnt ||
	    (!same && !at_align(x, xt, y, t, *lo, *hi)))
		return (0);
	if (same && !aggtok_rest_same(x, xt, xnt, y, *hi))
		return (0);
	return (same ? 2 : 1);
}

int
aggtok_rest_same(const char *x, const struct agg_tok *xt, size_t xnt,
    const char *y, size_t hi)
{
	const struct agg_tok	*t = &xt[xnt - 1];

	return (xnt < AGG_TOK_MAX || hi < xnt ||
	    memcmp(x + t->off, y + t->off, t->len) == 0);
}
