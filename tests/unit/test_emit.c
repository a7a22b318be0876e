/*
 * A stream's bytes to records: whole lines bound for the log alone take
 * stream_lines(), a loop of their own, and must come out as the splitter
 * and stream_emit() make them. The same bytes, cut into the same pieces,
 * go through both ways; the log, the counts and the last lines must be
 * the same. The file is included, so its static pieces are what is used.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "collector/emit.c"

struct config		 cfg;
struct event_base	*base;

/* The general way, as stream_bytes_at() was before the short one. */
static void
general(struct stream *s, const char *p, size_t n, const struct timespec *at)
{
	record_ts(cur_ts, at);
	cur_us = (uint64_t)at->tv_sec * 1000000 + (uint64_t)at->tv_nsec / 1000;
	ending_tail_defer(s->src, p, n);
	split_feed(&s->split, p, n, stream_record_cb, s);
	ending_tail_flush();
}

/* A local stream of its own source, records prefixed alike. */
static void
stream_setup(struct stream *s, struct source *src)
{
	memset(s, 0, sizeof *s);
	memset(src, 0, sizeof *src);
	src->announced = 1;
	s->src = src;
	s->slot = -1;
	s->jprefix = "\"source\":1,";
	s->jplen = strlen(s->jprefix);
	split_init(&s->split, 4096);
}

/* A mix of lines: escapes, bad UTF-8, bars, CRLF, long, severities. */
static size_t
mix(char *buf, size_t cap, unsigned seed)
{
	static const char *const kinds[] = {
	    "rank 3 step=%d loss=0.25 lr=3.00e-04", "say \"hi\" \\ %d",
	    "h\xc3\xa9llo \xe2\x9c\x93 %d", "bad \xff\xfe %d",
	    "tab\there \x1b[31mred\x1b[0m %d", "", "crlf %d\r",
	    "\r 10%%\r 20%%\r done %d", "ERROR: failed %d",
	    "WARNING - slow %d", "level=info %d",
	    "I1201 12:00:00.000000 1 x.cc:1] glog %d",
	    "Traceback (most recent call last):", "LONG %d" };
	size_t	len = 0, k;
	int	i;

	for (i = 0; len + 6000 < cap; i++) {
		k = (size_t)rand_r(&seed) % (sizeof kinds / sizeof kinds[0]);
		if (strcmp(kinds[k], "LONG %d") == 0) {
			memset(buf + len, 'x', 5000);
			len += 5000;
		}
		len += (size_t)snprintf(buf + len, cap - len, kinds[k], i);
		buf[len++] = '\n';
	}
	memcpy(buf + len, "unfinished", 10);
	return (len + 10);
}

/* Everything the log holds, NUL-terminated. */
static char *
slurp(const char *path, size_t *n)
{
	FILE	*f = fopen(path, "rb");
	char	*buf;

	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	rewind(f);
	buf = malloc(*n + 1);
	cr_assert_eq(fread(buf, 1, *n, f), *n);
	buf[*n] = '\0';
	fclose(f);
	return (buf);
}

/* The mix through both ways, in pieces cut anywhere: the same log. */
static void
compare_mix(void)
{
	static char		 in[1 << 20];
	static const size_t	 cuts[] = { 1, 7, 100, 4096, 65536, 200000 };
	char			 path[] = "/tmp/meshlog-emit-test.XXXXXX";
	struct stream		 a, b;
	struct source		 sa, sb;
	struct timespec		 at = { 1767323045, 6000 };
	unsigned		 seed = 11;
	size_t			 len, off, n, loglen, half;
	char			*log;
	int			 fd, i, way;

	cr_assert_neq(fd = mkstemp(path), -1);
	close(fd);
	cr_assert_eq(jsonlog_open(path), 0);
	len = mix(in, sizeof in, 7);
	for (way = 0; way < 2; way++) {
		stream_setup(way ? &b : &a, way ? &sb : &sa);
		seed = 11;
		for (off = 0; off < len; off += n) {
			n = cuts[rand_r(&seed) % 6];
			if (n > len - off)
				n = len - off;
			at.tv_nsec += 1000;
			if (way)
				general(&b, in + off, n, &at);
			else
				stream_bytes_at(&a, in + off, n, &at);
		}
		stream_bytes_end(way ? &b : &a);
		at.tv_nsec = 6000;
	}
	jsonlog_close(1);
	log = slurp(path, &loglen);
	unlink(path);
	cr_assert_eq(loglen % 2, 0);
	half = loglen / 2;
	cr_assert_gt(half, len);
	cr_assert(memcmp(log, log + half, half) == 0,
	    "the two ways' logs differ");
	cr_assert_gt(sa.errors, 100);
	cr_assert_eq(sa.errors, sb.errors);
	cr_assert_gt(sa.warnings, 100);
	cr_assert_eq(sa.warnings, sb.warnings);
	cr_assert_eq(sa.ntail, sb.ntail);
	cr_assert_eq(sa.tail_next, sb.tail_next);
	for (i = 0; i < sa.ntail; i++)
		cr_assert(sa.tail[i].len == sb.tail[i].len &&
		    sa.tail[i].flags == sb.tail[i].flags &&
		    memcmp(sa.tail[i].text, sb.tail[i].text,
		    sa.tail[i].len) == 0, "last line %d", i);
	cr_assert_eq(a.seq, b.seq);
	free(log);
}

Test(emit, whole_lines_the_short_way_are_recorded_as_the_splitter_does)
{
	compare_mix();
}

/* Lines found and shaped in one pass, as without AVX or without AES. */
Test(emit, the_same_without_avx)
{
	shape_use(SHAPE_SSE);
	compare_mix();
}

Test(emit, the_same_without_aes)
{
	shape_use(SHAPE_PORTABLE);
	compare_mix();
}

/*
 * Pieces (NULL-terminated; "|" alone: the writer pauses) through both
 * ways, the same log and counts expected: reads that end with the
 * splitter in each of its states.
 */
static void
both_ways(const char *const *pieces)
{
	char			 path[] = "/tmp/meshlog-emit-test.XXXXXX";
	struct stream		 st[2];
	struct source		 src[2];
	struct timespec		 at = { 1767323045, 6000 };
	size_t			 loglen;
	char			*log;
	int			 fd, i, way;

	cr_assert_neq(fd = mkstemp(path), -1);
	close(fd);
	cr_assert_eq(jsonlog_open(path), 0);
	for (way = 0; way < 2; way++) {
		stream_setup(&st[way], &src[way]);
		for (i = 0; pieces[i] != NULL; i++) {
			if (strcmp(pieces[i], "|") == 0) {
				split_pause(&st[way].split);
				continue;
			}
			if (way)
				general(&st[way], pieces[i], strlen(pieces[i]),
				    &at);
			else
				stream_bytes_at(&st[way], pieces[i],
				    strlen(pieces[i]), &at);
		}
		stream_bytes_end(&st[way]);
	}
	jsonlog_close(1);
	log = slurp(path, &loglen);
	unlink(path);
	cr_assert(loglen % 2 == 0 && memcmp(log, log + loglen / 2,
	    loglen / 2) == 0, "the two ways differ:\n%s", log);
	cr_assert_eq(st[0].seq, st[1].seq);
	free(log);
}

Test(emit, reads_that_end_in_each_state_of_the_splitter)
{
	static char	 full[4097], half[2049];
	const char	*cr[] = { "a\n\r", "\nb\nc\n", NULL };
	const char	*bar[] = { "a\n\r 10%\r 20%", "|", "next\nz\n", NULL };
	const char	*last[] = { "a\n\r 10%\r", "\nb\n", NULL };
	const char	*cut[] = { full, full, half, half, "tail\nnext\n",
			    NULL };
	const char	*unfinished[] = { "a\nhalf", "way\nb\n", NULL };

	memset(full, 'x', sizeof full - 1);
	memset(half, 'y', sizeof half - 1);
	both_ways(cr);
	both_ways(bar);
	both_ways(last);
	both_ways(cut);
	both_ways(unfinished);
}

/* A traceback's first line is seen wherever it is among the read's. */
Test(emit, a_traceback_among_whole_lines_is_seen)
{
	char			 path[] = "/tmp/meshlog-emit-test.XXXXXX";
	char			 buf[4096];
	struct stream		 s;
	struct source		 src;
	struct timespec		 at = { 1767323045, 6000 };
	size_t			 n;
	int			 fd, i;

	cr_assert_neq(fd = mkstemp(path), -1);
	close(fd);
	cr_assert_eq(jsonlog_open(path), 0);
	stream_setup(&s, &src);
	n = (size_t)snprintf(buf, sizeof buf, "%s\n", PY_TRACEBACK);
	for (i = 0; i < 20; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "line %d\n", i);
	stream_bytes_at(&s, buf, n, &at);
	cr_assert_neq(src.trace_at.tv_sec, 0);
	cr_assert_eq(s.seq, 21);
	jsonlog_close(1);
	unlink(path);
}

/*
 * A relay's lines come whole and without the splitter's mark: stream_emit
 * looks at each itself (shape_whole) and copies the plain ones. Their
 * records must be the escaper's: record_line() of the unmarked line.
 */
#define TS	"2026-01-02T03:04:05.006000Z"
#define US	1767323045006000ULL

Test(emit, relayed_lines_are_recorded_as_the_escaper_does)
{
	static char	 in[1 << 20];
	char		 path[] = "/tmp/meshlog-emit-test.XXXXXX";
	struct stream	 s[2];
	struct source	 src[2];
	struct shape	 sh;
	const char	*p, *nl;
	size_t		 len, loglen, n;
	char		*log, *r;
	int		 fd, way, level = 0;
	enum block_state blk = BLK_NONE;

	cr_assert_neq(fd = mkstemp(path), -1);
	close(fd);
	cr_assert_eq(jsonlog_open(path), 0);
	len = mix(in, sizeof in, 5);
	for (way = 0; way < 2; way++) {
		stream_setup(&s[way], &src[way]);
		for (p = in; (nl = memchr(p, '\n', (size_t)(in + len - p))) !=
		    NULL; p = nl + 1) {
			if (way == 0) {
				stream_emit(&s[0], TS, US, s[0].seq, p,
				    (size_t)(nl - p), 0);
				continue;
			}
			shape_of(p, (size_t)(nl - p), &sh);
			r = jsonlog_reserve(RECORD_MAX((size_t)(nl - p),
			    s[1].jplen));
			/* A traceback's lines take its level. */
			n = record_line(r, TS, US, s[1].jprefix, s[1].jplen,
			    s[1].seq++, p, (size_t)(nl - p), 0,
			    severity_in_block(&blk, &level, p, (size_t)(nl - p),
			    sh.severity, NULL));
			jsonlog_commit_counted(n, NULL);
		}
	}
	jsonlog_close(1);
	log = slurp(path, &loglen);
	unlink(path);
	cr_assert_gt(s[0].seq, 1000);
	cr_assert_eq(s[0].seq, s[1].seq);
	cr_assert(loglen % 2 == 0 && memcmp(log, log + loglen / 2,
	    loglen / 2) == 0, "copied and escaped records differ");
	free(log);
}
