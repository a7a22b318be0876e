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
 */

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"

enum keeper_op { KEEPER_ADD = 1, KEEPER_CLOSE = 2 };

/*
 * One message on the keeper socket. KEEPER_ADD: descriptors follow by mask
 * bit (2i: pipe of stream i, 2i+1: its dest). KEEPER_CLOSE: bit i names
 * stream i, whose pipe and dest the keeper closes.
 */
struct keeper_msg {
	uint32_t	op;
	uint32_t	mask;
	uint64_t	id;
};

/* What the keeper holds for one source. */
struct keeper_entry {
	uint64_t	id;
	int		pipe[2];
	int		dest[2];
	int		fifo[2];	/* dest is a pipe: watch its readers */
};

static int	keeper_sock = -1;
static pid_t	keeper_pid = -1;

/* Write all of p to fd, waiting when it would block; -1 when it cannot. */
static int
keeper_write_all(int fd, const char *p, size_t n)
{
	struct pollfd	pfd;
	ssize_t		w;

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

/* The collector is gone: copy every pipe to its destination until EOF. */
static void __attribute__((noreturn))
keeper_forward(struct keeper_entry *ent, size_t n)
{
	struct pollfd	*pfd = xcalloc(2 * n + 1, sizeof *pfd);
	char		 buf[65536];
	size_t		 i, live;
	ssize_t		 r;
	int		 k;

	for (;;) {
		live = 0;
		for (i = 0; i < n; i++) {
			for (k = 0; k < 2; k++) {
				pfd[2 * i + k].fd = ent[i].pipe[k];
				pfd[2 * i + k].events = POLLIN;
				pfd[2 * i + k].revents = 0;
				live += ent[i].pipe[k] != -1;
			}
		}
		if (live == 0)
			_exit(0);
		if (poll(pfd, 2 * n, -1) == -1 && errno != EINTR)
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
					close(ent[i].pipe[k]);
					ent[i].pipe[k] = -1;
					continue;
				}
				if (ent[i].dest[k] != -1 &&
				    keeper_write_all(ent[i].dest[k], buf,
				    (size_t)r) == -1) {
					/* Gone: keep reading, discard. */
					close(ent[i].dest[k]);
					ent[i].dest[k] = -1;
				}
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
					ent[i] = ent[--*n];
					break;
				}
			}
		}
		if (pfd[0].revents != 0)
			return (0);
	}
}

/* The keeper's life: hold descriptors until the collector goes away. */
static void __attribute__((noreturn))
keeper_main(int sock)
{
	struct keeper_entry	*ent = NULL;
	struct keeper_msg	 m;
	struct stat		 sb;
	size_t			 n = 0, cap = 0, i;
	int			 fds[MESHLOG_HELLO_FDS], nfds, k, b;
	ssize_t			 r;

	for (;;) {
		if (keeper_wait(sock, ent, &n) != 0)
			break;
		r = fd_recv(sock, &m, sizeof m, fds, &nfds, MESHLOG_HELLO_FDS);
		if (r == -1 && (errno == EINTR || errno == EBADMSG))
			continue;
		if (r <= 0)
			break;
		if (r != sizeof m) {
			for (k = 0; k < nfds; k++)
				close(fds[k]);
			continue;
		}
		if (m.op == KEEPER_ADD) {
			if (n == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				ent = xrealloc(ent, cap * sizeof *ent);
			}
			ent[n].id = m.id;
			for (k = 0, b = 0; b < 4; b++) {
				int *slot = (b % 2 == 0) ?
				    &ent[n].pipe[b / 2] : &ent[n].dest[b / 2];

				*slot = (m.mask & (1u << b)) && k < nfds ?
				    fds[k++] : -1;
			}
			while (k < nfds)
				close(fds[k++]);
			for (k = 0; k < 2; k++)
				ent[n].fifo[k] = ent[n].dest[k] != -1 &&
				    ent[n].pipe[k] != -1 &&
				    fstat(ent[n].dest[k], &sb) == 0 &&
				    S_ISFIFO(sb.st_mode);
			n++;
		} else if (m.op == KEEPER_CLOSE) {
			for (i = 0; i < n; i++) {
				if (ent[i].id != m.id)
					continue;
				if (keeper_entry_close(&ent[i], m.mask))
					ent[i] = ent[--n];
				break;
			}
		}
	}
	close(sock);
	if (n == 0)
		_exit(0);
	keeper_forward(ent, n);
}

void
keeper_start(void)
{
	int	sv[2], devnull;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		fatal("socketpair");
	switch (keeper_pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		close(sv[0]);
		/* Whoever waits for the collector to be ready is not our business. */
		if (cfg.ready_fd != -1)
			close(cfg.ready_fd);
		/* Outlive the collector; stop only when the writers do. */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
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

/* Send one message; on failure the keeper is gone and we say so once. */
static void
keeper_send(struct keeper_msg *m, const int *fds, int nfds)
{
	static int	warned;

	if (keeper_sock == -1)
		return;
	if (fd_send(keeper_sock, m, sizeof *m, fds, nfds) == sizeof *m)
		return;
	if (!warned)
		log_warn("the keeper is gone (%s): writers are no longer "
		    "protected if the collector dies", strerror(errno));
	warned = 1;
	close(keeper_sock);
	keeper_sock = -1;
}

void
keeper_add(uint64_t id, const int pipes[2], const int dests[2])
{
	struct keeper_msg	m = { KEEPER_ADD, 0, id };
	int			fds[MESHLOG_HELLO_FDS], nfds = 0, i;

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
	keeper_send(&m, fds, nfds);
}

void
keeper_close(uint64_t id, unsigned streams)
{
	struct keeper_msg	m = { KEEPER_CLOSE, streams, id };

	keeper_send(&m, NULL, 0);
}
