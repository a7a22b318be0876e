/*
 * The sources a relay forwards: registered here under ids of this
 * collector, their events rewritten, their records emitted like local
 * ones. They have no pipes.
 */

#include <string.h>

#include "source.h"

RB_HEAD(remotes, source);

static struct remotes		 remote_tree = RB_INITIALIZER(&remote_tree);
static struct source		*remote_last;	/* of the last record */
static uint64_t			 remote_unknown;	/* records of no source */

/* Order a relay's sources by (relay, id at the relay). */
static int
remote_cmp(struct source *a, struct source *b)
{
	if (a->link != b->link)
		return (a->link < b->link ? -1 : 1);
	return (a->rid < b->rid ? -1 : a->rid > b->rid);
}
RB_GENERATE(remotes, source, rentry, remote_cmp)

void
remote_forget(struct source *src)
{
	RB_REMOVE(remotes, &remote_tree, src);
	if (remote_last == src)
		remote_last = NULL;
}

/* A relay's source by its id there; the last one found is remembered. */
static struct source *
remote_find(uint64_t link, uint64_t rid)
{
	struct source	key;

	if (remote_last != NULL && remote_last->link == link &&
	    remote_last->rid == rid)
		return (remote_last);
	key.link = link;
	key.rid = rid;
	if ((remote_last = RB_FIND(remotes, &remote_tree, &key)) == NULL)
		return (NULL);
	return (remote_last);
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

/* A source a relay opened: registered here under a new id. */
static void
remote_open(uint64_t link, json_t *o)
{
	struct source	*src;
	struct stream	*s;
	json_t		*streams = json_object_get(o, "streams"), *v;
	json_t		*view = json_object_get(o, "console_streams");
	const char	*host = json_string_value(json_object_get(o, "host"));
	json_t		*rank = json_object_get(o, "rank");
	size_t		 i, k;
	int		 which;

	if (!json_is_integer(json_object_get(o, "source")) || host == NULL ||
	    !json_is_array(streams) || remote_find(link, (uint64_t)
	    json_integer_value(json_object_get(o, "source"))) != NULL) {
		log_warn("relay sent an unusable source_open; its records "
		    "will be counted as unknown");
		return;
	}
	src = xcalloc(1, sizeof *src);
	src->id = ++source_next_id;
	src->link = link;
	src->rid = (uint64_t)json_integer_value(json_object_get(o, "source"));
	src->pid = (long)json_integer_value(json_object_get(o, "pid"));
	src->rank = json_is_integer(rank) ? (long)json_integer_value(rank) :
	    -1;
	src->host = xstrdup(host);
	src->announced = 1;
	src->pidfd = -1;	/* a process of another host: none */
	src->argv = json_incref(json_object_get(o, "argv"));
	if (src->argv == NULL)
		src->argv = json_array();
	source_label(src);
	json_array_foreach(streams, i, v) {
		which = json_is_string(v) && strcmp(json_string_value(v),
		    "stderr") == 0;
		if (src->st[which] != NULL)
			continue;
		s = xcalloc(1, sizeof *s);
		s->src = src;
		s->which = which;
		s->fd = -1;
		stream_prefix(s, src);
		json_array_foreach(view, k, v) {
			if (json_is_string(v) && strcmp(json_string_value(v),
			    stream_names[which]) == 0)
				s->console = 1;
		}
		src->st[which] = s;
		src->nopen++;
	}
	RB_INSERT(remotes, &remote_tree, src);
	TAILQ_INSERT_TAIL(&sources, src, entry);
	nsources++;
	remote_rewrite(link, o, "parent_source");
	json_object_set_new(o, "source", json_integer((json_int_t)src->id));
	source_log(o);
}

void
source_remote_event(uint64_t link, json_t *o)
{
	const char	*event = json_string_value(json_object_get(o, "event"));
	struct source	*src;
	json_t		*v = json_object_get(o, "source");

	if (event == NULL)
		return;
	if (strcmp(event, "source_open") == 0) {
		remote_open(link, o);
		return;
	}
	src = json_is_integer(v) ? remote_find(link,
	    (uint64_t)json_integer_value(v)) : NULL;
	remote_rewrite(link, o, "source");
	source_log(o);
	if (strcmp(event, "source_closed") == 0 && src != NULL)
		source_free(src, NULL);
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
	stream_emit(s, last_ts, r->ts_us, r->seq, r->line, r->len, r->flags);
}

int
source_count_link(uint64_t link)
{
	struct source	*src;
	int		 n = 0;

	TAILQ_FOREACH(src, &sources, entry) {
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
