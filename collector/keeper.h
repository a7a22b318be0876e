/*
 * The keeper (keeper.c), and what the collector shares with it in memfds
 * both map or read: the JSON log's buffer, each stream's slot, and the
 * bytes the keeper kept for a restarted collector. Included by keeper.c
 * and the modules that use it (main.c, jsonlog.c, source.c, handover.c).
 */
#ifndef MESHLOG_KEEPER_H
#define MESHLOG_KEEPER_H

#include "collector.h"

/*
 * Fork the keeper; call before anything else is opened. It ignores the
 * signals in hold and holds them blocked: one sent to the whole process
 * group waits there (a blocked signal is never discarded as ignored), so
 * that the collector can tell it from one sent to it alone.
 */
void	keeper_start(const sigset_t *hold);
/*
 * Hand the keeper a source's descriptors (-1 where absent) and its identity
 * (JSON of len bytes, as source_handover reads it; NULL: none); claim is
 * the claim's memfd of a source being taken back (-1: none).
 */
void	keeper_add(uint64_t id, const int pipes[2], const int dests[2],
	    const int slots[2], int pidfd, int claim, const char *identity,
	    size_t len);
/* The source's identity changed (a rank told, an exec): the keeper's
 * copy too. len 0 sends nothing. */
void	keeper_identity(uint64_t id, const char *identity, size_t len);
/*
 * Who has a process a keeper offers to a restarted collector: a word in a
 * memfd sent with the offer, changed only by compare-and-swap. The new
 * collector takes it (OFFERED to TAKING), gives it to its own keeper with
 * the claim, then says so (KEPT) and starts reading; the old keeper
 * withdraws an offer it had no answer to (OFFERED to WITHDRAWN). Wherever
 * a kill falls, one keeper copies the pipes, never two: the old one unless
 * the word says KEPT, the new one only if it does.
 */
enum keeper_claim {
	CLAIM_OFFERED,
	CLAIM_TAKING,
	CLAIM_KEPT,
	CLAIM_WITHDRAWN
};
/* In the keeper: whether the claim in memfd fd says KEPT. */
int	keeper_claimed(int fd);
/*
 * In the keeper: an offer on sock had no answer (gone: the collector
 * closed the connection): withdraw it unless the collector took it,
 * waiting while one still there takes it. 1 taken, -1 not.
 */
int	keeper_settle(int sock, uint32_t *claim, int gone);
/* The keeper's pid, or -1 when there is none to ask. */
pid_t	keeper_pid_of(void);
/* The keeper lets go of a signal it holds pending. */
void	keeper_drop(int sig);
/* The keeper lets go of a source's streams (bit i: stream i). */
void	keeper_close(uint64_t id, unsigned streams);
/*
 * The collector ends as it meant to: a keeper left with writers (a
 * launch's background processes) copies their output without saying that
 * the collector is gone, as it does when it was killed.
 */
void	keeper_bye(void);
/* Serve mode: the socket a restarted collector will listen on. */
void	keeper_handover_path(const char *path);

/*
 * The JSON log's descriptor and the memfd its buffer lives in (-1, -1: the
 * log is closed): the keeper writes what the buffer holds unwritten if the
 * collector dies.
 */
void	keeper_log(int logfd, int memfd);
/*
 * The head of that memfd, JSONLOG_SHARED_HEAD bytes before the buffer:
 * the buffer's first len bytes are whole records, and byte i of it is
 * byte base + i of the file; what the file lacks of them is unwritten.
 */
struct jsonlog_shared {
	uint64_t	len;
	int64_t		base;
	uint64_t	cap;
};
#define JSONLOG_SHARED_HEAD	64
/*
 * A stream's slot, in memory shared with the keeper: the beginning of a
 * line the collector has read but not finished, so that a keeper that
 * hands the stream to a restarted collector gives it back whole. data is
 * good only while snap == done: no record of the stream was committed
 * since it was taken, and it is not being changed (snap is UINT64_MAX
 * while the stream's bytes are being cut), or when gen is the reading's
 * (struct keeper_reading): the cut of that read is through.
 *
 * Records (one, or a run of them) are committed in three steps, any two
 * of which a kill may part: pend_done and pend_len say which count and
 * which log buffer length (struct jsonlog_shared) the commit makes; then
 * the buffer's length goes up; then done does.
 */
#define KEEPER_SLOT_DATA	4048
struct keeper_slot {
	uint64_t	snap;
	uint64_t	done;		/* the stream's records in the log */
	uint64_t	gen;		/* the read whose cut ended last */
	uint64_t	pend_done;
	uint64_t	pend_len;
	uint32_t	len;
	uint32_t	pad;
	char		data[KEEPER_SLOT_DATA];
};
/*
 * The read under way, in memory shared with the keeper, so that a
 * collector killed at any point loses no byte and passes none twice. The
 * collector says which stream it reads and sets state to KEEPER_READ,
 * then splices the pipe into the read's memfd at off (struct dest_note):
 * the memfd's offset, which the kernel moves with the bytes it takes, is
 * where the read ends. passed says what the destination has of it
 * (KEEPER_PASSED_ALL: nothing is owed it); a pipe destination gets the
 * bytes before they are taken, so passed may be beyond the end. For a
 * file (not opened for appending) passed is KEEPER_PASSED_AT: what the
 * file took is how far its offset, which the keeper shares, moved from
 * dest_at. The beginning of a line its stream's slot held (plen bytes)
 * is copied just before off: if the collector dies before the cut is
 * through, the keeper gives the whole to a restarted collector, which
 * leaves out the first records of it, those the log has (the slot's done
 * less done0).
 */
#define KEEPER_READ		1
#define KEEPER_READING_HEAD	64
#define KEEPER_PASSED_ALL	UINT32_MAX
#define KEEPER_PASSED_AT	(UINT32_MAX - 1)
struct keeper_reading {
	uint64_t	state;		/* KEEPER_READ, or 0: being filled */
	int64_t		slot;
	uint64_t	gen;
	uint64_t	done0;		/* the slot's done when it was read */
	uint64_t	ns;		/* when, CLOCK_REALTIME */
	uint64_t	off;		/* where the read begins in the memfd */
	int64_t		dest_at;	/* a file's offset before its write */
	uint32_t	plen;		/* the slot's line beginning */
	uint32_t	passed;		/* what the destination has of it */
};
#define KEEPER_READ_MAX		(256 * 1024)	/* SOURCE_READ at most */
/*
 * Reads go one after another into a ring, so that the memfd's offset is
 * set again only when the ring is used up, not at every read.
 */
#define KEEPER_READ_RING	(4 * KEEPER_READ_MAX)
#define KEEPER_READ_FIRST	(KEEPER_READING_HEAD + KEEPER_SLOT_DATA)
#define KEEPER_READING_SIZE	(KEEPER_READ_FIRST + KEEPER_READ_RING)
/* A slot for a new stream, or -1 (no keeper); free it when it closes. */
int	keeper_slot_new(void);
void	keeper_slot_free(int);
struct keeper_slot *keeper_slot(int);
/*
 * Commit n bytes of a line record written at jsonlog_reserve's pointer,
 * counted in its stream's slot (NULL: none) (jsonlog.c).
 */
void	jsonlog_commit_counted(size_t n, struct keeper_slot *);
/*
 * A run of k line records of one stream, committed at once: each written
 * at jsonlog_room(pending, its room), pending the bytes written before it
 * in the run; then jsonlog_commit_run(all the run's bytes, k, slot).
 * Nothing else may write the log while a run is pending.
 */
char	*jsonlog_room(size_t pending, size_t n);
void	jsonlog_commit_run(size_t n, size_t k, struct keeper_slot *);
/* The shared read (NULL: none, no keeper), and its memfd. */
struct keeper_reading *keeper_reading(void);
int	keeper_reading_fd(void);
/*
 * A chunk the keeper copied while no collector ran, before its bytes; or a
 * read the dead collector was cutting, whose first logged records the log
 * has already.
 */
struct keeper_chunk {
	uint32_t	stream;
	uint32_t	len;
	uint64_t	ns;		/* when it was read, CLOCK_REALTIME */
	uint64_t	logged;
};

/* Whether a keeper runs (collector side). */
int	keeper_active(void);
/* Give the keeper the slots' memfd and the read's (keepmem.c). */
void	keeper_give_slots(int slots, int reading);
/* A new memfd of size bytes, mapped shared at *map; its fd, or -1. */
int	keeper_memfd_map(const char *name, size_t size, void **map);
/* In the keeper: write all of buf to fd, waiting when it would block. */
int	keeper_write_all(int fd, const void *buf, size_t n);
/*
 * In the keeper: write n bytes of memfd from off to fd, waiting while it
 * would block; -1 when a write fails (a short memfd just ends it: 0).
 */
int	keeper_copy_out(int memfd, off_t off, uint64_t n, int fd);
/*
 * In the keeper, the collector gone: write the records the JSON log's
 * buffer (memfd logbuf, struct jsonlog_shared) committed and the file
 * logfd lacks, or cut the file back to its last whole record when that
 * fails; close both. 1 with *head as the collector left it, 0 unread.
 */
int	keeper_salvage_log(int logfd, int logbuf,
	    struct jsonlog_shared *head);
/*
 * A destination's queue lives in memfd from now on (destq.c): the keeper
 * writes what it holds to fd if the collector dies; until unqueued.
 */
void	keeper_queue(uint64_t id, int fd, int memfd);
void	keeper_unqueue(uint64_t id);

/*
 * The head of a destination queue's memfd, DESTQ_HEAD bytes before them:
 * bytes [start, end) wait, or [ostart, oend) while moving is set.
 */
struct destq_head {
	uint64_t	start;
	uint64_t	end;
	uint64_t	moving;
	uint64_t	ostart;
	uint64_t	oend;
};
#define DESTQ_HEAD	64
/*
 * A destination's queue (destq.c): bytes it could not take yet, shared
 * with the keeper once the first one waits (fd: what the keeper writes
 * them to then; -1: never shared).
 */
struct destq {
	char		*buf;
	size_t		 start, end, cap;
	int		 fd;
	int		 memfd;
	uint64_t	 id;
	void		*sh;
};
void		 destq_init(struct destq *, int fd);
size_t		 destq_len(const struct destq *);
void		 destq_add(struct destq *, const void *, size_t);
/* The first waiting bytes (NULL: none), *n of them; then drain what went. */
const char	*destq_peek(const struct destq *, size_t *n);
void		 destq_drain(struct destq *, size_t);
void		 destq_free(struct destq *);
/* The keeper's side: take, let go, and at the collector's death write. */
void		 destq_keep(uint64_t id, int fd, int memfd);
void		 destq_unkeep(uint64_t id);
void		 destq_write_kept(void);

#endif
