/*
 * A relay's spool: the frames it sends upstream, numbered and kept until
 * the upstream acknowledges them. Frames are written into an open chunk;
 * a sealed chunk waits in memory, or past the memory bound in an unnamed
 * file of the spool directory, until every frame in it is acknowledged.
 * Past both bounds nothing more is admitted: the caller counts what it
 * drops. Sending is the caller's: it takes the sealed chunks in order and
 * rewinds to the first one not acknowledged when a link starts again.
 */

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "collector.h"

void
spool_init(struct spool *sp, const char *dir, size_t mem_max,
    size_t disk_max)
{
	memset(sp, 0, sizeof *sp);
	TAILQ_INIT(&sp->chunks);
	sp->dir = dir;
	sp->mem_max = mem_max;
	sp->disk_max = disk_max;
	sp->disk_fd = -1;
}

void
spool_free(struct spool *sp)
{
	struct spool_chunk	*c;

	while ((c = TAILQ_FIRST(&sp->chunks)) != NULL) {
		TAILQ_REMOVE(&sp->chunks, c, entry);
		free(c->mem);
		free(c);
	}
	free(sp->cur);
	if (sp->disk_fd != -1)
		close(sp->disk_fd);
	spool_init(sp, sp->dir, sp->mem_max, sp->disk_max);
}

/* Make room for n more bytes in the open chunk. */
static char *
spool_reserve(struct spool *sp, size_t n)
{
	if (sp->cur_len + n > sp->cur_cap) {
		sp->cur_cap = sp->cur_len + n + SPOOL_CHUNK / 4;
		sp->cur = xrealloc(sp->cur, sp->cur_cap);
	}
	return (sp->cur + sp->cur_len);
}

/* Finish the open record batch, writing its length. */
static void
spool_close_batch(struct spool *sp)
{
	if (!sp->batch_open)
		return;
	wire_header(sp->cur + sp->batch_off, WIRE_RECORDS, sp->next_seq,
	    sp->cur_len - sp->batch_off - WIRE_HDR);
	sp->batch_open = 0;
}

/* Start a frame of type in the open chunk; its header is written later. */
static void
spool_begin(struct spool *sp, int type, size_t body)
{
	spool_close_batch(sp);
	spool_reserve(sp, WIRE_HDR + body);
	if (sp->cur_len == 0)
		sp->cur_lo = sp->next_seq + 1;
	sp->next_seq++;
	sp->batch_off = sp->cur_len;
	sp->cur_len += WIRE_HDR;
	if (type == WIRE_RECORDS)
		sp->batch_open = 1;
}

/* Open the spool file: unnamed, in the spool directory. */
static int
spool_disk_open(struct spool *sp)
{
	char	*path;
	int	 fd;

	if (sp->disk_fd != -1)
		return (0);
	if (sp->disk_broken || sp->disk_max == 0)
		return (-1);
	fd = open(sp->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd == -1) {
		xasprintf(&path, "%s/meshlog-spool.XXXXXX", sp->dir);
		if ((fd = mkostemp(path, O_CLOEXEC)) != -1)
			unlink(path);
		free(path);
	}
	if (fd == -1) {
		log_warn("cannot create a spool file in %s: %s; spooling in "
		    "memory only", sp->dir, strerror(errno));
		sp->disk_broken = 1;
		return (-1);
	}
	sp->disk_fd = fd;
	return (0);
}

/* Move the oldest chunk held in memory to the spool file; 0 or -1. */
static int
spool_spill(struct spool *sp)
{
	struct spool_chunk	*c;
	size_t			 done = 0;
	ssize_t			 n;

	TAILQ_FOREACH(c, &sp->chunks, entry) {
		if (c->mem != NULL)
			break;
	}
	if (c == NULL || spool_disk_open(sp) != 0 ||
	    (size_t)sp->disk_end + c->len > sp->disk_max)
		return (-1);
	while (done < c->len) {
		n = pwrite(sp->disk_fd, c->mem + done, c->len - done,
		    sp->disk_end + (off_t)done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("spool file: %s; spooling in memory only",
			    n == -1 ? strerror(errno) : "short write");
			close(sp->disk_fd);
			sp->disk_fd = -1;
			sp->disk_broken = 1;
			return (-1);
		}
		done += (size_t)n;
	}
	c->off = sp->disk_end;
	sp->disk_end += (off_t)c->len;
	sp->disk_bytes += c->len;
	sp->mem_bytes -= c->len;
	free(c->mem);
	c->mem = NULL;
	return (0);
}

int
spool_admit(struct spool *sp, size_t n)
{
	while (sp->mem_bytes + sp->cur_len + n > sp->mem_max) {
		if (spool_spill(sp) != 0)
			return (sp->mem_bytes == 0 && sp->cur_len == 0);
	}
	return (1);
}

size_t
spool_record(struct spool *sp, const struct wire_rec *r)
{
	if (!sp->batch_open)
		spool_begin(sp, WIRE_RECORDS, 0);
	spool_reserve(sp, WIRE_REC_HDR + r->len);
	sp->cur_len += wire_record(sp->cur + sp->cur_len, r);
	return (sp->cur_len);
}

void
spool_event(struct spool *sp, const char *s, size_t n)
{
	spool_begin(sp, WIRE_EVENT, n);
	memcpy(sp->cur + sp->cur_len, s, n);
	sp->cur_len += n;
	wire_header(sp->cur + sp->batch_off, WIRE_EVENT, sp->next_seq, n);
}

int
spool_seal(struct spool *sp)
{
	struct spool_chunk	*c;

	if (sp->cur_len == 0)
		return (0);
	spool_close_batch(sp);
	c = xcalloc(1, sizeof *c);
	c->seq_lo = sp->cur_lo;
	c->seq_hi = sp->next_seq;
	c->len = sp->cur_len;
	c->mem = sp->cur;
	sp->cur = NULL;
	sp->cur_len = sp->cur_cap = 0;
	sp->mem_bytes += c->len;
	TAILQ_INSERT_TAIL(&sp->chunks, c, entry);
	sp->nchunks++;
	if (sp->unsent == NULL)
		sp->unsent = c;
	return (1);
}

int
spool_send(struct spool *sp, struct evbuffer *out, size_t window)
{
	struct spool_chunk	*c;
	char			*buf;
	size_t			 done;
	ssize_t			 n;
	int			 sent = 0;

	while ((c = sp->unsent) != NULL && evbuffer_get_length(out) < window) {
		/*
		 * Taken before it is added: adding runs out's callbacks (a
		 * sealed link's write callback asks for more at once), which
		 * must find the next chunk, not this one again.
		 */
		sp->unsent = TAILQ_NEXT(c, entry);
		sent++;
		if (c->mem != NULL)
			evbuffer_add(out, c->mem, c->len);
		else {
			buf = xmalloc(c->len);
			for (done = 0; done < c->len; done += (size_t)n) {
				n = pread(sp->disk_fd, buf + done,
				    c->len - done, c->off + (off_t)done);
				if (n == -1 && errno == EINTR) {
					n = 0;
					continue;
				}
				if (n <= 0)
					fatal("reading the spool file");
			}
			evbuffer_add(out, buf, c->len);
			free(buf);
		}
	}
	return (sent);
}

void
spool_rewind(struct spool *sp)
{
	sp->unsent = TAILQ_FIRST(&sp->chunks);
}

void
spool_ack(struct spool *sp, uint64_t seq)
{
	struct spool_chunk	*c;

	if (seq > sp->acked)
		sp->acked = seq;
	while ((c = TAILQ_FIRST(&sp->chunks)) != NULL && c->seq_hi <= seq) {
		if (sp->unsent == c)
			sp->unsent = TAILQ_NEXT(c, entry);
		TAILQ_REMOVE(&sp->chunks, c, entry);
		sp->nchunks--;
		if (c->mem != NULL) {
			sp->mem_bytes -= c->len;
			free(c->mem);
		} else
			sp->disk_bytes -= c->len;
		free(c);
	}
	if (sp->disk_bytes == 0 && sp->disk_end > 0) {
		if (ftruncate(sp->disk_fd, 0) == 0)
			sp->disk_end = 0;
	}
}

int
spool_empty(const struct spool *sp)
{
	return (TAILQ_EMPTY(&sp->chunks) && sp->cur_len == 0);
}
