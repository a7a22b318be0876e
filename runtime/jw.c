/* A JSON writer into fixed buffers, safe to call from a constructor. */

#include <stdint.h>
#include <string.h>

#include "runtime.h"
#include "jwplain.h"

static const char hexdigits[] = "0123456789abcdef";

size_t
utf8_valid(const unsigned char *s, size_t n)
{
	unsigned char	c = s[0];
	unsigned char	lo = 0x80, hi = 0xbf;
	size_t		len, i;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return (0);
	if (n < len)
		return (0);
	if (s[1] < lo || s[1] > hi)
		return (0);
	for (i = 2; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return (0);
	}
	return (len);
}

/*
 * Whether all eight bytes of w can be copied as they are: printable, and
 * no '"' or '\\'. The zero-byte tests may flag a byte that is fine next
 * to one that is not; that only sends the word to the byte-by-byte path.
 */
static inline int
json_plain8(uint64_t w)
{
	const uint64_t	ones = 0x0101010101010101ULL;
	const uint64_t	high = 0x8080808080808080ULL;
	uint64_t	q = w ^ (ones * '"'), b = w ^ (ones * '\\');

	return (ascii_printable8(w) && (((q - ones) | (b - ones)) & ~w &
	    high) == 0);
}

size_t
utf8_copy(char **d, const unsigned char *s, size_t n)
{
	size_t	k = utf8_valid(s, n);

	if (k == 0) {
		memcpy(*d, "\xef\xbf\xbd", 3);	/* U+FFFD REPLACEMENT CHARACTER */
		*d += 3;
		return (1);
	}
	memcpy(*d, s, k);
	*d += k;
	return (k);
}

/*
 * Plain bytes are stored as they are loaded, 16 or eight at a time, with
 * no second pass to copy them: a store may write past the plain ones, and
 * what follows overwrites that. It stays inside dst, which holds six
 * bytes for each byte not yet read.
 */
size_t
json_escape(char *dst, const char *src, size_t n)
{
	const unsigned char	*s = (const unsigned char *)src;
	char			*d = dst;
	size_t			 i = 0;
	unsigned char		 c;
	uint64_t		 w;
#ifdef __SSE2__
	__m128i			 v, v2;
	unsigned		 b;
	int			 m;
#endif

	while (i < n) {
#ifdef __SSE2__
		for (; i + 32 <= n; i += 32, d += 32) {
			v = _mm_loadu_si128((const __m128i *)(const void *)
			    (s + i));
			v2 = _mm_loadu_si128((const __m128i *)(const void *)
			    (s + i + 16));
			_mm_storeu_si128((__m128i *)(void *)d, v);
			_mm_storeu_si128((__m128i *)(void *)(d + 16), v2);
			b = (unsigned)json_bad16(v) |
			    (unsigned)json_bad16(v2) << 16;
			if (b != 0) {
				m = __builtin_ctz(b);
				i += (size_t)m;
				d += m;
				goto special;
			}
		}
		for (; i + 16 <= n; i += 16, d += 16) {
			v = _mm_loadu_si128((const __m128i *)(const void *)
			    (s + i));
			_mm_storeu_si128((__m128i *)(void *)d, v);
			if ((m = json_bad16(v)) != 0) {
				m = __builtin_ctz((unsigned)m);
				i += (size_t)m;
				d += m;
				break;
			}
		}
		/*
		 * Fewer than 16 left, and so far each byte was copied as it
		 * was: the last 16 bytes in one step, those before i stored
		 * again where they already are.
		 */
		if (n - i < 16 && n >= 16 && (size_t)(d - dst) == i &&
		    i < n) {
			v = _mm_loadu_si128((const __m128i *)(const void *)
			    (s + n - 16));
			_mm_storeu_si128((__m128i *)(void *)(dst + n - 16), v);
			m = json_bad16(v) >> (16 - (n - i));
			if (m == 0) {
				d = dst + n;
				break;
			}
			m = __builtin_ctz((unsigned)m);
			i += (size_t)m;
			d += m;
		}
#endif
		for (; i + 8 <= n; i += 8, d += 8) {
			memcpy(&w, s + i, 8);
			if (!json_plain8(w))
				break;
			memcpy(d, &w, 8);
		}
		for (; i < n && json_plain(s[i]); i++)
			*d++ = (char)s[i];
		if (i == n)
			break;
#ifdef __SSE2__
special:
#endif
		c = s[i];
		if (c >= 0x80) {
			i += utf8_copy(&d, s + i, n - i);
			continue;
		}
		*d++ = '\\';
		switch (c) {
		case '"':
		case '\\':
			*d++ = (char)c;
			break;
		case '\n':
			*d++ = 'n';
			break;
		case '\t':
			*d++ = 't';
			break;
		case '\r':
			*d++ = 'r';
			break;
		case '\b':
			*d++ = 'b';
			break;
		case '\f':
			*d++ = 'f';
			break;
		default:
			*d++ = 'u';
			*d++ = '0';
			*d++ = '0';
			*d++ = hexdigits[c >> 4];
			*d++ = hexdigits[c & 0xf];
			break;
		}
		i++;
	}
	return ((size_t)(d - dst));
}

void
jw_init(struct jw *w, char *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = 0;
	if (cap > 0)
		buf[0] = '\0';
}

void
jw_raw(struct jw *w, const char *s, size_t n)
{
	if (w->overflow || w->cap == 0 || n >= w->cap - w->len) {
		w->overflow = 1;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

void
jw_str(struct jw *w, const char *s, size_t n)
{
	size_t	room, chunk;

	if (w->overflow || w->cap == 0 || w->cap - w->len < 3) {
		w->overflow = 1;
		return;
	}
	w->buf[w->len++] = '"';
	/*
	 * Escape in pieces that surely fit what is left (six bytes out per
	 * byte in at worst), so a long plain string is not refused for its
	 * worst case. A piece never ends inside a UTF-8 sequence.
	 */
	while (n > 0) {
		room = w->cap - w->len;
		chunk = room > 2 ? (room - 2) / 6 : 0;
		if (chunk > n)
			chunk = n;
		while (chunk > 0 && chunk < n &&
		    ((unsigned char)s[chunk] & 0xc0) == 0x80)
			chunk--;
		if (chunk == 0) {
			w->overflow = 1;
			return;
		}
		w->len += json_escape(w->buf + w->len, s, chunk);
		s += chunk;
		n -= chunk;
	}
	w->buf[w->len++] = '"';
	w->buf[w->len] = '\0';
}

char *
fmt_int(char *end, long long v)
{
	unsigned long long	 u;

	u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do {
		*--end = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--end = '-';
	return (end);
}

void
jw_int(struct jw *w, long long v)
{
	char	 tmp[FMT_INT_LEN], *p = fmt_int(tmp + sizeof tmp, v);

	jw_raw(w, p, (size_t)(tmp + sizeof tmp - p));
}

void
jw_int_or_null(struct jw *w, long long v)
{
	if (v < 0)
		jw_lit(w, "null");
	else
		jw_int(w, v);
}
