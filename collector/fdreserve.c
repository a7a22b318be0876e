/*
 * Descriptors held back for the moments that must not run out of them.
 *
 * A message that carries descriptors loses those that do not fit under
 * the descriptor limit: recvmsg(2) closes them and says MSG_CTRUNC. A
 * forked child sends the read ends of its new pipes and is writing into
 * them already; had they been dropped, its writes would fail with EPIPE
 * and its output would be lost. So a few descriptors stay open here
 * (copies of one on /dev/null), enough for the largest message, closed
 * just before each receive and copied again after it (a few cheap system
 * calls a message). When they cannot all be copied again the collector
 * is short: it refuses new processes (which then run uncaptured, their
 * output going where it went, at once rather than after their
 * registration timeout) so that what is left goes to the children of
 * processes it already holds; a child's message waits, its output in its
 * pipe, until there is room for its pipes, or a second has passed (its
 * parent may be waiting for it). The last one is kept for accepting a
 * connection to refuse it at once instead of leaving it waiting.
 */

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "collector.h"
#include "fdreserve.h"

/* The largest message's descriptors, and one kept for an accept. */
#define FDRESERVE_N		(MESHLOG_FDS_MAX + 1)
/* How long a forked child's pipes may wait for room (fdreserve_room). */
#define FDRESERVE_WAIT_MS	1000

static struct log_limit	refusals = { .what = "refusals" };
static int	base_fd = -1;	/* /dev/null; the reserve is its copies */
static int	reserve[FDRESERVE_N];
static int	held;
static int	short_of = 1;

void
fdreserve_init(void)
{
	(void)fdreserve_refill();
}

void
fdreserve_release(int n)
{
	/* The first stays for the next refusal (fdreserve_accept_refuse). */
	while (held > 1 && n-- > 0)
		close(reserve[--held]);
}

int
fdreserve_refill(void)
{
	int	fd;

	if (base_fd == -1)
		base_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	while (base_fd != -1 && held < FDRESERVE_N) {
		if ((fd = fcntl(base_fd, F_DUPFD_CLOEXEC, 0)) == -1)
			break;
		reserve[held++] = fd;
	}
	short_of = held < FDRESERVE_N;
	return (short_of ? -1 : 0);
}

void
fdreserve_refill_errno(void)
{
	int	saved = errno;

	(void)fdreserve_refill();
	errno = saved;
}

int
fdreserve_room(int need)
{
	static long long	since = -1;
	long long		now;

	if (held - 1 >= need || (fdreserve_refill(), held - 1 >= need)) {
		since = -1;
		return (1);
	}
	now = clock_now_ms();
	if (since == -1)
		since = now;
	if (now - since < FDRESERVE_WAIT_MS)
		return (0);
	since = now;
	return (1);
}

int
fdreserve_short(void)
{
	return (short_of);
}

void
fdreserve_refuse(int c)
{
	static const char	 no[] = "{\"type\":\"error\",\"message\":"
	    "\"the collector is at its descriptor limit\"}\n";

	(void)send(c, no, sizeof no - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(c);
	log_warn_limit(&refusals, "refused a connection: the collector is "
	    "at its descriptor limit (raise it)");
}

int
fdreserve_accept_refuse(int listen_fd)
{
	int	c, err = errno;

	while (held > 0)
		close(reserve[--held]);
	c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c != -1)
		fdreserve_refuse(c);
	fdreserve_refill_errno();
	errno = err;
	return (c != -1 ? 0 : -1);
}
