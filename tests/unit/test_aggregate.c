/*
 * The aggregator's parts: templates, the banded edit distance, severity
 * detection, and a corpus on which its grouping is compared with the
 * seed's rule (every line against every group, normalised Levenshtein
 * distance < 0.15). The agreement is printed to the test log.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>

#include "collector/collector.h"
#include "collector/aggregate.h"
#include "tests/seedrule.h"

/* The unit tests link the collector's modules, which expect these. */
struct config		 cfg;
struct event_base	*base;

static uint64_t
tmpl(const char *s)
{
	int	letters;

	return (shape_template(s, strlen(s), &letters));
}

Test(aggregate, templates_mask_variable_tokens)
{
	cr_assert_eq(tmpl("step 100 loss=2.31"), tmpl("step 2000 loss=0.05"));
	cr_assert_eq(tmpl("rank 3 ready on cuda:3"),
	    tmpl("rank 7 ready on cuda:7"));
	cr_assert_eq(tmpl("id=a1b2c3 at 0x7ffd1234"),
	    tmpl("id=ff00aa9 at 0xdeadbeef1"));
	cr_assert_eq(tmpl("a  b\tc"), tmpl("a b c"));
	cr_assert_neq(tmpl("step 100 loss=2.31"), tmpl("step 100 lr=2.31"));
	cr_assert_neq(tmpl("epoch done"), tmpl("epoch started"));
}

/*
 * Lines of up to 64 bytes on either side take the bit-vector distance,
 * longer ones the banded DP: both against the full DP, lengths 0 to 99,
 * about as long as each other half of the time.
 */
Test(aggregate, banded_distance_matches_full_levenshtein)
{
	char	a[128], b[128];
	size_t	la, lb, k, full, got, i, j;

	srand(7);
	for (i = 0; i < 100000; i++) {
		la = (size_t)(rand() % (i % 2 ? 40 : 100));
		lb = i % 4 == 2 ?
		    la + (size_t)(rand() % 9) - (la >= 4 ? 4 : la) :
		    (size_t)(rand() % (i % 2 ? 40 : 100));
		for (j = 0; j < la; j++)
			a[j] = (char)('a' + rand() % 3);
		for (j = 0; j < lb; j++)
			b[j] = (char)('a' + rand() % 3);
		if (i % 8 == 6 && la > 0) {	/* a few edits apart */
			memcpy(b, a, la);
			lb = la;
			for (j = (size_t)(rand() % 8); j > 0; j--)
				b[rand() % (int)lb] = (char)('a' + rand() % 4);
		}
		k = (size_t)(rand() % 12);
		full = seed_levenshtein(a, la, b, lb);
		got = aggregate_distance(a, la, b, lb, k);
		if (full <= k)
			cr_assert_eq(got, full, "%.*s / %.*s k=%zu", (int)la, a,
			    (int)lb, b, k);
		else
			cr_assert_eq(got, k + 1, "%.*s / %.*s k=%zu: %zu vs %zu",
			    (int)la, a, (int)lb, b, k, got, full);
	}
}

/*
 * The q-gram bound never exceeds the edit distance: random strings over
 * small and large alphabets, and strings made from one another by a few
 * edits, long enough to take the bound.
 */
Test(aggregate, distance_bound_is_below_the_distance)
{
	static char	a[1200], b[1200];
	size_t		la, lb, full, bound, i, j, e, edits, p, alpha, far = 0;

	srand(11);
	for (i = 0; i < 600; i++) {
		alpha = (size_t)(i % 3 == 0 ? 2 : i % 3 == 1 ? 4 : 26);
		la = (size_t)(rand() % 700);
		for (j = 0; j < la; j++)
			a[j] = (char)('a' + rand() % (int)alpha);
		if (i % 2 == 0) {
			lb = (size_t)(rand() % 700);
			for (j = 0; j < lb; j++)
				b[j] = (char)('a' + rand() % (int)alpha);
		} else {
			memcpy(b, a, la);
			lb = la;
			edits = (size_t)(rand() % 40);
			for (e = 0; e < edits && lb > 0 && lb < sizeof b - 1;
			    e++) {
				p = (size_t)rand() % lb;
				switch (rand() % 3) {
				case 0:
					b[p] = (char)('a' + rand() % 26);
					break;
				case 1:
					memmove(b + p + 1, b + p, lb - p);
					b[p] = (char)('a' + rand() % 26);
					lb++;
					break;
				default:
					memmove(b + p, b + p + 1, lb - p - 1);
					lb--;
				}
			}
		}
		full = seed_levenshtein(a, la, b, lb);
		bound = aggregate_distance_bound(a, la, b, lb);
		cr_assert_leq(bound, full, "%zu > %zu (lengths %zu, %zu)",
		    bound, full, la, lb);
		/* And it is of use: random text over 26 letters is too far
		 * by it to merge (0.15 of the longer). */
		if (alpha == 26 && i % 2 == 0 && la > 400 && lb > 400 &&
		    bound > ((la > lb ? la : lb) * 15 - 1) / 100)
			far++;
	}
	cr_assert_gt(far, 0);
}

Test(severity, recognised_formats)
{
	static const struct {
		const char	*line;
		int		 level;
	} cases[] = {
		{ "INFO:root:hello", 20 },
		{ "WARNING:train:slow", 30 },
		{ "2026-11-23 20:14:05,123 - ERROR - boom", 40 },
		{ "[DEBUG] detail", 10 },
		{ "| CRITICAL | x", 50 },
		{ "node1:123:456 [0] NCCL INFO Bootstrap", 20 },
		{ "node1:123:456 [0] NCCL WARN Cuda failure", 30 },
		{ "I1123 20:14:05.123456  1234 main.cc:12] started", 20 },
		{ "W1123 20:14:05.123456  1234 main.cc:12] careful", 30 },
		{ "E1123 20:14:05.123456  1234 main.cc:12] failed", 40 },
		{ "F1123 20:14:05.123456  1234 main.cc:12] dead", 50 },
		{ "time=1 level=warn msg=x", 30 },
		{ "FATAL: out of memory", 50 },
		{ "Traceback (most recent call last):", 40 },
		{ "Traceback (most recent call", 0 },
		/* PyTorch's C++ log, both forms. */
		{ "[W Utils.hpp:133] Warning: NCCL_ASYNC_ERROR_HANDLING", 30 },
		{ "[E ProcessGroupNCCL.cpp:563] [Rank 0] Watchdog caught", 40 },
		{ "[I socket.cpp:566] [c10d] connected", 20 },
		{ "[V a.cpp:1] verbose", 10 },
		{ "[W1010 16:57:48.346345375 ProcessGroupNCCL.cpp:1250] x", 30 },
		{ "[E1202 12:00:00.123456  1234 c10d/NCCLUtils.hpp:219] y", 40 },
		{ "[W a.cpp] no line number", 0 },
		{ "[W :12] no file", 0 },
		{ "[W a b.cpp:12] a space", 0 },
		{ "[X a.cpp:12] no level", 0 },
		{ "[W a.cpp:12", 0 },
		/* Python's warnings module: "file:line: Category: text". */
		{ "/tmp/v/train.py:9: UserWarning: torch.cuda not available",
		    30 },
		{ "train.py:12: DeprecationWarning: use y", 30 },
		{ "<stdin>:1: Warning: plain", 30 },
		{ "x.py:3: FutureWarning: y", 30 },
		{ "a.py:1: ImportWarning: z", 30 },
		{ "c.py:2: CustomWarning: x", 30 },
		{ "/usr/lib/python3/dist-packages/pytorch_lightning/trainer/"
		    "connectors/data_connector.py:224: PossibleUserWarning: The "
		    "dataloader does not have many workers", 30 },
		{ "/home/user/.venv/lib/python3.11/site-packages/transformers/"
		    "models/auto/modeling_auto.py:1234: FutureWarning: renamed",
		    30 },
		{ "train.py:12: UserWarning:", 30 },
		{ "x.py: UserWarning: no line number", 0 },
		{ "train.py:12:UserWarning: no space", 0 },
		{ "train.py:12: userWarning: lower case", 0 },
		{ "train.py:12: UserWarnings: plural", 0 },
		{ "the UserWarning: class is mentioned", 0 },
		{ "/long/path/of/a/file/that/is/printed/by/a/program/with/a/"
		    "long/name/and/some/text.txt: FutureWarning: none", 0 },
		/* What runtimes write as they die. */
		{ "terminate called after throwing an instance of 'c10::Error'",
		    50 },
		{ "terminate called without an active exception", 50 },
		{ "Fatal Python error: Segmentation fault", 50 },
		{ "panic: runtime error: index out of range [5] with length 3",
		    50 },
		{ "fatal error: all goroutines are asleep - deadlock!", 50 },
		{ "thread 'main' panicked at src/main.rs:2:5:", 50 },
		{ "thread '<unnamed>' panicked at 'boom', src/lib.rs:9:1", 50 },
		{ "*** stack smashing detected ***: terminated", 50 },
		{ "*** buffer overflow detected ***: terminated", 50 },
		{ "free(): invalid pointer", 50 },
		{ "double free or corruption (out)", 50 },
		{ "malloc(): corrupted top size", 50 },
		{ "munmap_chunk(): invalid pointer", 50 },
		{ "corrupted size vs. prev_size", 50 },
		{ "terminated after 3 epochs", 0 },
		{ "thread 'main' finished", 0 },
		{ "panic attack: none", 0 },
		{ "the program said: panic: no", 0 },
		{ "*** stack smashing detected ***", 0 },
		{ "Fatal Python errors are rare", 0 },
		{ "  File \"train.py\", line 7, in <module>", 0 },
		{ "step 100 loss=2.31", 0 },
		{ "Information is power", 0 },
		{ "ERROR_CODE=5 means nothing here", 0 },
		{ "an error in lower case is not a level", 0 },
		{ "I am a sentence", 0 },
		{ "", 0 },
	};
	size_t	i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_expect_eq(severity_detect(cases[i].line,
		    strlen(cases[i].line)), cases[i].level, "'%s'",
		    cases[i].line);
}

/* Add a copy of line to the corpus. */
static void
corpus_add(char ***v, size_t *n, const char *line)
{
	*v = realloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = strdup(line);
}

/*
 * A realistic corpus: templates filled with numbers and ids, near
 * duplicates differing in case or a typo, and unrelated sentences.
 */
static char **
corpus_realistic(size_t *n)
{
	static const char *const tmpls[] = {
		"step %d loss=%d.%02d lr=%de-05",
		"[rank%d] saved checkpoint to /ckpt/step_%d.pt in %d.%d s",
		"Epoch %d: train_acc=0.%03d val_acc=0.%03d",
		"NCCL INFO Channel %02d/%d : %d[%d] -> %d[%d] via P2P/IPC",
		"loading shard %d of %d from /data/part-%05d.arrow",
		"WARNING: gradient overflow, scaling down to %d",
		"throughput %d samples/s, mem %d MiB, util %d%%",
		"connected to peer %d.%d.%d.%d:%d",
	};
	static const char *const words[] = { "model", "weights", "cache",
	    "tokenizer", "dataset", "optimizer", "scheduler", "ready",
	    "warming", "compiling", "graph", "kernel", "stream", "device",
	    "host", "buffer", "pinned", "memory", "barrier", "waiting" };
	char	**v = NULL, buf[256];
	size_t	 t, i, w;

	*n = 0;
	srand(99);
	for (t = 0; t < sizeof tmpls / sizeof tmpls[0]; t++) {
		for (i = 0; i < 150; i++) {
			/* The formats are the literals above. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			snprintf(buf, sizeof buf, tmpls[t], rand() % 1000,
			    rand() % 100, rand() % 100, rand() % 10, rand() % 8,
			    rand() % 100);
#pragma GCC diagnostic pop
			corpus_add(&v, n, buf);
		}
	}
	for (i = 0; i < 200; i++) {
		snprintf(buf, sizeof buf, "%s the model weights from disk",
		    i % 2 ? "loading" : "Loading");
		if (i % 5 == 0)
			buf[10] = 'x';
		corpus_add(&v, n, buf);
	}
	for (i = 0; i < 200; i++) {
		buf[0] = '\0';
		for (w = 0; w < 5; w++) {
			strcat(buf, words[rand() % 20]);
			strcat(buf, w < 4 ? " " : "");
		}
		corpus_add(&v, n, buf);
	}
	return (v);
}

/* Lines built to sit at the threshold: random letters at both ends. */
static char **
corpus_threshold(size_t *n)
{
	char	**v = NULL, buf[64];
	size_t	 i;

	*n = 0;
	srand(5);
	for (i = 0; i < 200; i++) {
		snprintf(buf, sizeof buf, "%c%c%c unique message number %c%c",
		    'a' + rand() % 26, 'a' + rand() % 26, 'a' + rand() % 26,
		    'a' + rand() % 26, 'a' + rand() % 26);
		corpus_add(&v, n, buf);
	}
	return (v);
}

/* Group v both ways, print the scores to the test log, free v. */
static void
compare_with_seed(const char *name, char **v, size_t n, double *recall,
    double *agreement)
{
	size_t	*group = calloc(n, sizeof *group), ngroups, i;

	ngroups = seed_group(v, n, group);
	seed_compare(v, n, group, recall, agreement);
	fprintf(stderr, "aggregate vs seed rule, %s corpus of %zu lines: seed "
	    "groups %zu; seed-grouped pairs we group too %.4f; pairwise "
	    "agreement %.4f\n", name, n, ngroups, *recall, *agreement);
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
	free(group);
}

Test(aggregate, groups_what_the_seed_groups_on_realistic_lines)
{
	size_t	n;
	char	**v = corpus_realistic(&n);
	double	recall, agreement;

	compare_with_seed("realistic", v, n, &recall, &agreement);
	cr_assert_geq(recall, 0.99);
	/* We group more: one template with far-apart numbers is one group. */
	cr_assert_geq(agreement, 0.95);
}

Test(aggregate, near_threshold_lines_stay_close_to_the_seed)
{
	size_t	n;
	char	**v = corpus_threshold(&n);
	double	recall, agreement;

	compare_with_seed("near-threshold", v, n, &recall, &agreement);
	cr_assert_geq(recall, 0.99);
	cr_assert_geq(agreement, 0.99);
}

/* glog's "Lmmdd hh:mm:ss" written plainly (V, I, W, E, F: 10 to 50). */
static size_t
reference_glog(const char *s, size_t n)
{
	if (n >= 15 && s[0] != '\0' && strchr("VIWEF", s[0]) != NULL &&
	    isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
	    isdigit((unsigned char)s[3]) && isdigit((unsigned char)s[4]) &&
	    s[5] == ' ' && isdigit((unsigned char)s[6]) && s[8] == ':' &&
	    s[11] == ':')
		return ((size_t)(strchr("VIWEF", s[0]) - "VIWEF" + 1) * 10);
	return (0);
}

/* severity_detect written plainly, one byte at a time: the reference. */
static int
severity_reference(const char *s, size_t n)
{
	static const char *const fatal[] = { "terminate called ",
	    "Fatal Python error: ", "panic: ", "fatal error: ", "free(): ",
	    "malloc(): ", "malloc_consolidate(): ", "munmap_chunk(): ",
	    "realloc(): ", "double free or corruption",
	    "corrupted size vs. prev_size", "corrupted double-linked list" };
	static const char *const w[] = { "DEBUG", "INFO", "WARNING", "WARN",
	    "ERROR", "CRITICAL", "FATAL" };
	static const int lv[] = { 10, 20, 30, 30, 40, 50, 50 };
	size_t	end = n < 96 ? n : 96, i = 0, st, k;
	int	keyed, a;

	if (n >= 34 && strncmp(s, "Traceback (most recent call last):", 34) == 0)
		return (40);
	if ((k = reference_glog(s, n)) != 0)
		return ((int)k);
	if (n >= 8 && s[0] == '[' && (k = reference_glog(s + 1, n - 1)) != 0)
		return ((int)k);
	if (n >= 8 && s[0] == '[' && s[1] != '\0' &&
	    strchr("VIWEF", s[1]) != NULL && s[2] == ' ') {
		/* "[L file:line]" in the first 96 bytes, no space or '['. */
		for (st = 3; st < end && s[st] != ']'; st++)
			if (s[st] == ' ' || s[st] == '[')
				break;
		if (st < end && s[st] == ']') {
			for (k = st; k > 3 && isdigit((unsigned char)s[k - 1]);
			    k--)
				;
			if (k < st && k >= 5 && s[k - 1] == ':')
				return ((int)(strchr("VIWEF", s[1]) - "VIWEF" +
				    1) * 10);
		}
	}
	for (k = 0; k < sizeof fatal / sizeof fatal[0]; k++)
		if (strncmp(s, fatal[k], strlen(fatal[k])) == 0)
			return (50);
	if (strncmp(s, "*** ", 4) == 0 && strstr(s + 4, " ***: terminated"))
		return (50);
	if (strncmp(s, "thread '", 8) == 0) {
		for (k = 8; k + 13 <= end; k++)
			if (strncmp(s + k, "' panicked at", 13) == 0)
				return (50);
	}
	while (i < end) {
		if (!isalpha((unsigned char)s[i]) || (s[i] & 0x80)) {
			i++;
			continue;
		}
		for (st = i; i < end && isalpha((unsigned char)s[i]); i++)
			;
		if (i == end && end < n && isalpha((unsigned char)s[i]))
			break;
		if ((i < n && (s[i] == '_' || isdigit((unsigned char)s[i]))) ||
		    (st > 0 && (s[st - 1] == '_' ||
		    isdigit((unsigned char)s[st - 1]))))
			continue;
		keyed = (st >= 6 && strncasecmp(s + st - 6, "level=", 6) == 0) ||
		    (st >= 4 && strncasecmp(s + st - 4, "lvl=", 4) == 0);
		for (k = 0; k < 7; k++) {
			if (strlen(w[k]) != i - st)
				continue;
			a = keyed ? strncasecmp(s + st, w[k], i - st) :
			    strncmp(s + st, w[k], i - st);
			if (a == 0)
				return (lv[k]);
		}
	}
	return (0);
}

Test(severity, matches_a_plain_reference_on_random_lines)
{
	static const char *const parts[] = { "INFO", "WARNING", "ERROR", "warn",
	    "info", "DEBUG", "CRITICAL", "FATAL", "WARN", "level=", "lvl=",
	    "=", "_", "x", "Info", "step", "7", " ", " ", ":", "[", "]", "-",
	    "\xc3\xa9", "IN", "FOES", "ERRORS", "ERROR_", "1ERROR",
	    "Traceback (most recent call last):", "[W ", "[E", "V", "I",
	    "1202 ", "12:00:00", ".123 ", "f.cc:12] ", "a.cpp", ":9]",
	    "terminate called ", "panic: ", "Fatal Python error: ",
	    "thread '", "' panicked at ", "*** ", " ***: terminated",
	    "free(): ", "double free or corruption", "fatal error: " };
	char	line[256];
	size_t	n, k;
	int	round, count;

	srand(11);
	for (round = 0; round < 200000; round++) {
		line[0] = '\0';
		count = rand() % 40;
		for (k = 0; k < (size_t)count; k++) {
			if (strlen(line) + 40 >= sizeof line)
				break;
			strcat(line, parts[rand() % (int)(sizeof parts /
			    sizeof parts[0])]);
		}
		n = strlen(line);
		cr_assert_eq(severity_detect(line, n), severity_reference(line,
		    n), "'%s'", line);
	}
}

static size_t	printed;
static char	last_prefix[256];

static void
count_print(int which, const char *prefix, const char *line, size_t len,
    int flags, uint64_t us)
{
	printed++;
	strlcpy(last_prefix, prefix, sizeof last_prefix);
}

/*
 * 64 writers each print n numbered lines, read as the collector reads
 * them: a chunk of 2,000 lines of each in turn. Returns the lines the
 * console printed.
 */
static size_t
burst(size_t n)
{
	struct origin	o = { 0, 0, 0, "", -1 };
	struct shape	sh;
	char		buf[64];
	size_t		w, i, from;
	int		len;

	printed = 0;
	aggregate_set_output(count_print, count_print);
	aggregate_set_window(0);
	for (from = 0; from < n; from += 2000) {
		for (w = 0; w < 64; w++) {
			o.id = w + 1;
			o.rank = (long)w;
			o.pid = 1000 + (long)w;
			for (i = from; i < from + 2000 && i < n; i++) {
				len = snprintf(buf, sizeof buf, "step %zu loss=%zu",
				    i, (i * 7 + w) % 1000);
				shape_of(buf, (size_t)len, &sh);
				aggregate_line(MESHLOG_STDOUT, &o, buf,
				    (size_t)len, 0, &sh, 0);
			}
		}
	}
	aggregate_flush();
	return (printed);
}

Test(aggregate, bursts_of_sixty_four_writers_stay_grouped)
{
	/* Each step once, with the 64 ranks, at 8,000 and 10,000 lines. */
	cr_assert_eq(burst(8000), 8000);
	cr_assert_eq(burst(10000), 10000);
	cr_assert_str_eq(last_prefix, "[ranks 0-63] ");
}

Test(aggregate, one_line_of_sixteen_thousand_ranks)
{
	struct origin	o = { 0, 0, 0, "", 16384 };
	struct shape	sh;
	const char	*line = "NCCL INFO Bootstrap : Using eth0";
	long		r;

	printed = 0;
	aggregate_set_output(count_print, count_print);
	aggregate_set_window(0);
	shape_of(line, strlen(line), &sh);
	/* In a shuffled order: every prime stride visits each rank once. */
	for (r = 0; r < 16384; r++) {
		o.rank = (r * 7919) % 16384;
		o.id = (uint64_t)o.rank + 1;
		o.pid = 50000 + o.rank;
		aggregate_line(MESHLOG_STDERR, &o, line, strlen(line), 0, &sh,
		    0);
	}
	aggregate_flush();
	cr_assert_eq(printed, 1);
	cr_assert_str_eq(last_prefix, "[ranks 0-16383] ");
}

/* n random letters and spaces at p. */
static void
random_text(char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		p[i] = i % 7 == 6 ? ' ' : (char)('a' + rand() % 26);
}

/*
 * Long lines are first compared by their q-gram sketches: a line a few
 * substitutions from another rank's waiting line (below 0.15 of its
 * length) still joins it, and one far from it does not. Rounds of 240
 * bytes reuse printed groups, whose sketches must go with them.
 */
Test(aggregate, long_lines_within_the_threshold_join)
{
	static char	 base[700], near[700], far[700];
	struct origin	 o[3] = { { 1, 0, 1001, "[rank 0] ", 3 },
	    { 2, 1, 1002, "[rank 1] ", 3 }, { 3, 2, 1003, "[rank 2] ", 3 } };
	struct shape	 sh;
	uint64_t	 s0, s1, s2;
	size_t		 r, n, e, edits, k;

	srand(23);
	aggregate_set_output(count_print, count_print);
	aggregate_set_window(0);
	for (r = 0; r < 300; r++) {
		n = r % 2 ? 240 : 200 + (size_t)(rand() % 500);
		k = (n * 15 - 1) / 100;
		random_text(base, n);
		memcpy(near, base, n);
		memcpy(far, base, n);
		edits = (size_t)rand() % (k + 1);
		for (e = 0; e < edits; e++)
			near[(size_t)rand() % n] = (char)('a' + rand() % 26);
		random_text(far, n);
		shape_of(base, n, &sh);
		s0 = aggregate_line(MESHLOG_STDOUT, &o[0], base, n, 0, &sh, 0);
		shape_of(near, n, &sh);
		s1 = aggregate_line(MESHLOG_STDOUT, &o[1], near, n, 0, &sh, 0);
		shape_of(far, n, &sh);
		s2 = aggregate_line(MESHLOG_STDOUT, &o[2], far, n, 0, &sh, 0);
		cr_assert_eq(s1, s0, "round %zu: %zu bytes, %zu edits", r, n,
		    edits);
		cr_assert_neq(s2, s0, "round %zu", r);
		aggregate_flush();
	}
}

static char	seen[8][64];
static size_t	nseen;

static void
keep_print(int which, const char *prefix, const char *line, size_t len,
    int flags, uint64_t us)
{
	if (nseen < 8)
		snprintf(seen[nseen++], sizeof seen[0], "%s%.*s", prefix,
		    (int)len, line);
}

static void
line_of(const struct origin *o, const char *line)
{
	struct shape	sh;

	shape_of(line, strlen(line), &sh);
	aggregate_line(MESHLOG_STDOUT, o, line, strlen(line), 0, &sh, 0);
}

/*
 * A runtime's last words, and PyTorch's C++ frames after a traceback, name
 * their process's own numbers and addresses: the view groups them line by
 * line with other ranks', values shown, not as blocks of one rank each
 * (a traceback stays whole).
 */
Test(aggregate, a_runtimes_last_words_group_line_by_line)
{
	struct origin	a = { 81, 0, 81, "[rank 0] ", 2 };
	struct origin	b = { 82, 1, 82, "[rank 1] ", 2 };
	const struct origin *o[2] = { &a, &b };
	char		line[64];
	int		k;

	nseen = 0;
	aggregate_set_output(keep_print, keep_print);
	aggregate_set_window(1);
	for (k = 0; k < 2; k++) {
		line_of(o[k], "terminate called after throwing");
		snprintf(line, sizeof line, "  what():  Rank %d timed out", k);
		line_of(o[k], line);
		snprintf(line, sizeof line, "frame #0: f + 0x57 (0x7f0%d in "
		    "l.so)", k + 1);
		line_of(o[k], line);
	}
	aggregate_flush();
	cr_assert_eq(nseen, 3, "%zu printed", nseen);
	cr_assert_str_eq(seen[0], "[ranks 0-1] terminate called after "
	    "throwing");
	cr_assert_str_eq(seen[1], "[ranks 0-1]   what():  Rank {0,1} timed "
	    "out");
	cr_assert_str_eq(seen[2], "[ranks 0-1] frame #0: f + 0x57 "
	    "({0x7f01,0x7f02} in l.so)");

	nseen = 0;
	for (k = 0; k < 2; k++) {
		line_of(o[k], "Traceback (most recent call last):");
		line_of(o[k], "  File \"t.py\", line 2, in <module>");
		line_of(o[k], "RuntimeError: NCCL error");
		snprintf(line, sizeof line, "frame #0: g (0x7f0%d in l.so)",
		    k + 1);
		line_of(o[k], line);
	}
	aggregate_flush();
	cr_assert_eq(nseen, 4, "%zu printed", nseen);
	cr_assert_str_eq(seen[0], "[ranks 0-1] Traceback (most recent call "
	    "last):");
	cr_assert_str_eq(seen[2], "[ranks 0-1] RuntimeError: NCCL error");
	cr_assert_str_eq(seen[3], "[ranks 0-1] frame #0: g ({0x7f01,0x7f02} "
	    "in l.so)");
}

/*
 * Several ranks' tracebacks of one error, each naming its own shard: one
 * block, each line once and the shards as a set, no longer a block for
 * each rank. Another error's traceback stays apart.
 */
Test(aggregate, tracebacks_alike_but_for_their_numbers_group)
{
	static char	pre[4][32];
	struct origin	o[4];
	char		line[64];
	int		k;

	nseen = 0;
	aggregate_set_output(keep_print, keep_print);
	aggregate_set_window(1);
	for (k = 0; k < 4; k++) {
		snprintf(pre[k], sizeof pre[k], "[rank %d] ", k);
		o[k] = (struct origin){ 90 + (uint64_t)k, k, 90 + k, pre[k],
		    4 };
		line_of(&o[k], "Traceback (most recent call last):");
		line_of(&o[k], "  File \"t.py\", line 7, in load");
		if (k < 3)
			snprintf(line, sizeof line, "OSError: no shard-%03d.bin",
			    k);
		else
			snprintf(line, sizeof line, "KeyError: 'step'");
		line_of(&o[k], line);
	}
	aggregate_flush();
	cr_assert_eq(nseen, 6, "%zu printed", nseen);
	cr_assert_str_eq(seen[0], "[ranks 0-2] Traceback (most recent call "
	    "last): (not: 3)");
	cr_assert_str_eq(seen[1], "[ranks 0-2]   File \"t.py\", line 7, in "
	    "load");
	cr_assert_str_eq(seen[2], "[ranks 0-2] OSError: no shard-{000..002}."
	    "bin");
	cr_assert_str_eq(seen[3], "[rank 3] Traceback (most recent call "
	    "last):");
	cr_assert_str_eq(seen[5], "[rank 3] KeyError: 'step'");
}

static double	tb_now;

static double
tb_clock(void)
{
	return (tb_now);
}

/*
 * A rank's traceback closes when the window has passed since it began,
 * and the group it makes prints then: another rank's, begun a moment
 * later and whole since (its exception line came and nothing after),
 * joins it rather than printing on its own a moment later.
 */
Test(aggregate, a_whole_traceback_joins_one_that_closes_before_it)
{
	static char	pre[2][32];
	struct origin	o[3];
	int		k;

	nseen = 0;
	tb_now = 100.0;
	aggregate_set_output(keep_print, keep_print);
	aggregate_set_clock(tb_clock);
	aggregate_set_window(1);	/* blocks wait half a second */
	for (k = 0; k < 2; k++) {
		snprintf(pre[k], sizeof pre[k], "[rank %d] ", k);
		o[k] = (struct origin){ 95 + (uint64_t)k, k, 95 + k, pre[k],
		    -1 };
		tb_now = 100.0 + 0.2 * k;
		line_of(&o[k], "Traceback (most recent call last):");
		line_of(&o[k], "  File \"t.py\", line 7, in load");
		line_of(&o[k], "OSError: bad shard");
	}
	tb_now = 100.5;
	aggregate_tick();
	cr_assert_eq(nseen, 3, "%zu printed", nseen);
	cr_assert_str_eq(seen[0], "[ranks 0-1] Traceback (most recent call "
	    "last):");
	cr_assert_str_eq(seen[2], "[ranks 0-1] OSError: bad shard");
	/* One still being written (no exception line yet) stays open. */
	nseen = 0;
	for (k = 0; k < 2; k++) {
		tb_now = 101.0 + 0.2 * k;
		line_of(&o[k], "Traceback (most recent call last):");
		line_of(&o[k], "  File \"t.py\", line 9, in step");
		if (k == 0)
			line_of(&o[k], "OSError: bad shard");
	}
	tb_now = 101.5;
	aggregate_tick();
	cr_assert_eq(nseen, 3, "%zu printed", nseen);
	cr_assert_str_eq(seen[0], "[rank 0] Traceback (most recent call "
	    "last):");
	aggregate_flush();
	/*
	 * A process ends: its traceback prints at once, before its end is
	 * announced, and the whole ones of others join it; one whose
	 * exception line just came may go on (a chained exception) and waits.
	 */
	nseen = 0;
	for (k = 0; k < 2; k++) {
		tb_now = 102.0 + 0.05 * k;
		line_of(&o[k], "Traceback (most recent call last):");
		line_of(&o[k], "  File \"t.py\", line 9, in step");
		line_of(&o[k], "OSError: bad shard");
	}
	tb_now = 102.12;
	aggregate_flush_source(o[1].id);
	cr_assert_eq(nseen, 3, "%zu printed", nseen);
	cr_assert_str_eq(seen[0], "[ranks 0-1] Traceback (most recent call "
	    "last):");
	nseen = 0;
	tb_now = 103.0;
	line_of(&o[0], "Traceback (most recent call last):");
	line_of(&o[0], "OSError: bad shard");
	line_of(&o[1], "Traceback (most recent call last):");
	line_of(&o[1], "OSError: bad shard");
	tb_now = 103.05;
	aggregate_flush_source(o[1].id);
	cr_assert_eq(nseen, 2, "%zu printed", nseen);
	cr_assert_str_eq(seen[0], "[rank 1] Traceback (most recent call "
	    "last):");
	aggregate_flush();
	/*
	 * What the news of a process's end waits for: what the view holds
	 * of it to be due (a group, a block: half a second from its start
	 * here), and the tracebacks others of its kind (ranks; a process of
	 * no rank apart) are writing to be whole. o[2] wrote nothing.
	 */
	o[2] = (struct origin){ 97, 2, 97, "[rank 2] ", -1 };
	cr_assert_eq(aggregate_news_in(o[2].id, 1), 0);
	tb_now = 104.0;
	line_of(&o[1], "Traceback (most recent call last):");
	line_of(&o[1], "OSError: bad shard");
	tb_now = 104.03;	/* one line so far: quiet since it began */
	line_of(&o[0], "Traceback (most recent call last):");
	tb_now = 104.05;
	cr_assert_float_eq(aggregate_news_in(o[2].id, 1), 0.08, 1e-9);
	cr_assert_eq(aggregate_news_in(o[2].id, 0), 0);
	cr_assert_float_eq(aggregate_news_in(o[1].id, 1), 0.45, 1e-9);
	tb_now = 104.2;
	cr_assert_eq(aggregate_news_in(o[2].id, 1), 0);
	cr_assert_float_eq(aggregate_news_in(o[0].id, 1), 0.33, 1e-9);
	aggregate_flush();
	tb_now = 105.0;
	line_of(&o[1], "step 7");
	tb_now = 105.1;
	cr_assert_float_eq(aggregate_news_in(o[1].id, 1), 0.4, 1e-9);
	tb_now = 105.6;
	cr_assert_eq(aggregate_news_in(o[1].id, 1), 0);
	aggregate_flush();
	aggregate_set_clock(NULL);
}

/*
 * A process's end is announced after its own lines: what waits up to its
 * last group is printed, in the order it would have been (another's
 * earlier line included), and what came after waits on; its open
 * traceback is closed and printed too.
 */
Test(aggregate, flushing_a_source_prints_up_to_its_last_lines)
{
	struct origin	a = { 71, -1, 71, "[pid 71] ", -1 };
	struct origin	b = { 72, -1, 72, "[pid 72] ", -1 };

	nseen = 0;
	aggregate_set_output(keep_print, keep_print);
	aggregate_set_window(0);
	line_of(&a, "opening the shard index");
	line_of(&b, "waiting for the peer group");
	line_of(&a, "Traceback (most recent call last):");
	line_of(&a, "  File \"train.py\", line 3, in <module>");
	line_of(&b, "peer group formed after 30 s");
	aggregate_flush_source(99);	/* none such: nothing */
	cr_assert_eq(nseen, 0);
	aggregate_flush_source(a.id);
	cr_assert_eq(nseen, 4, "%zu printed", nseen);
	cr_assert_str_eq(seen[0], "[pid 71] opening the shard index");
	cr_assert_str_eq(seen[1], "[pid 72] waiting for the peer group");
	cr_assert_str_eq(seen[2], "[pid 71] Traceback (most recent call "
	    "last):");
	cr_assert_str_eq(seen[3], "[pid 71]   File \"train.py\", line 3, in "
	    "<module>");
	aggregate_flush();
	cr_assert_eq(nseen, 5);
	cr_assert_str_eq(seen[4], "[pid 72] peer group formed after 30 s");
}
