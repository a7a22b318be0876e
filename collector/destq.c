/*
 * A destination's queue: the bytes a terminal, socket or file could not
 * take yet. Once the first byte waits, the queue lives in a memfd shared
 * with the keeper, so that a collector killed at once (SIGKILL, the OOM
 * killer) leaves the keeper able to write what was queued before it goes
 * on copying the pipes: a terminal loses no output with the collector.
 *
 * The bytes [start, end) of the buffer wait. Bytes are added past end and
 * then end moves; a write takes from start and then start moves; a kill
 * between a write and its store shows those bytes twice, never loses
 * them. Moving the waiting bytes to the front happens only when they do
 * not overlap their new place, and the head keeps the old bounds meanwhile
 * (moving is set), so a kill in the middle leaves them whole.
 *
 * The keeper's side is here too: the queues it was given, written out
 * when the collector is gone.
 */

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"
#include "keeper.h"

/* Room a queue starts with, and the most an empty one keeps. */
#define DESTQ_FIRST	(64 * 1024)
#define DESTQ_KEEP	(1024 * 1024)

static uint64_t	destq_ids;

void
destq_init(struct destq *q, int fd)
{
	memset(q, 0, sizeof *q);
	q->memfd = -1;
	q->fd = fd;
}

size_t
destq_len(const struct destq *q)
{
	return (q->end - q->start);
}

/* Say the bounds in the shared head. */
static void
destq_share(struct destq *q)
{
	volatile struct destq_head	*h = q->sh;

	if (h == NULL)
		return;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	h->end = q->end;
	h->start = q->start;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* Room for cap bytes, keeping those there: shared when it can be. */
static void
destq_resize(struct destq *q, size_t cap)
{
	void	*m;
	size_t	 sz = DESTQ_HEAD + cap;

	if (q->memfd == -1 && q->buf == NULL && q->fd != -1 &&
	    keeper_active() &&
	    (q->memfd = keeper_memfd_map("meshlog-destq", sz, &m)) != -1) {
		q->sh = m;
		q->buf = (char *)m + DESTQ_HEAD;
		q->cap = cap;
		q->id = ++destq_ids;
		keeper_queue(q->id, q->fd, q->memfd);
		return;
	}
	if (q->memfd == -1) {
		q->buf = xrealloc(q->buf, cap);
		q->cap = cap;
		return;
	}
	if (ftruncate(q->memfd, (off_t)sz) != 0 ||
	    (m = mremap((char *)q->sh, DESTQ_HEAD + q->cap, sz,
	    MREMAP_MAYMOVE)) == MAP_FAILED)
		fatal("destination queue");
	q->sh = m;
	q->buf = (char *)m + DESTQ_HEAD;
	q->cap = cap;
}

/* Move the waiting bytes to the front, when they do not overlap it. */
static int
destq_compact(struct destq *q)
{
	volatile struct destq_head	*h = q->sh;
	size_t				 len = destq_len(q);

	if (q->start == 0 || q->start < len)
		return (-1);
	if (h != NULL) {
		h->ostart = q->start;
		h->oend = q->end;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		h->moving = 1;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	}
	memcpy(q->buf, q->buf + q->start, len);
	q->start = 0;
	q->end = len;
	if (h != NULL) {
		h->start = 0;
		h->end = len;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		h->moving = 0;
	}
	return (0);
}

void
destq_add(struct destq *q, const void *p, size_t n)
{
	size_t	cap;

	if (n == 0)
		return;
	if (q->end + n > q->cap &&
	    (destq_compact(q) != 0 || q->end + n > q->cap)) {
		for (cap = q->cap == 0 ? DESTQ_FIRST : q->cap;
		    cap < q->end + n; cap *= 2)
			;
		destq_resize(q, cap);
	}
	memcpy(q->buf + q->end, p, n);
	q->end += n;
	destq_share(q);
}

const char *
destq_peek(const struct destq *q, size_t *n)
{
	*n = destq_len(q);
	return (*n > 0 ? q->buf + q->start : NULL);
}

void
destq_drain(struct destq *q, size_t n)
{
	volatile struct destq_head	*h = q->sh;

	if (n > destq_len(q))
		n = destq_len(q);
	q->start += n;
	if (q->start == q->end) {
		/* Empty: from the front again; end first, so never > start. */
		q->start = q->end = 0;
		if (h != NULL) {
			h->end = 0;
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			h->start = 0;
		}
		/* A burst's room goes back once it is written. */
		if (q->cap > DESTQ_KEEP)
			destq_resize(q, DESTQ_FIRST);
		return;
	}
	destq_share(q);
}

void
destq_free(struct destq *q)
{
	if (q->memfd != -1) {
		keeper_unqueue(q->id);
		munmap((char *)q->sh, DESTQ_HEAD + q->cap);
		close(q->memfd);
	} else
		free(q->buf);
	destq_init(q, -1);
}

/* The keeper's side: the queues it holds, by id. */
struct destq_kept {
	uint64_t	id;
	int		fd;
	int		memfd;
};
static struct destq_kept	*kept;
static size_t			 nkept, capkept;

void
destq_keep(uint64_t id, int fd, int memfd)
{
	if (nkept == capkept) {
		capkept = capkept == 0 ? 16 : capkept * 2;
		kept = xrealloc(kept, capkept * sizeof *kept);
	}
	kept[nkept].id = id;
	kept[nkept].fd = fd;
	kept[nkept++].memfd = memfd;
}

void
destq_unkeep(uint64_t id)
{
	size_t	i;

	for (i = 0; i < nkept; i++) {
		if (kept[i].id != id)
			continue;
		close(kept[i].fd);
		close(kept[i].memfd);
		kept[i] = kept[--nkept];
		return;
	}
}

/*
 * The collector is gone: write what each queue held, before anything the
 * keeper copies from the pipes, then let the queues go. Read with pread,
 * checked against the memfd's size: nothing in it is trusted.
 */
void
destq_write_kept(void)
{
	struct destq_head	h;
	struct stat		sb;
	uint64_t		at, end;
	size_t			i;

	for (i = 0; i < nkept; i++) {
		if (pread(kept[i].memfd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
		    fstat(kept[i].memfd, &sb) != 0 || sb.st_size < DESTQ_HEAD)
			goto next;
		at = h.moving ? h.ostart : h.start;
		end = h.moving ? h.oend : h.end;
		if (end <= at || end > (uint64_t)sb.st_size - DESTQ_HEAD)
			goto next;
		(void)keeper_copy_out(kept[i].memfd, (off_t)(DESTQ_HEAD + at),
		    end - at, kept[i].fd);
next:
		close(kept[i].fd);
		close(kept[i].memfd);
	}
	nkept = 0;
}
