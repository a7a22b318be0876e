/*
 * The aggregator's groups, shared by aggregate.c (what joins what, and
 * when a group is printed) and aggtext.c (how a group reads).
 */

#ifndef MESHLOG_AGGREGATE_H
#define MESHLOG_AGGREGATE_H

#include <sys/queue.h>

#include "collector.h"

/* A source as the aggregator knows it. */
struct agg_src;

/* One process's line (or block) in a group. */
struct agg_member {
	const char		*prefix;	/* its own, "[rank 3] " */
	long			 rank;		/* -1 when none */
	long			 pid;
	const char		*text;		/* its own line; a block's
						 * members share the group's */
	size_t			 len;
};

/*
 * Lines of different processes shown as one: the same template (or close
 * by the seed's edit distance), or blocks with the same bytes.
 */
struct agg_group {
	uint64_t		 key;
	uint64_t		 serial;	/* creation order = print order */
	double			 deadline;	/* printed no later than this */
	uint64_t		 us;		/* when its first line was read */
	int			 which;
	int			 severity;
	int			 flags;		/* SPLIT_* of the first line */
	int			 block;		/* text is several lines */
	char			*text;		/* the first member's, owned */
	size_t			 len;
	long			 world;		/* largest world size, or -1 */
	struct agg_member	*members;
	size_t			 nmembers;
	size_t			 capmembers;
	struct agg_queue	*queue;		/* groups of the same key */
	struct agg_sig		*sigs[3];	/* edit-distance candidates */
	size_t			 nsigs;
	int			 ranked;	/* its members have a rank */
	TAILQ_ENTRY(agg_group)	 entry;		/* print order */
};

/*
 * Print g through line (one member) or group (several): a line group
 * as one line per set of members whose texts align, fields that differ
 * shown as sets or ranges; a block line by line. Members are reordered.
 */
void	aggtext_print(struct agg_group *g, aggregate_print_cb line,
	    aggregate_print_cb group);

#endif
