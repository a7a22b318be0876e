/*
 * The keeper: a small process forked at start that holds a duplicate of
 * every pipe read end and original destination the collector receives. It
 * does nothing while the collector lives. If the collector dies, or exits
 * while writers are still alive, no writer sees SIGPIPE or EPIPE: the keeper
 * copies every pipe to its original destination until the last writer is
 * gone, then exits. Its writes may block on a slow destination; writers then
 * block too, as they would without meshlog.
 *
 * While the collector lives, the keeper also watches every destination
 * that is a pipe: when its last reader leaves, the keeper lets go of the
 * captured pipe at once, in parallel with the collector, so the writer's
 * next write fails with EPIPE as soon as both have (not one after the
 * other).
 *
 * A restart without a gap (serve mode): while it copies, the keeper also
 * keeps what it copied (bounded, in a memfd per process) and tries the
 * control socket every KEEPER_TRY_MS. A collector of the same user that
 * listens there is offered each process in turn ("handover"): identity,
 * pipes, destinations, pidfd and the kept bytes, which it logs with their
 * times without writing them again. What went past the bound reached only
 * the destination, and the handover says how many bytes that was.
 */

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "keeper.h"

enum keeper_op { KEEPER_ADD = 1, KEEPER_CLOSE = 2, KEEPER_PATH = 3,
    KEEPER_LOG = 4, KEEPER_SLOTS = 5, KEEPER_QUEUE = 6, KEEPER_UNQUEUE = 7,
    KEEPER_SIGNAL = 8, KEEPER_BYE = 9, KEEPER_IDENTITY = 10 };

/*
 * One message on the keeper socket. KEEPER_ADD: descriptors follow by mask
 * bit (2i: pipe of stream i, 2i+1: its dest, 4: the process's pidfd), and
 * the source's identity (JSON) follows the header. KEEPER_CLOSE: bit i
 * names stream i, whose pipe and dest the keeper closes. KEEPER_PATH: the
 * control socket a restarted collector listens on follows the header.
 * KEEPER_LOG: the JSON log and its buffer's memfd (bits 0 and 1), or none
 * when the log closed. KEEPER_SLOTS: the memfd of the streams' slots
 * (struct keeper_slot), whose numbers KEEPER_ADD gives, and that of the
 * read being cut (struct keeper_reading). KEEPER_QUEUE: a destination and
 * the memfd of its queue (destq.c), by id; KEEPER_UNQUEUE lets it go.
 * KEEPER_SIGNAL: let the signal in mask, one the keeper holds, go.
 * KEEPER_BYE: the collector ends as it meant to (not killed).
 * KEEPER_IDENTITY: a source's identity, changed since KEEPER_ADD (a rank
 * told, an exec), follows the header.
 */
struct keeper_msg {
	uint32_t	op;
	uint32_t	mask;
	uint64_t	id;
	int32_t		slot[2];	/* KEEPER_ADD: each stream's, or -1 */
};

/* Bytes kept for a restarted collector, all sources together. */
#define KEEPER_KEEP_MAX		(64 * 1024 * 1024)
/* How often the socket is tried for a new collector (ms). */
#define KEEPER_TRY_MS		200
/* How long kept bytes wait for a new collector once their writers are
 * gone (ms). */
#define KEEPER_LINGER_MS	10000
/* How long a new collector may take to answer an offer (s). */
#define KEEPER_ANSWER_S		2
/* Offers of one source that went unanswered before it stays here. */
#define KEEPER_TRIES		3

/* What the keeper holds for one source. */
struct keeper_entry {
	uint64_t	id;
	int		pipe[2];
	int		dest[2];
	int		fifo[2];	/* dest is a pipe: watch its readers */
	int		eof[2];		/* read to its end, kept to hand over */
	int		slot[2];	/* the streams' slots, or -1 */
	int		pidfd;
	char		*identity;	/* JSON, or NULL: never handed over */
	int		kept;		/* memfd of keeper_chunks, or -1 */
	off_t		keptlen;
	uint64_t	copied[2];	/* kept in it, per stream */
	uint64_t	unlogged[2];	/* reached only the destination */
	int		tries;		/* offers that went unanswered */
	int		refused;	/* the new collector said no */
	int		claim;		/* being taken back: the claim, or -1 */
};

static int	keeper_sock = -1;
static pid_t	keeper_pid = -1;
static sigset_t	keeper_hold;		/* held blocked (keeper_start) */
static char	*keeper_path;		/* serve mode's socket, in the keeper */
static int	 keeper_logfd = -1;	/* the JSON log, in the keeper */
static int	 keeper_logbuf = -1;	/* its buffer (jsonlog.c) */
static int	 keeper_slots = -1;	/* the streams' slots, in the keeper */
static int	 keeper_readfd = -1;	/* the read being cut, in the keeper */
static struct jsonlog_shared keeper_loghead;	/* as the collector left it */
static int	 keeper_loghead_ok;
static size_t	keeper_kept;		/* bytes in every entry's memfd */
static long long keeper_since;		/* the collector went (ns) */
static pid_t	keeper_collector;	/* its pid */
static int	keeper_bye_seen;	/* it ended as it meant to */

/* Now, CLOCK_REALTIME, in ns. */
static long long
keeper_now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((long long)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/* Close the descriptors of an entry's streams in mask; 1 when none is left. */
static int
keeper_entry_close(struct keeper_entry *e, unsigned mask)
{
	int	i;

	for (i = 0; i < 2; i++) {
		if (!(mask & (1u << i)))
			continue;
		if (e->pipe[i] != -1)
			close(e->pipe[i]);
		if (e->dest[i] != -1)
			close(e->dest[i]);
		e->pipe[i] = e->dest[i] = -1;
	}
	return (e->pipe[0] == -1 && e->pipe[1] == -1);
}

/* Let go of everything an entry holds. */
static void
keeper_entry_free(struct keeper_entry *e)
{
	(void)keeper_entry_close(e, 3);
	if (e->pidfd != -1)
		close(e->pidfd);
	if (e->claim != -1)
		close(e->claim);
	if (e->kept != -1) {
		close(e->kept);
		keeper_kept -= (size_t)e->keptlen;
	}
	free(e->identity);
}

/*
 * Keep r bytes of stream k, copied to its destination while no collector
 * ran, for the next one's JSON log (read at ns; the log has the first
 * logged records cut from them). Past the bound, or once a stream lost a
 * byte (its lines would glue across the hole), they are only counted.
 */
static void
keeper_keep_at(struct keeper_entry *e, int k, const char *buf, size_t r,
    uint64_t ns, uint64_t logged)
{
	struct keeper_chunk	c;

	if (e->identity == NULL || e->refused)
		return;
	if (e->unlogged[k] > 0 || keeper_kept + sizeof c + r > KEEPER_KEEP_MAX)
		goto lost;
	if (e->kept == -1 &&
	    (e->kept = memfd_create("meshlog-keeper", MFD_CLOEXEC)) == -1)
		goto lost;
	memset(&c, 0, sizeof c);
	c.stream = (uint32_t)k;
	c.len = (uint32_t)r;
	c.ns = ns;
	c.logged = logged;
	if (keeper_write_all(e->kept, &c, sizeof c) != 0 ||
	    keeper_write_all(e->kept, buf, r) != 0) {
		/* A chunk is whole or not there. */
		(void)ftruncate(e->kept, e->keptlen);
		(void)lseek(e->kept, e->keptlen, SEEK_SET);
		goto lost;
	}
	e->keptlen += (off_t)(sizeof c + r);
	keeper_kept += sizeof c + r;
	e->copied[k] += r;
	return;
lost:
	e->unlogged[k] += r;
}

static void
keeper_keep(struct keeper_entry *e, int k, const char *buf, size_t r)
{
	keeper_keep_at(e, k, buf, r, (uint64_t)keeper_now_ns(), 0);
}

/*
 * Offer one source to the collector on sock: its identity, counts and
 * descriptors, then its answer. 1 taken, 0 refused, -1 no answer.
 */
static int
keeper_offer(int sock, struct keeper_entry *e)
{
	char		 head[512], ans[512];
	int		 fds[MESHLOG_FDS_MAX], nfds = 0, k, rc = -1, cfd;
	unsigned	 mask = 0;
	uint32_t	*claim = NULL;
	char		*msg;
	void		*p;
	size_t		 len, got = 0;
	ssize_t		 r = -1;

	for (k = 0; k < 2; k++) {
		if (e->pipe[k] != -1) {
			mask |= 1u << (2 * k);
			fds[nfds++] = e->pipe[k];
		}
		if (e->pipe[k] != -1 && e->dest[k] != -1) {
			mask |= 1u << (2 * k + 1);
			fds[nfds++] = e->dest[k];
		}
	}
	if (e->pidfd != -1) {
		mask |= 1u << 4;
		fds[nfds++] = e->pidfd;
	}
	if (e->kept != -1) {
		mask |= 1u << 5;
		fds[nfds++] = e->kept;
	}
	if ((cfd = keeper_memfd_map("meshlog-claim", sizeof *claim,
	    &p)) != -1) {
		claim = p;
		mask |= 1u << 6;
		fds[nfds++] = cfd;
	}
	snprintf(head, sizeof head, "{\"type\":\"handover\",\"id\":%llu,"
	    "\"since_ns\":%lld,\"fds\":%u,\"unlogged\":[%llu,%llu],"
	    "\"identity\":", (unsigned long long)e->id, keeper_since, mask,
	    (unsigned long long)e->unlogged[0],
	    (unsigned long long)e->unlogged[1]);
	len = strlen(head) + strlen(e->identity) + 2;
	msg = xmalloc(len + 1);
	snprintf(msg, len + 1, "%s%s}\n", head, e->identity);
	if (fd_send(sock, msg, len, fds, nfds) == (ssize_t)len) {
		while (got < sizeof ans - 1) {
			r = read(sock, ans + got, sizeof ans - 1 - got);
			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
			if (memchr(ans, '\n', got) != NULL)
				break;
		}
		ans[got] = '\0';
		if (memchr(ans, '\n', got) != NULL)
			rc = strstr(ans, "\"type\":\"taken\"") != NULL;
		if (rc == -1 && claim != NULL)
			rc = keeper_settle(sock, claim, r == 0);
	}
	if (claim != NULL) {
		munmap(claim, sizeof *claim);
		close(cfd);
	}
	free(msg);
	return (rc);
}

/*
 * A collector listens on the socket again: hand it every source this
 * keeper copies, so that it reads their pipes from now on and logs what
 * was copied meanwhile. It must run as this user.
 */
static void
keeper_handover(struct keeper_entry *ent, size_t *n)
{
	struct sockaddr_un	sun;
	struct ucred		cr;
	socklen_t		crlen = sizeof cr;
	struct timeval		tv = { KEEPER_ANSWER_S, 0 };
	struct keeper_entry	*e;
	size_t			i;
	int			sock, rc;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(keeper_path) >= sizeof sun.sun_path)
		return;
	memcpy(sun.sun_path, keeper_path, strlen(keeper_path));
	if ((sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (connect(sock, (struct sockaddr *)&sun, sizeof sun) != 0 ||
	    getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0 ||
	    cr.uid != geteuid() ||
	    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
		close(sock);
		return;
	}
	for (i = 0; i < *n;) {
		e = &ent[i];
		if (e->identity == NULL || e->refused) {
			i++;
			continue;
		}
		rc = keeper_offer(sock, e);
		if (rc == 1) {
			/* Its pipes are the new collector's now. */
			keeper_entry_free(e);
			ent[i] = ent[--*n];
			continue;
		}
		if (rc == 0 || ++e->tries >= KEEPER_TRIES)
			e->refused = 1;
		if (rc == -1)
			break;
		i++;
	}
	close(sock);
}

/* Whether an entry has nothing left to copy or to hand over. */
static int
keeper_entry_done(const struct keeper_entry *e)
{
	int	k;

	for (k = 0; k < 2; k++) {
		if (e->pipe[k] != -1 && !e->eof[k])
			return (0);
	}
	return (keeper_path == NULL || e->identity == NULL || e->refused ||
	    (e->kept == -1 && e->unlogged[0] == 0 && e->unlogged[1] == 0));
}

/*
 * The collector is gone: copy every pipe to its destination until EOF. In
 * serve mode, keep what was copied and hand the pipes to a collector that
 * starts on the same socket, which logs it; what is kept waits for one at
 * most KEEPER_LINGER_MS after the last writer is gone.
 */
static void __attribute__((noreturn))
keeper_forward(struct keeper_entry *ent, size_t n)
{
	struct pollfd	*pfd = xcalloc(2 * n + 1, sizeof *pfd);
	/*
	 * As large as a capture pipe: each read takes all it holds, whole
	 * writes, so two pipes copied to one destination never cut a line
	 * that was written whole.
	 */
	static char	 buf[256 * 1024];
	size_t		 i, live;
	long long	 now, tried = 0, idle = -1;
	ssize_t		 r;
	int		 k;

	keeper_since = keeper_now_ns();
	for (;;) {
		for (i = n; i-- > 0;) {
			if (keeper_entry_done(&ent[i])) {
				keeper_entry_free(&ent[i]);
				ent[i] = ent[--n];
			}
		}
		if (n == 0)
			_exit(0);
		live = 0;
		for (i = 0; i < n; i++) {
			for (k = 0; k < 2; k++) {
				pfd[2 * i + k].fd = ent[i].eof[k] ? -1 :
				    ent[i].pipe[k];
				pfd[2 * i + k].events = POLLIN;
				pfd[2 * i + k].revents = 0;
				live += pfd[2 * i + k].fd != -1;
			}
		}
		now = clock_now_ms();
		if (live > 0)
			idle = -1;
		else if (idle == -1)
			idle = now;
		else if (now - idle >= KEEPER_LINGER_MS)
			_exit(0);
		if (keeper_path != NULL && now - tried >= KEEPER_TRY_MS) {
			tried = now;
			keeper_handover(ent, &n);
			continue;
		}
		if (poll(pfd, 2 * n, keeper_path != NULL ? KEEPER_TRY_MS :
		    -1) == -1 && errno != EINTR)
			_exit(1);
		for (i = 0; i < n; i++) {
			for (k = 0; k < 2; k++) {
				if (pfd[2 * i + k].revents == 0)
					continue;
				r = read(ent[i].pipe[k], buf, sizeof buf);
				if (r == -1 && (errno == EAGAIN ||
				    errno == EINTR))
					continue;
				if (r <= 0) {
					/* Nothing more goes to its dest. */
					if (ent[i].dest[k] != -1)
						close(ent[i].dest[k]);
					ent[i].dest[k] = -1;
					/* A new collector reads the end. */
					if (keeper_path != NULL)
						ent[i].eof[k] = 1;
					else {
						close(ent[i].pipe[k]);
						ent[i].pipe[k] = -1;
					}
					continue;
				}
				if (ent[i].dest[k] != -1 &&
				    keeper_write_all(ent[i].dest[k], buf,
				    (size_t)r) == -1) {
					/* Gone: keep reading, discard. */
					close(ent[i].dest[k]);
					ent[i].dest[k] = -1;
				}
				if (keeper_path != NULL)
					keeper_keep(&ent[i], k, buf, (size_t)r);
			}
		}
	}
}

/*
 * Wait until the collector has a message, closing meanwhile every stream
 * whose pipe destination lost its last reader. 0, or -1 when poll fails.
 */
static int
keeper_wait(int sock, struct keeper_entry *ent, size_t *n)
{
	static struct pollfd	*pfd;
	static size_t		 cap;
	size_t			 i, np;
	int			 k;

	for (;;) {
		if (cap < 2 * *n + 1) {
			cap = 2 * *n + 64;
			pfd = xrealloc(pfd, cap * sizeof *pfd);
		}
		pfd[0].fd = sock;
		pfd[0].events = POLLIN;
		for (i = 0, np = 1; i < *n; i++) {
			for (k = 0; k < 2; k++) {
				/* Only POLLERR is asked for: none of events. */
				pfd[np].fd = ent[i].fifo[k] ? ent[i].dest[k] :
				    -1;
				pfd[np++].events = 0;
			}
		}
		if (poll(pfd, np, -1) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		for (i = *n; i-- > 0; ) {
			for (k = 0; k < 2; k++) {
				if (!(pfd[1 + 2 * i + k].revents & POLLERR))
					continue;
				if (keeper_entry_close(&ent[i], 1u << k)) {
					keeper_entry_free(&ent[i]);
					ent[i] = ent[--*n];
					break;
				}
			}
		}
		if (pfd[0].revents != 0)
			return (0);
	}
}

/*
 * The collector is gone: write the records its JSON log buffer committed
 * and the file does not have yet (keepmem.c).
 */
static void
keeper_salvage(void)
{
	if (keeper_logfd == -1 || keeper_logbuf == -1)
		return;
	keeper_loghead_ok = keeper_salvage_log(keeper_logfd, keeper_logbuf,
	    &keeper_loghead);
	keeper_logfd = keeper_logbuf = -1;
}

/*
 * Records of slot sl the log has: done, or the pending commit's count when
 * the collector died between the log buffer's commit and the count's (see
 * struct keeper_slot).
 */
static uint64_t
keeper_slot_done(const struct keeper_slot *sl)
{
	if (sl->pend_done > sl->done && keeper_loghead_ok &&
	    keeper_loghead.len == sl->pend_len)
		return (sl->pend_done);
	return (sl->done);
}

/*
 * The collector died reading (struct keeper_reading): what it took of the
 * pipe is in the read's memfd, from rd->off up to the memfd's offset, and
 * the destination has rd->passed bytes of it, or of what follows it in the
 * pipe when it got them first (tee). Take those from the pipe too, and
 * write the destination what it lacks, so that it gets every byte once.
 * Leaves in rd the read (state 0: none) and in *len its length.
 */
static void
keeper_end_read(struct keeper_entry *ent, size_t n, struct keeper_reading *rd,
    uint32_t *len)
{
	char	buf[65536];
	off_t	end;
	size_t	i, want;
	ssize_t	r;
	int	k;

	*len = 0;
	if (keeper_readfd == -1 || pread(keeper_readfd, rd, sizeof *rd, 0) !=
	    (ssize_t)sizeof *rd || rd->state != KEEPER_READ ||
	    rd->plen > KEEPER_SLOT_DATA || rd->off < KEEPER_READ_FIRST ||
	    rd->off > KEEPER_READING_SIZE - KEEPER_READ_MAX ||
	    (end = lseek(keeper_readfd, 0, SEEK_CUR)) < (off_t)rd->off ||
	    end - (off_t)rd->off > KEEPER_READ_MAX) {
		rd->state = 0;
		return;
	}
	*len = (uint32_t)(end - (off_t)rd->off);
	for (i = 0; i < n; i++)
		for (k = 0; k < 2; k++)
			if (ent[i].slot[k] == rd->slot && ent[i].pipe[k] != -1)
				goto found;
	return;
found:
	/* A file's offset, which we share, moved by what it took. */
	if (rd->passed == KEEPER_PASSED_AT)
		rd->passed = ent[i].dest[k] != -1 && (end = lseek(
		    ent[i].dest[k], 0, SEEK_CUR)) >= rd->dest_at &&
		    end - rd->dest_at <= (off_t)*len ?
		    (uint32_t)(end - rd->dest_at) : 0;
	/* Passed before it was taken: those bytes are the pipe's next. */
	while (rd->passed != KEEPER_PASSED_ALL && rd->passed > *len &&
	    rd->passed <= KEEPER_READ_MAX) {
		want = rd->passed - *len;
		r = read(ent[i].pipe[k], buf, want < sizeof buf ? want :
		    sizeof buf);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0 || pwrite(keeper_readfd, buf, (size_t)r,
		    (off_t)(rd->off + *len)) != r)
			break;
		*len += (uint32_t)r;
	}
	if (rd->passed < *len && ent[i].dest[k] != -1 &&
	    keeper_copy_out(keeper_readfd, (off_t)(rd->off + rd->passed),
	    *len - rd->passed, ent[i].dest[k]) != 0) {
		close(ent[i].dest[k]);
		ent[i].dest[k] = -1;
	}
}

/*
 * The collector is gone: what it had read of a line it had not finished
 * is the beginning of what a restarted collector gets, when its slot says
 * it is good (see struct keeper_slot); and so is a read it was cutting
 * (rd, len bytes), with the count of its records the log has.
 */
static void
keeper_take_slots(struct keeper_entry *ent, size_t n,
    const struct keeper_reading *rd, uint32_t len)
{
	struct keeper_slot	 sl;
	char			*buf = NULL;
	size_t			 i;
	int			 k, cutting;

	if (keeper_slots == -1 || keeper_path == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		for (k = 0; k < 2; k++) {
			if (ent[i].slot[k] < 0 || ent[i].pipe[k] == -1 ||
			    pread(keeper_slots, &sl, sizeof sl,
			    (off_t)ent[i].slot[k] * (off_t)sizeof sl) !=
			    (ssize_t)sizeof sl)
				continue;
			cutting = rd->state == KEEPER_READ &&
			    rd->slot == ent[i].slot[k];
			if (cutting && sl.gen != rd->gen &&
			    keeper_slot_done(&sl) >= rd->done0) {
				if (buf == NULL)
					buf = xmalloc(KEEPER_SLOT_DATA +
					    KEEPER_READ_MAX);
				if (pread(keeper_readfd, buf, rd->plen + len,
				    (off_t)(rd->off - rd->plen)) ==
				    (ssize_t)(rd->plen + len))
					keeper_keep_at(&ent[i], k, buf,
					    rd->plen + len, rd->ns != 0 ?
					    rd->ns : (uint64_t)keeper_now_ns(),
					    keeper_slot_done(&sl) - rd->done0);
			} else if ((sl.snap == sl.done ||
			    (cutting && sl.gen == rd->gen)) && sl.len > 0 &&
			    sl.len <= KEEPER_SLOT_DATA)
				keeper_keep(&ent[i], k, sl.data, sl.len);
		}
	}
out:
	free(buf);
	if (keeper_slots != -1)
		close(keeper_slots);
	if (keeper_readfd != -1)
		close(keeper_readfd);
	keeper_slots = keeper_readfd = -1;
}

/* The keeper's life: hold descriptors until the collector goes away. */
static void __attribute__((noreturn))
keeper_main(int sock)
{
	static char		 msg[sizeof(struct keeper_msg) +
				    MESHLOG_MSG_MAX + 1024];
	struct keeper_entry	*ent = NULL, *e;
	struct keeper_reading	 rd;
	struct keeper_msg	 m;
	uint32_t		 len;
	struct stat		 sb;
	size_t			 n = 0, cap = 0, i, plen;
	int			 fds[MESHLOG_FDS_MAX], nfds, k, b;
	ssize_t			 r;

	for (;;) {
		if (keeper_wait(sock, ent, &n) != 0)
			break;
		r = fd_recv(sock, msg, sizeof msg, fds, &nfds, MESHLOG_FDS_MAX);
		if (r == -1 && (errno == EINTR || errno == EBADMSG))
			continue;
		if (r <= 0)
			break;
		if ((size_t)r < sizeof m) {
			for (k = 0; k < nfds; k++)
				close(fds[k]);
			continue;
		}
		memcpy(&m, msg, sizeof m);
		plen = (size_t)r - sizeof m;
		if (m.op == KEEPER_ADD) {
			if (n == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				ent = xrealloc(ent, cap * sizeof *ent);
			}
			e = &ent[n];
			memset(e, 0, sizeof *e);
			e->id = m.id;
			e->kept = -1;
			e->claim = -1;
			e->slot[0] = m.slot[0];
			e->slot[1] = m.slot[1];
			for (k = 0, b = 0; b < 6; b++) {
				int *slot = b == 5 ? &e->claim : b == 4 ?
				    &e->pidfd : (b % 2 == 0) ?
				    &e->pipe[b / 2] : &e->dest[b / 2];

				*slot = (m.mask & (1u << b)) && k < nfds ?
				    fds[k++] : -1;
			}
			while (k < nfds)
				close(fds[k++]);
			for (k = 0; k < 2; k++)
				e->fifo[k] = e->dest[k] != -1 &&
				    e->pipe[k] != -1 &&
				    fstat(e->dest[k], &sb) == 0 &&
				    S_ISFIFO(sb.st_mode);
			e->identity = plen > 0 ? xstrndup(msg + sizeof m,
			    plen) : NULL;
			n++;
			continue;
		}
		if (m.op == KEEPER_SLOTS && nfds == 2) {
			if (keeper_slots != -1)
				close(keeper_slots);
			if (keeper_readfd != -1)
				close(keeper_readfd);
			keeper_slots = fds[0];
			keeper_readfd = fds[1];
			continue;
		}
		if (m.op == KEEPER_QUEUE && nfds == 2) {
			destq_keep(m.id, fds[0], fds[1]);
			continue;
		}
		if (m.op == KEEPER_LOG) {
			if (keeper_logfd != -1)
				close(keeper_logfd);
			if (keeper_logbuf != -1)
				close(keeper_logbuf);
			keeper_logfd = keeper_logbuf = -1;
			if (m.mask == 3 && nfds == 2) {
				keeper_logfd = fds[0];
				keeper_logbuf = fds[1];
				continue;
			}
		}
		for (k = 0; k < nfds; k++)
			close(fds[k]);
		if (m.op == KEEPER_CLOSE) {
			for (i = 0; i < n; i++) {
				if (ent[i].id != m.id)
					continue;
				if (keeper_entry_close(&ent[i], m.mask)) {
					keeper_entry_free(&ent[i]);
					ent[i] = ent[--n];
				}
				break;
			}
		} else if (m.op == KEEPER_UNQUEUE)
			destq_unkeep(m.id);
		else if (m.op == KEEPER_SIGNAL && m.mask < NSIG &&
		    sigismember(&keeper_hold, (int)m.mask) == 1)
			signal((int)m.mask, SIG_IGN);	/* drops it */
		else if (m.op == KEEPER_PATH && plen > 0) {
			free(keeper_path);
			keeper_path = xstrndup(msg + sizeof m, plen);
		} else if (m.op == KEEPER_BYE)
			keeper_bye_seen = 1;
		else if (m.op == KEEPER_IDENTITY && plen > 0) {
			for (i = 0; i < n && ent[i].id != m.id; i++)
				;
			if (i < n) {
				free(ent[i].identity);
				ent[i].identity = xstrndup(msg + sizeof m,
				    plen);
			}
		}
	}
	close(sock);
	/* What the collector was still taking back is the old keeper's. */
	for (i = n; i-- > 0;) {
		if (ent[i].claim != -1 && !keeper_claimed(ent[i].claim)) {
			keeper_entry_free(&ent[i]);
			ent[i] = ent[--n];
		}
	}
	keeper_salvage();
	/* What the destinations were still owed goes before what follows. */
	destq_write_kept();
	keeper_end_read(ent, n, &rd, &len);
	keeper_take_slots(ent, n, &rd, len);
	if (n == 0)
		_exit(0);
	/*
	 * Killed (SIGKILL, the OOM killer) or dead of a fault: the console
	 * view stops mid-job and the output goes on raw. Said once, where
	 * the collector's own messages went.
	 */
	if (!keeper_bye_seen)
		dprintf(2, "meshlog: the collector (pid %ld) is gone; its "
		    "keeper passes the output of %zu process%s on as "
		    "written, %s%s\n", (long)keeper_collector, n,
		    n == 1 ? "" : "es", keeper_path != NULL ? "until a "
		    "collector listens on " : "with no console view or "
		    "JSON log from here", keeper_path != NULL ? keeper_path :
		    "");
	keeper_forward(ent, n);
}

void
keeper_start(const sigset_t *hold)
{
	int	sv[2], devnull, sig;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		fatal("socketpair");
	keeper_collector = getpid();
	switch (keeper_pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		close(sv[0]);
		/* Whoever waits for the collector to be ready is not our business. */
		if (cfg.ready_fd != -1)
			close(cfg.ready_fd);
		/* Outlive the collector; stop only when the writers do. */
		keeper_hold = *hold;
		for (sig = 1; sig < NSIG; sig++) {
			if (sigismember(hold, sig) == 1)
				signal(sig, SIG_IGN);
		}
		sigprocmask(SIG_BLOCK, hold, NULL);
		signal(SIGPIPE, SIG_IGN);
		prctl(PR_SET_NAME, "meshlog-keeper");
		if ((devnull = open("/dev/null", O_RDONLY)) != -1) {
			dup2(devnull, 0);
			close(devnull);
		}
		keeper_main(sv[1]);
	default:
		close(sv[1]);
		keeper_sock = sv[0];
	}
}

/*
 * Send one message, with len bytes of payload after its header; on
 * failure the keeper is gone and we say so once.
 */
static void
keeper_send(struct keeper_msg *m, const char *payload, size_t len,
    const int *fds, int nfds)
{
	static char	 buf[sizeof *m + MESHLOG_MSG_MAX];
	static int	 warned;
	size_t		 n = sizeof *m + len;

	if (keeper_sock == -1)
		return;
	if (n > sizeof buf)
		n = sizeof *m;	/* too long to keep: never handed over */
	memcpy(buf, m, sizeof *m);
	if (n > sizeof *m)
		memcpy(buf + sizeof *m, payload, n - sizeof *m);
	if (fd_send(keeper_sock, buf, n, fds, nfds) == (ssize_t)n)
		return;
	if (!warned)
		log_warn("the keeper is gone (%s): writers are no longer "
		    "protected if the collector dies", strerror(errno));
	warned = 1;
	close(keeper_sock);
	keeper_sock = -1;
}

void
keeper_add(uint64_t id, const int pipes[2], const int dests[2],
    const int slots[2], int pidfd, int claim, const char *identity,
    size_t len)
{
	struct keeper_msg	m = { KEEPER_ADD, 0, id, { slots[0], slots[1] } };
	int			fds[MESHLOG_FDS_MAX], nfds = 0, i;

	for (i = 0; i < 2; i++) {
		if (pipes[i] != -1) {
			m.mask |= 1u << (2 * i);
			fds[nfds++] = pipes[i];
		}
		if (pipes[i] != -1 && dests[i] != -1) {
			m.mask |= 1u << (2 * i + 1);
			fds[nfds++] = dests[i];
		}
	}
	if (pidfd != -1) {
		m.mask |= 1u << 4;
		fds[nfds++] = pidfd;
	}
	if (claim != -1) {
		m.mask |= 1u << 5;
		fds[nfds++] = claim;
	}
	keeper_send(&m, identity, identity != NULL ? len : 0, fds, nfds);
}

void
keeper_identity(uint64_t id, const char *identity, size_t len)
{
	struct keeper_msg	m = { KEEPER_IDENTITY, 0, id, { -1, -1 } };

	if (len > 0)
		keeper_send(&m, identity, len, NULL, 0);
}

pid_t
keeper_pid_of(void)
{
	return (keeper_sock != -1 ? keeper_pid : -1);
}

void
keeper_drop(int sig)
{
	struct keeper_msg	m = { KEEPER_SIGNAL, (uint32_t)sig, 0, { -1, -1 } };

	keeper_send(&m, NULL, 0, NULL, 0);
}

void
keeper_close(uint64_t id, unsigned streams)
{
	struct keeper_msg	m = { KEEPER_CLOSE, streams, id, { -1, -1 } };

	keeper_send(&m, NULL, 0, NULL, 0);
}

void
keeper_log(int logfd, int memfd)
{
	struct keeper_msg	m = { KEEPER_LOG, 0, 0, { -1, -1 } };
	int			fds[2] = { logfd, memfd };

	if (logfd != -1 && memfd != -1)
		m.mask = 3;
	keeper_send(&m, NULL, 0, fds, m.mask == 3 ? 2 : 0);
}

void
keeper_handover_path(const char *path)
{
	struct keeper_msg	m = { KEEPER_PATH, 0, 0, { -1, -1 } };

	keeper_send(&m, path, strlen(path), NULL, 0);
}

int
keeper_active(void)
{
	return (keeper_sock != -1);
}

void
keeper_queue(uint64_t id, int fd, int memfd)
{
	struct keeper_msg	m = { KEEPER_QUEUE, 3, id, { -1, -1 } };
	int			fds[2] = { fd, memfd };

	keeper_send(&m, NULL, 0, fds, 2);
}

void
keeper_unqueue(uint64_t id)
{
	struct keeper_msg	m = { KEEPER_UNQUEUE, 0, id, { -1, -1 } };

	keeper_send(&m, NULL, 0, NULL, 0);
}

void
keeper_bye(void)
{
	struct keeper_msg	m = { KEEPER_BYE, 0, 0, { -1, -1 } };

	keeper_send(&m, NULL, 0, NULL, 0);
}

void
keeper_give_slots(int slots, int reading)
{
	struct keeper_msg	m = { KEEPER_SLOTS, 0, 0, { -1, -1 } };
	int			fds[2] = { slots, reading };

	keeper_send(&m, NULL, 0, fds, 2);
}
