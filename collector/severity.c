/*
 * Severity detection for lines from processes the runtime cannot adjust.
 * Recognised, in the first 96 bytes of a line:
 *   Python logging and most loggers: a level word standing alone
 *     ("INFO:root:...", "... - WARNING - ...", "[ERROR] ...", "| DEBUG |");
 *   key=value loggers: "level=info", "lvl=warn";
 *   glog / absl: "I1123 20:14:05.123456 ..." (V, I, W, E, F);
 *   PyTorch's C++ (c10) log: "[W Utils.hpp:133] ...", and its newer
 *   "[W1123 20:14:05.123456 ...] ..." (V, I, W, E, F);
 *   NCCL: "NCCL INFO", "NCCL WARN";
 *   Python's warnings module: "FILE:LINE: UserWarning: ..." (any
 *   category ending in "Warning"; past the 96 bytes for a line that
 *   starts with '/', as a module's long path does);
 *   Python's uncaught exception: its "Traceback (most recent call last):"
 *   line is an ERROR (the lines after it say nothing of a level);
 *   what a runtime writes as it dies, by how the line begins: CRITICAL
 *   (libstdc++'s "terminate called ...", CPython's "Fatal Python
 *   error: ", Go's "panic: " and "fatal error: ", Rust's "thread '...'
 *   panicked at", glibc's "*** ... ***: terminated" and its heap checks).
 * Returns a Python level (10 DEBUG .. 50 CRITICAL) or 0 when nothing is
 * recognised; such lines are never filtered.
 *
 * Blocks of lines read as one (a traceback with its frames and its
 * exception) are told here too: the console view takes them whole, and
 * the JSON log gives a traceback's level to each of its records.
 */

#include <ctype.h>
#include <string.h>
#include <strings.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "collector.h"

/* How far into a line a level word is looked for. */
#define SEVERITY_SCAN	96

static const struct {
	const char	*word;
	int		 level;
} severity_words[] = {
	{ "DEBUG", 10 }, { "INFO", 20 }, { "WARNING", 30 }, { "WARN", 30 },
	{ "ERROR", 40 }, { "CRITICAL", 50 }, { "FATAL", 50 },
	{ NULL, 0 }
};

/* The level of word w (n bytes); lower case only after "level=". */
static int
severity_word(const char *w, size_t n, int any_case)
{
	int	i;
	char	c = w[0];

	/* Level words are 4 to 8 letters starting with D, I, W, E, C, F. */
	if (n < 4 || n > 8)
		return (0);
	if (any_case && c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	if (c != 'D' && c != 'I' && c != 'W' && c != 'E' && c != 'C' &&
	    c != 'F')
		return (0);
	for (i = 0; severity_words[i].word != NULL; i++) {
		if (strlen(severity_words[i].word) != n)
			continue;
		if (any_case ? strncasecmp(w, severity_words[i].word, n) == 0 :
		    strncmp(w, severity_words[i].word, n) == 0)
			return (severity_words[i].level);
	}
	return (0);
}

/* glog's and c10's level letters, for levels 10, 20, ... 50. */
#define SEV_GLOG	"VIWEF"

/* glog's "Lmmdd hh:mm:ss" prefix. */
static int
severity_glog(const char *s, size_t n)
{
	const char	*p;
	size_t		 i;

	if (n < 15 || s[0] == '\0' || (p = strchr(SEV_GLOG, s[0])) == NULL)
		return (0);
	for (i = 1; i <= 4; i++) {
		if (!isdigit((unsigned char)s[i]))
			return (0);
	}
	if (s[5] != ' ' || !isdigit((unsigned char)s[6]) || s[8] != ':' ||
	    s[11] != ':')
		return (0);
	return ((int)(p - SEV_GLOG + 1) * 10);
}

/*
 * PyTorch's C++ log (c10): "[L file:line] " (older), or glog's prefix in
 * brackets, "[Lmmdd hh:mm:ss.frac ... file:line] "; L is V, I, W, E or F.
 */
static int
severity_c10(const char *s, size_t n)
{
	const char		*p;
	size_t			 i, j, end = n < SEVERITY_SCAN ? n :
				    SEVERITY_SCAN;

	if (n < 8 || s[1] == '\0' || (p = strchr(SEV_GLOG, s[1])) == NULL)
		return (0);
	if (s[2] != ' ')
		return (severity_glog(s + 1, n - 1));
	/* The file: no space, no bracket; then ':', the line, ']'. */
	for (i = 3; i < end && s[i] != ']' && s[i] != ' ' && s[i] != '['; i++)
		;
	if (i == end || s[i] != ']')
		return (0);
	for (j = i; j > 3 && isdigit((unsigned char)s[j - 1]); j--)
		;
	if (j == i || j < 5 || s[j - 1] != ':')
		return (0);
	return ((int)(p - SEV_GLOG + 1) * 10);
}

/* Rust's "thread 'NAME' panicked at ...". */
static int
severity_rust_panic(const char *s, size_t n)
{
	static const char	at[] = "' panicked at";
	size_t			 end = n < SEVERITY_SCAN ? n : SEVERITY_SCAN;

	return (block_begins(s, n, "thread '") &&
	    memmem(s + 8, end - 8, at, sizeof at - 1) != NULL);
}

/*
 * Python's warnings module: "FILE:LINE: CATEGORY: text", CATEGORY a class
 * whose name ends in "Warning" (UserWarning, FutureWarning, Warning). w:
 * where "Warning" begins in s.
 */
static int
severity_py_warning(const char *s, size_t n, size_t w)
{
	size_t	b, d;

	if (w + 8 > n || memcmp(s + w, "Warning:", 8) != 0 ||
	    (w + 8 < n && s[w + 8] != ' '))
		return (0);
	for (b = w; b > 0 && (isalnum((unsigned char)s[b - 1]) ||
	    s[b - 1] == '_'); b--)
		;
	if (b < 4 || !isupper((unsigned char)s[b]) || s[b - 1] != ' ' ||
	    s[b - 2] != ':')
		return (0);
	for (d = b - 2; d > 0 && isdigit((unsigned char)s[d - 1]); d--)
		;
	/* Digits, then ':' after a file name of at least a byte. */
	return (d < b - 2 && d >= 2 && s[d - 1] == ':');
}

/*
 * Whether a line is a Python warning by the first "Warning:" found from
 * byte from on, within its first 512 bytes.
 */
static int
severity_py_warning_in(const char *s, size_t n, size_t from)
{
	const char	*p;
	size_t		 lim = n < 512 ? n : 512;

	return (lim > from && (p = memmem(s + from, lim - from, "Warning:",
	    8)) != NULL && severity_py_warning(s, n, (size_t)(p - s)));
}

/*
 * A warning whose category is past the scan: a module's absolute path
 * is often longer (a venv's site-packages), and only such a line, one
 * starting with '/', is searched further.
 */
static int
severity_py_warning_far(const char *s, size_t n, size_t end)
{
	return (s[0] == '/' && n > end && severity_py_warning_in(s, n,
	    end - 8));
}

/*
 * What a runtime writes as it dies, told by how the line begins (the
 * first byte asked first, as of every line): nonzero when s is such. The
 * openings of a block are block_start_fatal()'s; glibc's single lines
 * are here.
 */
static int
severity_fatal(const char *s, size_t n)
{
	static const char	fortify[] = " ***: terminated";

	if (block_start_fatal(s, n) != BLK_NONE)
		return (1);
	switch (s[0]) {
	case 'f':
		return (block_begins(s, n, "free(): "));
	case '*':
		return (block_begins(s, n, "*** ") && memmem(s + 4, n - 4,
		    fortify, sizeof fortify - 1) != NULL);
	case 'm':
		return (block_begins(s, n, "malloc(): ") ||
		    block_begins(s, n, "malloc_consolidate(): ") ||
		    block_begins(s, n, "munmap_chunk(): "));
	case 'r':
		return (block_begins(s, n, "realloc(): "));
	case 'd':
		return (block_begins(s, n, "double free or corruption"));
	case 'c':
		return (block_begins(s, n, "corrupted size vs. prev_size") ||
		    block_begins(s, n, "corrupted double-linked list"));
	default:
		return (0);
	}
}

/*
 * The level a line's beginning announces, or 0: glog's and c10's
 * prefixes, a traceback's first line, a runtime's last words.
 */
static int
severity_opening(const char *s, size_t n)
{
	int	lv;

	if (n == 0)
		return (0);
	switch (s[0]) {
	case 'V':
	case 'I':
	case 'W':
	case 'E':
		return (severity_glog(s, n));
	case 'F':
		if ((lv = severity_glog(s, n)) != 0)
			return (lv);
		break;
	case '[':
		return (severity_c10(s, n));
	case 'T':
		return (block_begins(s, n, PY_TRACEBACK) ? 40 : 0);
	}
	return (severity_fatal(s, n) ? 50 : 0);
}

/* Flags per byte: a letter; a possible first letter of a level word. */
#define SEV_ALPHA	1
#define SEV_UPPER	2	/* D, I, W, E, C, F */
#define SEV_LOWER	4	/* d, i, w, e, c, f (after "level=") */
#define SEV_CAND	8	/* where a level word may start: an upper-case
				   initial, or '=' before a keyed one */

static unsigned char	sev_flags[256];

/* Fill the flags once. */
static void
severity_init(void)
{
	int	c;

	for (c = 'a'; c <= 'z'; c++)
		sev_flags[c] = SEV_ALPHA;
	for (c = 'A'; c <= 'Z'; c++)
		sev_flags[c] = SEV_ALPHA;
	for (c = 0; "DIWECF"[c] != '\0'; c++) {
		sev_flags[(unsigned char)"DIWECF"[c]] |= SEV_UPPER | SEV_CAND;
		sev_flags[(unsigned char)"diwecf"[c]] |= SEV_LOWER;
	}
	sev_flags['='] = SEV_CAND;
}

/* The first position in [i, end) where a level word may start, or end. */
static size_t
severity_skip(const unsigned char *u, size_t i, size_t end)
{
#ifdef __SSE2__
	/* Sixteen bytes at a time against D, I, W, E, C, F and '='. */
	const __m128i	d = _mm_set1_epi8('D'), in = _mm_set1_epi8('I');
	const __m128i	w = _mm_set1_epi8('W'), e = _mm_set1_epi8('E');
	const __m128i	c = _mm_set1_epi8('C'), f = _mm_set1_epi8('F');
	const __m128i	eq = _mm_set1_epi8('=');
	__m128i		v, m;
	int		bits;

	while (i + 16 <= end) {
		v = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
		m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, d),
		    _mm_cmpeq_epi8(v, in)), _mm_or_si128(_mm_cmpeq_epi8(v, w),
		    _mm_cmpeq_epi8(v, e)));
		m = _mm_or_si128(m, _mm_or_si128(_mm_or_si128(
		    _mm_cmpeq_epi8(v, c), _mm_cmpeq_epi8(v, f)),
		    _mm_cmpeq_epi8(v, eq)));
		if ((bits = _mm_movemask_epi8(m)) != 0)
			return (i + (size_t)__builtin_ctz((unsigned)bits));
		i += 16;
	}
#endif
	while (i < end && !(sev_flags[u[i]] & SEV_CAND))
		i++;
	return (i);
}

int
severity_detect(const char *s, size_t n)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 i = 0, start, end = n < SEVERITY_SCAN ? n :
				    SEVERITY_SCAN;
	unsigned		 f;
	int			 lv, keyed;

	if (sev_flags['a'] == 0)
		severity_init();
	if ((lv = severity_opening(s, n)) != 0)
		return (lv);
	while (i < end) {
		/* Skip to where a level word could start. */
		i = severity_skip(u, i, end);
		if (i >= end)
			break;
		keyed = u[i] == '=';
		start = keyed ? i + 1 : i;
		i = start + 1;
		if (start >= end || !((f = sev_flags[u[start]]) &
		    (keyed ? SEV_UPPER | SEV_LOWER : SEV_UPPER)))
			continue;
		/* Not a word start: a letter comes before it ("UserWarning"
		 * is Python's warning when it reads as one). */
		if (start > 0 && (sev_flags[u[start - 1]] & SEV_ALPHA)) {
			if (u[start] == 'W' && !keyed &&
			    severity_py_warning(s, n, start))
				return (30);
			continue;
		}
		while (i < end && (sev_flags[u[i]] & SEV_ALPHA))
			i++;
		/* Level words are 4 to 8 letters. */
		if (i - start > 8 && !keyed && severity_py_warning(s, n,
		    i - 7))
			return (30);
		if (i - start < 4 || i - start > 8)
			continue;
		/* A word cut by the scan limit is not a word. */
		if (i == end && end < n && (sev_flags[u[i]] & SEV_ALPHA))
			break;
		/* Part of an identifier (ERROR_CODE, INFO2): not a level. */
		if ((i < n && (s[i] == '_' || isdigit(u[i]))) ||
		    (start > 0 && (s[start - 1] == '_' ||
		    isdigit(u[start - 1]))))
			continue;
		keyed = keyed && ((start >= 6 &&
		    strncasecmp(s + start - 6, "level=", 6) == 0) ||
		    (start >= 4 && strncasecmp(s + start - 4, "lvl=", 4) == 0));
		if ((lv = severity_word(s + start, i - start, keyed)) != 0)
			return (lv);
		if (u[start] == 'W' && severity_py_warning(s, n, start))
			return (30);
	}
	return (severity_py_warning_far(s, n, end) ? 30 : 0);
}

enum block_state
block_start_fatal(const char *line, size_t len)
{
	switch (line[0]) {
	case 't':
		if (block_begins(line, len, "terminate called "))
			return (BLK_CXX);
		return (severity_rust_panic(line, len) ? BLK_RUST_MSG :
		    BLK_NONE);
	case 'F':
		return (block_begins(line, len, "Fatal Python error: ") ?
		    BLK_FAULT : BLK_NONE);
	case 'p':
		return (block_begins(line, len, "panic: ") ? BLK_GO :
		    BLK_NONE);
	case 'f':
		return (block_begins(line, len, "fatal error: ") ? BLK_GO :
		    BLK_NONE);
	default:
		return (BLK_NONE);
	}
}

/* PyTorch's C++ frames: "Exception raised from ...", "frame #N: ...". */
static int
block_c10_frame(const char *line, size_t len)
{
	return (block_begins(line, len, "frame #") ||
	    block_begins(line, len, "Exception raised from "));
}

/* A Go stack's function line: "main.main()", "pkg.(*T).f(0x1, ...)". */
static int
block_go_call(const char *line, size_t len)
{
	size_t	i;

	if (len < 3 || line[len - 1] != ')')
		return (0);
	for (i = 0; i < len && line[i] != '('; i++) {
		if (line[i] == ' ')
			return (0);
	}
	return (i > 0 && i < len);
}

/*
 * Python: header, indented frames, the exception's line, then a chained
 * traceback may follow ("During handling of ...", "The above exception
 * ..."), or PyTorch's C++ frames of the exception. Others: a header and
 * indented lines ("\tat"), "Caused by:" continuing; a runtime's last
 * words and the lines of its kind after them.
 */
enum block_state
block_next(enum block_state st, const char *line, size_t len)
{
	int	indented = len > 0 && (line[0] == ' ' || line[0] == '\t');

	switch (st) {
	case BLK_HEAD:
		if (block_begins(line, len, PY_TRACEBACK))
			return (BLK_FRAMES);
		return (indented ? BLK_INDENTED : BLK_NONE);
	case BLK_FRAMES:
		return (indented ? BLK_FRAMES : BLK_AFTER);
	case BLK_AFTER:
	case BLK_AFTER_CXX:
		if (block_begins(line, len, PY_TRACEBACK))
			return (BLK_FRAMES);
		if (len == 0 || block_begins(line, len, "During handling of the "
		    "above exception") || block_begins(line, len, "The above "
		    "exception was the direct cause"))
			return (BLK_AFTER);
		return (block_c10_frame(line, len) ? BLK_AFTER_CXX : BLK_NONE);
	case BLK_INDENTED:
		if (indented || block_begins(line, len, "Caused by: "))
			return (BLK_INDENTED);
		return (BLK_NONE);
	case BLK_CXX:
		return (indented || block_c10_frame(line, len) ? BLK_CXX :
		    BLK_NONE);
	case BLK_FAULT:
		return (len == 0 || indented ||
		    block_begins(line, len, "Thread 0x") ||
		    block_begins(line, len, "Current thread") ||
		    block_begins(line, len, "Stack (most recent call first):") ||
		    block_begins(line, len, "Extension modules: ") ?
		    BLK_FAULT : BLK_NONE);
	case BLK_GO:
		return (len == 0 || indented ||
		    block_begins(line, len, "goroutine ") ||
		    block_begins(line, len, "created by ") ||
		    block_begins(line, len, "[signal ") ||
		    block_begins(line, len, "panic: ") ||
		    block_go_call(line, len) ? BLK_GO : BLK_NONE);
	case BLK_RUST_MSG:
		return (BLK_RUST);
	case BLK_RUST:
		return (indented || block_begins(line, len, "note: ") ||
		    block_begins(line, len, "stack backtrace:") ? BLK_RUST :
		    BLK_NONE);
	case BLK_PYWARN:
		return (indented ? BLK_LAST : BLK_NONE);
	default:
		return (BLK_NONE);
	}
}

int
severity_in_block(enum block_state *st, int *level, const char *line,
    size_t len, int severity, int *within)
{
	if (*st != BLK_NONE) {
		*st = block_next(*st, line, len);
		if (within != NULL)
			*within = *st != BLK_NONE;
		/* A blank line between chained tracebacks says nothing. */
		if (*st != BLK_NONE)
			return (len == 0 || severity > *level ? severity :
			    *level);
	} else if (within != NULL)
		*within = 0;
	/* Only a block whose first line has a level gives it on. */
	if (severity > 0 && (*st = block_start(line, len)) != BLK_NONE)
		*level = severity;
	/* A Python warning and the source line it quotes, indented. */
	else if (severity == 30 && severity_py_warning_in(line, len, 0)) {
		*st = BLK_PYWARN;
		*level = severity;
	}
	return (severity);
}
