/*
 * Line shapes: a line's template and severity, remembered for lines that
 * differ only in their digits. Every shape handed out, remembered or not,
 * must equal the one computed from the line itself.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "collector/collector.h"

/* The unit tests link the collector's modules, which expect these. */
struct config		 cfg;
struct event_base	*base;

/* Check shape_of(line) against the template and severity of the line. */
static void
check_shape(const char *line, size_t len)
{
	struct shape	sh;
	uint64_t	key;
	int		letters;

	shape_of(line, len, &sh);
	key = shape_template(line, len, &letters);
	cr_assert_eq(sh.key, key, "template of '%.*s'", (int)len, line);
	cr_assert_eq(sh.letters, letters, "letters of '%.*s'", (int)len,
	    line);
	cr_assert_eq(sh.severity, severity_detect(line, len),
	    "severity of '%.*s'", (int)len, line);
}

/*
 * shape_line() on line and a newline, 16 bytes and more after (it may
 * say -1 for a line whose end is within 16 bytes of the buffer's): the
 * whole line's length and its shape when split_whole() calls it plain,
 * else -1; and the hash it takes is shape_of's (the same line is then
 * remembered).
 */
/* Whether shape_line() is to find lines: not without AES instructions. */
static int	one_pass = 1;

/* What JSON takes as it is: printable ASCII but the quote and backslash. */
static int
plain_bytes(const char *line, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)line[i] < 0x20 ||
		    (unsigned char)line[i] >= 0x7f || line[i] == '"' ||
		    line[i] == '\\')
			return (0);
	}
	return (1);
}

/*
 * shape_whole() on exactly len bytes (a copy on the heap, so that a read
 * past them is caught under ASan): shape_of's shape, and plain when the
 * bytes are (never without AES instructions, where it is not looked at).
 */
static void
check_whole(const char *line, size_t len)
{
	struct shape	sh, want;
	char		*copy = malloc(len > 0 ? len : 1);

	cr_assert_not_null(copy);
	memcpy(copy, line, len);
	shape_of(line, len, &want);
	cr_assert_eq(shape_whole(copy, len, &sh),
	    one_pass && plain_bytes(line, len), "plain: '%.*s'", (int)len,
	    line);
	cr_assert_eq(sh.key, want.key, "template of '%.*s'", (int)len, line);
	cr_assert_eq(sh.letters, want.letters);
	cr_assert_eq(sh.severity, want.severity);
	free(copy);
}

static void
check_line(const char *line, size_t len)
{
	char		buf[600];
	struct shape	sh, again;
	uint64_t	h0, m0, h1, m1;
	ssize_t		want, got;
	int		plain, letters;

	cr_assert_leq(len + 24, sizeof buf);
	shape_use(SHAPE_AVX);		/* nothing remembered */
	memcpy(buf, line, len);
	memcpy(buf + len, "\nmore 1, and more 2\n", 21);
	want = split_whole(buf, len + 21, 4096, &plain);
	got = shape_line(buf, len + 21, 4096, &sh);
	if (want < 0 || !plain || !one_pass) {
		cr_assert_eq(got, -1, "'%.*s' found", (int)len, line);
		return;
	}
	cr_assert_eq(got, want, "length of '%.*s'", (int)len, line);
	cr_assert_eq(sh.key, shape_template(line, len, &letters));
	cr_assert_eq(sh.letters, letters);
	cr_assert_eq(sh.severity, severity_detect(line, len));
	shape_stats(&h0, &m0);
	shape_of(line, len, &again);
	shape_stats(&h1, &m1);
	cr_assert(h1 == h0 + 1 && m1 == m0, "'%.*s' not remembered",
	    (int)len, line);
	/* One byte short of its line's end: no whole line. */
	cr_assert_eq(shape_line(buf, len, 4096, &sh), -1);
}

Test(shape, digits_change_nothing_else_does)
{
	struct shape	a, b;

	shape_of("step 100 loss=2.31", 18, &a);
	shape_of("step 977 loss=0.05", 18, &b);
	cr_assert_eq(a.key, b.key);
	shape_of("I1123 20:14:05.123456 1 main.cc:12] up", 38, &a);
	cr_assert_eq(a.severity, 20);
	shape_of("I9999 99:99:99.999999 9 main.cc:99] up", 38, &b);
	cr_assert_eq(b.severity, 20);
	/* Same digits, other letters: another shape, not a remembered one. */
	shape_of("step 100 loss=2.31", 18, &a);
	shape_of("step 100 lr=2.31xx", 18, &b);
	cr_assert_neq(a.key, b.key);
	shape_of("INFO: step 1", 12, &a);
	shape_of("INFO2 step 1", 12, &b);
	cr_assert_eq(a.severity, 20);
	cr_assert_eq(b.severity, 0);
}

Test(shape, remembered_lines_count_as_hits)
{
	uint64_t	h0, m0, h1, m1;
	char		line[128];
	int		i, n;

	shape_stats(&h0, &m0);
	for (i = 0; i < 1000; i++) {
		n = snprintf(line, sizeof line, "epoch %d step %d loss=%d.%03d "
		    "tokens/s %d", i % 10, i, i % 7, i % 1000, 10000 + i);
		check_shape(line, (size_t)n);
	}
	shape_stats(&h1, &m1);
	/* One format whose step grows to 2 and to 3 digits: three shapes. */
	cr_assert_eq(m1 - m0, 3, "%llu misses", (unsigned long long)(m1 - m0));
	cr_assert_eq(h1 - h0, 997, "%llu hits", (unsigned long long)(h1 - h0));
}

/*
 * Random lines over an alphabet where every class matters (letters, level
 * words, digits, '_', '=', blanks, tabs, punctuation, UTF-8 bytes), each
 * followed by copies with other digits: all must be shaped as if alone,
 * across lengths that cross the sixteen-byte steps of the hash.
 */
static void
random_lines(void)
{
	static const char *const pieces[] = { "INFO", "WARNING", "ERROR",
	    "level=", "lvl=", "DEBUG", "x", "ab", "_", "=", ":", ".", "-",
	    " ", "  ", "\t", "[", "]", "\xc3\xa9", "0", "7", "42", "0x1f",
	    "I1123 20:14:05", "cuda", "id", "\"", "\\", "\x01" };
	char		line[512], copy[512];
	size_t		len, i;
	unsigned	seed = 11;
	int		r, v, k;

	for (r = 0; r < 20000; r++) {
		len = 0;
		k = 1 + rand_r(&seed) % 40;
		while (k-- > 0) {
			const char *p = pieces[(size_t)rand_r(&seed) %
			    (sizeof pieces / sizeof pieces[0])];
			if (len + strlen(p) >= sizeof line)
				break;
			memcpy(line + len, p, strlen(p));
			len += strlen(p);
		}
		check_shape(line, len);
		check_line(line, len);
		check_whole(line, len);
		for (v = 0; v < 3; v++) {
			memcpy(copy, line, len);
			for (i = 0; i < len; i++) {
				if (copy[i] >= '0' && copy[i] <= '9')
					copy[i] = (char)('0' + rand_r(&seed) %
					    10);
			}
			check_shape(copy, len);
			check_line(copy, len);
		}
	}
}

/* One byte to escape at each place of lines of each length to 80. */
static void
whole_lines(void)
{
	static const char bad[] = { '"', '\\', '\n', '\t', 0x01, 0x7f,
	    (char)0x80, (char)0xc3, (char)0xff };
	char		line[81] = { 0 };
	size_t		len, at, b;

	for (len = 0; len <= 80; len++) {
		for (at = 0; at < len; at++)
			line[at] = (char)(at % 7 == 3 ? '0' + at % 10 :
			    'a' + at % 26);
		check_whole(line, len);
		for (at = 0; at < len; at++) {
			for (b = 0; b < sizeof bad; b++) {
				char	keep = line[at];

				line[at] = bad[b];
				check_whole(line, len);
				line[at] = keep;
			}
		}
	}
}

Test(shape, whole_lines_say_whether_they_are_plain)
{
	whole_lines();
	shape_use(SHAPE_SSE);
	whole_lines();
	shape_use(SHAPE_PORTABLE);
	one_pass = 0;
	whole_lines();
}

Test(shape, random_lines_and_their_digit_variants)
{
	random_lines();
}

/* The AES hash where the processor has no AVX. */
Test(shape, random_lines_without_avx)
{
	shape_use(SHAPE_SSE);
	random_lines();
}

/* The hash used where the processor has no AES instructions. */
Test(shape, random_lines_with_the_portable_hash)
{
	shape_use(SHAPE_PORTABLE);
	one_pass = 0;
	random_lines();
}

/* A line and its record's level. */
struct leveled {
	const char	*line;
	int		 level;
};

/* Each of n lines, one stream's in turn, has its record's level. */
static void
expect_levels(const struct leveled *lines, size_t n)
{
	enum block_state	st = BLK_NONE;
	int			level = 0;
	size_t			i;

	for (i = 0; i < n; i++) {
		const char	*l = lines[i].line;

		cr_assert_eq(severity_in_block(&st, &level, l, strlen(l),
		    severity_detect(l, strlen(l)), NULL), lines[i].level,
		    "line %zu: %s", i, l);
	}
}

/*
 * A record's level in a block (severity_in_block): a traceback's lines
 * take its first line's, a line's own higher level stays, blank lines
 * between chained tracebacks and lines after the block keep their own,
 * and a block whose first line has no level gives none.
 */
Test(shape, records_in_a_traceback_take_its_level)
{
	static const struct leveled lines[] = {
		{ "epoch 1", 0 },
		{ "Traceback (most recent call last):", 40 },
		{ "  File \"train.py\", line 3, in <module>", 40 },
		{ "    main()", 40 },
		{ "KeyError: 'k'", 40 },
		{ "", 0 },
		{ "During handling of the above exception, another exception "
		    "occurred:", 40 },
		{ "", 0 },
		{ "Traceback (most recent call last):", 40 },
		{ "  CRITICAL in a frame", 50 },
		{ "RuntimeError: out of memory", 40 },
		{ "epoch 2", 0 },
		{ "    indented after the block", 0 },
		{ "Exception in thread \"main\" java.lang.Error", 0 },
		{ "\tat Main.main(Main.java:3)", 0 },
		{ "ERROR: a logged error", 40 },
		{ "  indented after a logged error", 0 },
	};

	expect_levels(lines, sizeof lines / sizeof lines[0]);
}

/*
 * Python's warning and the source line it quotes under it are one
 * warning; the line after is not, indented or not.
 */
Test(shape, a_warnings_source_line_takes_its_level)
{
	static const struct leveled lines[] = {
		{ "/tmp/train.py:9: UserWarning: cuda not available", 30 },
		{ "  warnings.warn(\"cuda not available\")", 30 },
		{ "  indented after it", 0 },
		{ "train.py:3: FutureWarning: renamed", 30 },
		{ "step 1", 0 },
		{ "WARNING: a logged warning", 30 },
		{ "  indented after a logged warning", 0 },
	};

	expect_levels(lines, sizeof lines / sizeof lines[0]);
}

/*
 * What a runtime writes as it dies is CRITICAL, and so are the lines of
 * its kind after it: libstdc++'s terminate with what() and PyTorch's C++
 * frames, CPython's faulthandler, Go's and Rust's panics; a Python
 * exception's C++ frames are its traceback's. Each block ends at the
 * first line not of its kind.
 */
Test(shape, records_after_a_runtimes_last_words_take_its_level)
{
	static const struct leveled lines[] = {
		{ "terminate called after throwing an instance of "
		    "'c10::DistBackendError'", 50 },
		{ "  what():  [Rank 0] Watchdog caught collective operation "
		    "timeout", 50 },
		{ "Exception raised from checkTimeout at ProcessGroupNCCL.cpp:565 "
		    "(most recent call first):", 50 },
		{ "frame #0: c10::Error::Error() + 0x57 (0x7f in libc10.so)", 50 },
		{ "frame #1: <unknown function> + 0xdc253 (0x7f in libstdc++)",
		    50 },
		{ "step 7", 0 },
		{ "frame #2: after the block", 0 },
		{ "Fatal Python error: Aborted", 50 },
		{ "", 0 },
		{ "Thread 0x00007f1e3a5ff640 (most recent call first):", 50 },
		{ "  File \"threading.py\", line 324 in wait", 50 },
		{ "", 0 },
		{ "Current thread 0x00007f1e3c0b7740 (most recent call first):",
		    50 },
		{ "  File \"train.py\", line 30 in main", 50 },
		{ "", 0 },
		{ "Extension modules: numpy.core._multiarray_umath (total: 1)",
		    50 },
		{ "step 8", 0 },
		{ "panic: runtime error: index out of range [5] with length 3",
		    50 },
		{ "", 0 },
		{ "goroutine 1 [running]:", 50 },
		{ "main.main()", 50 },
		{ "\t/tmp/x.go:5 +0x1d", 50 },
		{ "created by main.start in goroutine 1", 50 },
		{ "exit status 2", 0 },
		{ "thread 'main' panicked at src/main.rs:2:5:", 50 },
		{ "index out of bounds: the len is 3 but the index is 5", 50 },
		{ "stack backtrace:", 50 },
		{ "   0: rust_begin_unwind", 50 },
		{ "note: Some details are omitted.", 50 },
		{ "step 9", 0 },
		{ "Traceback (most recent call last):", 40 },
		{ "  File \"train.py\", line 3, in <module>", 40 },
		{ "RuntimeError: NCCL error in: NCCLUtils.hpp:219", 40 },
		{ "Exception raised from getNCCLComm at ProcessGroupNCCL.cpp:1"
		    " (most recent call first):", 40 },
		{ "frame #0: c10::Error::Error() + 0x57", 40 },
		{ "step 10", 0 },
	};

	expect_levels(lines, sizeof lines / sizeof lines[0]);
}
