/*
 * The keeper writes what a killed collector's JSON log buffer held: a
 * child starts a keeper, commits records without writing them, and is
 * SIGKILLed; the log must then hold every record once, whole, in order,
 * whether none, some or all of them had reached the file.
 */

#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "collector/collector.h"
#include "collector/keeper.h"

struct config		 cfg;
struct event_base	*base;

static char	 path[64];
/* The keeper holds nothing blocked here: no signal is passed on. */
static sigset_t	 hold;

static void
setup(void)
{
	strlcpy(path, "/tmp/meshlog-keeper-XXXXXX", sizeof path);
	cr_assert(mkdtemp(path) != NULL);
	strlcat(path, "/log.jsonl", sizeof path);
	cfg.ready_fd = -1;
}

static void
teardown(void)
{
	char	dir[64];

	unlink(path);
	strlcpy(dir, path, sizeof dir);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
}

/* The whole file, NUL-terminated, or NULL. */
static char *
slurp(size_t *len)
{
	struct stat	 sb;
	char		*buf;
	int		 fd;

	if ((fd = open(path, O_RDONLY)) == -1 || fstat(fd, &sb) != 0)
		return (NULL);
	buf = calloc(1, (size_t)sb.st_size + 1);
	*len = (size_t)read(fd, buf, (size_t)sb.st_size);
	close(fd);
	return (buf);
}

/* Wait until the log holds want bytes, then a little for more. */
static char *
log_settles(size_t want, size_t *len)
{
	struct timespec	 ms = { 0, 10 * 1000 * 1000 };
	char		*buf = NULL;
	int		 i;

	for (i = 0; i < 500; i++) {
		free(buf);
		if ((buf = slurp(len)) != NULL && *len >= want)
			break;
		nanosleep(&ms, NULL);
	}
	ms.tv_nsec = 200 * 1000 * 1000;
	nanosleep(&ms, NULL);
	free(buf);
	return (slurp(len));
}

/*
 * In a child: a keeper, a log, nflushed records written, then nheld
 * records committed but not written; the file then gets the first
 * nthrough of those behind the buffer's back (a write that got through
 * just before the kill), and the child is killed.
 */
static void
die_holding(int nflushed, int nheld, int nthrough, size_t size)
{
	char	*rec = malloc(size + 16);
	pid_t	 pid;
	int	 i, status, fd;

	pid = fork();
	cr_assert(pid != -1);
	if (pid == 0) {
		keeper_start(&hold);
		if (jsonlog_open(path) != 0)
			_exit(3);
		for (i = 0; i < nflushed + nheld; i++) {
			memset(rec, 'a' + i % 26, size);
			snprintf(rec, size, "{\"n\":%d,\"pad\":\"", i);
			memcpy(rec + size - 2, "\"}", 2);
			jsonlog_text(rec, size);
			if (i + 1 == nflushed)
				jsonlog_flush();
			if (i >= nflushed && i < nflushed + nthrough) {
				fd = open(path, O_WRONLY | O_APPEND);
				rec[size] = '\n';
				if (fd == -1 || write(fd, rec, size + 1) !=
				    (ssize_t)size + 1)
					_exit(4);
				close(fd);
			}
		}
		raise(SIGKILL);
		_exit(5);
	}
	cr_assert(waitpid(pid, &status, 0) == pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "the child ended with status %d", status);
	free(rec);
}

/* Every record 0..n-1 once, in order, each size bytes and a newline. */
static void
assert_records(int n, size_t size)
{
	size_t	 len;
	char	*buf = log_settles((size + 1) * (size_t)n, &len), *p, want[32];
	int	 i;

	cr_assert_not_null(buf);
	cr_assert_eq(len, (size + 1) * (size_t)n, "the log holds %zu bytes, "
	    "not %zu", len, (size + 1) * (size_t)n);
	for (i = 0, p = buf; i < n; i++, p += size + 1) {
		snprintf(want, sizeof want, "{\"n\":%d,", i);
		cr_assert(strncmp(p, want, strlen(want)) == 0,
		    "record %d is %.20s", i, p);
		cr_assert_eq(p[size], '\n');
	}
	free(buf);
}

TestSuite(keeper, .init = setup, .fini = teardown);

Test(keeper, writes_what_a_killed_collector_held)
{
	die_holding(0, 50, 0, 100);
	assert_records(50, 100);
}

Test(keeper, writes_only_what_the_file_lacks)
{
	die_holding(10, 40, 0, 100);
	assert_records(50, 100);
}

Test(keeper, a_write_that_got_through_is_not_written_again)
{
	die_holding(10, 40, 7, 100);
	assert_records(50, 100);
}

Test(keeper, a_buffer_that_grew_is_read_whole)
{
	/* Two records of 600 KiB: past the first buffer, so it was moved. */
	die_holding(0, 2, 0, 600 * 1024);
	assert_records(2, 600 * 1024);
}

/*
 * In a child with a keeper: a destination queue for the pipe fd, bytes
 * added and taken at random (those taken written to fd, as a destination
 * would take them), then a SIGKILL; the keeper writes what was left. The
 * reader of the pipe must get every byte once, in order. moving: the kill
 * falls in the middle of moving the waiting bytes to the front (the head
 * says so; the bytes are then where they were).
 */
/*
 * Bytes added to q and taken from it at random by seed (those taken
 * written to fd, as a destination takes them); with q NULL, only counted.
 * The count of bytes added.
 */
static size_t
queue_ops(struct destq *q, int fd, unsigned seed)
{
	static char	 buf[8192];
	const char	*p;
	size_t		 n, len, total = 0, queued = 0;
	int		 i;

	srand(seed);
	for (i = 0; i < 3000; i++) {
		n = (size_t)(rand() % (int)sizeof buf) + 1;
		for (len = 0; len < n; len++)
			buf[len] = (char)('a' + (total + len) % 26);
		total += n;
		queued += n;
		if (q != NULL)
			destq_add(q, buf, n);
		if (rand() % 3 != 0)
			continue;
		len = (size_t)rand() % queued + 1;
		queued -= len;
		if (q == NULL)
			continue;
		p = destq_peek(q, &n);
		if (p == NULL || n < len || write(fd, p, len) != (ssize_t)len)
			_exit(4);
		destq_drain(q, len);
	}
	return (total);
}

static void
queue_dies(int fd, unsigned seed, int moving)
{
	struct destq		q;
	struct destq_head	h;

	keeper_start(&hold);
	destq_init(&q, fd);
	queue_ops(&q, fd, seed);
	if (moving) {
		/* The new place is zeroed, as a memcpy cut short may leave it. */
		h.ostart = q.start;
		h.oend = q.end;
		h.start = 0;
		h.end = 7;
		h.moving = 1;
		if (q.memfd == -1 || q.start < 7 ||
		    pwrite(q.memfd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
		    pwrite(q.memfd, "zzzzzzz", 7, DESTQ_HEAD) != 7)
			_exit(5);
	}
	raise(SIGKILL);
	_exit(6);
}

static void
queue_delivers_all(unsigned seed, int moving)
{
	char	*got;
	size_t	 have = 0, cap = 64 * 1024 * 1024, i;
	ssize_t	 r;
	pid_t	 pid;
	int	 fds[2], status;

	cr_assert(pipe(fds) == 0);
	pid = fork();
	cr_assert(pid != -1);
	if (pid == 0) {
		close(fds[0]);
		queue_dies(fds[1], seed, moving);
	}
	close(fds[1]);
	got = malloc(cap);
	while ((r = read(fds[0], got + have, cap - have)) > 0)
		have += (size_t)r;
	close(fds[0]);
	cr_assert(waitpid(pid, &status, 0) == pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "the child ended with status %d", status);
	cr_assert_eq(have, queue_ops(NULL, -1, seed), "%zu bytes came",
	    have);
	for (i = 0; i < have; i++)
		cr_assert_eq(got[i], (char)('a' + i % 26), "byte %zu of %zu",
		    i, have);
	free(got);
}

Test(keeper, a_destination_gets_what_its_queue_held)
{
	unsigned	seed;

	for (seed = 1; seed <= 5; seed++)
		queue_delivers_all(seed, 0);
}

Test(keeper, a_queue_caught_moving_is_written_from_where_it_was)
{
	queue_delivers_all(7, 1);
}

Test(keeper, a_queue_gives_back_a_burst_s_room)
{
	static char	burst[4 * 1024 * 1024];
	struct destq	q;

	destq_init(&q, -1);
	destq_add(&q, burst, sizeof burst);
	cr_assert_geq(q.cap, sizeof burst);
	destq_drain(&q, sizeof burst - 1);
	cr_assert_geq(q.cap, sizeof burst);
	destq_drain(&q, 1);
	cr_assert_eq(destq_len(&q), 0u);
	cr_assert_leq(q.cap, 1024u * 1024, "an empty queue keeps %zu bytes",
	    q.cap);
	destq_add(&q, "x", 1);
	cr_assert_eq(destq_len(&q), 1u);
	destq_free(&q);
}
