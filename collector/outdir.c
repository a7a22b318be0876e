/*
 * Per-process text files (--output-dir DIR), as users of torchrun
 * --log-dir, mpirun --output-filename and srun --output=%t expect:
 * DIR/<host>/rank-<N>.<stream>.log with exactly what the process wrote,
 * no prefixes. The first process of a rank on a host to write takes the
 * rank's name; any other (a forked worker, a wrapper, a restart) gets
 * rank-<N>.pid-<P>.<stream>.log, so two processes never share a file and
 * their lines never mix. Rankless processes get pid-<P>.<stream>.log.
 * Only output bound for the job's own stdout and stderr is written, or
 * for a launcher that passes it on there (mpirun's pipes: forward.c), not
 * what went into a pipe or file of the job's own, such as a shell's
 * $(...). A launcher's own file has what it wrote, the lines it passed
 * on among them.
 *
 * A local process's file gets its bytes as read from its pipe; a relayed
 * one's is rebuilt from its records (each line and its newline, but for
 * a line cut short or left without one), as the root has no more.
 * Files are opened at the first byte, through a directory checked to be
 * the collector's own, never through a link; a process a restarted
 * collector took back from the keeper goes on in the file it had.
 */

#include <sys/stat.h>
#include <sys/tree.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"
#include "outname.h"
#include "source.h"

struct outfile {
	int	fd;		/* -1: could not be opened or written */
	char	name[128];	/* in its host's directory */
};

/* A host's directory and the ranks whose plain name is taken there. */
struct outclaim {
	char			*host;
	long			 rank;
	RB_ENTRY(outclaim)	 entry;
};

struct outhost {
	char			*host;
	int			 fd;
	RB_ENTRY(outhost)	 entry;
};

static int
outclaim_cmp(struct outclaim *a, struct outclaim *b)
{
	int	c = strcmp(a->host, b->host);

	if (c != 0)
		return (c);
	return (a->rank < b->rank ? -1 : a->rank > b->rank);
}

static int
outhost_cmp(struct outhost *a, struct outhost *b)
{
	return (strcmp(a->host, b->host));
}

RB_HEAD(outclaims, outclaim);
RB_GENERATE(outclaims, outclaim, entry, outclaim_cmp)
RB_HEAD(outhosts, outhost);
RB_GENERATE(outhosts, outhost, entry, outhost_cmp)

static struct outclaims	claims = RB_INITIALIZER(&claims);
static struct outhosts	hosts = RB_INITIALIZER(&hosts);
static int		outdir_fd = -1;
static const char	*outdir_path;

/* Whether fd is a directory of this user that no one else may write. */
static int
outdir_mine(int fd, const char *what, char **cause)
{
	struct stat	sb;

	if (fstat(fd, &sb) == -1) {
		xasprintf(cause, "%s: %s", what, strerror(errno));
		return (-1);
	}
	if (!dir_is_mine(&sb)) {
		xasprintf(cause, "%s is not a directory of this user that only "
		    "it may write to (mode %03o, owner %ld)", what,
		    (unsigned)(sb.st_mode & 0777), (long)sb.st_uid);
		return (-1);
	}
	return (0);
}

int
outdir_open(const char *path, char **cause)
{
	char	name[NAME_MAX + 1], *why;
	int	pfd;

	/* Reached without following a link someone else planted. */
	if ((pfd = path_parent_open(path, name, sizeof name, &why)) == -1) {
		xasprintf(cause, "cannot open %s: %s", path, why != NULL ? why :
		    strerror(errno));
		free(why);
		return (-1);
	}
	if (mkdirat(pfd, name, 0700) == -1 && errno != EEXIST) {
		xasprintf(cause, "cannot make %s: %s", path, strerror(errno));
		close(pfd);
		return (-1);
	}
	outdir_fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	close(pfd);
	if (outdir_fd == -1) {
		xasprintf(cause, "cannot open %s: %s%s", path, strerror(errno),
		    errno == ELOOP || errno == ENOTDIR ? " (a symbolic link "
		    "is not followed)" : "");
		return (-1);
	}
	if (outdir_mine(outdir_fd, path, cause) != 0) {
		close(outdir_fd);
		outdir_fd = -1;
		return (-1);
	}
	outdir_path = path;
	return (0);
}

/* The directory of host in DIR, made and checked at first use; or -1. */
static int
outdir_host(const char *host)
{
	struct outhost	 key, *h;
	char		 name[256], *cause = NULL;
	int		 fd;

	outname_host(host, name, sizeof name);
	key.host = name;
	if ((h = RB_FIND(outhosts, &hosts, &key)) != NULL)
		return (h->fd);
	if (mkdirat(outdir_fd, name, 0700) == -1 && errno != EEXIST)
		log_warn("--output-dir: cannot make %s/%s: %s", outdir_path,
		    name, strerror(errno));
	fd = openat(outdir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd != -1 && outdir_mine(fd, name, &cause) != 0) {
		log_warn("--output-dir: %s", cause);
		free(cause);
		close(fd);
		fd = -1;
	}
	h = xcalloc(1, sizeof *h);
	h->host = xstrdup(name);
	h->fd = fd;
	RB_INSERT(outhosts, &hosts, h);
	return (fd);
}

/* Whether src takes its rank's plain name (the first of it to write). */
static int
outdir_claim(struct source *src)
{
	struct outclaim	 key, *c;

	if (src->outplain >= 0)
		return (src->outplain);
	key.host = src->host != NULL ? src->host : "";
	key.rank = src->rank;
	if (src->rank < 0 || RB_FIND(outclaims, &claims, &key) != NULL) {
		src->outplain = 0;
		return (0);
	}
	c = xcalloc(1, sizeof *c);
	c->host = xstrdup(key.host);
	c->rank = src->rank;
	RB_INSERT(outclaims, &claims, c);
	src->outplain = 1;
	return (1);
}

/* The file of s, opened at its first byte; NULL when it cannot be. */
static struct outfile *
outdir_file(struct stream *s)
{
	struct source	*src = s->src;
	int		 dfd;

	if (s->out != NULL)
		return (s->out->fd != -1 ? s->out : NULL);
	s->out = xcalloc(1, sizeof *s->out);
	s->out->fd = -1;
	if ((dfd = outdir_host(src->host != NULL ? src->host : "")) == -1)
		return (NULL);
	outname_file(src->rank, src->pid, outdir_claim(src),
	    s->which ? "stderr" : "stdout", s->out->name, sizeof s->out->name);
	/* A process taken back from a dead collector's keeper goes on in
	 * the file that collector began. */
	s->out->fd = openat(dfd, s->out->name, O_WRONLY | O_CREAT |
	    (src->taken_back ? O_APPEND : O_TRUNC) | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (s->out->fd == -1) {
		log_warn("--output-dir: cannot open %s: %s (its lines are in "
		    "the JSON log)", s->out->name, strerror(errno));
		return (NULL);
	}
	return (s->out);
}

/*
 * src has just told its rank (the workers of torch.multiprocessing.spawn
 * learn theirs when they join the process group): files it began under
 * its pid take the name they would have had, had the rank been known at
 * their first byte, and keep what they hold. A file of that name from an
 * earlier run is replaced, as opening it would have truncated it.
 */
void
outdir_rank(struct source *src)
{
	struct outfile	*f;
	char		 name[128];
	int		 i, dfd;

	if (outdir_fd == -1 || src->outplain == 1)
		return;
	src->outplain = -1;		/* claimed anew, as the rank's */
	for (i = 0; i < 2; i++) {
		if (src->st[i] == NULL || (f = src->st[i]->out) == NULL ||
		    f->fd == -1 ||
		    (dfd = outdir_host(src->host != NULL ? src->host : "")) ==
		    -1)
			continue;
		outname_file(src->rank, src->pid, outdir_claim(src),
		    src->st[i]->which ? "stderr" : "stdout", name, sizeof name);
		if (renameat(dfd, f->name, dfd, name) == -1) {
			log_warn("--output-dir: cannot rename %s to %s: %s",
			    f->name, name, strerror(errno));
			continue;
		}
		memcpy(f->name, name, sizeof f->name);
	}
}

/* Write all of p[0..n) to f; on error the file is given up, said once. */
static void
outdir_put(struct outfile *f, const char *p, size_t n)
{
	if (fd_write_all(f->fd, p, n) == 0)
		return;
	log_warn("--output-dir: write failed: %s; the rest of this process's "
	    "output is in the JSON log only", strerror(errno));
	close(f->fd);
	f->fd = -1;
}

void
outdir_bytes(struct stream *s, const char *p, size_t n)
{
	struct outfile	*f;

	if (outdir_fd == -1 || n == 0 || (!s->console && !s->fwd) ||
	    (f = outdir_file(s)) == NULL)
		return;
	outdir_put(f, p, n);
}

void
outdir_record(struct stream *s, const char *line, size_t len, int flags)
{
	struct outfile	*f;

	if (outdir_fd == -1 || (flags & SPLIT_UPDATE) ||
	    (!s->console && !s->fwd) || (f = outdir_file(s)) == NULL)
		return;
	outdir_put(f, line, len);
	if (f->fd != -1 && !(flags & (SPLIT_TRUNCATED | SPLIT_PARTIAL)))
		outdir_put(f, "\n", 1);
}

void
outdir_close(struct stream *s)
{
	if (s->out == NULL)
		return;
	if (s->out->fd != -1)
		close(s->out->fd);
	free(s->out);
	s->out = NULL;
}
