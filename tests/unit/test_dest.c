/*
 * Destinations, on real pipes and files: bytes pass exactly and in order,
 * nothing is taken from a pipe its destination cannot take (the writer
 * feels the back-pressure), the stream hears when there is room again and
 * when the reader is gone, and console lines wait behind nothing.
 */

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <event2/event.h>

#include "collector/collector.h"

struct config		 cfg;
struct event_base	*base;

static int	 heard, heard_gone;

static void
watch_cb(void *arg, int gone)
{
	heard++;
	heard_gone = gone;
}

static void
setup(void)
{
	/* As the collector does: a gone reader is EPIPE, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	cr_assert_not_null(base);
}

TestSuite(dest, .init = setup);

/* A pipe: [0] read end, [1] write end, both non-blocking. */
static void
mkpipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

/* Everything readable now from fd, NUL-terminated, in a static buffer. */
static const char *
drain(int fd, size_t *len)
{
	static char	 buf[1 << 20];
	ssize_t		 n;
	size_t		 got = 0;

	while ((n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	if (len != NULL)
		*len = got;
	return (buf);
}

/* Fill a pipe until it would block; returns how much went in. */
static size_t
fill(int fd)
{
	static char	 junk[65536];
	ssize_t		 n;
	size_t		 total = 0;

	while ((n = write(fd, junk, sizeof junk)) > 0)
		total += (size_t)n;
	cr_assert_eq(errno, EAGAIN);
	return (total);
}

/* Bytes waiting in a pipe. */
static int
pending(int fd)
{
	int	n;

	cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
	return (n);
}

/* A writer's pipe in, a destination pipe out, and a watch on it. */
static struct dest *
pipe_dest(int in[2], int out[2], struct dest_watch *w)
{
	struct dest	*d;

	mkpipe(in);
	mkpipe(out);
	d = dest_get(out[1]);
	memset(w, 0, sizeof *w);
	dest_watch(d, w, watch_cb, NULL);
	return (d);
}

Test(dest, bytes_pass_to_a_pipe_exactly_and_are_copied_for_the_log)
{
	int			 in[2], out[2];
	struct dest		*d;
	struct dest_watch	 w;
	char			 buf[256];
	size_t			 got;

	d = pipe_dest(in, out, &w);
	cr_assert_eq(write(in[1], "one\ntwo\n", 8), 8);
	cr_assert_eq(dest_pass(d, &w, in[0], buf, sizeof buf, &got, NULL),
	    DEST_OK);
	cr_assert_eq(got, 8);
	cr_assert_eq(memcmp(buf, "one\ntwo\n", 8), 0);
	cr_assert_str_eq(drain(out[0], NULL), "one\ntwo\n");
	cr_assert_eq(dest_pass(d, &w, in[0], buf, sizeof buf, &got, NULL),
	    DEST_EMPTY);
	close(in[1]);
	cr_assert_eq(dest_pass(d, &w, in[0], buf, sizeof buf, &got, NULL),
	    DEST_EOF);
	dest_unwatch(&w);
	dest_unref(d);
	dest_flush_pending();
}

Test(dest, a_full_destination_takes_nothing_from_the_pipe_until_it_has_room)
{
	int			 in[2], out[2];
	struct dest		*d;
	struct dest_watch	 w;
	char			 buf[256];
	size_t			 got, len;

	d = pipe_dest(in, out, &w);
	len = fill(out[1]);
	cr_assert_eq(write(in[1], "late\n", 5), 5);
	cr_assert_eq(dest_pass(d, &w, in[0], buf, sizeof buf, &got, NULL),
	    DEST_FULL);
	/* The bytes stay where the writer put them. */
	cr_assert_eq(pending(in[0]), 5);
	cr_assert_eq(heard, 0);
	/* The reader catches up: the stream is told, then the bytes pass. */
	drain(out[0], &got);
	cr_assert_eq(got, len);
	while (heard == 0)
		event_base_loop(base, EVLOOP_ONCE);
	cr_assert_eq(heard_gone, 0);
	cr_assert_eq(dest_pass(d, &w, in[0], buf, sizeof buf, &got, NULL),
	    DEST_OK);
	cr_assert_str_eq(drain(out[0], NULL), "late\n");
	dest_unwatch(&w);
	dest_unref(d);
}

Test(dest, a_gone_reader_is_told_and_the_bytes_are_left_alone)
{
	int			 in[2], out[2];
	struct dest		*d;
	struct dest_watch	 w;
	char			 buf[256];
	size_t			 got;

	d = pipe_dest(in, out, &w);
	close(out[0]);
	cr_assert_eq(write(in[1], "lost\n", 5), 5);
	cr_assert_eq(dest_pass(d, &w, in[0], buf, sizeof buf, &got, NULL),
	    DEST_GONE);
	cr_assert_eq(got, 0);
	cr_assert(dest_gone(d));
	/* Not read: the stream closes its pipe and the writer gets EPIPE. */
	cr_assert_eq(pending(in[0]), 5);
	dest_unwatch(&w);
	dest_unref(d);
}

/*
 * A noted read (struct dest_note): the bytes land in the memfd at its
 * offset, which moves by what was taken, and passed says what the
 * destination got: for a pipe, before they are taken; for a file not
 * opened for appending, its offset does, from where it was (dest_at).
 */
static void
noted_read(struct dest *d, struct dest_watch *w, const int in[2],
    uint32_t want, int64_t at)
{
	struct dest_note	 note;
	volatile uint32_t	 passed = 0;
	volatile int64_t	 dest_at = -1;
	char			*map;
	size_t			 got;
	int			 mfd = memfd_create("test", 0);

	cr_assert_neq(mfd, -1);
	cr_assert_eq(ftruncate(mfd, 4096), 0);
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(lseek(mfd, 100, SEEK_SET), 100);
	note.fd = mfd;
	note.passed = &passed;
	note.dest_at = &dest_at;
	cr_assert_eq(write(in[1], "noted\n", 6), 6);
	/* buf maps the memfd at its offset. */
	cr_assert_eq(dest_pass(d, w, in[0], map + 100, 6, &got, &note),
	    DEST_OK);
	cr_assert_eq(got, 6);
	cr_assert_eq(lseek(mfd, 0, SEEK_CUR), 106);
	cr_assert_eq(memcmp(map + 100, "noted\n", 6), 0);
	cr_assert_eq(passed, want, "passed %u, not %u", passed, want);
	cr_assert_eq(dest_at, at, "dest_at %lld, not %lld",
	    (long long)dest_at, (long long)at);
	munmap(map, 4096);
	close(mfd);
}

/* A file destination at path, watched by w. */
static struct dest *
file_dest(char *path, int flags, struct dest_watch *w)
{
	struct dest	*d;
	int		 fd = mkstemp(path);

	cr_assert_neq(fd, -1);
	cr_assert_eq(fcntl(fd, F_SETFL, flags), 0);
	d = dest_get(fd);
	memset(w, 0, sizeof *w);
	dest_watch(d, w, watch_cb, NULL);
	return (d);
}

/* What the file at path holds; then it is gone. */
static const char *
file_text(const char *path)
{
	const char	*text;
	int		 fd;

	dest_drain_all(1000);
	fd = open(path, O_RDONLY);
	cr_assert_neq(fd, -1);
	text = drain(fd, NULL);
	close(fd);
	unlink(path);
	return (text);
}

Test(dest, a_noted_read_says_what_was_taken_and_what_passed)
{
	char			 path[] = "/tmp/meshlog-dest-test.XXXXXX";
	char			 apath[] = "/tmp/meshlog-dest-test.XXXXXX";
	int			 in[2], out[2];
	struct dest		*d;
	struct dest_watch	 w;

	d = pipe_dest(in, out, &w);
	noted_read(d, &w, in, 6, -1);
	cr_assert_str_eq(drain(out[0], NULL), "noted\n");
	dest_unwatch(&w);
	dest_unref(d);
	/* No destination: nothing is owed one. */
	noted_read(NULL, &w, in, UINT32_MAX, -1);
	/* A file: where its offset was before each write. */
	d = file_dest(path, 0, &w);
	noted_read(d, &w, in, UINT32_MAX - 1, 0);
	noted_read(d, &w, in, UINT32_MAX - 1, 6);
	dest_unwatch(&w);
	dest_unref(d);
	cr_assert_str_eq(file_text(path), "noted\nnoted\n");
	/* Appended to: others may move that offset; counted as written. */
	d = file_dest(apath, O_APPEND, &w);
	noted_read(d, &w, in, 6, -1);
	dest_unwatch(&w);
	dest_unref(d);
	cr_assert_str_eq(file_text(apath), "noted\n");
}

Test(dest, a_file_gets_every_byte_in_order)
{
	char			 path[] = "/tmp/meshlog-dest-test.XXXXXX";
	int			 in[2], fd, i;
	struct dest		*d;
	struct dest_watch	 w;
	char			 buf[4096], line[32];
	size_t			 got, total = 0, len;
	const char		*text;

	mkpipe(in);
	fd = mkstemp(path);
	cr_assert_neq(fd, -1);
	d = dest_get(fd);
	memset(&w, 0, sizeof w);
	dest_watch(d, &w, watch_cb, NULL);
	for (i = 0; i < 1000; i++) {
		len = (size_t)snprintf(line, sizeof line, "line %d\n", i);
		cr_assert_eq(write(in[1], line, len), (ssize_t)len);
		total += len;
		if (i % 7 == 0)
			while (dest_pass(d, &w, in[0], buf, 100, &got, NULL) ==
			    DEST_OK)
				;
	}
	while (dest_pass(d, &w, in[0], buf, sizeof buf, &got, NULL) == DEST_OK)
		;
	dest_unwatch(&w);
	dest_unref(d);
	dest_drain_all(1000);
	fd = open(path, O_RDONLY);
	text = drain(fd, &got);
	close(fd);
	unlink(path);
	cr_assert_eq(got, total);
	for (i = 0; i < 1000; i++) {
		len = (size_t)snprintf(line, sizeof line, "line %d\n", i);
		cr_assert_eq(strncmp(text, line, len), 0, "line %d", i);
		text += len;
	}
}

/* What a destination test wrote, in order, and what arrived. */
struct flow {
	int		 in[2];
	int		 sv[2];
	struct dest	*d;
	struct dest_watch w;
	char		*want, *out;
	size_t		 wantlen, have;
	unsigned	 at;
};

/* Put n bytes of a counting pattern into the writer's pipe. */
static void
flow_write(struct flow *f, size_t n)
{
	char	*p = f->want + f->wantlen;
	size_t	 i;

	for (i = 0; i < n; i++)
		p[i] = (char)('a' + f->at++ % 26);
	cr_assert_eq(write(f->in[1], p, n), (ssize_t)n);
	f->wantlen += n;
}

/* A console line, queued now. */
static void
flow_line(struct flow *f, const char *line)
{
	memcpy(f->want + f->wantlen, line, strlen(line));
	f->wantlen += strlen(line);
	dest_write(f->d, line, strlen(line));
}

/* Pass and read until the pipe is empty, or until everything arrived. */
static void
flow_pump(struct flow *f, int all)
{
	static char	 buf[256 * 1024];
	size_t		 got;
	ssize_t		 n;
	enum dest_rc	 rc;

	for (;;) {
		rc = dest_pass(f->d, &f->w, f->in[0], buf, sizeof buf, &got,
		    NULL);
		cr_assert(rc == DEST_OK || rc == DEST_FULL || rc == DEST_EMPTY);
		if (rc == DEST_EMPTY && !all)
			return;
		dest_flush_pending();
		event_base_loop(base, EVLOOP_NONBLOCK);
		while ((n = read(f->sv[1], f->out + f->have, (1 << 21) -
		    f->have)) > 0)
			f->have += (size_t)n;
		cr_assert_leq(f->have, f->wantlen);
		if (f->have == f->wantlen && rc == DEST_EMPTY)
			return;
	}
}

/*
 * A socket that takes little at a time, fed reads above the queue's flush
 * mark (written from the read buffer when nothing is queued) and console
 * lines between them: every byte arrives once, in order.
 */
Test(dest, large_reads_to_a_slow_socket_keep_their_order, .timeout = 60)
{
	struct flow	 f;
	int		 size = 4096;
	size_t		 i;

	memset(&f, 0, sizeof f);
	f.want = malloc(1 << 21);
	f.out = malloc(1 << 21);
	mkpipe(f.in);
	cr_assert_gt(fcntl(f.in[1], F_SETPIPE_SZ, 1 << 20), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    f.sv), 0);
	cr_assert_eq(setsockopt(f.sv[0], SOL_SOCKET, SO_SNDBUF, &size,
	    sizeof size), 0);
	f.d = dest_get(f.sv[0]);
	dest_watch(f.d, &f.w, watch_cb, NULL);
	/* A read behind a queued line waits its turn. */
	flow_line(&f, "first\n");
	flow_write(&f, 200 * 1024);
	flow_pump(&f, 1);
	/* One taken in part, the rest queued; then a line, then more. */
	flow_write(&f, 300 * 1024);
	flow_pump(&f, 0);
	flow_line(&f, "console\n");
	flow_write(&f, 100 * 1024);
	flow_pump(&f, 1);
	for (i = 0; i < f.wantlen; i++)
		cr_assert_eq(f.out[i], f.want[i], "byte %zu of %zu", i,
		    f.wantlen);
	dest_unwatch(&f.w);
	dest_unref(f.d);
	dest_flush_pending();
	close(f.sv[1]);
	free(f.want);
	free(f.out);
}

Test(dest, one_destination_per_open_pipe)
{
	int		 out[2], dup1;
	struct dest	*a, *b;

	mkpipe(out);
	dup1 = dup(out[1]);
	a = dest_get(out[1]);
	b = dest_get(dup1);
	cr_assert_eq(a, b, "two destinations write one pipe");
	dest_unref(a);
	dest_unref(b);
}

Test(dest, one_destination_per_open_description_of_a_file)
{
	char		 path[] = "/tmp/meshlog-dest-test.XXXXXX";
	int		 fd, again, dup1;
	struct dest	*a, *b, *c;

	fd = mkstemp(path);
	cr_assert_neq(fd, -1);
	again = open(path, O_WRONLY);
	dup1 = dup(fd);
	unlink(path);
	a = dest_get(fd);
	b = dest_get(dup1);
	c = dest_get(again);
	cr_assert_eq(a, b, "a description's copies write at two offsets");
	cr_assert_neq(a, c, "a file opened twice is written at one offset");
	dest_unref(a);
	dest_unref(b);
	dest_unref(c);
}

Test(dest, console_lines_are_written_by_the_end_of_the_pass)
{
	int		 out[2];
	struct dest	*d;

	mkpipe(out);
	d = dest_get(out[1]);
	dest_write(d, "[rank 0] a\n", 11);
	dest_write(d, "[rank 1] b\n", 11);
	dest_flush_pending();
	cr_assert_str_eq(drain(out[0], NULL), "[rank 0] a\n[rank 1] b\n");
	dest_unref(d);
}
