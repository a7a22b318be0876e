/* The JSON record encoder: every output parses, and text survives intact. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "collector/collector.h"

/* Encode a record for line and parse it back with jansson. */
static json_t *
encode_level(const char *line, size_t n, int flags, int level)
{
	const char	*prefix = "\"host\":\"h\",\"pid\":1,\"rank\":null,"
	    "\"source\":1,\"stream\":\"stdout\",";
	char		*buf = malloc(RECORD_MAX(n, strlen(prefix)));
	size_t		 len;
	json_t		*o;
	json_error_t	 err;

	len = record_line(buf, "2026-01-02T03:04:05.000006Z",
	    1767323045000006ULL, prefix, strlen(prefix), 7, line, n, flags,
	    level);
	cr_assert(len > 0 && buf[len - 1] == '\n');
	cr_assert(memchr(buf, '\n', len - 1) == NULL, "newline inside");
	o = json_loadb(buf, len, JSON_ALLOW_NUL, &err);
	cr_assert_not_null(o, "not JSON (%s): %.*s", err.text, (int)len, buf);
	free(buf);
	return (o);
}

static json_t *
encode(const char *line, size_t n, int flags)
{
	return (encode_level(line, n, flags, 0));
}

/* The seq field of a record for seq, as text. */
static void
seq_text(uint64_t seq, char *out, size_t len)
{
	char		 buf[512];
	const char	*p, *e;
	size_t		 n;

	n = record_line(buf, "2026-01-02T03:04:05.000006Z", 1, "", 0, seq, "x",
	    1, 0, 0);
	buf[n] = '\0';
	cr_assert_not_null(p = strstr(buf, "\"seq\":"), "%s", buf);
	p += sizeof "\"seq\":" - 1;
	cr_assert_not_null(e = strchr(p, ','), "%s", buf);
	cr_assert_lt((size_t)(e - p), len);
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
}

/* seq counted up from the last record's text, across every carry. */
Test(record, seq_counts_up_and_jumps)
{
	static const uint64_t jumps[] = { 5, 5, 4, 0, 9, 10, 99, 100, 98,
	    18446744073709551613ULL, 18446744073709551614ULL,
	    18446744073709551615ULL, 0, 1, 1000, 999999, 1000000 };
	char		 got[32], want[32];
	uint64_t	 seq;
	size_t		 i;

	for (seq = 0; seq < 12000; seq++) {
		seq_text(seq, got, sizeof got);
		snprintf(want, sizeof want, "%llu", (unsigned long long)seq);
		cr_assert_str_eq(got, want);
	}
	for (i = 0; i < sizeof jumps / sizeof jumps[0]; i++) {
		seq_text(jumps[i], got, sizeof got);
		snprintf(want, sizeof want, "%llu",
		    (unsigned long long)jumps[i]);
		cr_assert_str_eq(got, want);
	}
}

Test(record, level_and_numeric_time_for_tools)
{
	json_t	*o = encode_level("WARNING:root:disk slow", 22, 0, 30);

	cr_assert_str_eq(json_string_value(json_object_get(o, "level")),
	    "WARNING");
	/* The same instant as ts, in ns: what Vector, Loki and jq read. */
	cr_assert_eq(json_integer_value(json_object_get(o, "ts_ns")),
	    1767323045000006000LL);
	json_decref(o);
	o = encode_level("no level here", 13, 0, 0);
	cr_assert_null(json_object_get(o, "level"));
	json_decref(o);
}

Test(record, fields_and_flags)
{
	json_t	*o = encode("hello", 5, SPLIT_TRUNCATED | SPLIT_PROGRESS);

	cr_assert_str_eq(json_string_value(json_object_get(o, "ts")),
	    "2026-01-02T03:04:05.000006Z");
	cr_assert_str_eq(json_string_value(json_object_get(o, "line")),
	    "hello");
	cr_assert_eq(json_integer_value(json_object_get(o, "seq")), 7);
	cr_assert(json_is_null(json_object_get(o, "rank")));
	cr_assert(json_is_true(json_object_get(o, "truncated")));
	cr_assert(json_is_true(json_object_get(o, "progress")));
	cr_assert_null(json_object_get(o, "partial"));
	json_decref(o);
}

/* A plain line's record is the record the escaper would have made. */
Test(record, a_plain_line_is_recorded_as_escaped)
{
	const char	*line = "rank 3 step=12 loss=0.25 [train] ok";
	char		 a[512], b[512];
	size_t		 na, nb;

	na = record_line(a, "2026-01-02T03:04:05.000006Z", 1, "", 0, 1, line,
	    strlen(line), 0, 20);
	nb = record_line(b, "2026-01-02T03:04:05.000006Z", 1, "", 0, 1, line,
	    strlen(line), SPLIT_PLAIN, 20);
	cr_assert_eq(na, nb);
	cr_assert_eq(memcmp(a, b, na), 0, "%.*s", (int)nb, b);
}

Test(record, valid_utf8_and_controls_round_trip)
{
	const char	in[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
	    "\"q\" \\ \t\x01\x1f\x7f end";
	json_t		*o = encode(in, sizeof in - 1, 0);
	const char	*s = json_string_value(json_object_get(o, "line"));

	cr_assert_eq(json_string_length(json_object_get(o, "line")),
	    sizeof in - 1);
	cr_assert(memcmp(s, in, sizeof in - 1) == 0);
	json_decref(o);
}

Test(record, nul_bytes_survive)
{
	json_t	*o = encode("a\0b", 3, 0);

	cr_assert_eq(json_string_length(json_object_get(o, "line")), 3);
	cr_assert(memcmp(json_string_value(json_object_get(o, "line")),
	    "a\0b", 3) == 0);
	json_decref(o);
}

Test(record, invalid_utf8_becomes_replacement_per_byte)
{
	/* lone continuation, overlong, surrogate, above U+10FFFF, cut seq */
	const char	in[] = "\x80|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82";
	const char	want[] = "\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd"
	    "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd";
	json_t		*o = encode(in, sizeof in - 1, 0);

	cr_assert_str_eq(json_string_value(json_object_get(o, "line")), want);
	json_decref(o);
}

Test(record, random_bytes_always_parse)
{
	char	buf[300];
	int	i, j, n;
	json_t	*o;

	srand(12345);
	for (i = 0; i < 20000; i++) {
		n = rand() % (int)sizeof buf;
		for (j = 0; j < n; j++)
			buf[j] = (char)(rand() % 256);
		o = encode(buf, (size_t)n, 0);
		cr_assert(json_is_string(json_object_get(o, "line")));
		json_decref(o);
	}
}

Test(record, timestamp_is_rfc3339_utc_microseconds)
{
	struct timespec	ts = { 1767323045, 123456789 };
	char		buf[TS_LEN];

	record_ts(buf, &ts);
	cr_assert_str_eq(buf, "2026-01-02T03:04:05.123456Z");
}

/* Every microsecond's digits, zero-padded, as seconds change and return. */
Test(record, timestamp_digits_match_stdio)
{
	struct timespec	ts;
	struct tm	tm;
	char		buf[TS_LEN], want[TS_LEN], head[32];
	long		us;
	int		i;

	for (i = 0; i < 3; i++) {
		ts.tv_sec = i == 1 ? 4102444799 : 1767323045;
		gmtime_r(&ts.tv_sec, &tm);
		strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm);
		for (us = 0; us < 1000000; us += us < 2000 ? 1 : 997) {
			ts.tv_nsec = us * 1000 + (us % 1000);
			record_ts(buf, &ts);
			snprintf(want, sizeof want, "%s.%06ldZ", head, us);
			cr_assert_str_eq(buf, want);
		}
		ts.tv_nsec = 999999999;
		record_ts(buf, &ts);
		snprintf(want, sizeof want, "%s.999999Z", head);
		cr_assert_str_eq(buf, want);
	}
}

Test(record, console_makes_controls_visible_and_keeps_colour)
{
	const char	in[] = "\x1b[31mred\x1b[0m bell\x07 nul\0 \xff";
	char		out[256];
	size_t		n = visible_text(out, in, sizeof in - 1, 1);

	out[n] = '\0';
	cr_assert_str_eq(out, "\x1b[31mred\x1b[0m bell\\x07 nul\\x00 "
	    "\xef\xbf\xbd");
	/* The live line's bars: no colour either. */
	n = visible_text(out, in, sizeof in - 1, 0);
	out[n] = '\0';
	cr_assert_str_eq(out, "red bell\\x07 nul\\x00 \xef\xbf\xbd");
}

Test(record, console_escapes_non_colour_escape_sequences)
{
	const char	in[] = "\x1b]0;title\x07\x1b[2J";
	char		out[256];
	size_t		n = visible_text(out, in, sizeof in - 1, 1);

	out[n] = '\0';
	cr_assert_str_eq(out, "\\x1b]0;title\\x07\\x1b[2J");
}

/*
 * What a progress display (rich, and others) writes around its bar to
 * redraw it in place: the line erased ("\x1b[2K", "\x1b[K") and the
 * cursor hidden and shown again ("\x1b[?25l", "\x1b[?25h"), or moved
 * between a display's lines ("\x1b[A", "\x1b[2F": tqdm's nested bars).
 * The view draws its lines itself: they mean nothing there and are left
 * out, rather than shown as text (or, shown raw, leave the terminal's
 * cursor hidden). Cut short, or another sequence, they show as before.
 */
Test(record, console_leaves_out_what_redraws_a_bar)
{
	const char	in[] = "\x1b[?25l\x1b[2KWorking 40%\x1b[K\x1b[0K "
	    "\x1b[?25h\x1b[1A\x1b[A\x1b[12F\x1b[G\x1b[?25x\x1b[3K"
	    "\x1b[2H\x1b[123456A\x1b[2";
	char		out[256];
	size_t		n = visible_text(out, in, sizeof in - 1, 1);

	out[n] = '\0';
	cr_assert_str_eq(out, "Working 40% \\x1b[?25x\\x1b[3K\\x1b[2H"
	    "\\x1b[123456A\\x1b[2");
}

/* The escaper one byte at a time: the reference for the fast path. */
static size_t
escape_reference(char *dst, const unsigned char *s, size_t n)
{
	static const char	hex[] = "0123456789abcdef";
	char			*d = dst;
	size_t			 i, k;

	for (i = 0; i < n; i++) {
		if (s[i] >= 0x80) {
			if ((k = utf8_valid(s + i, n - i)) == 0)
				d += sprintf(d, "\xef\xbf\xbd");
			else {
				memcpy(d, s + i, k);
				d += k;
				i += k - 1;
			}
		} else if (s[i] == '"' || s[i] == '\\')
			d += sprintf(d, "\\%c", s[i]);
		else if (s[i] == '\n')
			d += sprintf(d, "\\n");
		else if (s[i] == '\t')
			d += sprintf(d, "\\t");
		else if (s[i] == '\r')
			d += sprintf(d, "\\r");
		else if (s[i] == '\b')
			d += sprintf(d, "\\b");
		else if (s[i] == '\f')
			d += sprintf(d, "\\f");
		else if (s[i] < 0x20 || s[i] == 0x7f)
			d += sprintf(d, "\\u00%c%c", hex[s[i] >> 4],
			    hex[s[i] & 0xf]);
		else
			*d++ = (char)s[i];
	}
	return ((size_t)(d - dst));
}

/*
 * Random words with up to max_special - 1 bytes from special anywhere in
 * them: escape must write what reference writes, byte for byte.
 */
static void
check_fast_path(size_t (*escape)(char *, const char *, size_t),
    size_t (*reference)(char *, const unsigned char *, size_t),
    const unsigned char *special, size_t nspecial, int max_special,
    unsigned seed)
{
	unsigned char	in[80];
	char		want[80 * 6], got[80 * 6];
	size_t		n, wl, gl, pos, k;
	int		round;

	srand(seed);
	for (round = 0; round < 200000; round++) {
		n = (size_t)(rand() % 65);
		for (k = 0; k < n; k++)
			in[k] = (unsigned char)('a' + rand() % 26);
		for (k = 0; n > 0 && k < (size_t)(rand() % max_special); k++) {
			pos = (size_t)rand() % n;
			in[pos] = special[(size_t)rand() % nspecial];
		}
		wl = reference(want, in, n);
		gl = escape(got, (const char *)in, n);
		cr_assert(wl == gl && memcmp(want, got, wl) == 0,
		    "round %d: %.*s vs %.*s", round, (int)wl, want, (int)gl,
		    got);
	}
}

Test(record, fast_path_matches_byte_by_byte)
{
	static const unsigned char special[] = { '"', '\\', 0x00, 0x1f, 0x20,
	    0x7e, 0x7f, 0x80, 0xc3, 0xa9, 0xff, '\n', '\t' };

	/* One or two special bytes anywhere in the words. */
	check_fast_path(json_escape, escape_reference, special, sizeof special,
	    3, 3);
}

/* The console's escaper one byte at a time: the reference. */
static size_t
console_reference(char *dst, const unsigned char *s, size_t n)
{
	char	*d = dst;
	size_t	 i, k;

	for (i = 0; i < n; i++) {
		if ((s[i] >= 0x20 && s[i] < 0x7f) || s[i] == '\t')
			*d++ = (char)s[i];
		else if (s[i] >= 0x80) {
			if ((k = utf8_valid(s + i, n - i)) == 0)
				d += sprintf(d, "\xef\xbf\xbd");
			else {
				memcpy(d, s + i, k);
				d += k;
				i += k - 1;
			}
		} else if (s[i] == 0x1b && i + 2 < n && s[i + 1] == '[') {
			/* A colour: ESC [ digits and ';' ... m. */
			for (k = i + 2; k < n && k < i + 64 &&
			    ((s[k] >= '0' && s[k] <= '9') || s[k] == ';'); k++)
				;
			if (k < n && k < i + 64 && s[k] == 'm') {
				memcpy(d, s + i, k + 1 - i);
				d += k + 1 - i;
				i = k;
			} else if (s[i + 2] == 'K')	/* ESC [ K */
				i += 2;
			else if (i + 3 < n && s[i + 2] >= '0' &&
			    s[i + 2] <= '2' && s[i + 3] == 'K')
				i += 3;
			else if (i + 5 < n && memcmp(s + i + 2, "?25", 3) ==
			    0 && (s[i + 5] == 'h' || s[i + 5] == 'l'))
				i += 5;
			else
				d += sprintf(d, "\\x%02x", s[i]);
		} else
			d += sprintf(d, "\\x%02x", s[i]);
	}
	return ((size_t)(d - dst));
}

/* The console's escaper with colours, as the check takes it. */
static size_t
console_escape(char *dst, const char *src, size_t n)
{
	return (visible_text(dst, src, n, 1));
}

Test(record, console_fast_path_matches_byte_by_byte)
{
	static const unsigned char special[] = { 0x00, 0x07, '\t', '\n', 0x1b,
	    '[', '3', 'm', ';', 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xc3, 0xa9,
	    0xff, 'K', '?', '2', '5', 'h', 'l' };

	check_fast_path(console_escape, console_reference, special,
	    sizeof special, 4, 5);
}

Test(record, writer_fits_long_plain_strings_and_refuses_what_cannot_fit)
{
	static char	buf[4096], big[3000];
	struct jw	w;

	memset(big, 'a', sizeof big);
	big[1500] = '"';
	jw_init(&w, buf, sizeof buf);
	jw_str(&w, big, sizeof big);
	cr_assert(!w.overflow, "3,000 plain bytes refused in 4 KiB");
	cr_assert_eq(w.len, sizeof big + 3);	/* quotes and one escape */
	cr_assert_eq(strlen(buf), w.len);
	memset(big, 0x01, sizeof big);		/* six bytes out per byte in */
	jw_init(&w, buf, sizeof buf);
	jw_str(&w, big, sizeof big);
	cr_assert(w.overflow);
	cr_assert(w.len < sizeof buf);
}

/* Numbers are written two digits at a time: every width, and the ends. */
Test(record, sequence_numbers_of_every_width)
{
	const char	*prefix = "\"source\":1,";
	char		 buf[RECORD_MAX(1, 11)], want[64], *p;
	uint64_t	 seq, p10;
	size_t		 len;
	int		 i, d;

	/* Around each power of ten from 1 to 10^19, then 0 and the top. */
	for (i = 0; i <= 20; i++) {
		for (p10 = 1, d = 0; d < i && i < 20; d++)
			p10 *= 10;
		for (d = -1; d <= 1; d++) {
			seq = i == 0 ? (uint64_t)(d + 1) : i == 20 ?
			    UINT64_MAX - (uint64_t)(d + 1) : p10 + (uint64_t)d;
			len = record_line(buf, "2026-01-02T03:04:05.000006Z",
			    1767323045000006ULL, prefix, strlen(prefix), seq,
			    "x", 1, 0, 0);
			snprintf(want, sizeof want, "\"seq\":%llu,",
			    (unsigned long long)seq);
			buf[len] = '\0';
			p = strstr(buf, "\"seq\":");
			cr_assert(p != NULL && strncmp(p, want,
			    strlen(want)) == 0, "%s in %s", want, buf);
		}
	}
	len = record_copy_of(buf, len, 9, 1000000);
	buf[len] = '\0';
	cr_assert(strstr(buf, "\"copy_of\":{\"source\":9,\"seq\":1000000}}\n")
	    != NULL, "%s", buf);
}
