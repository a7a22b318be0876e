/*
 * What the console view's unit tests (test_aggtext.c, test_aggview.c)
 * share: a print that collects what it is given, and a rank's origin.
 */
#ifndef MESHLOG_TEST_VIEWPRINT_H
#define MESHLOG_TEST_VIEWPRINT_H

#include <stdio.h>
#include <string.h>

/* What a print wrote: prefixes and lines, one after the other. */
static char	printed[65536];
static size_t	nprinted;

static void
print_cb(int which, const char *prefix, const char *line, size_t len,
    int flags, uint64_t us)
{
	(void)which, (void)flags, (void)us;
	nprinted += (size_t)snprintf(printed + nprinted, sizeof printed -
	    nprinted, "%s%.*s\n", prefix, (int)len, line);
}

/* o: rank's process (pid 100 + rank) of a world, its prefix in prefix. */
static void
view_rank(struct origin *o, char prefix[32], long rank, long world)
{
	snprintf(prefix, 32, "[rank %ld] ", rank);
	memset(o, 0, sizeof *o);
	o->id = (uint64_t)rank + 1;
	o->rank = rank;
	o->pid = 100 + rank;
	o->world = world;
	o->prefix = prefix;
}

#endif
