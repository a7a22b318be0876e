/*
 * The memory the collector shares with its keeper. The collector's side:
 * each stream's slot (the beginning of a line read but not finished) and
 * the read under way (struct keeper_reading), so that the keeper can end
 * what a collector killed at any point was doing. The keeper's side: the
 * means to write out what such memory holds (the JSON log's buffer among
 * it), and the claims that say who has a process offered to a restarted
 * collector (keeper_claim).
 */

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "collector.h"
#include "keeper.h"

/*
 * The streams' slots live in a memfd the keeper was given, grown as
 * streams come; a slot is reached by its number, since growing may move
 * the mapping.
 */
static int	 slot_fd = -1;
static char	*slot_map;
static struct keeper_reading *reading;
static int	 reading_fd = -1;
static size_t	 slot_cap, slot_next;
static int	*slot_spare;
static size_t	 slot_nspare, slot_capspare;

int
keeper_memfd_map(const char *name, size_t size, void **map)
{
	int	fd = memfd_create(name, MFD_CLOEXEC);

	if (fd != -1 && (ftruncate(fd, (off_t)size) != 0 || (*map = mmap(NULL,
	    size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)) {
		close(fd);
		fd = -1;
	}
	return (fd);
}

/* The slots' memfd and the read's, given to the keeper; 0 or -1. */
static int
keeper_slots_open(void)
{
	int	 fds[2];
	void	*p;

	if ((fds[1] = keeper_memfd_map("meshlog-reading",
	    KEEPER_READING_SIZE, &p)) == -1)
		return (-1);
	if ((fds[0] = memfd_create("meshlog-slots", MFD_CLOEXEC)) == -1) {
		munmap(p, KEEPER_READING_SIZE);
		close(fds[1]);
		return (-1);
	}
	reading = p;
	reading_fd = fds[1];
	slot_fd = fds[0];
	keeper_give_slots(fds[0], fds[1]);
	return (0);
}

struct keeper_reading *
keeper_reading(void)
{
	return (reading);
}

int
keeper_reading_fd(void)
{
	return (reading_fd);
}

struct keeper_slot *
keeper_slot(int i)
{
	return ((struct keeper_slot *)(void *)(slot_map +
	    (size_t)i * sizeof(struct keeper_slot)));
}

int
keeper_slot_new(void)
{
	struct keeper_slot	*sl;
	size_t			 cap;
	void			*p;
	int			 i;

	if (!keeper_active())
		return (-1);
	if (slot_fd == -1 && keeper_slots_open() != 0)
		return (-1);
	if (slot_nspare > 0)
		i = slot_spare[--slot_nspare];
	else {
		if (slot_next == slot_cap) {
			cap = slot_cap == 0 ? 64 : slot_cap * 2;
			if (ftruncate(slot_fd, (off_t)(cap *
			    sizeof(struct keeper_slot))) != 0)
				return (-1);
			p = slot_map == NULL ? mmap(NULL, cap *
			    sizeof(struct keeper_slot), PROT_READ | PROT_WRITE,
			    MAP_SHARED, slot_fd, 0) : mremap(slot_map,
			    slot_cap * sizeof(struct keeper_slot), cap *
			    sizeof(struct keeper_slot), MREMAP_MAYMOVE);
			if (p == MAP_FAILED)
				return (-1);
			slot_map = p;
			slot_cap = cap;
		}
		i = (int)slot_next++;
	}
	sl = keeper_slot(i);
	sl->snap = sl->done = sl->gen = sl->pend_done = 0;
	sl->len = 0;
	return (i);
}

void
keeper_slot_free(int i)
{
	if (i < 0)
		return;
	/* What is kept there is no stream's any more, nor the last read. */
	keeper_slot(i)->snap = UINT64_MAX;
	if (reading != NULL && reading->slot == i)
		reading->state = 0;
	if (slot_nspare == slot_capspare) {
		slot_capspare = slot_capspare == 0 ? 64 : slot_capspare * 2;
		slot_spare = xrealloc(slot_spare, slot_capspare *
		    sizeof *slot_spare);
	}
	slot_spare[slot_nspare++] = i;
}

/* Write all of p to fd, waiting when it would block; -1 when it cannot. */
int
keeper_write_all(int fd, const void *buf, size_t n)
{
	const char	*p = buf;
	struct pollfd	 pfd;
	ssize_t		 w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && errno == EAGAIN) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			(void)poll(&pfd, 1, 1000);
			continue;
		}
		if (w <= 0)
			return (-1);
		p += w;
		n -= (size_t)w;
	}
	return (0);
}

int
keeper_copy_out(int memfd, off_t off, uint64_t n, int fd)
{
	char	buf[65536];
	ssize_t	r;

	while (n > 0) {
		r = pread(memfd, buf, n < sizeof buf ? (size_t)n : sizeof buf,
		    off);
		if (r <= 0)
			return (0);
		if (keeper_write_all(fd, buf, (size_t)r) != 0)
			return (-1);
		off += r;
		n -= (uint64_t)r;
	}
	return (0);
}

/*
 * A write of the salvage failed (a full disk): cut the file back to its
 * last whole record, found in the buffer before what the file holds, so
 * that no torn record stays.
 */
static void
keeper_salvage_cut(int logfd, int logbuf, const struct jsonlog_shared *h)
{
	struct stat	sb;
	char		buf[4096];
	off_t		at, from;
	ssize_t		r, i;

	if (fstat(logfd, &sb) != 0)
		return;
	at = sb.st_size - (off_t)h->base;	/* buffer bytes in the file */
	if (at > (off_t)h->len)
		at = (off_t)h->len;
	while (at > 0) {
		from = at > (off_t)sizeof buf ? at - (off_t)sizeof buf : 0;
		r = pread(logbuf, buf, (size_t)(at - from),
		    JSONLOG_SHARED_HEAD + from);
		if (r != at - from)
			return;
		for (i = r; i > 0 && buf[i - 1] != '\n'; i--)
			;
		if (i > 0) {
			at = from + i;
			break;
		}
		at = from;
	}
	if (at >= 0)
		(void)ftruncate(logfd, (off_t)h->base + at);
}

int
keeper_salvage_log(int logfd, int logbuf, struct jsonlog_shared *head)
{
	struct jsonlog_shared	 h;
	struct stat		 sb;
	off_t			 at, end;
	int			 read_it = 0;

	if (pread(logbuf, &h, sizeof h, 0) != (ssize_t)sizeof h ||
	    fstat(logfd, &sb) != 0 || h.len > h.cap)
		goto out;
	*head = h;
	read_it = 1;
	/* Byte i of the buffer is byte base + i of the file. */
	at = sb.st_size - (off_t)h.base;
	end = (off_t)h.len;
	if (at < 0 || at > end)
		goto out;
	if (keeper_copy_out(logbuf, JSONLOG_SHARED_HEAD + at,
	    (uint64_t)(end - at), logfd) != 0)
		keeper_salvage_cut(logfd, logbuf, &h);
out:
	close(logfd);
	close(logbuf);
	return (read_it);
}

/* Whether the claim in memfd fd says the collector kept its process. */
int
keeper_claimed(int fd)
{
	uint32_t	v;

	return (pread(fd, &v, sizeof v, 0) == (ssize_t)sizeof v &&
	    v == CLAIM_KEPT);
}

/*
 * An offer had no answer (gone: the collector closed the connection):
 * withdraw it unless the collector took it (keeper_claim), waiting while
 * it is being taken by a collector that is still there. 1 taken, -1 not.
 */
int
keeper_settle(int sock, uint32_t *claim, int gone)
{
	uint32_t	v;
	char		c;
	ssize_t		r;

	for (;;) {
		v = CLAIM_OFFERED;
		if (__atomic_compare_exchange_n(claim, &v, CLAIM_WITHDRAWN, 0,
		    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			return (-1);
		if (v == CLAIM_KEPT)
			return (1);
		if (v != CLAIM_TAKING || gone)
			return (-1);
		r = read(sock, &c, 1);
		if (r == 0 || (r == -1 && errno != EAGAIN && errno != EINTR))
			gone = 1;
	}
}
