/*
 * Rotation of the JSON log (--json-max-size, --json-keep): once the log
 * holds SIZE bytes of whole records it becomes run.1.jsonl, older
 * segments move one number up (run.1.jsonl.zst to run.2.jsonl.zst...),
 * the oldest past KEEP goes, and a new run.jsonl starts. A child process
 * compresses run.1.jsonl with zstd, at low priority, away from the event
 * loop: run.1.jsonl.zst appears whole (written as .tmp, then renamed) and
 * only then is run.1.jsonl removed, so a reader always finds each record
 * in exactly one segment.
 */

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "collector.h"
#include "outname.h"

/* zstd's level: its default, fast and about 10x on JSON lines. */
#define ROTATE_LEVEL	3

static off_t	rotate_max;		/* 0: no rotation */
static int	rotate_keep = ROTATE_KEEP_DEFAULT;
static pid_t	rotate_child = -1;	/* the compressor, while it runs */

void
rotate_config(off_t max, int keep)
{
	rotate_max = max;
	rotate_keep = keep;
}

int
rotate_due(off_t size)
{
	return (rotate_max > 0 && size >= rotate_max);
}

/* Compress src into dst (via dst.tmp); 0, or -1 with errno. */
static int
rotate_compress(const char *src, const char *dst)
{
	static char	 in[1 << 17], out[1 << 17];
	char		 tmp[PATH_MAX];
	ZSTD_CCtx	*cc;
	ZSTD_inBuffer	 ib;
	ZSTD_outBuffer	 ob;
	ssize_t		 n;
	size_t		 left;
	int		 ifd, ofd, rc = -1, last;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", dst) >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	if ((ifd = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return (-1);
	(void)unlink(tmp);
	ofd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (ofd == -1 || (cc = ZSTD_createCCtx()) == NULL) {
		close(ifd);
		if (ofd != -1)
			close(ofd);
		return (-1);
	}
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, ROTATE_LEVEL);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	for (;;) {
		if ((n = read(ifd, in, sizeof in)) == -1) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		last = n == 0;
		ib = (ZSTD_inBuffer){ in, (size_t)n, 0 };
		do {
			ob = (ZSTD_outBuffer){ out, sizeof out, 0 };
			left = ZSTD_compressStream2(cc, &ob, &ib, last ?
			    ZSTD_e_end : ZSTD_e_continue);
			if (ZSTD_isError(left) || write(ofd, out, ob.pos) !=
			    (ssize_t)ob.pos) {
				errno = EIO;
				goto out;
			}
		} while (last ? left != 0 : ib.pos < ib.size);
		if (last)
			break;
	}
	if (fsync(ofd) == -1 || rename(tmp, dst) == -1)
		goto out;
	rc = 0;
out:
	ZSTD_freeCCtx(cc);
	close(ifd);
	close(ofd);
	if (rc != 0)
		(void)unlink(tmp);
	return (rc);
}

/* Wait for the compressor; block says whether to wait for its end. */
static void
rotate_reap(int block)
{
	int	st;
	pid_t	r;

	if (rotate_child == -1)
		return;
	while ((r = waitpid(rotate_child, &st, block ? 0 : WNOHANG)) == -1 &&
	    errno == EINTR)
		;
	if (r == 0)
		return;
	if (r == rotate_child && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		log_warn("JSON log: compressing the last segment failed; it "
		    "stays uncompressed");
	rotate_child = -1;
}

void
rotate_poll(void)
{
	rotate_reap(0);
}

void
rotate_finish(void)
{
	rotate_reap(1);
}

/* Move segment k (either form) to k + 1, or remove it past the keep. */
static void
rotate_shift(const char *path, int k)
{
	char	from[PATH_MAX], to[PATH_MAX];
	int	zst;

	for (zst = 0; zst < 2; zst++) {
		outname_segment(path, k, zst, from, sizeof from);
		if (k >= rotate_keep) {
			if (unlink(from) == -1 && errno != ENOENT)
				log_warn("JSON log: cannot remove %s: %s", from,
				    strerror(errno));
			continue;
		}
		outname_segment(path, k + 1, zst, to, sizeof to);
		if (rename(from, to) == -1 && errno != ENOENT)
			log_warn("JSON log: cannot rename %s: %s", from,
			    strerror(errno));
	}
}

int
rotate_now(const char *path)
{
	char	one[PATH_MAX];
	int	k;

	/* The previous compressor renames run.1: it goes first. */
	rotate_reap(1);
	for (k = rotate_keep; k >= 1; k--)
		rotate_shift(path, k);
	outname_segment(path, 1, 0, one, sizeof one);
	return (rename(path, one));
}

void
rotate_undo(const char *path)
{
	char	one[PATH_MAX];

	outname_segment(path, 1, 0, one, sizeof one);
	if (rename(one, path) == -1)
		log_warn("JSON log: cannot move %s back: %s", one,
		    strerror(errno));
}

void
rotate_start(const char *path)
{
	char	one[PATH_MAX], zone[PATH_MAX];
	pid_t	pid;

	outname_segment(path, 1, 0, one, sizeof one);
	outname_segment(path, 1, 1, zone, sizeof zone);
	switch (pid = fork()) {
	case -1:
		log_warn("JSON log: cannot start the compressor: %s; %s stays "
		    "uncompressed", strerror(errno), one);
		return;
	case 0:
		/* Only system calls and zstd here; never the loop. */
		(void)signal(SIGINT, SIG_IGN);
		(void)signal(SIGTERM, SIG_IGN);
		(void)signal(SIGHUP, SIG_IGN);
		closefrom(STDERR_FILENO + 1);
		(void)setpriority(PRIO_PROCESS, 0, 10);
		if (rotate_compress(one, zone) != 0)
			_exit(1);
		(void)unlink(one);
		_exit(0);
	default:
		rotate_child = pid;
	}
}
