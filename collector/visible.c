/*
 * A program's bytes made safe to show on a terminal: what the console
 * view and meshlogctl logs write. Text and UTF-8 pass, colours pass when
 * asked, what redraws a bar in place is left out, and any other control
 * byte or escape sequence shows as text ("\x07", "\x1b[2J"), so that no
 * program moves the cursor, retitles or reprograms the reader's terminal.
 */

#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "runtime/runtime.h"
#include "visible.h"

size_t
visible_sgr(const unsigned char *s, size_t n)
{
	size_t	i;

	if (n < 3 || s[1] != '[')
		return (0);
	for (i = 2; i < n && i < 64; i++) {
		if (s[i] == 'm')
			return (i + 1);
		if ((s[i] < '0' || s[i] > '9') && s[i] != ';')
			return (0);
	}
	return (0);
}

size_t
visible_redraw(const unsigned char *s, size_t n)
{
	size_t	i;

	if (n >= 3 && s[1] == '[' && s[2] == 'K')
		return (3);
	if (n >= 4 && s[1] == '[' && s[2] >= '0' && s[2] <= '2' &&
	    s[3] == 'K')
		return (4);
	for (i = 2; i < n && i < 6 && s[i] >= '0' && s[i] <= '9'; i++)
		continue;
	if (n >= 3 && s[1] == '[' && i < n && s[i] >= 'A' && s[i] <= 'G')
		return (i + 1);
	if (n >= 6 && memcmp(s + 1, "[?25", 4) == 0 && (s[5] == 'h' ||
	    s[5] == 'l'))
		return (6);
	return (0);
}

size_t
visible_text(char *dst, const char *src, size_t n, int colour)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*s = (const unsigned char *)src;
	char			*d = dst;
	size_t			 i = 0, k;
	uint64_t		 w;
#ifdef __SSE2__
	const __m128i		 space = _mm_set1_epi8(' ');
	const __m128i		 del = _mm_set1_epi8(0x7f);
	__m128i			 v;
#endif

	while (i < n) {
		/* Printable text is found 16 bytes, then 8, at a time. */
		k = i;
#ifdef __SSE2__
		for (; k + 16 <= n; k += 16) {
			v = _mm_loadu_si128((const __m128i *)(const void *)
			    (s + k));
			/* Below ' ', DEL, or past it (negative as signed). */
			if (_mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v,
			    space), _mm_cmpeq_epi8(v, del))) != 0)
				break;
		}
#endif
		for (; k + 8 <= n; k += 8) {
			memcpy(&w, s + k, 8);
			if (!ascii_printable8(w))
				break;
		}
		/* A short line, or the end of one: the rest filled out with
		 * blanks, 8 at a time too. */
		if (n - k < 8 && k < n) {
			w = 0x2020202020202020ULL;
			memcpy(&w, s + k, n - k);
			if (ascii_printable8(w))
				k = n;
		}
		if (k > i) {
			memcpy(d, s + i, k - i);
			d += k - i;
			i = k;
			if (i == n)
				break;
		}
		if ((s[i] >= 0x20 && s[i] < 0x7f) || s[i] == '\t') {
			*d++ = (char)s[i++];
		} else if (s[i] >= 0x80) {
			i += utf8_copy(&d, s + i, n - i);
		} else if (s[i] == 0x1b && (k = visible_sgr(s + i, n - i)) > 0) {
			if (colour) {
				memcpy(d, s + i, k);
				d += k;
			}
			i += k;
		} else if (s[i] == 0x1b && (k = visible_redraw(s + i, n - i)) >
		    0) {
			i += k;		/* the view draws its lines itself */
		} else {
			*d++ = '\\';
			*d++ = 'x';
			*d++ = hex[s[i] >> 4];
			*d++ = hex[s[i] & 0xf];
			i++;
		}
	}
	return ((size_t)(d - dst));
}
