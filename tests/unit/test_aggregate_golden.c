/*
 * Golden tests for the aggregator: tests/data/aggregate/<case>/input has
 * one console line per line, "SOURCE RANK|- out|err[+bar] TEXT" (pid is
 * 1000 + source; +bar: a progress bar's last state), and directives: "@ T" sets the clock to T seconds (from 0) and
 * lets the aggregator print what is due, "world N" gives the sources that
 * follow a world size. <case>/output is what the console shows, each
 * line preceded by its stream, with "@ T" where the clock moved; what
 * waits at the end is printed after "@ end". The window is 0.25 s.
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "collector/collector.h"

struct config		 cfg;
struct event_base	*base;

static char	 got[1 << 20];
static size_t	 gotlen;
static double	 clock_now;

static double
test_clock(void)
{
	return (clock_now);
}

/* Record what would be printed. */
static void
capture(int which, const char *prefix, const char *line, size_t len,
    int flags, uint64_t us)
{
	gotlen += (size_t)snprintf(got + gotlen, sizeof got - gotlen,
	    "%s %s%.*s\n", which == MESHLOG_STDOUT ? "out" : "err", prefix,
	    (int)len, line);
}


/* Whole file, NUL-terminated. */
static char *
slurp(const char *path)
{
	FILE	*f = fopen(path, "rb");
	char	*buf;
	long	 n;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	return (buf);
}

Test(aggregate, golden_cases)
{
	DIR		*d = opendir(DATADIR "/aggregate");
	struct dirent	*e;
	char		 path[1024], *in, *want, *line, *save, prefixes[2048][32];
	struct origin	 o;
	struct shape	 sh;
	long		 src, rank, world;
	int		 ncases = 0, which, off, flags;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/aggregate/%s/input", DATADIR,
		    e->d_name);
		in = slurp(path);
		snprintf(path, sizeof path, "%s/aggregate/%s/output", DATADIR,
		    e->d_name);
		want = slurp(path);
		gotlen = 0;
		got[0] = '\0';
		aggregate_set_output(capture, capture);
		aggregate_set_clock(test_clock);
		clock_now = 0;
		world = -1;
		aggregate_set_window(0.25);
		for (line = strtok_r(in, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			char	rk[16], st[16];

			if (line[0] == '@') {
				clock_now = atof(line + 1);
				gotlen += (size_t)snprintf(got + gotlen,
				    sizeof got - gotlen, "%s\n", line);
				aggregate_tick();
				continue;
			}
			if (strncmp(line, "world ", 6) == 0) {
				world = atol(line + 6);
				continue;
			}

			cr_assert_eq(sscanf(line, "%ld %15s %15s%n", &src, rk, st,
			    &off), 3, "bad input line: %s", line);
			off++;	/* the one space before the text */
			rank = strcmp(rk, "-") == 0 ? -1 : atol(rk);
			which = strncmp(st, "out", 3) == 0 ? MESHLOG_STDOUT :
			    MESHLOG_STDERR;
			/* "out+bar": a progress bar's last state. */
			flags = strstr(st, "+bar") != NULL ? SPLIT_PROGRESS : 0;
			if (rank >= 0)
				snprintf(prefixes[src], sizeof prefixes[src],
				    "[rank %ld] ", rank);
			else
				snprintf(prefixes[src], sizeof prefixes[src],
				    "[pid %ld] ", 1000 + src);
			o.id = (uint64_t)src;
			o.rank = rank;
			o.pid = 1000 + src;
			o.prefix = prefixes[src];
			o.world = world;
			shape_of(line + off, strlen(line + off), &sh);
			aggregate_line(which, &o, line + off, strlen(line + off),
			    flags, &sh, 0);
		}
		gotlen += (size_t)snprintf(got + gotlen, sizeof got - gotlen,
		    "@ end\n");
		aggregate_flush();
		/* MESHLOG_GOLDEN_WRITE=1: write what came out, for review. */
		if (getenv("MESHLOG_GOLDEN_WRITE") != NULL) {
			FILE	*f;

			snprintf(path, sizeof path, "%s/aggregate/%s/output",
			    DATADIR, e->d_name);
			cr_assert_not_null(f = fopen(path, "w"));
			fputs(got, f);
			fclose(f);
		}
		cr_expect_str_eq(got, want, "case %s:\n--- want\n%s--- got\n%s",
		    e->d_name, want, got);
		free(in);
		free(want);
		ncases++;
	}
	closedir(d);
	cr_assert_geq(ncases, 9);
}
