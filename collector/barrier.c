/*
 * The versioned flush barrier as a state machine, without I/O. A barrier
 * gets the next version and the set of participants (sources, later
 * relays) it waits for. A participant acknowledges a version once it has
 * drained everything written before it; that also satisfies any older
 * barrier. Acknowledgements for versions no active barrier has are stale
 * and ignored. A participant that leaves (its pipes closed, so nothing is
 * left to drain) holds no barrier back. A barrier past its deadline ends
 * with the participants it still waits for.
 */

#include <stdlib.h>
#include <string.h>

#include "collector.h"

void
barriers_init(struct barriers *bs)
{
	memset(bs, 0, sizeof *bs);
	TAILQ_INIT(&bs->active);
}

/* Compare ids for sorting and searching. */
static int
barrier_id_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

struct barrier *
barrier_start(struct barriers *bs, const uint64_t *ids, size_t n,
    long long deadline_ms)
{
	struct barrier	*b = xcalloc(1, sizeof *b);

	b->version = ++bs->last;
	b->deadline_ms = deadline_ms;
	b->waiting = xcalloc(n == 0 ? 1 : n, sizeof *b->waiting);
	if (n > 0)	/* ids may be NULL then: memcpy must not see it */
		memcpy(b->waiting, ids, n * sizeof *ids);
	b->nwaiting = n;
	qsort(b->waiting, n, sizeof *b->waiting, barrier_id_cmp);
	TAILQ_INSERT_TAIL(&bs->active, b, entry);
	return (b);
}

/* Take id out of b's waiting set; 1 if it was there. */
static int
barrier_drop(struct barrier *b, uint64_t id)
{
	uint64_t	*at;

	at = bsearch(&id, b->waiting, b->nwaiting, sizeof id, barrier_id_cmp);
	if (at == NULL)
		return (0);
	memmove(at, at + 1, (size_t)(b->waiting + b->nwaiting - at - 1) *
	    sizeof *at);
	b->nwaiting--;
	return (1);
}

int
barrier_ack(struct barriers *bs, uint64_t id, uint64_t version)
{
	struct barrier	*b;
	int		 completed = 0;

	TAILQ_FOREACH(b, &bs->active, entry) {
		if (b->version <= version && barrier_drop(b, id) &&
		    b->nwaiting == 0)
			completed = 1;
	}
	return (completed);
}

int
barrier_leave(struct barriers *bs, uint64_t id)
{
	struct barrier	*b;
	int		 completed = 0;

	TAILQ_FOREACH(b, &bs->active, entry) {
		if (barrier_drop(b, id) && b->nwaiting == 0)
			completed = 1;
	}
	return (completed);
}

struct barrier *
barrier_next_done(struct barriers *bs, long long now_ms)
{
	struct barrier	*b;

	TAILQ_FOREACH(b, &bs->active, entry) {
		if (b->nwaiting == 0)
			return (b);
		if (now_ms >= b->deadline_ms) {
			b->timed_out = 1;
			return (b);
		}
	}
	return (NULL);
}

void
barrier_finish(struct barriers *bs, struct barrier *b)
{
	TAILQ_REMOVE(&bs->active, b, entry);
	free(b->waiting);
	free(b);
}
