/*
 * A restart without a gap: a collector that starts on the socket of one
 * that died takes its processes back from the keeper that copied their
 * pipes meanwhile (keeper.c). Each comes as a "handover" message: the
 * identity the old collector gave the keeper, the pipes, destinations and
 * pidfd, and a memfd of what the keeper copied to the destinations while
 * no collector ran. Those bytes are logged with the times they were read,
 * never written again; a "handover" event says the span and what reached
 * only the destination. Part of the source module (source.h).
 *
 * The old collector's side is here too: the identity it gives the keeper
 * at registration, and each stream's keeper slot, which holds the
 * beginning of a line read but not finished, so that it is not lost with
 * the collector.
 */

#include <sys/mman.h>
#include <sys/stat.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source.h"
#include "keeper.h"

/* The fds mask: 2i pipe of stream i, 2i+1 its destination, then these. */
#define HANDOVER_PIDFD	4
#define HANDOVER_KEPT	5
#define HANDOVER_CLAIM	6
#define HANDOVER_FDS	7

/* What a handover says besides the identity. */
struct handover {
	unsigned long long	 old;		/* the source's id before */
	long long		 since_ns;	/* the old collector went */
	unsigned long long	 unlogged[2];
	unsigned long long	 replayed[2];
	int			 tee[2];
	int			 console[2];
};

size_t
handover_identity(struct source *src, char *buf, size_t cap)
{
	struct jw	w;
	int		k;

	jw_init(&w, buf, cap);
	jw_lit(&w, "{\"pid\":");
	jw_int(&w, src->pid);
	jw_lit(&w, ",\"ppid\":");
	jw_int(&w, src->ppid);
	jw_lit(&w, ",\"rank\":");
	jw_int_or_null(&w, src->rank);
	jw_lit(&w, ",\"world_size\":");
	jw_int_or_null(&w, src->world_size);
	jw_lit(&w, ",\"host\":");
	jw_str(&w, src->host, strlen(src->host));
	source_argv_json(&w, src->argv);
	jw_lit(&w, src->runtime ? ",\"runtime\":true" : ",\"runtime\":false");
	/* A rank told after the start: the programs it starts are its. */
	if (src->rank_late)
		jw_lit(&w, ",\"rank_late\":true");
	if (src->helper)
		jw_lit(&w, ",\"helper\":true");
	jw_lit(&w, ",\"streams\":[");
	for (k = 0; k < 2; k++) {
		if (k > 0)
			jw_lit(&w, ",");
		if (src->st[k] == NULL) {
			jw_lit(&w, "null");
			continue;
		}
		jw_lit(&w, src->st[k]->tee ? "{\"tee\":true" :
		    "{\"tee\":false");
		jw_lit(&w, src->st[k]->console ? ",\"console\":true}" :
		    ",\"console\":false}");
	}
	jw_lit(&w, "]}");
	return (w.overflow ? 0 : w.len);
}

void
handover_renew(struct source *src)
{
	static char	id[MESHLOG_MSG_MAX / 2];

	keeper_identity(src->id, id, handover_identity(src, id, sizeof id));
}

void
handover_slot_begin(struct stream *s)
{
	if (s->slot < 0)
		return;
	keeper_slot(s->slot)->snap = UINT64_MAX;
	/* A kill may come between any two stores: keep them in order. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

void
handover_slot_end(struct stream *s)
{
	volatile struct keeper_reading	*rd = keeper_reading();
	volatile struct keeper_slot	*sl;
	const char			*rest;
	size_t				 len;

	if (s->slot < 0)
		return;
	/* Found again: a stream made meanwhile may have moved the slots. */
	sl = keeper_slot(s->slot);
	if (split_pending(&s->split, &rest, &len) != 0 ||
	    len > KEEPER_SLOT_DATA)
		return;
	memcpy((char *)sl->data, rest, len);
	sl->len = (uint32_t)len;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	/* The read is cut: what the slot holds follows it. */
	if (rd != NULL && rd->state == KEEPER_READ && rd->slot == s->slot) {
		sl->gen = rd->gen;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	}
	sl->snap = sl->done;
}

/* stream_move reads up to SOURCE_READ into what this gives. */
_Static_assert(SOURCE_READ <= KEEPER_READ_MAX, "a read fits the keeper's");

/* Where the next read goes in the read's memfd (0: not set yet). */
static off_t	handover_at;

char *
handover_read_buf(struct stream *s, char *fallback,
    const struct dest_note **note)
{
	static struct dest_note		 dn;
	static uint64_t			 gen;
	volatile struct keeper_reading	*rd = keeper_reading();
	volatile struct keeper_slot	*sl;
	char				*data;
	int				 fd = keeper_reading_fd();

	*note = NULL;
	if (s->slot < 0 || rd == NULL || fd == -1)
		return (fallback);
	rd->state = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	/* The ring is used up: begin it again. */
	if (handover_at < KEEPER_READ_FIRST ||
	    handover_at + KEEPER_READ_MAX > KEEPER_READING_SIZE) {
		if (lseek(fd, KEEPER_READ_FIRST, SEEK_SET) == -1)
			return (fallback);
		handover_at = KEEPER_READ_FIRST;
	}
	data = (char *)rd + handover_at;
	sl = keeper_slot(s->slot);
	rd->plen = 0;
	if (sl->snap == sl->done && sl->len <= KEEPER_SLOT_DATA) {
		memcpy(data - sl->len, (const char *)sl->data, sl->len);
		rd->plen = sl->len;
	}
	rd->slot = s->slot;
	rd->off = (uint64_t)handover_at;
	rd->done0 = sl->done;
	rd->ns = 0;
	rd->passed = 0;
	rd->gen = ++gen;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	rd->state = KEEPER_READ;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	dn.fd = fd;
	dn.passed = &rd->passed;
	dn.dest_at = &rd->dest_at;
	*note = &dn;
	return (data);
}

void
handover_read_done(size_t n, const struct timespec *at)
{
	volatile struct keeper_reading	*rd = keeper_reading();

	/* The memfd's offset moved with the bytes taken. */
	handover_at += (off_t)n;
	rd->ns = (uint64_t)at->tv_sec * 1000000000 + (uint64_t)at->tv_nsec;
}

/* A JSON integer in [lo, hi], into *v; -1 when it is not one. */
static int
handover_int(json_t *o, const char *key, long long lo, long long hi,
    long long *v)
{
	json_t	*j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < lo ||
	    json_integer_value(j) > hi)
		return (-1);
	*v = json_integer_value(j);
	return (0);
}

/* The same where null stands for -1. */
static int
handover_int_or_null(json_t *o, const char *key, long long hi, long *v)
{
	long long	x;

	if (json_is_null(json_object_get(o, key))) {
		*v = -1;
		return (0);
	}
	if (handover_int(o, key, 0, hi, &x) != 0)
		return (-1);
	*v = (long)x;
	return (0);
}

/* Read the message's numbers and routes; -1 with *cause. */
static int
handover_parse(json_t *o, json_t *id, struct handover *h, unsigned *mask,
    char **cause)
{
	json_t		*un = json_object_get(o, "unlogged");
	json_t		*st = json_object_get(id, "streams"), *e;
	long long	 v;
	int		 k;

	memset(h, 0, sizeof *h);
	if (handover_int(o, "id", 1, INT64_MAX, &v) != 0)
		goto bad;
	h->old = (unsigned long long)v;
	if (handover_int(o, "since_ns", 0, INT64_MAX, &h->since_ns) != 0 ||
	    handover_int(o, "fds", 0, 127, &v) != 0)
		goto bad;
	*mask = (unsigned)v;
	if (!json_is_array(un) || json_array_size(un) != 2 ||
	    !json_is_array(st) || json_array_size(st) != 2)
		goto bad;
	for (k = 0; k < 2; k++) {
		e = json_array_get(un, (size_t)k);
		if (!json_is_integer(e) || json_integer_value(e) < 0)
			goto bad;
		h->unlogged[k] = (unsigned long long)json_integer_value(e);
		e = json_array_get(st, (size_t)k);
		if (json_is_null(e)) {
			/* No stream: no pipe and no destination for it. */
			if (*mask & (3u << (2 * k)))
				goto bad;
			continue;
		}
		if (!json_is_object(e) ||
		    !json_is_boolean(json_object_get(e, "tee")) ||
		    !json_is_boolean(json_object_get(e, "console")) ||
		    !(*mask & (1u << (2 * k))))
			goto bad;
		h->tee[k] = json_is_true(json_object_get(e, "tee"));
		h->console[k] = json_is_true(json_object_get(e, "console"));
	}
	return (0);
bad:
	xasprintf(cause, "handover needs id, since_ns, fds (0-127), unlogged "
	    "[n, n] and identity.streams [route|null, route|null], a pipe "
	    "for each stream");
	return (-1);
}

/* The source_open of a source taken back from a keeper. */
static void
handover_fields(struct jw *w, struct source *src, const void *arg)
{
	const struct handover	*h = arg;

	jw_lit(w, ",\"ppid\":");
	jw_int(w, src->ppid);
	source_argv_json(w, src->argv);
	jw_lit(w, ",\"world_size\":");
	jw_int_or_null(w, src->world_size);
	source_streams_json(w, src, "streams", STREAMS_ALL);
	jw_lit(w, ",\"resumes\":");
	jw_int(w, (long long)h->old);
	jw_lit(w, ",\"from_keeper\":true");
}

/* One {"stdout":n,"stderr":n} field. */
static void
handover_counts(struct jw *w, const char *key, const unsigned long long *n)
{
	jw_lit(w, ",\"");
	jw_lit(w, key);
	jw_lit(w, "\":{\"stdout\":");
	jw_int(w, (long long)n[0]);
	jw_lit(w, ",\"stderr\":");
	jw_int(w, (long long)n[1]);
	jw_lit(w, "}");
}

/*
 * The handover event: when the old collector went, how much the keeper
 * kept for this log, and what only reached the destination.
 */
static void
handover_event(struct source *src, const struct handover *h)
{
	struct timespec	since;
	char		ts[TS_LEN], buf[1024];
	struct jw	w;

	since.tv_sec = (time_t)(h->since_ns / 1000000000);
	since.tv_nsec = (long)(h->since_ns % 1000000000);
	record_ts(ts, &since);
	jw_init(&w, buf, sizeof buf);
	source_event_head(&w, src, "handover");
	jw_lit(&w, ",\"resumes\":");
	jw_int(&w, (long long)h->old);
	jw_lit(&w, ",\"since\":\"");
	jw_lit(&w, ts);
	jw_lit(&w, "\"");
	handover_counts(&w, "replayed_bytes", h->replayed);
	handover_counts(&w, "unlogged_bytes", h->unlogged);
	jw_lit(&w, "}");
	source_log_text(&w);
}

/* A keeper reads 64 KiB at a time: a longer chunk is not one of its. */
#define HANDOVER_CHUNK_MAX	(1024 * 1024)

/*
 * Walk the keeper's chunks in kept (fd): count them into h->replayed when
 * src is NULL, else feed them to src's streams. Read with pread, not
 * mapped: whoever sent it may still shrink it. -1 when they are not well
 * formed.
 */
static int
handover_chunks(int kept, struct source *src, struct handover *h)
{
	struct keeper_chunk	 c;
	struct timespec		 at;
	char			*buf = NULL, one;
	off_t			 off = 0;
	ssize_t			 r;
	int			 rc = -1;

	if (kept == -1)
		return (0);
	for (;;) {
		r = pread(kept, &c, sizeof c, off);
		if (r == 0) {
			rc = 0;
			break;
		}
		if (r != (ssize_t)sizeof c || c.stream > 1 ||
		    c.len > HANDOVER_CHUNK_MAX ||
		    (src != NULL && src->st[c.stream] == NULL))
			break;
		off += (off_t)sizeof c;
		if (src == NULL) {
			/* Only that the bytes are there. */
			if (c.len > 0 && pread(kept, &one, 1, off + c.len - 1) !=
			    1)
				break;
			h->replayed[c.stream] += c.len;
		} else {
			if (buf == NULL)
				buf = xmalloc(HANDOVER_CHUNK_MAX);
			if (pread(kept, buf, c.len, off) != (ssize_t)c.len)
				break;
			at.tv_sec = (time_t)(c.ns / 1000000000);
			at.tv_nsec = (long)(c.ns % 1000000000);
			/* A read the old collector was cutting: some logged. */
			src->st[c.stream]->skip = c.logged;
			stream_bytes_at(src->st[c.stream], buf, c.len, &at);
			src->st[c.stream]->skip = 0;
		}
		off += (off_t)c.len;
	}
	free(buf);
	return (rc);
}

/*
 * Whether the descriptors would make the collector feed itself: a pipe it
 * already reads or writes, or a destination that is a pipe it reads or is
 * handed (the tee would write into what it reads). 0 when they would not.
 */
static int
handover_loops(const int *slot, const struct stat *sb)
{
	struct stream	 key;
	struct stat	 ob;
	int		 k, i;

	for (k = 0; k < 2; k++) {
		if (slot[2 * k] != -1) {
			key.dev = sb[k].st_dev;
			key.ino = sb[k].st_ino;
			if (RB_FIND(streams, &stream_tree, &key) != NULL ||
			    dest_known(key.dev, key.ino))
				return (-1);
		}
		if (slot[2 * k + 1] == -1 || fstat(slot[2 * k + 1], &ob) != 0 ||
		    !S_ISFIFO(ob.st_mode))
			continue;
		key.dev = ob.st_dev;
		key.ino = ob.st_ino;
		if (RB_FIND(streams, &stream_tree, &key) != NULL)
			return (-1);
		for (i = 0; i < 2; i++) {
			if (slot[2 * i] != -1 && sb[i].st_dev == ob.st_dev &&
			    sb[i].st_ino == ob.st_ino)
				return (-1);
		}
	}
	return (0);
}

/*
 * Take the claim in memfd fd (keeper_claim): mapped, once it went from
 * offered to being taken; NULL when the keeper withdrew it or it is no
 * claim.
 */
static uint32_t *
handover_claim(int fd)
{
	uint32_t	*claim, v = CLAIM_OFFERED;
	struct stat	 sb;

	if (fstat(fd, &sb) != 0 || sb.st_size < (off_t)sizeof *claim ||
	    (claim = mmap(NULL, sizeof *claim, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0)) == MAP_FAILED)
		return (NULL);
	if (__atomic_compare_exchange_n(claim, &v, CLAIM_TAKING, 0,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return (claim);
	munmap(claim, sizeof *claim);
	return (NULL);
}

uint64_t
source_handover(json_t *o, int *fds, int nfds, char **cause)
{
	json_t		*id = json_object_get(o, "identity"), *host, *argv, *v;
	struct handover	 h;
	struct source	*src;
	struct stream	*s;
	struct stat	 sb[2];
	long long	 pid, ppid;
	long		 rank, world;
	unsigned	 mask;
	uint32_t	*claim = NULL;
	int		 slot[HANDOVER_FDS], b, k, n;
	size_t		 i;

	for (b = 0; b < HANDOVER_FDS; b++)
		slot[b] = -1;
	if (!json_is_object(id)) {
		xasprintf(cause, "handover needs an identity object");
		goto refuse;
	}
	if (handover_parse(o, id, &h, &mask, cause) != 0)
		goto refuse;
	for (b = 0, n = 0; b < HANDOVER_FDS; b++) {
		if (mask & (1u << b))
			n++;
	}
	if (n != nfds) {
		xasprintf(cause, "handover names %d descriptors but carries "
		    "%d", n, nfds);
		goto refuse;
	}
	for (b = 0, n = 0; b < HANDOVER_FDS; b++) {
		if (mask & (1u << b))
			slot[b] = fds[n++];
	}
	host = json_object_get(id, "host");
	argv = json_object_get(id, "argv");
	if (handover_int(id, "pid", 1, INT32_MAX, &pid) != 0 ||
	    handover_int(id, "ppid", 0, INT32_MAX, &ppid) != 0 ||
	    handover_int_or_null(id, "rank", INT32_MAX, &rank) != 0 ||
	    handover_int_or_null(id, "world_size", INT32_MAX, &world) != 0 ||
	    !json_is_string(host) || json_string_length(host) > 255 ||
	    !json_is_array(argv) ||
	    !json_is_boolean(json_object_get(id, "runtime"))) {
		xasprintf(cause, "handover identity needs pid, ppid, rank, "
		    "world_size, host, argv and runtime");
		goto refuse;
	}
	json_array_foreach(argv, i, v) {
		if (!json_is_string(v)) {
			xasprintf(cause, "handover identity: argv holds "
			    "strings only");
			goto refuse;
		}
	}
	for (k = 0; k < 2; k++) {
		if (slot[2 * k] != -1 &&
		    source_check_pipe(slot[2 * k], &sb[k]) != 0) {
			xasprintf(cause, "handover: %s is not a pipe's read "
			    "end", stream_names[k]);
			goto refuse;
		}
	}
	if (handover_loops(slot, sb) != 0) {
		xasprintf(cause, "handover: a pipe the collector already reads "
		    "or writes, or a destination that is a captured pipe");
		goto refuse;
	}
	if (handover_chunks(slot[HANDOVER_KEPT], NULL, &h) != 0) {
		xasprintf(cause, "handover: the kept bytes are not whole "
		    "chunks");
		goto refuse;
	}
	/* Ours from here, unless the keeper withdrew it (keeper_claim). */
	if (slot[HANDOVER_CLAIM] != -1 &&
	    (claim = handover_claim(slot[HANDOVER_CLAIM])) == NULL) {
		xasprintf(cause, "handover: the keeper withdrew it");
		goto refuse;
	}
	src = source_new((long)pid, rank, world, json_string_value(host),
	    argv);
	src->claim = slot[HANDOVER_CLAIM];
	src->ppid = (long)ppid;
	src->announced = 1;
	src->taken_back = 1;
	src->pidfd = slot[HANDOVER_PIDFD];
	src->runtime = json_is_true(json_object_get(id, "runtime"));
	src->rank_late = json_is_true(json_object_get(id, "rank_late"));
	src->helper = json_is_true(json_object_get(id, "helper"));
	source_label(src);
	for (k = 0; k < 2; k++) {
		if (slot[2 * k] == -1)
			continue;
		s = stream_new(src, k, slot[2 * k], &sb[k]);
		if (slot[2 * k + 1] != -1)
			s->dest = dest_get(slot[2 * k + 1]);
		s->tee = h.tee[k] && s->dest != NULL;
		s->console = h.console[k];
		stream_attach(s, 1);
	}
	/*
	 * Logged before our keeper has it: killed in between, the old keeper
	 * goes on and offers it again, kept bytes and all, which the next
	 * collector logs a second time; none is lost.
	 */
	source_open_log(src, handover_fields, &h);
	handover_event(src, &h);
	(void)handover_chunks(slot[HANDOVER_KEPT], src, &h);
	if (slot[HANDOVER_KEPT] != -1)
		close(slot[HANDOVER_KEPT]);
	source_add(src);
	/* Our keeper has it: the old one lets go. */
	if (claim != NULL) {
		__atomic_store_n(claim, CLAIM_KEPT, __ATOMIC_SEQ_CST);
		munmap(claim, sizeof *claim);
		close(slot[HANDOVER_CLAIM]);
		src->claim = -1;
	}
	if (h.unlogged[0] + h.unlogged[1] > 0)
		log_warn("pid %ld: %llu bytes written while no collector ran "
		    "reached only their destination", src->pid,
		    h.unlogged[0] + h.unlogged[1]);
	log_debug("source %llu: pid %ld taken back from a keeper (was %llu)",
	    (unsigned long long)src->id, src->pid, h.old);
	return (source_check_gone(src));
refuse:
	for (k = 0; k < nfds; k++)
		close(fds[k]);
	return (0);
}
