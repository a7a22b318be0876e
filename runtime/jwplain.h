/*
 * Which bytes a JSON string takes as they are, shared by the escaper
 * and the line splitter (which tells whole lines that need no escaping).
 */
#ifndef MESHLOG_JWPLAIN_H
#define MESHLOG_JWPLAIN_H

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Whether a byte can be copied as it is into a JSON string. */
static inline int
json_plain(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f && c != '"' && c != '\\');
}

#ifdef __SSE2__
/*
 * Bytes of v that cannot be copied as they are, as a bit mask. Bytes
 * from 0x80 compare below 0x20 as signed and go to the UTF-8 check.
 */
static inline int
json_bad16(__m128i v)
{
	const __m128i	sp = _mm_set1_epi8(0x20), q = _mm_set1_epi8('"');
	const __m128i	bs = _mm_set1_epi8('\\'), del = _mm_set1_epi8(0x7f);

	return (_mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, sp),
	    _mm_or_si128(_mm_cmpeq_epi8(v, q),
	    _mm_or_si128(_mm_cmpeq_epi8(v, bs), _mm_cmpeq_epi8(v, del))))));
}
#endif

#endif
