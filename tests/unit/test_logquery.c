/*
 * meshlogctl logs' questions: times as people write them, levels, and
 * the tests on a record's bytes agreeing with those on its parse.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "collector/logquery.h"
#include "collector/rankset.h"

#define NS	1000000000LL

/* 2026-11-30T10:42:07.5Z */
static const int64_t	now = 1796035327LL * NS + 500000000;

static void
utc(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

TestSuite(logquery, .init = utc);

static int64_t
when(const char *s)
{
	int64_t	v = 0;

	cr_assert_eq(logq_parse_time(s, now, &v), 0, "%s not taken", s);
	return (v);
}

Test(logquery, rfc3339_with_fraction_and_offsets)
{
	cr_assert_eq(when("2026-11-30T02:15:46.830911Z"),
	    1796004946LL * NS + 830911000);
	cr_assert_eq(when("2026-11-30T02:15:46Z"), 1796004946LL * NS);
	cr_assert_eq(when("2026-11-30T03:15:46+01:00"), 1796004946LL * NS);
	cr_assert_eq(when("2026-11-29T21:15:46-0500"), 1796004946LL * NS);
	cr_assert_eq(when("2026-11-30 02:15:46"), 1796004946LL * NS);
}

Test(logquery, local_times_and_words)
{
	int64_t	midnight = now - (10 * 3600 + 42 * 60 + 7) * NS - NS / 2;

	cr_assert_eq(when("10:42"), midnight + (10 * 3600 + 42 * 60) * NS);
	cr_assert_eq(when("10:42:05"), midnight + (10 * 3600 + 42 * 60 + 5) *
	    NS);
	cr_assert_eq(when("2026-11-30"), midnight);
	cr_assert_eq(when("today"), midnight);
	cr_assert_eq(when("yesterday"), midnight - 86400 * NS);
	cr_assert_eq(when("tomorrow"), midnight + 86400 * NS);
	cr_assert_eq(when("now"), now);
}

Test(logquery, relative_times)
{
	cr_assert_eq(when("-5m"), now - 300 * NS);
	cr_assert_eq(when("-1h30m"), now - 5400 * NS);
	cr_assert_eq(when("+90s"), now + 90 * NS);
	cr_assert_eq(when("-2d"), now - 2 * 86400 * NS);
	cr_assert_eq(when("-45"), now - 45 * NS);
	cr_assert_eq(when("-3hours"), now - 3 * 3600 * NS);
	/* journalctl's way, systemd.time(7) */
	cr_assert_eq(when("1 hour ago"), now - 3600 * NS);
	cr_assert_eq(when("-2 hours"), now - 2 * 3600 * NS);
	cr_assert_eq(when("1h 30min ago"), now - 5400 * NS);
	cr_assert_eq(when("5min left"), now + 300 * NS);
	cr_assert_eq(when("2 weeks ago"), now - 14 * 86400 * NS);
	cr_assert_eq(when("45 ago"), now - 45 * NS);
}

Test(logquery, bad_times_are_refused)
{
	static const char *const bad[] = { "", "-", "5m", "-5x", "25:00",
	    "10:61", "2026-13-01", "2026-11-30T10:42:00+25:00", "10:42Z",
	    "yesterdayy", "2026-11-30X", "-99999999999d", "10:42:07.",
	    " ago", "ago", "5 ago left", "-5m ago", "5 5 ago", "1 hourx ago",
	    "5m  agoo", NULL };
	int64_t	v;
	int	i;

	for (i = 0; bad[i] != NULL; i++)
		cr_expect_eq(logq_parse_time(bad[i], now, &v), -1,
		    "\"%s\" taken", bad[i]);
}

Test(logquery, levels)
{
	cr_assert_eq(logq_parse_level("error"), 40);
	cr_assert_eq(logq_parse_level("WARN"), 30);
	cr_assert_eq(logq_parse_level("CRITICAL"), 50);
	cr_assert_eq(logq_parse_level("25"), 25);
	cr_assert_eq(logq_parse_level("51"), -1);
	cr_assert_eq(logq_parse_level("loud"), -1);
}

static const char *const recs[] = {
	"{\"ts\":\"2026-11-30T10:00:00.000001Z\",\"ts_ns\":1796032800000001000,"
	"\"host\":\"a\",\"pid\":10,\"rank\":3,\"source\":4,\"stream\":\"stderr\","
	"\"seq\":0,\"line\":\"ERROR boom \\\"rank\\\":5,\",\"level\":\"ERROR\"}",
	"{\"ts\":\"2026-11-30T10:00:01.000000Z\",\"ts_ns\":1796032801000000000,"
	"\"host\":\"b\",\"pid\":11,\"rank\":5,\"source\":5,\"stream\":\"stdout\","
	"\"seq\":0,\"line\":\"step 1 \\\"level\\\":\\\"ERROR\\\"\"}",
	"{\"ts\":\"2026-11-30T10:00:02.000000Z\",\"ts_ns\":1796032802000000000,"
	"\"host\":\"a\",\"pid\":12,\"rank\":null,\"source\":6,\"stream\":"
	"\"stderr\",\"seq\":0,\"line\":\"[1,3]<stderr>:ERROR boom\",\"copy\":"
	"true,\"level\":\"ERROR\",\"copy_of\":{\"source\":4,\"seq\":0}}",
	"{\"ts\":\"2026-11-30T10:00:03.000000Z\",\"host\":\"a\",\"pid\":10,"
	"\"rank\":3,\"source\":4,\"event\":\"source_closed\",\"reason\":\"eof\","
	"\"exit\":{\"code\":1}}",
};

/* Which of recs the query q takes, as a bit set, checked both ways. */
static unsigned
taken(struct logq *q)
{
	unsigned	 set = 0;
	size_t		 i;
	json_t		*o;
	int		 maybe, match;

	logq_ready(q);
	for (i = 0; i < sizeof recs / sizeof recs[0]; i++) {
		o = json_loads(recs[i], 0, NULL);
		cr_assert_not_null(o, "record %zu", i);
		maybe = logq_maybe(q, recs[i], strlen(recs[i]));
		match = maybe && logq_match(q, o);
		/* The bytes never refuse what the parse takes. */
		cr_assert(maybe || !logq_match(q, o), "record %zu", i);
		if (q->by_tail && match)
			cr_assert(logq_tail_maybe(q, recs[i], strlen(recs[i])));
		if (match)
			set |= 1u << i;
		json_decref(o);
	}
	logq_free(q);
	return (set);
}

Test(logquery, filters_agree_on_bytes_and_parse)
{
	struct logq	q;

	logq_init(&q);
	cr_assert_eq(taken(&q), 0x3);		/* lines, not copies */
	logq_init(&q);
	q.copies = 1;
	cr_assert_eq(taken(&q), 0x7);
	logq_init(&q);
	q.events = 1;
	cr_assert_eq(taken(&q), 0xb);
	logq_init(&q);
	cr_assert_eq(rankset_parse("5", &q.ranks, &q.nranks), 0);
	cr_assert_eq(taken(&q), 0x2);		/* "rank":5, in a line */
	logq_init(&q);
	q.priority = 40;
	cr_assert_eq(taken(&q), 0x1);		/* "level" in a line */
	logq_init(&q);
	q.priority = 40;
	q.copies = 1;
	cr_assert_eq(taken(&q), 0x5);
	logq_init(&q);
	q.host = "a";
	q.events = 1;
	cr_assert_eq(taken(&q), 0x9);
	logq_init(&q);
	q.stream = 1;
	cr_assert_eq(taken(&q), 0x1);
	logq_init(&q);
	q.since = 1796032801000000000LL;
	q.until = 1796032803000000000LL;
	q.events = 1;
	cr_assert_eq(taken(&q), 0xa);
	logq_init(&q);
	cr_assert_eq(regcomp(&q.re, "^step", REG_EXTENDED | REG_NOSUB), 0);
	q.have_re = 1;
	cr_assert_eq(taken(&q), 0x2);
}

Test(logquery, record_times)
{
	cr_assert_eq(logq_time(recs[0], strlen(recs[0])),
	    1796032800000001000LL);
	cr_assert_eq(logq_time(recs[3], strlen(recs[3])),
	    1796032803000000000LL);
}

/* Whether rec answers q, on its bytes and on its parse. */
static int
answers(const struct logq *q, const char *rec)
{
	json_t	*o = json_loads(rec, 0, NULL);
	int	 yes;

	cr_assert_not_null(o, "%s", rec);
	yes = logq_maybe(q, rec, strlen(rec)) && logq_match(q, o);
	json_decref(o);
	return (yes);
}

Test(logquery, a_rank_told_late_takes_its_earlier_records)
{
	static const char	log[] =
	    "{\"ts\":\"2026-11-30T10:00:01.000000Z\",\"host\":\"a\","
	    "\"pid\":9,\"rank\":2,\"source\":4,\"event\":\"rank\","
	    "\"world_size\":3}\n"
	    "{\"ts\":\"2026-11-30T10:00:01.000000Z\",\"host\":\"a\","
	    "\"pid\":8,\"rank\":0,\"source\":3,\"event\":\"rank\","
	    "\"world_size\":3}\n"
	    "{\"x\":{\"y\":1,\"event\":\"rank\",\"world_size\":3},"
	    "\"host\":\"a\",\"pid\":6,\"rank\":2,\"source\":1}\n"
	    "{\"ts\":\"2026-11-30T10:00:02.000000Z\",\"host\":\"a\","
	    "\"pid\":7,\"rank\":1,\"source\":2,\"event\":\"rank\",";
	static const char	before[] =
	    "{\"ts\":\"2026-11-30T10:00:00.000000Z\",\"ts_ns\":"
	    "1796032800000000000,\"host\":\"a\",\"pid\":9,\"rank\":null,"
	    "\"source\":4,\"stream\":\"stdout\",\"seq\":0,\"line\":\"x\"}";
	static const char	other_host[] =
	    "{\"ts\":\"2026-11-30T10:00:00.000000Z\",\"ts_ns\":"
	    "1796032800000000000,\"host\":\"b\",\"pid\":9,\"rank\":null,"
	    "\"source\":4,\"stream\":\"stdout\",\"seq\":0,\"line\":\"x\"}";
	static const char	torn[] =
	    "{\"ts\":\"2026-11-30T10:00:00.000000Z\",\"ts_ns\":"
	    "1796032800000000000,\"host\":\"a\",\"pid\":7,\"rank\":null,"
	    "\"source\":2,\"stream\":\"stdout\",\"seq\":0,\"line\":\"x\"}";
	struct logq		q;

	logq_init(&q);
	cr_assert_eq(rankset_parse("1-2", &q.ranks, &q.nranks), 0);
	logq_ready(&q);
	cr_assert_eq(answers(&q, before), 0);
	logq_learn_ranks(&q, log, strlen(log));
	logq_ready(&q);
	/* Rank 0 was not asked for; the torn last record is none yet; a
	 * record whose needle is no event of its own (a log not the
	 * collector's) is none. */
	cr_assert_eq(q.nlate, 1);
	cr_assert_eq(answers(&q, before), 1);
	cr_assert_eq(answers(&q, other_host), 0);
	cr_assert_eq(answers(&q, torn), 0);
	logq_free(&q);
	/* One rank looks for its needle, and for rankless records now. */
	logq_init(&q);
	cr_assert_eq(rankset_parse("2", &q.ranks, &q.nranks), 0);
	logq_learn_ranks(&q, log, strlen(log));
	logq_ready(&q);
	cr_assert_eq(q.nneedles, 2);
	cr_assert_str_eq(q.needle[1], "\"rank\":null,");
	cr_assert_eq(answers(&q, before), 1);
	logq_free(&q);
}
