/*
 * The aggregator alone against the seed's rule, on a generated stream: 64
 * sources, 1,000 templates with noisy numbers and ids. The seed's rule is
 * re-implemented faithfully: every line is compared with every group's
 * first line by full Levenshtein distance and joins the closest one below
 * 0.15 of the longer length. Prints one JSON object: lines/s of each, their
 * ratio, and on the lines both grouped, the share of pairs the seed groups
 * that meshlog groups too and the pairwise agreement. Then the console at
 * scale: one line said by 1,024 and by 16,384 ranks (CPU time to take and
 * print the group), and 64 writers printing 10,000 numbered lines each
 * (console lines printed; grouping holds when they equal 10,000).
 * "aggbench view N": the console view's cost workload alone (view()).
 * "aggbench alone numbers|words N": one process's lines alone (alone()).
 * "aggbench long N": four ranks' long lines, none alike (longlines()).
 * "aggbench nccl N": 1,024 ranks' NCCL lines, as the burst's root (nccl()).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/collector.h"
#include "tests/seedrule.h"

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


/* Group SEED_LINES lines both ways; the seed's speed and the agreement. */
static void
compare(int noisy, double *seed_lps, size_t *groups, double *recall,
    double *agreement)
{
	char		*lines[SEED_LINES];
	size_t		*group = calloc(SEED_LINES, sizeof *group), i;
	unsigned	 seed = 7, t;
	double		 t0;

	for (i = 0; i < SEED_LINES; i++) {
		lines[i] = malloc(160);
		t = (unsigned)rand_r(&seed) % (noisy ? TEMPLATES : 100);
		make_line(lines[i], 160, t, &seed, noisy);
	}
	t0 = now_s();
	*groups = seed_group(lines, SEED_LINES, group);
	*seed_lps = SEED_LINES / (now_s() - t0);
	seed_compare(lines, SEED_LINES, group, recall, agreement);
	for (i = 0; i < SEED_LINES; i++)
		free(lines[i]);
	free(group);
}

static size_t	printed;

/* The console's place: groups are formatted, counted, thrown away. */
static void
discard(int which, const char *prefix, const char *line, size_t len,
    int flags, uint64_t us)
{
	printed++;
}

static double
cpu_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* CPU ms to take one line from n ranks (shuffled) and print it, median
 * of five. */
static double
one_line_of(long n, int nccl)
{
	struct origin	o = { 0, 0, 0, "", -1 };
	struct shape	sh;
	double		t[5], x;
	long		r;
	int		k, i, j;
	char		buf[128];

	o.world = n;
	for (k = 0; k < 5; k++) {
		t[k] = cpu_s();
		for (r = 0; r < n; r++) {
			o.rank = (r * 7919) % n;
			o.id = (uint64_t)o.rank + 1;
			o.pid = 40000 + o.rank * 3;
			if (nccl)	/* words with few values: many ties */
				snprintf(buf, sizeof buf, "node%ld:%ld [%ld] "
				    "NCCL INFO Channel 00/32 : %ld[%ld] -> "
				    "%ld[%ld] via P2P/IPC", o.rank / 8, o.pid,
				    o.rank % 8, o.rank, o.rank % 8,
				    (o.rank + 1) % n, (o.rank + 1) % 8);
			else
				snprintf(buf, sizeof buf, "rank %ld/%ld pid %ld "
				    "NCCL INFO Bootstrap : Using "
				    "eth0:10.0.%ld.%ld<0>", o.rank, n, o.pid,
				    o.rank / 256, o.rank % 256);
			shape_of(buf, strlen(buf), &sh);
			aggregate_line(MESHLOG_STDERR, &o, buf, strlen(buf), 0,
			    &sh, 0);
		}
		aggregate_flush();
		t[k] = (cpu_s() - t[k]) * 1000;
	}
	for (i = 1; i < 5; i++)
		for (j = i; j > 0 && t[j] < t[j - 1]; j--) {
			x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	return (t[2]);
}

/* Console lines printed for 64 writers x n numbered lines, read in
 * chunks of 2,000 lines per writer as the collector reads pipes. */
static size_t
burst(size_t n)
{
	struct origin	o = { 0, 0, 0, "", 64 };
	struct shape	sh;
	char		buf[64];
	size_t		w, i, from;
	int		len;

	printed = 0;
	for (from = 0; from < n; from += 2000)
		for (w = 0; w < 64; w++) {
			o.id = 100000 + w;
			o.rank = (long)w;
			o.pid = 1000 + (long)w;
			for (i = from; i < from + 2000 && i < n; i++) {
				len = snprintf(buf, sizeof buf, "step %zu loss="
				    "%zu.%03zu", i, (i * 7 + w) % 10, w);
				shape_of(buf, (size_t)len, &sh);
				aggregate_line(MESHLOG_STDOUT, &o, buf,
				    (size_t)len, 0, &sh, 0);
			}
		}
	aggregate_flush();
	return (printed);
}

static double	view_now;

static double
view_clock(void)
{
	return (view_now);
}

/*
 * The console view's cost benches: output discarded, the test clock, the
 * default window; and n ranks, "[rank K] ", of a world of n.
 */
static void
view_init(struct origin *o, char (*pre)[32], int n)
{
	int	k;

	aggregate_set_output(discard, discard);
	aggregate_set_clock(view_clock);
	aggregate_set_window(0.25);
	for (k = 0; k < n; k++) {
		snprintf(pre[k], sizeof pre[k], "[rank %d] ", k);
		o[k].id = (uint64_t)k + 1;
		o[k].rank = k;
		o[k].pid = 1000 + k;
		o[k].prefix = pre[k];
		o[k].world = n;
	}
}

/*
 * The console view alone, the same every run (bench.py's cost, under
 * callgrind): 8 ranks print n lines each of the cost workload's shape
 * (tests/progs/cwriter bench), in turns, one rank 3,616 lines ahead, the
 * clock a millisecond on every 8 turns. Only the taking and printing of
 * lines is counted (callgrind's --toggle-collect on aggregate_line,
 * aggregate_tick, aggregate_flush and shape_of).
 */
static void
view(long n)
{
	static char	 pre[8][32];
	struct origin	 o[8];
	struct shape	 sh;
	char		 line[256];
	long		 i, j;
	int		 k, len;

	view_init(o, pre, 8);
	for (i = 0; i < n; i++) {
		for (k = 0; k < 8; k++) {
			j = k == 1 ? i + 3616 : i;
			len = snprintf(line, sizeof line, "w%d %08ld step=%ld "
			    "loss=%.4f lr=%.2e the quick brown fox jumps over "
			    "the lazy dog [train]", k, j, j * 8,
			    2.5 / (1 + (double)j / 1000), 3e-4);
			shape_of(line, (size_t)len, &sh);
			aggregate_line(MESHLOG_STDOUT, &o[k], line, (size_t)len,
			    0, &sh, 0);
		}
		if (i % 8 == 7) {
			view_now += 0.001;
			aggregate_tick();
		}
	}
	aggregate_flush();
}

/*
 * One process alone, n lines (callgrind as for view()): "numbers", seq's
 * lines, or "words", lines whose words vary ("loading kilo echo from the
 * lima store", 4,096 of them), so that most lines have a template no
 * waiting group has. Such a line is compared only with groups it could
 * join, and a process alone can join none of its own.
 */
static void
alone(const char *kind, long n)
{
	static const char *const w[16] = { "alpha", "bravo", "charlie",
	    "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
	    "kilo", "lima", "mike", "november", "oscar", "papa" };
	struct origin	 o = { 1, -1, 1000, "[pid 1000] ", -1 };
	struct shape	 sh;
	char		 line[256];
	unsigned	 r = 1;
	long		 i;
	int		 len, worded = strcmp(kind, "words") == 0;

	view_init(NULL, NULL, 0);
	for (i = 0; i < n; i++) {
		r = r * 1103515245 + 12345;
		if (worded)
			len = snprintf(line, sizeof line, "loading %s %s from "
			    "the %s store", w[(r >> 8) & 15], w[(r >> 12) & 15],
			    w[(r >> 16) & 15]);
		else
			len = snprintf(line, sizeof line, "%ld", i + 1);
		shape_of(line, (size_t)len, &sh);
		aggregate_line(MESHLOG_STDOUT, &o, line, (size_t)len, 0, &sh,
		    0);
		if (i % 8 == 7) {
			view_now += 0.001;
			aggregate_tick();
		}
	}
	aggregate_flush();
}

/*
 * Four ranks in turns, n lines each of 2,000 random letters after a
 * common head (a configuration or a tensor dumped by each): no two alike,
 * each line compared with the other ranks' waiting ones.
 */
static void
longlines(long n)
{
	static char	 pre[4][32];
	struct origin	 o[4];
	struct shape	 sh;
	char		 line[2100];
	unsigned	 r = 7;
	long		 i;
	int		 k, j, len;

	view_init(o, pre, 4);
	for (i = 0; i < n; i++) {
		for (k = 0; k < 4; k++) {
			len = snprintf(line, sizeof line, "config dump of the "
			    "model: ");
			for (j = 0; j < 2000; j++) {
				r = r * 1103515245 + 12345;
				line[len++] = (char)('a' + (r >> 16) % 26);
			}
			shape_of(line, (size_t)len, &sh);
			aggregate_line(MESHLOG_STDOUT, &o[k], line,
			    (size_t)len, 0, &sh, 0);
		}
		view_now += 0.001;
		aggregate_tick();
	}
	aggregate_flush();
}

/*
 * The root's console view in the burst benchmark, without the network:
 * 1,024 ranks print n NCCL-style lines each (tests/bench/ranks.py's), all
 * ranks' line i before line i + 1, a tick every 8,192 lines. Their widths
 * differ (node3, node12; [7], [1023]), so most are aligned token by token,
 * and each printed line gathers 1,024 values at every word that differs.
 */
static void
nccl(long n)
{
	enum { RANKS = 1024 };
	static char	 pre[RANKS][32];
	static struct origin o[RANKS];
	struct shape	 sh;
	char		 line[256];
	long		 i, taken = 0;
	int		 k, len;

	view_init(o, pre, RANKS);
	for (i = 0; i < n; i++) {
		for (k = 0; k < RANKS; k++) {
			len = snprintf(line, sizeof line, "node%d:%d:%d [%d] "
			    "NCCL INFO Channel %02ld/32 : %d[%d] -> %d[%d] via "
			    "P2P/IPC", k / 8, 1000 + k, 1000 + k, k % 8, i % 32,
			    k, k % 8, (k + 1) % RANKS, (k + 1) % 8);
			shape_of(line, (size_t)len, &sh);
			aggregate_line(MESHLOG_STDOUT, &o[k], line,
			    (size_t)len, 0, &sh, 0);
			if (++taken % 8192 == 0) {
				view_now += 0.001;
				aggregate_tick();
			}
		}
	}
	aggregate_flush();
}

int
main(int argc, char **argv)
{
	char		 buf[160];
	unsigned	 seed = 42, t;
	size_t		 i, g, gm;
	struct origin	 o = { 0, -1, 0, "", -1 };
	struct shape	 sh;
	double		 t0, ours_s, lps, lpsm, r, a, rm, am, ms1k, ms16k, msn;
	size_t		 b8, b10;
	int		 len;

	if (argc == 3 && strcmp(argv[1], "view") == 0) {
		view(atol(argv[2]));
		return (0);
	}
	if (argc == 3 && strcmp(argv[1], "nccl") == 0) {
		nccl(atol(argv[2]));
		return (0);
	}
	if (argc == 3 && strcmp(argv[1], "long") == 0) {
		longlines(atol(argv[2]));
		return (0);
	}
	if (argc == 4 && strcmp(argv[1], "alone") == 0) {
		alone(argv[2], atol(argv[3]));
		return (0);
	}
	/* meshlog: 1M noisy lines from 64 sources. */
	aggregate_set_output(discard, discard);
	aggregate_set_window(0);
	t0 = now_s();
	for (i = 0; i < OUR_LINES; i++) {
		t = (unsigned)rand_r(&seed) % TEMPLATES;
		len = make_line(buf, sizeof buf, t, &seed, 1);
		o.id = 1 + i % SOURCES;
		o.rank = (long)(i % SOURCES);
		shape_of(buf, (size_t)len, &sh);
		aggregate_line(MESHLOG_STDOUT, &o, buf, (size_t)len, 0, &sh, 0);
	}
	aggregate_flush();
	ours_s = now_s() - t0;
	compare(1, &lps, &g, &r, &a);
	compare(0, &lpsm, &gm, &rm, &am);
	ms1k = one_line_of(1024, 0);
	ms16k = one_line_of(16384, 0);
	msn = one_line_of(16384, 1);
	b8 = burst(8000);
	b10 = burst(10000);
	printf("{\"meshlog_lines\": %d, \"meshlog_s\": %.4f, "
	    "\"meshlog_lines_per_s\": %.1f, \"seed_lines\": %d, "
	    "\"seed_lines_per_s\": %.1f, \"ratio\": %.1f, "
	    "\"seed_groups\": %zu, \"recall\": %.4f, \"agreement\": %.4f, "
	    "\"mild_seed_groups\": %zu, \"mild_recall\": %.4f, "
	    "\"mild_agreement\": %.4f, \"group_1024_ranks_ms\": %.2f, "
	    "\"group_16384_ranks_ms\": %.2f, "
	    "\"group_16384_ranks_ties_ms\": %.2f, \"burst_64x8000_printed\": %zu, "
	    "\"burst_64x10000_printed\": %zu}\n", OUR_LINES, ours_s,
	    OUR_LINES / ours_s, SEED_LINES, lps, (OUR_LINES / ours_s) / lps,
	    g, r, a, gm, rm, am, ms1k, ms16k, msn, b8, b10);
	return (0);
}
