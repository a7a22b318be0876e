/*
 * The line splitter. Lines end at \n (\r\n is one ending). A line with \r
 * updates (a progress bar) is recorded once, in its final state. Records are
 * cut at max bytes on a UTF-8 character boundary and marked truncated; what
 * is left at EOF is marked partial. Memory is bounded by 2 * max per stream.
 *
 * A progress bar leaves its state without a newline ("\rrank2: 57%|...|")
 * and a program's next log line is often appended to it. Bytes do not say
 * where the bar ends, but time does: when the writer paused after a bar
 * state (split_pause: its pipe ran dry), what comes next is a new line
 * unless it is another update (\r) or the bar's newline. Width does too:
 * a bar's states are equally wide, so a final state longer than the one
 * before it, alike at both ends, is that bar and then a line.
 */

#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "collector.h"
#include "runtime/jwplain.h"

void
split_init(struct split *s, size_t max)
{
	memset(s, 0, sizeof *s);
	s->max = max < 16 ? 16 : max;
	s->cur = xmalloc(s->max);
}

void
split_free(struct split *s)
{
	free(s->cur);
	free(s->last);
	s->cur = s->last = NULL;
}

/* Length of the UTF-8 sequence a lead byte starts; 1 for anything else. */
static size_t
split_seqlen(unsigned char c)
{
	if (c >= 0xf0 && c <= 0xf4)
		return (4);
	if (c >= 0xe0)
		return (c <= 0xef ? 3 : 1);
	if (c >= 0xc2)
		return (2);
	return (1);
}

/* cur is full and more bytes come: emit a truncated record. */
static void
split_cut(struct split *s, split_cb cb, void *arg)
{
	size_t	cut = s->max, j;

	/* Keep a multi-byte character whole for the next record. */
	for (j = s->max; j > 0 && j > s->max - 4; j--) {
		unsigned char c = (unsigned char)s->cur[j - 1];

		if ((c & 0xc0) == 0x80)
			continue;
		if (c >= 0xc0 && j - 1 + split_seqlen(c) > s->max)
			cut = j - 1;
		break;
	}
	if (cut == 0)
		cut = s->max;
	cb(arg, s->cur, cut, SPLIT_TRUNCATED |
	    (s->progress ? SPLIT_PROGRESS : 0));
	memmove(s->cur, s->cur + cut, s->max - cut);
	s->len = s->max - cut;
	s->cont = 1;
}

/* Append bytes to the current segment, cutting when it is full. */
static void
split_append(struct split *s, const char *p, size_t n, split_cb cb,
    void *arg)
{
	size_t	k;

	while (n > 0) {
		if (s->len == s->max)
			split_cut(s, cb, arg);
		k = s->max - s->len;
		if (k > n)
			k = n;
		memcpy(s->cur + s->len, p, k);
		s->len += k;
		p += k;
		n -= k;
	}
}

/* A \r that is not part of \r\n: the segment so far is a progress state. */
static void
split_separator(struct split *s, split_cb cb, void *arg)
{
	s->progress = 1;
	if (s->len == 0)
		return;
	cb(arg, s->cur, s->len, SPLIT_UPDATE);
	if (s->last == NULL)
		s->last = xmalloc(s->max);
	memcpy(s->last, s->cur, s->len);
	s->lastlen = s->len;
	s->len = 0;
}

static int
split_alnum(char c)
{
	return ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'));
}

/* Characters (UTF-8 lead bytes) in p[0..n). */
static size_t
split_chars(const char *p, size_t n)
{
	size_t	i, c = 0;

	for (i = 0; i < n; i++)
		c += ((unsigned char)p[i] & 0xc0) != 0x80;
	return (c);
}

/* Whether p[0..n) is an escape sequence still unfinished: ESC [ digits. */
static int
split_csi_open(const char *p, size_t n)
{
	size_t	i;

	if (n == 0 || n > 8 || p[0] != '\x1b' || (n > 1 && p[1] != '['))
		return (0);
	for (i = 2; i < n && p[i] >= '0' && p[i] <= '9'; i++)
		continue;
	return (i >= n);
}

/*
 * Whether p[0..n) begins with what a bar writes around its state to redraw
 * it in place (visible_redraw: tqdm's nested bars write "\x1b[A" after
 * theirs), or with as much of one as came.
 */
static int
split_redraws(const char *p, size_t n)
{
	return (split_csi_open(p, n) ||
	    visible_redraw((const unsigned char *)p, n) > 0);
}

/*
 * Where the bar ends in a final state that holds more than a bar: a bar
 * keeps its width from one state to the next, so when the state before
 * it (last) was c characters wide, ended with the same character and
 * began with the same text up to its first digit, the bar is the first c
 * characters and the rest is a line written after it, unless a word runs
 * across the cut. 0 when not so.
 */
static size_t
split_bar_end(const struct split *s)
{
	size_t	c, i, k, d;

	if (s->lastlen == 0 || s->len <= s->lastlen / 2 || s->cont)
		return (0);
	if ((c = split_chars(s->last, s->lastlen)) == 0)
		return (0);
	for (i = 0, k = 0; i < s->len; i++) {
		if (((unsigned char)s->cur[i] & 0xc0) != 0x80 && k++ == c)
			break;
	}
	if (i == 0 || i >= s->len || s->cur[i - 1] != s->last[s->lastlen - 1])
		return (0);
	/* "9999/1000" + "0": a word goes on, the state just grew. */
	if (split_alnum(s->cur[i - 1]) && split_alnum(s->cur[i]))
		return (0);
	/* Still the bar's: the cursor moved away from it. */
	if (split_redraws(s->cur + i, s->len - i))
		return (0);
	for (d = 0; d < s->lastlen && (s->last[d] < '0' || s->last[d] > '9');
	    d++)
		;
	if (d == 0 || d > i || memcmp(s->cur, s->last, d) != 0)
		return (0);
	return (i);
}

/* Emit the current line with flags and start a new one. */
static void
split_emit(struct split *s, int flags, split_cb cb, void *arg)
{
	size_t	end;

	if (s->progress && (end = split_bar_end(s)) > 0) {
		/* "\r<bar><log line>": the bar's state, then the line. */
		cb(arg, s->cur, end, SPLIT_PROGRESS | SPLIT_PAUSED);
		cb(arg, s->cur + end, s->len - end, flags & ~SPLIT_PAUSED);
	} else if (s->progress) {
		flags |= SPLIT_PROGRESS;
		if (s->len == 0 && s->lastlen > 0)
			cb(arg, s->last, s->lastlen, flags);
		else
			cb(arg, s->cur, s->len, flags);
	} else
		cb(arg, s->cur, s->len, flags);
	s->len = s->lastlen = 0;
	s->progress = s->cont = s->barwait = 0;
}

const char *
split_partial(const struct split *s, size_t *len)
{
	if (s->progress || s->cont || s->cr || s->len == 0)
		return (NULL);
	*len = s->len;
	return (s->cur);
}

int
split_holding(const struct split *s)
{
	return (s->len > 0 || s->progress || s->cont || s->cr);
}

int
split_pending(const struct split *s, const char **p, size_t *len)
{
	if (s->progress || s->cont || s->cr)
		return (-1);
	*p = s->cur;
	*len = s->len;
	return (0);
}

/* Whether the current state ends inside an escape sequence ("\x1b[2"). */
static int
split_in_escape(const struct split *s)
{
	size_t		 k = s->len < 8 ? s->len : 8;
	const char	*esc = memrchr(s->cur + s->len - k, '\x1b', k);

	return (esc != NULL && split_csi_open(esc, (size_t)(s->cur + s->len -
	    esc)));
}

void
split_pause(struct split *s)
{
	if (s->progress && !s->cr && s->len > 0 && !split_in_escape(s))
		s->barwait = 1;
}

/*
 * The first \n or \r in p[0..n), or NULL: one pass where two memchr()
 * calls would look at a line twice.
 */
static const char *
split_eol(const char *p, size_t n)
{
	const char	*end = p + n;
#ifdef __SSE2__
	const __m128i	 nl = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
	__m128i		 v, w;
	unsigned	 m;

	for (; end - p >= 32; p += 32) {
		v = _mm_loadu_si128((const __m128i *)(const void *)p);
		w = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
		m = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v,
		    nl), _mm_cmpeq_epi8(v, cr))) |
		    (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(w,
		    nl), _mm_cmpeq_epi8(w, cr))) << 16;
		if (m != 0)
			return (p + __builtin_ctz(m));
	}
	for (; end - p >= 16; p += 16) {
		v = _mm_loadu_si128((const __m128i *)(const void *)p);
		m = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v,
		    nl), _mm_cmpeq_epi8(v, cr)));
		if (m != 0)
			return (p + __builtin_ctz(m));
	}
#endif
	for (; p < end; p++)
		if (*p == '\n' || *p == '\r')
			return (p);
	return (NULL);
}

/*
 * As split_eol(), and *plain tells whether the bytes before the ending
 * need no JSON escaping. One pass finds the first byte that is not plain;
 * in most lines that is their \n, and their record is then a copy.
 */
static inline __attribute__((always_inline)) const char *
split_scan(const char *p, size_t n, int *plain)
{
	const char	*end = p + n;
#ifdef __SSE2__
	__m128i		 v, w;
	unsigned	 m;

	for (; end - p >= 32; p += 32) {
		v = _mm_loadu_si128((const __m128i *)(const void *)p);
		w = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
		m = (unsigned)json_bad16(v) | (unsigned)json_bad16(w) << 16;
		if (m != 0) {
			p += __builtin_ctz(m);
			goto found;
		}
	}
#endif
	for (; p < end; p++)
		if (!json_plain((unsigned char)*p))
			goto found;
	*plain = 1;
	return (NULL);
found:
	if (*p == '\n' || *p == '\r') {
		*plain = 1;
		return (p);
	}
	*plain = 0;
	return (split_eol(p, (size_t)(end - p)));
}

int
split_idle(const struct split *s)
{
	return (s->len == 0 && !s->progress && !s->cont && s->lastlen == 0 &&
	    !s->cr && !s->barwait);
}

ssize_t
split_whole(const char *p, size_t n, size_t max, int *plain)
{
	const char	*eol;

	eol = split_scan(p, n, plain);
	if (eol == NULL || *eol != '\n' || (size_t)(eol - p) > max)
		return (-1);
	return (eol - p);
}

void
split_feed(struct split *s, const char *p, size_t n, split_cb cb, void *arg)
{
	const char	*end = p + n, *eol;
	int		 plain;

	if (s->barwait && n > 0) {
		s->barwait = 0;
		/* Not the bar's: its last state is final, a line begins. */
		if (*p != '\r' && *p != '\n' && !split_redraws(p, n))
			split_emit(s, SPLIT_PAUSED, cb, arg);
	}

	while (p < end) {
		if (s->cr) {
			s->cr = 0;
			if (*p == '\n') {
				split_emit(s, 0, cb, arg);
				p++;
				continue;
			}
			split_separator(s, cb, arg);
		}
		/*
		 * A whole line with nothing before it and no \r, the common
		 * case, goes out from the caller's bytes, not copied first.
		 */
		eol = split_scan(p, (size_t)(end - p), &plain);
		if (eol != NULL && *eol == '\n' && split_idle(s) &&
		    (size_t)(eol - p) <= s->max) {
			cb(arg, p, (size_t)(eol - p), plain ? SPLIT_PLAIN : 0);
			p = eol + 1;
			continue;
		}
		if (eol != NULL && *eol == '\r') {
			split_append(s, p, (size_t)(eol - p), cb, arg);
			s->cr = 1;
			p = eol + 1;
			continue;
		}
		split_append(s, p, (size_t)((eol != NULL ? eol : end) - p),
		    cb, arg);
		if (eol == NULL)
			break;
		split_emit(s, 0, cb, arg);
		p = eol + 1;
	}
}

void
split_finish(struct split *s, split_cb cb, void *arg)
{
	if (s->cr) {
		s->cr = 0;
		split_separator(s, cb, arg);
	}
	if (s->len > 0 || s->lastlen > 0 || s->cont)
		split_emit(s, SPLIT_PARTIAL, cb, arg);
}
