/*
 * The aggregator's tables by rank: which ranks have ended, for a group's
 * "(not: 7)" (aggtext.c): a rank runs while one of its processes does, as
 * sources begin and are freed; how many lines of each kind each rank
 * said; and the last group each rank joined.
 */

#include <stdint.h>
#include <string.h>

#include "aggregate.h"

/*
 * For each rank up to the largest seen, 1 + its processes running; 0
 * before one began.
 */
static uint32_t	*agg_live;
static size_t	 agg_nlive;

void
aggregate_rank_process(long rank, int delta)
{
	size_t	n;

	if (rank < 0 || rank >= AGG_RANKS)
		return;
	if ((size_t)rank >= agg_nlive) {
		for (n = agg_nlive > 0 ? agg_nlive : 64; n <= (size_t)rank;)
			n *= 2;
		agg_live = xrealloc(agg_live, n * sizeof *agg_live);
		memset(agg_live + agg_nlive, 0, (n - agg_nlive) *
		    sizeof *agg_live);
		agg_nlive = n;
	}
	if (agg_live[rank] == 0)
		agg_live[rank] = 1;
	if (delta > 0 || agg_live[rank] > 1)
		agg_live[rank] += (uint32_t)delta;
}

int
agg_rank_ended(long rank)
{
	return (rank >= 0 && (size_t)rank < agg_nlive && agg_live[rank] == 1);
}

uint64_t	(*agg_rlast)[2];
size_t		 agg_nrlast;

uint64_t *
agg_rank_grow(long rank)
{
	size_t	n;

	for (n = agg_nrlast == 0 ? 64 : agg_nrlast; n <= (size_t)rank;)
		n *= 2;
	agg_rlast = xrealloc(agg_rlast, n * sizeof *agg_rlast);
	memset(agg_rlast + agg_nrlast, 0, (n - agg_nrlast) *
	    sizeof *agg_rlast);
	agg_nrlast = n;
	return (agg_rlast[rank]);
}

/* In the BSS: only the slots used take memory. */
struct agg_said	agg_said[AGG_SAID];

uint32_t
agg_rank_said(long rank, uint64_t key)
{
	uint64_t		 tag;
	const struct agg_said	*e = agg_said_slot(rank, key, &tag);

	return (rank >= 0 && e->tag == tag ? e->n : 0);
}
