/*
 * The aggregator alone against the seed's rule, on a generated stream: 64
 * sources, 1,000 templates with noisy numbers and ids. The seed's rule is
 * re-implemented faithfully: every line is compared with every group's
 * first line by full Levenshtein distance and joins the closest one below
 * 0.15 of the longer length. Prints one JSON object: lines/s of each, their
 * ratio, and on the lines both grouped, the share of pairs the seed groups
 * that meshlog groups too and the pairwise agreement.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/collector.h"

struct config		 cfg;
struct event_base	*base;

#define SOURCES		64
#define TEMPLATES	1000
#define OUR_LINES	1000000
#define SEED_LINES	3000

static const char *const words[] = { "loading", "shard", "checkpoint",
    "gradient", "optimizer", "step", "epoch", "batch", "loss", "rank",
    "barrier", "allreduce", "tensor", "device", "stream", "kernel", "cache",
    "dataset", "worker", "queue", "saved", "waiting", "ready", "model",
    "layer", "weights", "scheduler", "warmup", "eval", "metric" };

/*
 * A line of template t. Noisy: random numbers and a random id, as the
 * issue asks. Mild: one-digit numbers and the template's own id, lines the
 * seed's rule does group, so agreement is measured where it means
 * something.
 */
static int
make_line(char *buf, size_t size, unsigned t, unsigned *seed, int noisy)
{
	unsigned	a = t % 30, b = (t / 30) % 30, c = (t / 900 + t) % 30;
	unsigned	r = noisy ? 1000 : 10;

	return (snprintf(buf, size, "%s %s %u: %s=%u.%03u id=%08x took %u ms "
	    "[%s]", words[a], words[b], rand_r(seed) % r, words[c],
	    rand_r(seed) % (noisy ? 100 : 3), rand_r(seed) % r, noisy ?
	    (unsigned)rand_r(seed) : t * 2654435761U, rand_r(seed) %
	    (noisy ? 5000 : 10), words[(a + b) % 30]));
}

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* Full Levenshtein, as the seed computes it. */
static size_t
levenshtein(const char *a, size_t la, const char *b, size_t lb, size_t *row)
{
	size_t	i, j, prev, d, tmp;

	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			d = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < d)
				d = row[j] + 1;
			if (row[j - 1] + 1 < d)
				d = row[j - 1] + 1;
			tmp = row[j];
			row[j] = d;
			prev = tmp;
		}
	}
	return (row[lb]);
}

/* Group SEED_LINES lines both ways; the seed's speed and the agreement. */
static void
compare(int noisy, double *seed_lps, size_t *groups, double *recall,
    double *agreement)
{
	static char	 lines[SEED_LINES][160];
	unsigned	 seed = 7, t;
	size_t		*seedg = calloc(SEED_LINES, sizeof *seedg);
	size_t		*rep = calloc(SEED_LINES, sizeof *rep);
	uint64_t	*ours = calloc(SEED_LINES, sizeof *ours);
	size_t		 row[200], i, j, ng = 0, best, d, longer, n;
	size_t		 pairs = 0, agree = 0, seed_pairs = 0, both = 0;
	struct origin	 o = { 0, -1, 0, "" };
	double		 t0, bestr;

	for (i = 0; i < SEED_LINES; i++) {
		t = (unsigned)rand_r(&seed) % (noisy ? TEMPLATES : 100);
		make_line(lines[i], sizeof lines[i], t, &seed, noisy);
	}
	t0 = now_s();
	for (i = 0; i < SEED_LINES; i++) {
		best = (size_t)-1;
		bestr = 1;
		for (j = 0; j < ng; j++) {
			n = strlen(lines[rep[j]]);
			longer = n > strlen(lines[i]) ? n : strlen(lines[i]);
			d = levenshtein(lines[rep[j]], n, lines[i],
			    strlen(lines[i]), row);
			if ((double)d / (double)longer < 0.15 &&
			    (double)d / (double)longer < bestr) {
				bestr = (double)d / (double)longer;
				best = j;
			}
		}
		if (best == (size_t)-1) {
			rep[ng] = i;
			best = ng++;
		}
		seedg[i] = best;
	}
	*seed_lps = SEED_LINES / (now_s() - t0);
	/* meshlog on the same lines, one source each (grouping only). */
	aggregate_set_window(0);
	for (i = 0; i < SEED_LINES; i++) {
		o.id = i + 1;
		ours[i] = aggregate_line(MESHLOG_STDOUT, &o, lines[i],
		    strlen(lines[i]), 0, severity_detect(lines[i],
		    strlen(lines[i])));
	}
	aggregate_flush();
	for (i = 0; i < SEED_LINES; i++) {
		for (j = i + 1; j < SEED_LINES; j++) {
			int s = seedg[i] == seedg[j], u = ours[i] == ours[j];

			pairs++;
			agree += s == u;
			if (s) {
				seed_pairs++;
				both += u;
			}
		}
	}
	*groups = ng;
	*recall = seed_pairs ? (double)both / (double)seed_pairs : 1.0;
	*agreement = (double)agree / (double)pairs;
	free(seedg);
	free(rep);
	free(ours);
}

int
main(void)
{
	char		 buf[160];
	unsigned	 seed = 42, t;
	size_t		 i, g, gm;
	struct origin	 o = { 0, -1, 0, "" };
	double		 t0, ours_s, lps, lpsm, r, a, rm, am;
	int		 len;

	/* meshlog: 1M noisy lines from 64 sources. */
	aggregate_set_window(0);
	t0 = now_s();
	for (i = 0; i < OUR_LINES; i++) {
		t = (unsigned)rand_r(&seed) % TEMPLATES;
		len = make_line(buf, sizeof buf, t, &seed, 1);
		o.id = 1 + i % SOURCES;
		o.rank = (long)(i % SOURCES);
		aggregate_line(MESHLOG_STDOUT, &o, buf, (size_t)len, 0,
		    severity_detect(buf, (size_t)len));
	}
	aggregate_flush();
	ours_s = now_s() - t0;
	compare(1, &lps, &g, &r, &a);
	compare(0, &lpsm, &gm, &rm, &am);
	printf("{\"meshlog_lines\": %d, \"meshlog_s\": %.4f, "
	    "\"meshlog_lines_per_s\": %.1f, \"seed_lines\": %d, "
	    "\"seed_lines_per_s\": %.1f, \"ratio\": %.1f, "
	    "\"seed_groups\": %zu, \"recall\": %.4f, \"agreement\": %.4f, "
	    "\"mild_seed_groups\": %zu, \"mild_recall\": %.4f, "
	    "\"mild_agreement\": %.4f}\n", OUR_LINES, ours_s,
	    OUR_LINES / ours_s, SEED_LINES, lps, (OUR_LINES / ours_s) / lps,
	    g, r, a, gm, rm, am);
	return (0);
}
