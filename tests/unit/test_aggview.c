/*
 * What the console view shows of a group, from the outside
 * (aggregate_render, aggtext_print): colours cut whole, and ranks that
 * ended not named as missing.
 */

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "collector/collector.h"
#include "collector/aggregate.h"
#include "tests/unit/viewprint.h"

struct config		 cfg;
struct event_base	*base;


/*
 * Coloured lines (colorlog, loguru, rich): a value that follows a colour
 * ("\x1b[1m1.500") is cut after the colour's sequence, never inside it,
 * where the console could only show "\x1b[{1m1.500,1m1.400}" as text.
 * Members cut each, and members that carry where they differ in digits
 * (joined), print alike.
 */
Test(aggview, colours_are_never_cut)
{
	static char		text[4][96], pres[4][32];
	static const char	want[] = "[ranks 0-3] \x1b[32mINFO\x1b[0m "
	    "step 7 loss=\x1b[1m{1.500,1.400,1.300,1.200}\x1b[0m rank={0..3}\n";
	struct origin		o[4];
	struct agg_group	g;
	struct agg_member	m[4];
	const char		*t[4];
	size_t			len[4], i, f, e;

	for (i = 0; i < 4; i++) {
		len[i] = (size_t)snprintf(text[i], sizeof text[i],
		    "\x1b[32mINFO\x1b[0m step 7 loss=\x1b[1m%.3f\x1b[0m "
		    "rank=%zu", 1.5 - 0.1 * (double)i, i);
		t[i] = text[i];
		view_rank(&o[i], pres[i], (long)i, 4);
	}
	nprinted = 0;
	aggregate_render(MESHLOG_STDOUT, o, t, len, 4, print_cb);
	cr_assert_str_eq(printed, want);
	memset(&g, 0, sizeof g);
	g.text = text[0];
	g.len = len[0];
	g.world = 4;
	g.nmembers = 4;
	g.members = m;
	for (i = 0; i < 4; i++) {
		memset(&m[i], 0, sizeof m[i]);
		m[i].text = text[i];
		m[i].len = len[i];
		m[i].rank = (long)i;
		m[i].pid = 100 + (long)i;
		m[i].prefix = pres[i];
		m[i].dfrom = AGG_UNALIGNED;
		cr_assert(aggtok_digit_diffs(m[i].text, g.text, g.len, &f,
		    &e));
		if (i > 0) {
			m[i].dfrom = (uint32_t)f;
			m[i].dto = (uint32_t)e;
		}
	}
	nprinted = 0;
	aggtext_print(&g, print_cb, print_cb);
	cr_assert_str_eq(printed, want);
}

/*
 * Lines of one length whose colours differ in a digit ("\x1b[31m" and
 * "\x1b[33m", each rank its own): another colour is no value that
 * differs, and a group's line could show only the first one's. They do
 * not align: each prints as it is.
 */
Test(aggview, lines_in_other_colours_print_apart)
{
	static char		text[3][64], pres[3][32];
	struct origin		o[3];
	const char		*t[3];
	size_t			len[3], i, f, e;

	for (i = 0; i < 3; i++) {
		len[i] = (size_t)snprintf(text[i], sizeof text[i],
		    "\x1b[3%zumrank %zu done\x1b[0m", 1 + i, i);
		t[i] = text[i];
		view_rank(&o[i], pres[i], (long)i, 3);
	}
	cr_assert_not(aggtok_digit_diffs(text[0], text[1], len[0], &f, &e));
	/* Past the 16 and 32 bytes compared at once, and in the last. */
	cr_assert_not(aggtok_digit_diffs("0123456789abcdef0123456789abcdef"
	    "xyz \x1b[31mA", "0123456789abcdef0123456789abcdef"
	    "xyz \x1b[32mA", 42, &f, &e));
	cr_assert(aggtok_digit_diffs("0123456789abcdef0123456789abcdef"
	    "xyz \x1b[31mA7", "0123456789abcdef0123456789abcdef"
	    "xyz \x1b[31mA8", 43, &f, &e));
	cr_assert_eq(f, 42);
	nprinted = 0;
	aggregate_render(MESHLOG_STDOUT, o, t, len, 3, print_cb);
	cr_assert_str_eq(printed, "[rank 0] \x1b[31mrank 0 done\x1b[0m\n"
	    "[rank 1] \x1b[32mrank 1 done\x1b[0m\n"
	    "[rank 2] \x1b[33mrank 2 done\x1b[0m\n");
}

/*
 * "(not: 0)" names ranks that did not say a line most ranks said. A rank
 * whose processes have all ended is left out: it said what it said before
 * it went (its lines printed on their own, as its failure was announced),
 * and a group of the others' lines after that said "(not: 0)" of lines
 * rank 0 had printed. A rank not yet started, or running, is named.
 */
Test(aggview, ranks_that_ended_are_not_named_as_missing)
{
	static char		text[3][64], pres[3][32];
	struct origin		o[3];
	const char		*t[3];
	size_t			len[3], i;

	for (i = 0; i < 3; i++) {
		len[i] = (size_t)snprintf(text[i], sizeof text[i],
		    "Traceback (most recent call last):");
		t[i] = text[i];
		view_rank(&o[i], pres[i], (long)i + 1, 4);
	}
	nprinted = 0;
	aggregate_render(MESHLOG_STDERR, o, t, len, 3, print_cb);
	cr_assert_str_eq(printed, "[ranks 1-3] Traceback (most recent call "
	    "last): (not: 0)\n");
	/* Rank 0's two processes: running, then one ended, then both. */
	aggregate_rank_process(0, 1);
	aggregate_rank_process(0, 1);
	aggregate_rank_process(0, -1);
	nprinted = 0;
	aggregate_render(MESHLOG_STDERR, o, t, len, 3, print_cb);
	cr_assert_str_eq(printed, "[ranks 1-3] Traceback (most recent call "
	    "last): (not: 0)\n");
	aggregate_rank_process(0, -1);
	nprinted = 0;
	aggregate_render(MESHLOG_STDERR, o, t, len, 3, print_cb);
	cr_assert_str_eq(printed, "[ranks 1-3] Traceback (most recent call "
	    "last):\n");
	/* Started again (an elastic restart): named again. */
	aggregate_rank_process(0, 1);
	nprinted = 0;
	aggregate_render(MESHLOG_STDERR, o, t, len, 3, print_cb);
	cr_assert_str_eq(printed, "[ranks 1-3] Traceback (most recent call "
	    "last): (not: 0)\n");
}
