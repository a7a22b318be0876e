/*
 * The flush module with fake participants: answers now and later, acks
 * for newer and older versions, leaving during a barrier, rejoining after
 * a lost link, and the deadline. Each test runs in its own process, so
 * the module's state starts empty.
 */

#include <criterion/criterion.h>

#include <event2/event.h>

#include "collector/collector.h"

struct config		 cfg;
struct event_base	*base;

/* A participant that answers as told and counts what it was asked. */
struct fake {
	struct flush_part	 part;
	const char		*name;
	int			 answer;	/* what drain returns */
	int			 drains;
	uint64_t		 last_version;
	int			 leave_in_drain;
};

static int
fake_drain(struct flush_part *p, uint64_t version, int timeout_ms)
{
	struct fake	*f = p->arg;

	cr_assert_gt(timeout_ms, 0);
	f->drains++;
	f->last_version = version;
	if (f->leave_in_drain)
		flush_leave(p);
	return (f->answer);
}

static json_t *
fake_describe(struct flush_part *p)
{
	return (json_pack("{s:s}", "name", ((struct fake *)p->arg)->name));
}

static const struct flush_ops fake_ops = { fake_drain, fake_describe };

static void
join(struct fake *f, enum flush_kind kind, const char *name, int answer)
{
	memset(f, 0, sizeof *f);
	f->name = name;
	f->answer = answer;
	flush_join(&f->part, kind, &fake_ops, f);
}

/* Replies, in the order they came. */
static json_t	*replies[8];
static int	 nreplies;

static void
got_reply(json_t *reply, void *arg)
{
	cr_assert_lt(nreplies, 8);
	replies[nreplies++] = json_incref(reply);
}

static json_int_t
field(json_t *reply, const char *name)
{
	return (json_integer_value(json_object_get(reply, name)));
}

/* The names in a reply's "incomplete" list, joined by spaces. */
static const char *
missing(json_t *reply)
{
	static char	 buf[256];
	json_t		*v;
	size_t		 i;

	buf[0] = '\0';
	json_array_foreach(json_object_get(reply, "incomplete"), i, v) {
		if (i > 0)
			strlcat(buf, " ", sizeof buf);
		strlcat(buf, json_string_value(json_object_get(v, "name")),
		    sizeof buf);
	}
	return (buf);
}

static void
setup(void)
{
	base = event_base_new();
	cr_assert_not_null(base);
}

TestSuite(flush, .init = setup);

Test(flush, answers_at_once_when_every_participant_drains_now)
{
	struct fake	a, b;

	join(&a, FLUSH_SOURCE, "a", 0);
	join(&b, FLUSH_SOURCE, "b", 0);
	flush_start(1000, got_reply, NULL);
	cr_assert_eq(nreplies, 1);
	cr_assert_eq(field(replies[0], "version"), 1);
	cr_assert_eq(field(replies[0], "sources"), 2);
	cr_assert_eq(field(replies[0], "relays"), 0);
	cr_assert_str_eq(missing(replies[0]), "");
	cr_assert_eq(a.drains, 1);
	cr_assert_eq(b.last_version, 1);
}

Test(flush, a_late_ack_completes_the_barrier)
{
	struct fake	s, r;

	join(&s, FLUSH_SOURCE, "s", 0);
	join(&r, FLUSH_RELAY, "r", 1);
	flush_start(1000, got_reply, NULL);
	cr_assert_eq(nreplies, 0, "answered before the relay acked");
	flush_ack(&r.part, 1);
	cr_assert_eq(nreplies, 1);
	cr_assert_eq(field(replies[0], "relays"), 1);
	cr_assert_str_eq(missing(replies[0]), "");
}

Test(flush, an_ack_for_a_newer_version_completes_older_ones)
{
	struct fake	r;

	join(&r, FLUSH_RELAY, "r", 1);
	flush_start(1000, got_reply, NULL);
	flush_start(1000, got_reply, NULL);
	cr_assert_eq(r.last_version, 2);
	flush_ack(&r.part, 2);
	cr_assert_eq(nreplies, 2);
	cr_assert_eq(field(replies[0], "version"), 1);
	cr_assert_eq(field(replies[1], "version"), 2);
}

Test(flush, an_ack_for_an_older_version_leaves_newer_ones_waiting)
{
	struct fake	r;

	join(&r, FLUSH_RELAY, "r", 1);
	flush_start(1000, got_reply, NULL);
	flush_start(1000, got_reply, NULL);
	flush_ack(&r.part, 1);
	cr_assert_eq(nreplies, 1);
	cr_assert_eq(field(replies[0], "version"), 1);
	flush_ack(&r.part, 1);	/* stale: changes nothing */
	cr_assert_eq(nreplies, 1);
	flush_ack(&r.part, 2);
	cr_assert_eq(nreplies, 2);
}

Test(flush, leaving_during_a_barrier_releases_it_and_is_not_listed)
{
	struct fake	r1, r2;

	join(&r1, FLUSH_RELAY, "r1", 1);
	join(&r2, FLUSH_RELAY, "r2", 1);
	flush_start(1000, got_reply, NULL);
	flush_ack(&r1.part, 1);
	cr_assert_eq(nreplies, 0);
	flush_leave(&r2.part);
	cr_assert_eq(nreplies, 1);
	cr_assert_str_eq(missing(replies[0]), "");
	/* Gone for good: the next barrier does not ask it. */
	flush_leave(&r2.part);
	r1.answer = 0;
	flush_start(1000, got_reply, NULL);
	cr_assert_eq(nreplies, 2);
	cr_assert_eq(field(replies[1], "relays"), 1);
	cr_assert_eq(r2.drains, 1);
}

Test(flush, a_participant_gone_while_draining_holds_nothing_back)
{
	struct fake	a, b;

	join(&a, FLUSH_SOURCE, "a", -1);
	join(&b, FLUSH_SOURCE, "b", 0);
	b.leave_in_drain = 1;
	flush_start(1000, got_reply, NULL);
	cr_assert_eq(nreplies, 1);
	cr_assert_str_eq(missing(replies[0]), "");
	cr_assert_eq(field(replies[0], "sources"), 2);
	/* a answered -1 but did not leave itself: it is still asked. */
	flush_start(1000, got_reply, NULL);
	cr_assert_eq(a.drains, 2);
	cr_assert_eq(b.drains, 1);
}

Test(flush, a_rejoining_relay_is_asked_again_for_what_it_holds_back)
{
	struct fake	r;

	join(&r, FLUSH_RELAY, "r", 1);
	flush_start(1000, got_reply, NULL);
	flush_start(1000, got_reply, NULL);
	cr_assert_eq(r.drains, 2);
	flush_ack(&r.part, 1);
	flush_rejoin(&r.part);
	/* Only version 2 still waits for it. */
	cr_assert_eq(r.drains, 3);
	cr_assert_eq(r.last_version, 2);
	flush_ack(&r.part, 2);
	cr_assert_eq(nreplies, 2);
	/* One that left and joins again takes part in new barriers only. */
	flush_leave(&r.part);
	flush_rejoin(&r.part);
	cr_assert_eq(r.drains, 3);
	flush_join(&r.part, FLUSH_RELAY, &fake_ops, &r);
	flush_start(1000, got_reply, NULL);
	cr_assert_eq(r.drains, 4);
	cr_assert_eq(r.last_version, 3);
}

/* Collects the base's timers, to fire them before their time. */
static int
collect_timer(const struct event_base *b, const struct event *ev, void *arg)
{
	struct event	**found = arg;

	if (event_get_events(ev) == 0 && *found == NULL)
		*found = (struct event *)ev;
	return (0);
}

/*
 * libevent's clock (CLOCK_MONOTONIC_COARSE) may lag the collector's by a
 * tick, so a flush's timer can fire up to 4 ms before its deadline: the
 * barrier waits out the rest (it ended 99 ms into a 100 ms flush once).
 */
Test(flush, a_timer_that_fires_early_does_not_end_the_barrier)
{
	struct fake	 s, r;
	struct event	*timer = NULL;
	long long	 t0 = clock_now_ms();

	join(&s, FLUSH_SOURCE, "s", 0);
	join(&r, FLUSH_RELAY, "slow", 1);
	flush_start(100, got_reply, NULL);
	event_base_foreach_event(base, collect_timer, &timer);
	cr_assert_not_null(timer);
	event_active(timer, EV_TIMEOUT, 1);
	event_base_loop(base, EVLOOP_NONBLOCK);
	cr_assert_eq(nreplies, 0);
	while (nreplies == 0)
		event_base_loop(base, EVLOOP_ONCE);
	cr_assert_geq(clock_now_ms() - t0, 100);
	cr_assert_str_eq(missing(replies[0]), "slow");
}

Test(flush, the_deadline_ends_a_barrier_with_who_is_missing)
{
	struct fake	s, r;
	long long	t0 = clock_now_ms();

	join(&s, FLUSH_SOURCE, "s", 0);
	join(&r, FLUSH_RELAY, "slow", 1);
	flush_start(100, got_reply, NULL);
	while (nreplies == 0)
		event_base_loop(base, EVLOOP_ONCE);
	cr_assert_geq(clock_now_ms() - t0, 100);
	cr_assert_str_eq(missing(replies[0]), "slow");
	cr_assert_eq(field(replies[0], "version"), 1);
	/* Its late answer is stale and harmless. */
	flush_ack(&r.part, 1);
	cr_assert_eq(nreplies, 1);
	cr_assert_eq(flush_last_version(), 1);
}

Test(flush, flush_run_waits_for_the_answer)
{
	struct fake	s;
	json_t		*reply;

	join(&s, FLUSH_SOURCE, "s", 0);
	reply = flush_run(1000);
	cr_assert_eq(field(reply, "sources"), 1);
	json_decref(reply);
}
