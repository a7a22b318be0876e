/*
 * The sources a relay forwards: registered here under ids of this
 * collector, their events rewritten, their records emitted like local
 * ones. They have no pipes, and take no part in flushes themselves: their
 * relay drains them. When a relay is lost, its sources are closed here
 * and their source_open kept, to open them again if it comes back.
 */

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "source.h"

/*
 * A source closed with its lost relay, to open again on its return. The
 * source it becomes has a new id, and counts its lines from 0 again: the
 * relay's numbers go on from seq[].
 */
struct remote_lost {
	uint64_t			 link;
	uint64_t			 id;	/* this collector's, then */
	uint64_t			 seq[2];
	json_t				*opened;
	TAILQ_ENTRY(remote_lost)	 entry;
};

/*
 * A relay's sources by (relay, id there): open addressing over a compact
 * array, at most half full. A root behind many relays looks one up for
 * every record, and ranks take turns, so the last one found is rarely
 * the next; the keys sit in the table, so a lookup costs one cache line.
 */
struct remote_slot {
	uint64_t	 link;
	uint64_t	 rid;
	struct source	*src;		/* NULL: free */
};
static struct remote_slot	*remote_hash;
static size_t			 remote_nslots;
static struct source		*remote_last;	/* of the last record */
static uint64_t			 remote_unknown;	/* records of no source */
static TAILQ_HEAD(, remote_lost) lost = TAILQ_HEAD_INITIALIZER(lost);
static struct sourcelist	 relayed = TAILQ_HEAD_INITIALIZER(relayed);
static unsigned			 nrelayed;

/*
 * A key's home slot. The hash is keyed with a secret made when the table
 * is, so that a relay cannot choose ids that pile up on one slot.
 */
static uint64_t			 remote_secret[2];

static size_t
remote_home(uint64_t link, uint64_t rid)
{
	uint64_t	h;

	h = ((link ^ remote_secret[0]) * 0x9e3779b97f4a7c15ULL) ^
	    ((rid ^ remote_secret[1]) * 0xc2b2ae3d27d4eb4fULL);

	h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
	return ((size_t)(h ^ (h >> 32)) & (remote_nslots - 1));
}

/* The slot of (link, rid), or the free one where it would go. */
static struct remote_slot *
remote_slot(uint64_t link, uint64_t rid)
{
	size_t	i = remote_home(link, rid);

	while (remote_hash[i].src != NULL && (remote_hash[i].link != link ||
	    remote_hash[i].rid != rid))
		i = (i + 1) & (remote_nslots - 1);
	return (&remote_hash[i]);
}

/* Add src, doubling the table first when it would be over half full. */
static void
remote_hash_add(struct source *src)
{
	struct remote_slot	*old = remote_hash, *sl;
	size_t			 n = remote_nslots, i;

	if (2 * (nrelayed + 1) > remote_nslots) {
		if (n == 0)
			randombytes_buf(remote_secret, sizeof remote_secret);
		remote_nslots = n == 0 ? 64 : n * 2;
		remote_hash = xcalloc(remote_nslots, sizeof *remote_hash);
		for (i = 0; i < n; i++) {
			if (old[i].src != NULL)
				*remote_slot(old[i].link, old[i].rid) = old[i];
		}
		free(old);
	}
	sl = remote_slot(src->link, src->rid);
	sl->link = src->link;
	sl->rid = src->rid;
	sl->src = src;
}

/*
 * Take src out, moving back the entries after it that would otherwise
 * no longer be found (linear probing has no tombstones).
 */
static void
remote_hash_remove(struct source *src)
{
	size_t	i = (size_t)(remote_slot(src->link, src->rid) - remote_hash);
	size_t	j = i, home, mask = remote_nslots - 1;

	if (remote_hash[i].src != src)
		return;
	remote_hash[i].src = NULL;
	for (;;) {
		j = (j + 1) & mask;
		if (remote_hash[j].src == NULL)
			return;
		home = remote_home(remote_hash[j].link, remote_hash[j].rid);
		/* Stays when its home lies cyclically in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		remote_hash[i] = remote_hash[j];
		remote_hash[j].src = NULL;
		i = j;
	}
}

/* Close a relay's source here. */
static void
remote_close(struct source *src, enum close_reason reason)
{
	remote_hash_remove(src);
	if (remote_last == src)
		remote_last = NULL;
	TAILQ_REMOVE(&relayed, src, entry);
	nrelayed--;
	source_free(src, reason);
}

/* A relay's source by its id there; the last one found is remembered. */
static struct source *
remote_find(uint64_t link, uint64_t rid)
{
	struct source	*s;

	if (remote_last != NULL && remote_last->link == link &&
	    remote_last->rid == rid)
		return (remote_last);
	if (remote_nslots == 0 || (s = remote_slot(link, rid)->src) == NULL)
		return (NULL);
	return (remote_last = s);
}

/* Replace a relay's source id in an event by this collector's. */
static void
remote_rewrite(uint64_t link, json_t *o, const char *field)
{
	json_t		*v = json_object_get(o, field);
	struct source	*src;

	if (!json_is_integer(v))
		return;
	src = remote_find(link, (uint64_t)json_integer_value(v));
	json_object_set_new(o, field, src != NULL ?
	    json_integer((json_int_t)src->id) : json_null());
}

/* Whether a source_open's list of streams names stream which. */
static int
remote_names(json_t *list, int which)
{
	json_t	*v;
	size_t	 k;

	json_array_foreach(list, k, v) {
		if (json_is_string(v) && strcmp(json_string_value(v),
		    stream_names[which]) == 0)
			return (1);
	}
	return (0);
}

/* A source a relay opened: registered here under a new id (or NULL). */
static struct source *
remote_open(uint64_t link, json_t *o)
{
	struct source	*src;
	struct stream	*s;
	json_t		*streams = json_object_get(o, "streams"), *v;
	json_t		*view = json_object_get(o, "console_streams");
	json_t		*fwd = json_object_get(o, "forwarded_streams");
	json_t		*own = json_object_get(o, "inherited_streams");
	const char	*host = json_string_value(json_object_get(o, "host"));
	json_t		*rank = json_object_get(o, "rank");
	size_t		 i;
	int		 which;

	if (!json_is_integer(json_object_get(o, "source")) || host == NULL ||
	    !json_is_array(streams) || remote_find(link, (uint64_t)
	    json_integer_value(json_object_get(o, "source"))) != NULL) {
		log_warn("relay sent an unusable source_open; its records "
		    "will be counted as unknown");
		return (NULL);
	}
	src = source_new((long)json_integer_value(json_object_get(o, "pid")),
	    json_is_integer(rank) ? (long)json_integer_value(rank) : -1,
	    json_is_integer(json_object_get(o, "world_size")) ?
	    (long)json_integer_value(json_object_get(o, "world_size")) : -1,
	    host, json_object_get(o, "argv"));
	src->link = link;
	src->rid = (uint64_t)json_integer_value(json_object_get(o, "source"));
	src->announced = 1;
	src->opened = json_deep_copy(o);
	src->helper = json_is_true(json_object_get(o, "helper"));
	source_label(src);
	json_array_foreach(streams, i, v) {
		which = json_is_string(v) && strcmp(json_string_value(v),
		    "stderr") == 0;
		if (src->st[which] != NULL)
			continue;
		s = xcalloc(1, sizeof *s);
		s->slot = -1;	/* nothing of it is read here */
		s->src = src;
		s->which = which;
		s->fd = -1;
		s->wait_at = UINT64_MAX;	/* no forked children wait */
		s->inherited = remote_names(own, which);
		stream_prefix(s, src);
		s->console = remote_names(view, which);
		/* For --output-dir only: no launcher of it is here. */
		s->fwd = remote_names(fwd, which);
		src->st[which] = s;
		src->nopen++;
	}
	remote_hash_add(src);
	TAILQ_INSERT_TAIL(&relayed, src, entry);
	nrelayed++;
	remote_rewrite(link, o, "parent_source");
	json_object_set_new(o, "source", json_integer((json_int_t)src->id));
	source_log(o);
	return (src);
}

/*
 * The line counts of a resumed source's source_closed are the relay's,
 * from the first open: made this source's own, as its seq numbers are
 * (what it had before its relay was lost went into the first source's).
 * Bytes stay the relay's count of the process's pipe since it registered:
 * the pipe's bytes before the loss are not known here.
 */
static void
remote_counts(struct source *src, json_t *o)
{
	json_t	*lines = json_object_get(o, "lines"), *v;
	int	 i;

	for (i = 0; i < 2; i++) {
		if (src->st[i] == NULL || src->st[i]->seq_base == 0 ||
		    !json_is_integer(v = json_object_get(lines,
		    stream_names[i])))
			continue;
		if ((uint64_t)json_integer_value(v) >= src->st[i]->seq_base)
			json_object_set_new(lines, stream_names[i],
			    json_integer(json_integer_value(v) -
			    (json_int_t)src->st[i]->seq_base));
	}
}

/*
 * How a relay's process ended, from its source_closed: kept for the
 * summary, and the first failure of the whole job is this collector's to
 * say (a relay knows only its host's).
 */
static void
remote_ending(struct source *src, json_t *o)
{
	json_t		*e = json_object_get(o, "exit"), *v;
	const char	*ended = json_string_value(json_object_get(o, "ended"));
	char		 name[32];
	int		 sig;

	if (json_is_object(e) && json_is_integer(v = json_object_get(e,
	    "code")) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= 255) {
		src->status = (int)json_integer_value(v) << 8;
		src->have_status = 1;
	} else if (json_is_object(e) && json_is_string(v = json_object_get(e,
	    "signal"))) {
		for (sig = 1; sig < 65; sig++) {
			summary_signame(sig, name, sizeof name);
			if (strcmp(name, json_string_value(v)) == 0)
				break;
		}
		if (sig < 65) {
			src->status = sig | (json_is_true(json_object_get(e,
			    "core")) ? 0x80 : 0);
			src->have_status = 1;
		}
	}
	src->oom_killed = json_is_true(json_object_get(o, "oom_killed"));
	src->helper = json_is_true(json_object_get(o, "helper"));
	if (ended != NULL)
		strlcpy(src->ended_text, ended, sizeof src->ended_text);
	json_object_del(o, "first_failure");
	ending_relayed(src);
	if (src->first_failure)
		json_object_set_new(o, "first_failure", json_true());
}

void
source_remote_event(uint64_t link, json_t *o)
{
	const char	*event = json_string_value(json_object_get(o, "event"));
	struct source	*src;
	json_t		*v = json_object_get(o, "source");
	long		 rank, world;

	if (event == NULL)
		return;
	if (strcmp(event, "source_open") == 0) {
		(void)remote_open(link, o);
		return;
	}
	src = json_is_integer(v) ? remote_find(link,
	    (uint64_t)json_integer_value(v)) : NULL;
	remote_rewrite(link, o, "source");
	/* A relayed process runs another program after an exec. */
	if (strcmp(event, "exec") == 0 && src != NULL)
		(void)source_argv_set(src, json_object_get(o, "argv"));
	/* A relayed rankless process learned its rank. */
	if (strcmp(event, "rank") == 0 && src != NULL && src->rank < 0 &&
	    source_rank_valid(o, &rank, &world))
		source_rank_set(src, rank, world);
	if (strcmp(event, "source_closed") == 0 && src != NULL) {
		remote_counts(src, o);
		remote_ending(src, o);
	}
	source_log(o);
	if (strcmp(event, "source_closed") == 0 && src != NULL)
		remote_close(src, CLOSE_RELAYED);
}

void
source_remote_record(uint64_t link, const struct wire_rec *r)
{
	static uint64_t	 last_us;
	static char	 last_ts[TS_LEN];
	struct source	*src = remote_find(link, r->source);
	struct stream	*s;
	struct timespec	 ts;

	if (src == NULL || (s = src->st[r->which]) == NULL) {
		remote_unknown++;
		return;
	}
	ts.tv_sec = (time_t)(r->ts_us / 1000000);
	ts.tv_nsec = (long)(r->ts_us % 1000000) * 1000;
	if (!(r->flags & SPLIT_UPDATE)) {
		if (r->ts_us != last_us) {
			last_us = r->ts_us;
			record_ts(last_ts, &ts);
		}
		s->bytes += r->len;
		s->last_read = ts;
	}
	if (r->seq < s->seq_base) {	/* before it was lost: not ours */
		remote_unknown++;
		return;
	}
	outdir_record(s, r->line, r->len, r->flags);
	stream_emit(s, last_ts, r->ts_us, r->seq - s->seq_base, r->line,
	    r->len, r->flags);
}

int
source_count_link(uint64_t link)
{
	struct source	*src;
	int		 n = 0;

	TAILQ_FOREACH(src, &relayed, entry) {
		if (src->link == link)
			n++;
	}
	return (n);
}

uint64_t
source_remote_unknown(void)
{
	return (remote_unknown);
}

void
source_remote_lost(uint64_t link)
{
	struct source		*src, *next;
	struct remote_lost	*l;
	int			 i;

	TAILQ_FOREACH_SAFE(src, &relayed, entry, next) {
		if (src->link != link)
			continue;
		l = xcalloc(1, sizeof *l);
		l->link = link;
		l->id = src->id;
		for (i = 0; i < 2; i++) {
			if (src->st[i] != NULL)
				l->seq[i] = src->st[i]->seq_base +
				    src->st[i]->seq;
		}
		l->opened = json_incref(src->opened);
		TAILQ_INSERT_TAIL(&lost, l, entry);
		remote_close(src, CLOSE_RELAY_LOST);
	}
}

void
source_remote_resume(uint64_t link)
{
	struct remote_lost	*l, *next;
	struct source		*src;
	int			 i;

	TAILQ_FOREACH_SAFE(l, &lost, entry, next) {
		if (l->link != link)
			continue;
		TAILQ_REMOVE(&lost, l, entry);
		json_object_set_new(l->opened, "resumes",
		    json_integer((json_int_t)l->id));
		if ((src = remote_open(link, l->opened)) != NULL) {
			for (i = 0; i < 2; i++) {
				if (src->st[i] != NULL)
					src->st[i]->seq_base = l->seq[i];
			}
		}
		json_decref(l->opened);
		free(l);
	}
}

void
source_remote_close_all(enum close_reason reason)
{
	struct source		*src, *next;
	struct remote_lost	*l;

	TAILQ_FOREACH_SAFE(src, &relayed, entry, next)
		remote_close(src, reason);
	while ((l = TAILQ_FIRST(&lost)) != NULL) {
		TAILQ_REMOVE(&lost, l, entry);
		json_decref(l->opened);
		free(l);
	}
}

unsigned
source_remote_count(void)
{
	return (nrelayed);
}

void
source_remote_status(json_t *all)
{
	source_status(&relayed, all);
}

/* Here, not in source.c: the summary counts relayed sources too. */
json_t *
source_summary(void)
{
	struct summary_proc	*live;
	struct source		*src;
	size_t			 n = 0;
	json_t			*o;

	live = xcalloc(source_count() + nrelayed + 1, sizeof *live);
	TAILQ_FOREACH(src, &sources, entry) {
		if (src->announced)
			ending_summary(src, &live[n++]);
	}
	TAILQ_FOREACH(src, &relayed, entry)
		ending_summary(src, &live[n++]);
	o = summary_build(live, n, cfg.json_path);
	free(live);
	return (o);
}

void
source_remote_stall_start(void)
{
	stall_start(&relayed);
}
