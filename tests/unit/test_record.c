/* The JSON record encoder: every output parses, and text survives intact. */

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "collector/collector.h"

/* Encode a record for line and parse it back with jansson. */
static json_t *
encode(const char *line, size_t n, int flags)
{
	const char	*prefix = "\"host\":\"h\",\"pid\":1,\"rank\":null,"
	    "\"source\":1,\"stream\":\"stdout\",";
	char		*buf = malloc(RECORD_MAX(n, strlen(prefix)));
	size_t		 len;
	json_t		*o;
	json_error_t	 err;

	len = record_line(buf, "2026-01-02T03:04:05.000006Z", prefix,
	    strlen(prefix), 7, line, n, flags);
	cr_assert(len > 0 && buf[len - 1] == '\n');
	cr_assert(memchr(buf, '\n', len - 1) == NULL, "newline inside");
	o = json_loadb(buf, len, JSON_ALLOW_NUL, &err);
	cr_assert_not_null(o, "not JSON (%s): %.*s", err.text, (int)len, buf);
	free(buf);
	return (o);
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

Test(record, console_makes_controls_visible_and_keeps_colour)
{
	const char	in[] = "\x1b[31mred\x1b[0m bell\x07 nul\0 \xff";
	char		out[256];
	size_t		n = record_console(out, in, sizeof in - 1);

	out[n] = '\0';
	cr_assert_str_eq(out, "\x1b[31mred\x1b[0m bell\\x07 nul\\x00 "
	    "\xef\xbf\xbd");
}

Test(record, console_escapes_non_colour_escape_sequences)
{
	const char	in[] = "\x1b]0;title\x07\x1b[2J";
	char		out[256];
	size_t		n = record_console(out, in, sizeof in - 1);

	out[n] = '\0';
	cr_assert_str_eq(out, "\\x1b]0;title\\x07\\x1b[2J");
}
