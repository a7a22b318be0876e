/*
 * The socket's directory, reached without following a link someone else
 * planted (path_parent_open, which the JSON log and --output-dir use
 * too), verified once and then used through a directory descriptor: it
 * must be a real directory (not a link) owned by this collector's user
 * that nobody else may write to, so nobody else can plant or replace
 * anything in it. Every file the collector makes beside its socket (the
 * lock, the level files) is created through that descriptor with
 * O_NOFOLLOW, and O_EXCL where it is new.
 */

#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"

int
path_parent_open(const char *path, char *name, size_t len, char **cause)
{
	struct stat	 dsb, lsb;
	char		*copy = xstrdup(path), *part, *save = NULL, *slash;
	size_t		 n = strlen(copy);
	int		 dfd, fd, err;

	*cause = NULL;
	/* "out/" names out: its trailing slashes would follow a link. */
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	slash = strrchr(copy, '/');
	if (strlcpy(name, slash == NULL ? copy : slash[1] == '\0' ? "." :
	    slash + 1, len) >= len) {
		free(copy);
		errno = ENAMETOOLONG;
		return (-1);
	}
	if (slash != NULL)
		*slash = '\0';
	dfd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY |
	    O_CLOEXEC);
	for (part = slash == NULL ? NULL : strtok_r(copy, "/", &save);
	    part != NULL && dfd != -1; part = strtok_r(NULL, "/", &save)) {
		if (fstatat(dfd, part, &lsb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(lsb.st_mode) && fstat(dfd, &dsb) == 0 &&
		    (dsb.st_mode & (S_ISVTX | S_IWOTH)) == (S_ISVTX | S_IWOTH) &&
		    lsb.st_uid != geteuid() && lsb.st_uid != dsb.st_uid) {
			xasprintf(cause, "%s, on the way, is a symbolic link "
			    "of uid %lu in a directory anyone may write to: "
			    "not followed", part, (unsigned long)lsb.st_uid);
			close(dfd);
			free(copy);
			errno = EPERM;
			return (-1);
		}
		fd = openat(dfd, part, O_PATH | O_DIRECTORY | O_CLOEXEC);
		err = errno;
		close(dfd);
		dfd = fd;
		errno = err;
	}
	free(copy);
	return (dfd);
}

static int	 sockdir_fd = -1;
static char	*sockdir_base;		/* the socket's file name */

int
sockdir_open(const char *path, char **cause)
{
	char		*copy = xstrdup(path), *dir, *name, *why;
	char		 dname[NAME_MAX + 1];
	struct stat	 sb;
	int		 pfd = -1, fd = -1, rc = -1;

	dir = dirname(copy);
	if ((pfd = path_parent_open(dir, dname, sizeof dname, &why)) ==
	    -1) {
		xasprintf(cause, "%s: %s", dir, why != NULL ? why :
		    strerror(errno));
		free(why);
		goto out;
	}
	if (mkdirat(pfd, dname, 0700) == -1 && errno != EEXIST) {
		xasprintf(cause, "cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	fd = openat(pfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
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
	if (pfd != -1)
		close(pfd);
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

/*
 * Remove the socket name in the directory, and its lock, if it is a dead
 * collector's: its lock is free and nobody listens. The lock goes last,
 * while held, so that no collector takes it meanwhile. 1 when removed.
 */
static int
sockdir_reap(const char *name)
{
	struct sockaddr_un	sun;
	char			lname[NAME_MAX + sizeof ".lock"];
	int			fd, lock, dead = 0;

	if ((size_t)snprintf(lname, sizeof lname, "%s.lock", name) >=
	    sizeof lname || (lock = openat(sockdir_fd, lname, O_RDWR |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		return (0);
	/* Through /proc/self/fd: the directory's path is not trusted. */
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (flock(lock, LOCK_EX | LOCK_NB) == 0 &&
	    (size_t)snprintf(sun.sun_path, sizeof sun.sun_path,
	    "/proc/self/fd/%d/%s", sockdir_fd, name) < sizeof sun.sun_path &&
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) != -1) {
		dead = connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1 &&
		    errno == ECONNREFUSED;
		close(fd);
	}
	if (dead) {
		dead = unlinkat(sockdir_fd, name, 0) == 0;
		(void)unlinkat(sockdir_fd, lname, 0);
	}
	close(lock);
	return (dead);
}

int
sockdir_sweep(void)
{
	struct dirent	*e;
	DIR		*d;
	long		 pid;
	int		 fd, n = 0, end;

	if (sockdir_fd == -1 || (fd = openat(sockdir_fd, ".", O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC)) == -1)
		return (0);
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return (0);
	}
	while ((e = readdir(d)) != NULL) {
		end = 0;
		if (sscanf(e->d_name, "launch-%ld.sock%n", &pid, &end) != 1 ||
		    e->d_name[end] != '\0' || end == 0 || pid <= 0 ||
		    pid == (long)getpid() || e->d_type != DT_SOCK)
			continue;
		/* A pid alive may be a collector still starting. */
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		n += sockdir_reap(e->d_name);
	}
	closedir(d);
	return (n);
}
