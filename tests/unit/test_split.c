/*
 * Golden tests for the line splitter: tests/data/split/<case>/input is fed
 * in one piece and in every chunk size, and the records must match
 * <case>/output, one per line as FLAGS|escaped-text (T truncated, P partial,
 * G progress, U progress update; - for none). <case>/max sets the record
 * size (default 4096).
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "collector/collector.h"

/* Records rendered as text. */
struct golden {
	char	*out;
	size_t	 len;
	size_t	 cap;
};

static void
golden_cb(void *arg, const char *line, size_t len, int flags)
{
	struct golden	*g = arg;
	size_t		 need = JSON_ESCAPE_MAX(len) + 8;
	char		*p;

	if (g->len + need > g->cap) {
		g->cap = (g->len + need) * 2;
		g->out = realloc(g->out, g->cap);
	}
	p = g->out + g->len;
	/* A line called plain is one the escaper copies as it is. */
	if (flags & SPLIT_PLAIN) {
		cr_assert(json_escape(p, line, len) == len &&
		    memcmp(p, line, len) == 0, "not plain: %.*s", (int)len,
		    line);
		flags &= ~SPLIT_PLAIN;
	}
	if (flags & SPLIT_TRUNCATED)
		*p++ = 'T';
	if (flags & SPLIT_PARTIAL)
		*p++ = 'P';
	if (flags & SPLIT_PROGRESS)
		*p++ = 'G';
	if (flags & SPLIT_UPDATE)
		*p++ = 'U';
	if (flags & SPLIT_PAUSED)
		*p++ = 'Z';
	if (flags == 0)
		*p++ = '-';
	*p++ = '|';
	p += json_escape(p, line, len);
	*p++ = '\n';
	g->len = (size_t)(p - g->out);
}

/* Read a whole file; NULL if absent. */
static char *
slurp(const char *dir, const char *name, size_t *len)
{
	char	 path[1024], *buf;
	FILE	*f;
	long	 n;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((f = fopen(path, "rb")) == NULL)
		return (NULL);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return (buf);
}

/* Split input in chunks of size chunk (0: whole) and render. */
static char *
run(const char *in, size_t len, size_t max, size_t chunk, size_t *outlen)
{
	struct split	s;
	struct golden	g = { NULL, 0, 0 };
	size_t		off, n;

	split_init(&s, max);
	if (chunk == 0)
		chunk = len == 0 ? 1 : len;
	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		split_feed(&s, in + off, n, golden_cb, &g);
	}
	split_finish(&s, golden_cb, &g);
	split_free(&s);
	*outlen = g.len;
	return (g.out);
}

Test(split, golden_cases)
{
	DIR		*d = opendir(DATADIR "/split");
	struct dirent	*e;
	char		 dir[1024], *in, *want, *got, *mx;
	size_t		 inlen, wantlen, gotlen, max, chunk, mxlen;
	int		 ncases = 0;

	cr_assert_not_null(d, "no golden cases at %s", DATADIR "/split");
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof dir, "%s/split/%s", DATADIR, e->d_name);
		in = slurp(dir, "input", &inlen);
		want = slurp(dir, "output", &wantlen);
		cr_assert(in != NULL && want != NULL, "case %s incomplete",
		    e->d_name);
		max = 4096;
		if ((mx = slurp(dir, "max", &mxlen)) != NULL) {
			max = strtoul(mx, NULL, 10);
			free(mx);
		}
		for (chunk = 0; chunk <= inlen; chunk++) {
			got = run(in, inlen, max, chunk, &gotlen);
			cr_expect(gotlen == wantlen &&
			    memcmp(got, want, wantlen) == 0,
			    "case %s, chunk %zu:\n--- want\n%.*s--- got\n%.*s",
			    e->d_name, chunk, (int)wantlen, want, (int)gotlen,
			    got);
			free(got);
		}
		free(in);
		free(want);
		ncases++;
	}
	closedir(d);
	cr_assert_geq(ncases, 15, "only %d golden cases found", ncases);
}

/* Count records and bytes of a stream, for the bound checks below. */
struct tally {
	size_t	records;
	size_t	bytes;
	size_t	maxlen;
	int	flags_or;
};

static void
tally_cb(void *arg, const char *line, size_t len, int flags)
{
	struct tally	*t = arg;

	if (flags & SPLIT_UPDATE)
		return;
	t->records++;
	t->bytes += len;
	if (len > t->maxlen)
		t->maxlen = len;
	t->flags_or |= flags;
}

Test(split, ten_megabytes_without_newline_loses_nothing)
{
	struct split	 s;
	struct tally	 t = { 0, 0, 0, 0 };
	char		*buf = malloc(65536);
	size_t		 total = 10 * 1024 * 1024, done;

	memset(buf, 'x', 65536);
	split_init(&s, 4096);
	for (done = 0; done < total; done += 65536)
		split_feed(&s, buf, 65536, tally_cb, &t);
	split_finish(&s, tally_cb, &t);
	split_free(&s);
	cr_assert_eq(t.bytes, total);
	cr_assert_eq(t.records, total / 4096);
	cr_assert_eq(t.maxlen, 4096);
	cr_assert(t.flags_or & SPLIT_TRUNCATED);
	cr_assert(t.flags_or & SPLIT_PARTIAL);
	free(buf);
}

/* A line's end found at every place of the 32- and 16-byte steps. */
Test(split, line_end_at_every_offset)
{
	struct split	 s;
	struct tally	 t;
	char		 buf[100];
	size_t		 at;
	int		 cr;

	for (cr = 0; cr < 2; cr++) {
		for (at = 0; at < 80; at++) {
			memset(&t, 0, sizeof t);
			memset(buf, 'x', sizeof buf);
			buf[at] = cr ? '\r' : '\n';
			buf[at + 1] = '\n';
			split_init(&s, 4096);
			split_feed(&s, buf, at + 2, tally_cb, &t);
			split_finish(&s, tally_cb, &t);
			split_free(&s);
			cr_assert_eq(t.maxlen, at, "%s at %zu: %zu",
			    cr ? "CR" : "LF", at, t.maxlen);
		}
	}
}

/* Plain lines, and only they, are marked: the escaper is the judge. */
struct plainness {
	int	n;
	int	plain[2];
};

static void
plain_cb(void *arg, const char *line, size_t len, int flags)
{
	struct plainness	*p = arg;

	if (p->n < 2)
		p->plain[p->n] = (flags & SPLIT_PLAIN) != 0;
	p->n++;
}

Test(split, plain_lines_are_marked_and_only_they)
{
	struct split		 s;
	struct plainness	 got;
	char			 buf[128], esc[JSON_ESCAPE_MAX(80)];
	size_t			 at;
	int			 c, want;

	for (c = 0; c < 256; c++) {
		if (c == '\n' || c == '\r')
			continue;
		for (at = 0; at < 70; at++) {
			memset(buf, 'x', sizeof buf);
			buf[at] = (char)c;
			buf[70] = '\n';
			buf[100] = '\n';
			want = json_escape(esc, buf, 70) == 70 &&
			    memcmp(esc, buf, 70) == 0;
			memset(&got, 0, sizeof got);
			split_init(&s, 4096);
			split_feed(&s, buf, 101, plain_cb, &got);
			split_free(&s);
			cr_assert_eq(got.n, 2);
			cr_assert_eq(got.plain[0], want, "byte %#x at %zu", c,
			    at);
			cr_assert(got.plain[1], "byte %#x at %zu: next line", c,
			    at);
		}
	}
}

Test(split, ten_thousand_progress_updates_make_one_record)
{
	struct split	s;
	struct tally	t = { 0, 0, 0, 0 };
	char		line[64];
	int		i, n;

	split_init(&s, 4096);
	for (i = 0; i <= 10000; i++) {
		n = snprintf(line, sizeof line, "\rstep %5d/10000", i);
		split_feed(&s, line, (size_t)n, tally_cb, &t);
	}
	split_feed(&s, "\n", 1, tally_cb, &t);
	split_finish(&s, tally_cb, &t);
	split_free(&s);
	cr_assert_eq(t.records, 1);
	cr_assert_eq(t.flags_or, SPLIT_PROGRESS);
}

/* Feed each piece, the writer pausing after each; the records as text. */
static char *
paused(const char *const *pieces, size_t n)
{
	struct split	s;
	struct golden	g = { NULL, 0, 0 };
	size_t		i;

	split_init(&s, 4096);
	for (i = 0; i < n; i++) {
		split_feed(&s, pieces[i], strlen(pieces[i]), golden_cb, &g);
		split_pause(&s);
	}
	split_finish(&s, golden_cb, &g);
	split_free(&s);
	g.out = realloc(g.out, g.len + 1);
	g.out[g.len] = '\0';
	return (g.out);
}

Test(split, a_log_line_after_a_paused_bar_is_its_own_record)
{
	/* tqdm leaves "\r<bar>"; logging then writes its line after it. */
	static const char *const glued[] = { "\rrank2:  50%|##   | 1/2",
	    "\rrank2:  57%|###  | 2/2", "ERROR train: NaN detected\n",
	    "\rrank2: 100%|#####| 2/2", "\n" };
	/* Pieces that continue the bar: another update, its newline. */
	static const char *const bar[] = { "\r 1/3", "\r 2/3", "\r 3/3\n" };
	/* No pause between the bar and the text: one record, as before. */
	static const char *const at_once[] = { "\r 1/3 then text\n" };
	char	*got;

	got = paused(glued, 5);
	cr_assert_str_eq(got, "U|rank2:  50%|##   | 1/2\n"
	    "GZ|rank2:  57%|###  | 2/2\n"
	    "-|ERROR train: NaN detected\n"
	    "G|rank2: 100%|#####| 2/2\n", "%s", got);
	free(got);
	got = paused(bar, 3);
	cr_assert_str_eq(got, "U| 1/3\nU| 2/3\nG| 3/3\n", "%s", got);
	free(got);
	got = paused(at_once, 1);
	cr_assert_str_eq(got, "G| 1/3 then text\n", "%s", got);
	free(got);
}

/*
 * tqdm's nested bars draw each state on the line below and move back up:
 * "\n", "\r<state>", "\x1b[A", three writes. Read apart, the move was
 * taken for a line written after the bar, and made a record of its own
 * ("-|\u001b[A"), as it was when the state before had the same width;
 * so was the rest of a move whose beginning came in another read.
 */
Test(split, a_bar_moving_the_cursor_keeps_the_move)
{
	static const char *const nested[] = { "\n", "\rbatch: 25% 5/20",
	    "\x1b[A", "\n", "\rbatch: 50% 10/20", "\x1b", "[2A", "\n" };
	static const char *const wide[] = { "\rbatch: 20% 4/20"
	    "\rbatch: 25% 5/20\x1b[A\n" };
	char	*got;

	got = paused(nested, 8);
	cr_assert_str_eq(got, "-|\n"
	    "G|batch: 25% 5/20\\u001b[A\n"
	    "G|batch: 50% 10/20\\u001b[2A\n", "%s", got);
	free(got);
	got = paused(wide, 1);
	cr_assert_str_eq(got, "U|batch: 20% 4/20\n"
	    "G|batch: 25% 5/20\\u001b[A\n", "%s", got);
	free(got);
}

Test(split, a_log_line_glued_to_a_bar_is_cut_at_the_bar_width)
{
	/* tqdm's update and a logging line read at once: no pause between. */
	static const char *const glued[] = {
	    "\rrank1:  32%|\xe2\x96\x88\xe2\x96\x8f  | 19/60 [00:01, 39.60it/s]"
	    "\rrank1:  33%|\xe2\x96\x88\xe2\x96\x8e  | 20/60 [00:01, 39.26it/s]"
	    "2026-11-30 13:40:17,514 INFO train: eval step=20\n" };
	/* A longer last state that is not the bar and a line: kept whole. */
	static const char *const longer[] = { "\rDownloading 1/10"
	    "\rDownloading 10/10 done\n" };
	/* A counter one digit wider, alike at both ends: still the state. */
	static const char *const grew[] = { "\rstep 9999/10000"
	    "\rstep 10000/10000\n" };
	static const char *const bytes[] = { "\r\x80\rx\x80\n" };
	char	*got;

	got = paused(glued, 1);
	cr_assert_str_eq(got, "U|rank1:  32%|\u2588\u258f  | 19/60 "
	    "[00:01, 39.60it/s]\n"
	    "GZ|rank1:  33%|\u2588\u258e  | 20/60 [00:01, 39.26it/s]\n"
	    "-|2026-11-30 13:40:17,514 INFO train: eval step=20\n", "%s", got);
	free(got);
	got = paused(longer, 1);
	cr_assert_str_eq(got, "U|Downloading 1/10\nG|Downloading 10/10 done\n",
	    "%s", got);
	free(got);
	/* A state of continuation bytes only: no width to go by. */
	got = paused(bytes, 1);
	cr_assert_str_eq(got, "U|\xef\xbf\xbd\nG|x\xef\xbf\xbd\n", "%s", got);
	free(got);
	got = paused(grew, 1);
	cr_assert_str_eq(got, "U|step 9999/10000\nG|step 10000/10000\n", "%s",
	    got);
	free(got);
}
