/*
 * The socket's directory, verified once and then used through a directory
 * descriptor: it must be a real directory (not a link) owned by this
 * collector's user that nobody else may write to, so nobody else can plant
 * or replace anything in it. Every file the collector makes
 * beside its socket (the lock, the level files) is created through that
 * descriptor with O_NOFOLLOW, and O_EXCL where it is new.
 */

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"

static int	 sockdir_fd = -1;
static char	*sockdir_base;		/* the socket's file name */

int
sockdir_open(const char *path, char **cause)
{
	char		*copy = xstrdup(path), *dir, *name;
	struct stat	 sb;
	int		 fd = -1, rc = -1;

	dir = dirname(copy);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		xasprintf(cause, "cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &sb) != 0) {
		xasprintf(cause, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (sb.st_uid != geteuid()) {
		xasprintf(cause, "%s belongs to uid %lu, not to this user (uid "
		    "%lu): refusing to put the socket there", dir,
		    (unsigned long)sb.st_uid, (unsigned long)geteuid());
		goto out;
	}
	/*
	 * Write permission would let others plant or replace entries. Read
	 * and search do not: the socket itself is 0600 and every peer is
	 * checked, and `-s ./job.sock` in an ordinary directory must work.
	 */
	if ((sb.st_mode & 022) != 0) {
		xasprintf(cause, "%s is writable by other users (mode %03o): "
		    "refusing to put the socket there; chmod go-w it or choose "
		    "another directory", dir, (unsigned)(sb.st_mode & 0777));
		goto out;
	}
	free(copy);
	copy = xstrdup(path);
	name = basename(copy);
	free(sockdir_base);
	sockdir_base = xstrdup(name);
	if (sockdir_fd != -1)
		close(sockdir_fd);
	sockdir_fd = fd;
	fd = -1;
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	free(copy);
	return (rc);
}

/* SOCKET-name + suffix into buf; 0, or -1 (ENAMETOOLONG) when it does not fit. */
static int
sockdir_name(char *buf, size_t len, const char *suffix)
{
	if (sockdir_fd == -1 || sockdir_base == NULL) {
		errno = EBADF;
		return (-1);
	}
	if ((size_t)snprintf(buf, len, "%s%s", sockdir_base, suffix) >= len) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	return (0);
}

int
sockdir_openat(const char *suffix, int flags, mode_t mode)
{
	char	name[NAME_MAX + 1];

	if (sockdir_name(name, sizeof name, suffix) != 0)
		return (-1);
	return (openat(sockdir_fd, name, flags | O_NOFOLLOW | O_CLOEXEC,
	    mode));
}

int
sockdir_rename(const char *from, const char *to)
{
	char	a[NAME_MAX + 1], b[NAME_MAX + 1];

	if (sockdir_name(a, sizeof a, from) != 0 ||
	    sockdir_name(b, sizeof b, to) != 0)
		return (-1);
	return (renameat(sockdir_fd, a, sockdir_fd, b));
}

int
sockdir_unlink(const char *suffix)
{
	char	name[NAME_MAX + 1];

	if (sockdir_name(name, sizeof name, suffix) != 0)
		return (-1);
	return (unlinkat(sockdir_fd, name, 0));
}
