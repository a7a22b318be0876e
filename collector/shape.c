/*
 * A console line's shape: its aggregation template and its severity,
 * remembered for lines that differ only in their digits.
 *
 * Both depend on a line's bytes only through which are digits: the
 * template masks any word holding a digit, and severity detection looks
 * at letters and at where digits are, never at their values. So a line
 * equal to an earlier one once every digit reads as '0' has that line's
 * shape. Most lines of a job are printed by a few formats with numbers
 * of stable width ("step 1200 loss=2.3145"), and for them a hash of the
 * line, sixteen bytes at a time, replaces tokenizing it. A line whose
 * digits change in number, or that holds fresh ids with letters in them,
 * is shaped in full, as before.
 *
 * The table is direct-mapped: a new shape replaces whatever had its slot.
 * Two lines would share a shape wrongly only if their 64-bit hashes and
 * lengths were both equal.
 *
 * The template is made here too: a line cut into tokens (words, masked
 * when they hold a digit, and single punctuation characters; white space
 * only separates), each hashed on its own. The aggregator signs lines
 * with spans of the same tokens.
 */

#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <wmmintrin.h>
#define SHAPE_AES
#endif

#include "collector.h"
#include "runtime/jwplain.h"

#define SHAPE_SLOTS	4096

struct shape_slot {
	uint64_t	hash;
	uint64_t	key;
	uint32_t	len;
	int32_t		letters;
	int32_t		severity;
	int32_t		used;
};

static struct shape_slot	shape_table[SHAPE_SLOTS];
static uint64_t			shape_hits, shape_misses;

/* Character flags for tokenizing: word bytes, and digits among them. */
#define SHAPE_WORD	1	/* letters, digits, '_', UTF-8 bytes */
#define SHAPE_DIGIT	2
#define SHAPE_BLANK	4

static unsigned char	shape_flags[256];

/* Fill the flags table once. */
static void
shape_flags_init(void)
{
	int	c;

	for (c = 0; c < 256; c++) {
		if (c >= '0' && c <= '9')
			shape_flags[c] = SHAPE_WORD | SHAPE_DIGIT;
		else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || c >= 0x80)
			shape_flags[c] = SHAPE_WORD;
		else if (c == ' ' || c == '\t')
			shape_flags[c] = SHAPE_BLANK;
	}
}

uint64_t
shape_bytes(const char *s, size_t n)
{
	uint64_t	h = 0x84222325cbf29ce4ULL ^ n, w;

	while (n >= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 31;
		s += 8;
		n -= 8;
	}
	if (n > 0) {
		/* A shift loop: a variable-length memcpy is a libc call. */
		for (w = 0; n > 0; n--)
			w = (w << 8) | (unsigned char)s[n - 1];
		h = (h ^ w) * 0xc2b2ae3d27d4eb4fULL;
		h ^= h >> 29;
	}
	return (h);
}

/*
 * A token's hash at position i of a template. Templates add these up:
 * each token is mixed on its own, so the processor works on several at
 * once instead of waiting for a chain of multiplications.
 */
static inline uint64_t
shape_at(uint64_t h, size_t i)
{
	h = (h ^ (i * 0xd6e8feb86659fd93ULL)) * 0x9e3779b97f4a7c15ULL;
	return (h ^ (h >> 32));
}

/* Sums stay in locals: a store through t could alias the line's bytes. */
void
shape_tokenize(const char *s, size_t n, struct shape_tokens *t)
{
	const unsigned char	*u = (const unsigned char *)s;
	uint64_t		 key = 0, h;
	size_t			 i = 0, j, nt = 0;
	unsigned		 f, acc;
	int			 letters = 0;

	if (shape_flags['a'] == 0)
		shape_flags_init();
	while (i < n) {
		f = shape_flags[u[i]];
		if (f & SHAPE_BLANK) {
			i++;
			continue;
		}
		if (!(f & SHAPE_WORD)) {
			h = 0x51ed270b27a0c5e9ULL * (u[i] + 1U);
			j = i + 1;
		} else {
			acc = f;
			for (j = i + 1; j < n && ((f = shape_flags[u[j]]) &
			    SHAPE_WORD); j++)
				acc |= f;
			if (acc & SHAPE_DIGIT)
				h = 0x2545f4914f6cdd1dULL;	/* the mask */
			else {
				h = shape_bytes(s + i, j - i);
				letters += (int)(j - i);
			}
		}
		key += shape_at(h, nt);
		if (nt < SHAPE_MAX_TOKENS)
			t->h[nt] = h;
		else	/* fold the rest into the last token */
			t->h[SHAPE_MAX_TOKENS - 1] = (t->h[SHAPE_MAX_TOKENS - 1] ^
			    h) * 0x9e3779b97f4a7c15ULL;
		nt++;
		i = j;
	}
	t->n = nt;
	t->letters = letters;
	t->key = key ^ nt;
}

uint64_t
shape_span(const struct shape_tokens *t, size_t from, size_t to)
{
	uint64_t	h = 0;
	size_t		i;

	for (i = from; i < to; i++)
		h += shape_at(t->h[i], i - from);
	return ((h ^ (to - from)) ^ ((uint64_t)from << 56));
}

uint64_t
shape_template(const char *s, size_t n, int *letters)
{
	struct shape_tokens	t;

	shape_tokenize(s, n, &t);
	*letters = t.letters;
	return (t.key);
}

/* Mix one word into a lane. */
static inline uint64_t
shape_mix(uint64_t h, uint64_t w, uint64_t m)
{
	h = (h ^ w) * m;
	return (h ^ (h >> 29));
}

/* Eight bytes with each digit read as '0', one byte at a time. */
static uint64_t
shape_tail(const unsigned char *u, size_t n)
{
	uint64_t	w = 0;
	unsigned	c;

	while (n-- > 0) {
		c = u[n];
		if (c >= '0' && c <= '9')
			c = '0';
		w = (w << 8) | c;
	}
	return (w);
}

/* Hash of the line with every digit read as '0'. */
static uint64_t
shape_hash(const char *s, size_t n)
{
	const unsigned char	*u = (const unsigned char *)s;
	uint64_t		 h1 = 0x9ae16a3b2f90404fULL ^ n, h2 = n, a, b;
	size_t			 i = 0;
#ifdef __SSE2__
	const __m128i		 lo = _mm_set1_epi8('0' - 1);
	const __m128i		 hi = _mm_set1_epi8('9' + 1);
	const __m128i		 zero = _mm_set1_epi8('0');
	__m128i			 v, d;

	/* Two lanes, so that one waits less on the other's multiply. */
	for (; i + 16 <= n; i += 16) {
		v = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
		d = _mm_and_si128(_mm_cmpgt_epi8(v, lo), _mm_cmplt_epi8(v, hi));
		v = _mm_or_si128(_mm_andnot_si128(d, v), _mm_and_si128(d, zero));
		a = (uint64_t)_mm_cvtsi128_si64(v);
		b = (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v));
		h1 = shape_mix(h1, a, 0x9e3779b97f4a7c15ULL);
		h2 = shape_mix(h2, b, 0xc2b2ae3d27d4eb4fULL);
	}
#endif
	for (; i + 8 <= n; i += 8)
		h1 = shape_mix(h1, shape_tail(u + i, 8), 0x9e3779b97f4a7c15ULL);
	if (i < n)
		h2 = shape_mix(h2, shape_tail(u + i, n - i),
		    0xc2b2ae3d27d4eb4fULL);
	return (shape_mix(h1 ^ (h2 * 0xff51afd7ed558ccdULL), h2,
	    0x9e3779b97f4a7c15ULL));
}

#ifdef SHAPE_AES
/*
 * Whether the processor has AES instructions (1), and AVX too (2): -1
 * before it is asked.
 */
static int	shape_aes = -1;

/* Ask the processor once. */
static void
shape_cpu(void)
{
	__builtin_cpu_init();
	shape_aes = !__builtin_cpu_supports("aes") ? 0 :
	    __builtin_cpu_supports("avx") ? 2 : 1;
}

/* v with each digit read as '0' (which only the low four bits tell). */
__attribute__((target("sse2,aes")))
static inline __m128i
shape_zero16(__m128i v)
{
	const __m128i	shift = _mm_set1_epi8((char)(0x80 - '0'));
	const __m128i	ten = _mm_set1_epi8((char)(0x80 + 10));
	const __m128i	low4 = _mm_set1_epi8(0x0f);
	__m128i		d;

	/* c - '0' below 10 unsigned: moved by 0x80, below 0x8a signed. */
	d = _mm_cmplt_epi8(_mm_add_epi8(v, shift), ten);
	return (_mm_andnot_si128(_mm_and_si128(d, low4), v));
}

/* The state shape_hash_aes() starts from, before a line's first block. */
__attribute__((target("sse2,aes")))
static inline __m128i
shape_aes_start(void)
{
	return (_mm_set_epi64x(0, (long long)0x9ae16a3b2f90404fULL));
}

/*
 * The end of shape_hash_aes(u, n), its state st after the line's whole
 * blocks: the last bytes' block, then the length, mixed in by two more
 * rounds that spread the last block over the whole state.
 */
__attribute__((target("sse2,aes")))
static inline uint64_t
shape_aes_end(__m128i st, const unsigned char *u, size_t n)
{
	__m128i	v;

	if (n % 16 != 0) {
		if (n >= 16)
			v = shape_zero16(_mm_loadu_si128((const __m128i *)
			    (const void *)(u + n - 16)));
		else
			v = _mm_set_epi64x((long long)(n > 8 ?
			    shape_tail(u + 8, n - 8) : 0),
			    (long long)shape_tail(u, n < 8 ? n : 8));
		st = _mm_aesenc_si128(st, v);
	}
	st = _mm_aesenc_si128(st, _mm_xor_si128(_mm_set1_epi32(0x243f6a88),
	    _mm_set_epi64x((long long)n, 0)));
	st = _mm_aesenc_si128(st, _mm_set1_epi32(0x85a308d3));
	return ((uint64_t)_mm_cvtsi128_si64(st) ^
	    (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(st, st)));
}

/*
 * The state after the whole blocks of u (n bytes), from shape_aes_start();
 * with bad, json_bad16's marks of those blocks or'ed into *bad as well.
 */
__attribute__((target("sse2,aes"), always_inline))
static inline __m128i
shape_aes_blocks(const unsigned char *u, size_t n, int *bad)
{
	__m128i	st = shape_aes_start(), v;
	size_t	i;

	for (i = 0; i + 16 <= n; i += 16) {
		v = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
		if (bad != NULL)
			*bad |= json_bad16(v);
		st = _mm_aesenc_si128(st, shape_zero16(v));
	}
	return (st);
}

/*
 * The same hash in one AES round per 16 bytes, a third of the work. A
 * round without its key is a permutation of the state, and each block is
 * the key of its round: two lines of one length that differ in one block
 * never reach the same state, and other differences do by chance only (a
 * program that crafts collisions only misgroups its own lines); the state
 * is folded to 64 bits at the end. The last block of a line over 16 bytes
 * overlaps the one before; shorter lines are one block read a byte at a
 * time. The length is mixed in last, so that a pass that has not found a
 * line's end yet can hash its blocks as it goes (shape_line).
 */
__attribute__((target("sse2,aes")))
static uint64_t
shape_hash_aes(const char *s, size_t n)
{
	const unsigned char	*u = (const unsigned char *)s;

	return (shape_aes_end(shape_aes_blocks(u, n, NULL), u, n));
}
#endif

void
shape_use(int level)
{
#ifdef SHAPE_AES
	if (shape_aes == -1)
		shape_cpu();
	if (level < shape_aes)
		shape_aes = level;
#endif
	memset(shape_table, 0, sizeof shape_table);
}

/* A line not remembered: shape it in full and keep it in slot e. */
static __attribute__((noinline)) void
shape_remember(struct shape_slot *e, const char *line, size_t len,
    uint64_t h, struct shape *out)
{
	int	letters;

	shape_misses++;
	out->key = shape_template(line, len, &letters);
	out->letters = letters;
	out->severity = severity_detect(line, len);
	if (len > UINT32_MAX)
		return;
	e->hash = h;
	e->key = out->key;
	e->len = (uint32_t)len;
	e->letters = letters;
	e->severity = out->severity;
	e->used = 1;
}

/* The shape of line, whose hash is h: remembered, or made and kept. */
static inline void
shape_lookup(const char *line, size_t len, uint64_t h, struct shape *out)
{
	struct shape_slot	*e;

	e = &shape_table[h % SHAPE_SLOTS];
	if (e->used && e->hash == h && e->len == len) {
		shape_hits++;
		out->key = e->key;
		out->letters = e->letters;
		out->severity = e->severity;
		return;
	}
	shape_remember(e, line, len, h, out);
}

void
shape_of(const char *line, size_t len, struct shape *out)
{
	uint64_t	h;

#ifdef SHAPE_AES
	if (shape_aes == -1)
		shape_cpu();
	h = shape_aes ? shape_hash_aes(line, len) : shape_hash(line, len);
#else
	h = shape_hash(line, len);
#endif

	shape_lookup(line, len, h, out);
}

#ifdef SHAPE_AES
/*
 * shape_line() on the AES path: each of the line's blocks is looked at
 * once, for bytes to escape (its \n first among them) and for the hash.
 * Compiled twice: with AVX's encoding it takes a fifth fewer instructions
 * (no copies of registers).
 */
__attribute__((target("sse2,aes"), always_inline))
static inline ssize_t
shape_line_aes(const char *p, size_t n, size_t max, struct shape *out)
{
	const unsigned char	*u = (const unsigned char *)p;
	__m128i			 st, v, w;
	size_t			 i, len;
	int			 m;

	st = shape_aes_start();
	/* Two blocks a step; the first hashed before the second is looked
	 * at, so a line ending in the second has the first in its hash. */
	for (i = 0; i + 32 <= n; i += 32) {
		v = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
		w = _mm_loadu_si128((const __m128i *)(const void *)(u + i +
		    16));
		if ((m = json_bad16(v)) != 0)
			goto found;
		st = _mm_aesenc_si128(st, shape_zero16(v));
		if ((m = json_bad16(w)) != 0) {
			i += 16;
			goto found;
		}
		st = _mm_aesenc_si128(st, shape_zero16(w));
	}
	if (i + 16 > n)
		return (-1);
	v = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
	if ((m = json_bad16(v)) == 0)
		return (-1);
found:
	len = i + (size_t)__builtin_ctz((unsigned)m);
	if (u[len] != '\n' || len > max)
		return (-1);
	shape_lookup(p, len, shape_aes_end(st, u, len), out);
	return ((ssize_t)len);
}

__attribute__((target("sse2,aes")))
static ssize_t
shape_line_sse(const char *p, size_t n, size_t max, struct shape *out)
{
	return (shape_line_aes(p, n, max, out));
}

__attribute__((target("avx,aes")))
static ssize_t
shape_line_avx(const char *p, size_t n, size_t max, struct shape *out)
{
	return (shape_line_aes(p, n, max, out));
}

/*
 * shape_of() on the AES path, and whether every byte of the line can be
 * copied into a JSON string as it is, in the same pass over its blocks.
 */
__attribute__((target("sse2,aes"), always_inline))
static inline int
shape_whole_aes(const char *p, size_t n, struct shape *out)
{
	const unsigned char	*u = (const unsigned char *)p;
	__m128i			 st;
	size_t			 i;
	int			 bad = 0;

	st = shape_aes_blocks(u, n, &bad);
	/* The last bytes: in a block that overlaps the one before, or a
	 * short line's one by one. */
	if (n % 16 != 0 && n >= 16)
		bad |= json_bad16(_mm_loadu_si128((const __m128i *)
		    (const void *)(u + n - 16)));
	else
		for (i = n - n % 16; i < n; i++)
			bad |= !json_plain(u[i]);
	shape_lookup(p, n, shape_aes_end(st, u, n), out);
	return (bad == 0);
}

__attribute__((target("sse2,aes")))
static int
shape_whole_sse(const char *p, size_t n, struct shape *out)
{
	return (shape_whole_aes(p, n, out));
}

__attribute__((target("avx,aes")))
static int
shape_whole_avx(const char *p, size_t n, struct shape *out)
{
	return (shape_whole_aes(p, n, out));
}
#endif

int
shape_whole(const char *line, size_t len, struct shape *out)
{
#ifdef SHAPE_AES
	if (shape_aes == -1)
		shape_cpu();
	if (shape_aes == 2)
		return (shape_whole_avx(line, len, out));
	if (shape_aes == 1)
		return (shape_whole_sse(line, len, out));
#endif
	shape_of(line, len, out);
	return (0);
}

ssize_t
shape_line(const char *p, size_t n, size_t max, struct shape *out)
{
#ifdef SHAPE_AES
	if (shape_aes == -1)
		shape_cpu();
	if (shape_aes == 2)
		return (shape_line_avx(p, n, max, out));
	if (shape_aes == 1)
		return (shape_line_sse(p, n, max, out));
#endif
	return (-1);
}

void
shape_stats(uint64_t *hits, uint64_t *misses)
{
	*hits = shape_hits;
	*misses = shape_misses;
}
