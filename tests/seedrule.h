/*
 * The seed's aggregation rule, re-implemented faithfully for comparison:
 * every line is compared with every group's first line by full Levenshtein
 * distance and joins the closest one below 0.15 of the longer length.
 * Shared by the unit tests and the aggregation benchmark.
 */
#ifndef MESHLOG_SEEDRULE_H
#define MESHLOG_SEEDRULE_H

#include <stddef.h>

/* Levenshtein distance of a and b, by full dynamic programming. */
size_t	seed_levenshtein(const char *a, size_t la, const char *b, size_t lb);
/* Group lines[0..n) by the seed's rule into group[]; returns the count. */
size_t	seed_group(char *const *lines, size_t n, size_t *group);
/*
 * Group the same lines with meshlog's aggregator, one source per line, and
 * score it against the seed's groups: recall is the share of line pairs
 * the seed groups that meshlog groups too, agreement the share of all
 * pairs on which both say the same. MISSES=1 lists the pairs missed.
 */
void	seed_compare(char *const *lines, size_t n, const size_t *group,
	    double *recall, double *agreement);

#endif
