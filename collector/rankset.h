/*
 * Sets of ranks as people write them ("0,2-5"), shared by the collector
 * (--console-ranks) and meshlogctl, which does not include collector.h.
 */
#ifndef MESHLOG_RANKSET_H
#define MESHLOG_RANKSET_H

#include <stddef.h>

/* Most ranks a set may hold. */
#define RANKSET_MAX	1000000

/*
 * Parse "0,2-5" into *out (allocated, sorted, without repeats; the
 * caller frees it) and *n. 0, or -1 when s is not such a list or holds
 * more than RANKSET_MAX ranks.
 */
int	rankset_parse(const char *s, long **out, size_t *n);
/* Sort v[0..*n) and drop repeats. */
void	rankset_sort(long *v, size_t *n);
/* Whether r is in the sorted set v[0..n). */
int	rankset_has(const long *v, size_t n, long r);

#endif
