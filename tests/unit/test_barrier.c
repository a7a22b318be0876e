/* The flush barrier's state machine: versions, stale acks, leaving, time. */

#include <criterion/criterion.h>

#include "collector/collector.h"

Test(barrier, completes_when_every_participant_acks)
{
	struct barriers	 bs;
	uint64_t	 ids[] = { 3, 1, 2 };
	struct barrier	*b;

	barriers_init(&bs);
	b = barrier_start(&bs, ids, 3, 1000);
	cr_assert_eq(b->version, 1);
	cr_assert_eq(barrier_ack(&bs, 1, 1), 0);
	cr_assert_eq(barrier_ack(&bs, 3, 1), 0);
	cr_assert_null(barrier_next_done(&bs, 0));
	cr_assert_eq(barrier_ack(&bs, 2, 1), 1);
	cr_assert_eq(barrier_next_done(&bs, 0), b);
	cr_assert(!b->timed_out);
	barrier_finish(&bs, b);
	cr_assert_null(barrier_next_done(&bs, 0));
}

Test(barrier, stale_versions_are_ignored)
{
	struct barriers	 bs;
	uint64_t	 ids[] = { 7 };
	struct barrier	*b1, *b2;

	barriers_init(&bs);
	b1 = barrier_start(&bs, ids, 1, 1000);
	cr_assert_eq(barrier_ack(&bs, 7, 1), 1);
	barrier_finish(&bs, b1);
	b2 = barrier_start(&bs, ids, 1, 1000);
	cr_assert_eq(b2->version, 2);
	/* A late answer to version 1 does not complete version 2. */
	cr_assert_eq(barrier_ack(&bs, 7, 1), 0);
	cr_assert_eq(b2->nwaiting, 1);
	cr_assert_eq(barrier_ack(&bs, 7, 0), 0);
	cr_assert_eq(barrier_ack(&bs, 7, 2), 1);
	barrier_finish(&bs, b2);
}

Test(barrier, a_newer_ack_satisfies_older_barriers)
{
	struct barriers	 bs;
	uint64_t	 ids[] = { 1, 2 };
	struct barrier	*b1, *b2;

	barriers_init(&bs);
	b1 = barrier_start(&bs, ids, 2, 1000);
	b2 = barrier_start(&bs, ids, 2, 1000);
	cr_assert_eq(barrier_ack(&bs, 1, 2), 0);
	cr_assert_eq(b1->nwaiting, 1);
	cr_assert_eq(b2->nwaiting, 1);
	cr_assert_eq(barrier_ack(&bs, 2, 2), 1);
	cr_assert_eq(barrier_next_done(&bs, 0), b1);
	barrier_finish(&bs, b1);
	cr_assert_eq(barrier_next_done(&bs, 0), b2);
	barrier_finish(&bs, b2);
}

Test(barrier, a_source_leaving_mid_barrier_holds_nothing_back)
{
	struct barriers	 bs;
	uint64_t	 ids[] = { 4, 5, 6 };
	struct barrier	*b;

	barriers_init(&bs);
	b = barrier_start(&bs, ids, 3, 1000);
	cr_assert_eq(barrier_ack(&bs, 4, 1), 0);
	cr_assert_eq(barrier_leave(&bs, 6), 0);
	cr_assert_eq(barrier_leave(&bs, 99), 0);	/* never a participant */
	cr_assert_eq(barrier_leave(&bs, 5), 1);
	cr_assert_eq(barrier_next_done(&bs, 0), b);
	cr_assert(!b->timed_out);
	barrier_finish(&bs, b);
}

Test(barrier, timeout_reports_who_did_not_make_it)
{
	struct barriers	 bs;
	uint64_t	 ids[] = { 8, 9, 10 };
	struct barrier	*b;

	barriers_init(&bs);
	b = barrier_start(&bs, ids, 3, 500);
	cr_assert_eq(barrier_ack(&bs, 9, 1), 0);
	cr_assert_null(barrier_next_done(&bs, 499));
	cr_assert_eq(barrier_next_done(&bs, 500), b);
	cr_assert(b->timed_out);
	cr_assert_eq(b->nwaiting, 2);
	cr_assert_eq(b->waiting[0], 8);
	cr_assert_eq(b->waiting[1], 10);
	barrier_finish(&bs, b);
}

Test(barrier, empty_barrier_is_done_at_once)
{
	struct barriers	 bs;
	struct barrier	*b;

	barriers_init(&bs);
	b = barrier_start(&bs, NULL, 0, 1000);
	cr_assert_eq(barrier_next_done(&bs, 0), b);
	cr_assert(!b->timed_out);
	barrier_finish(&bs, b);
}
