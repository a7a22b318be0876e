/*
 * fsync(2) and fdatasync(2) on a stream whose original is a regular file.
 * The pipe that stands for the file cannot be synced (EINVAL) where the
 * file could: `dd conv=fsync > f` failed, and a program that syncs its
 * log on stdout learnt nothing of its data. The collector writes what
 * came before and syncs the file; its answer is the call's. On a pipe
 * whose original is not a file (a terminal, a pipe, a socket), the call
 * fails with EINVAL as it would on the original.
 */
#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>

#include "shim.h"

/* The sync's result through the collector, or -2 when fd is not ours. */
static int
shim_sync(int fd, int data)
{
	int	i, err, saved = errno;

	if ((i = shim_managed_stream(fd)) < 0 || !shim_state.file[i])
		return (-2);
	if ((err = shim_sync_pipe(shim_state.dev[i], shim_state.ino[i],
	    data)) != 0) {
		errno = err;
		return (-1);
	}
	errno = saved;
	return (0);
}

__attribute__((visibility("default"))) int
fsync(int fd)
{
	int	rc;

	SHIM_REAL(fsync, -1);
	if ((rc = shim_sync(fd, 0)) != -2)
		return (rc);
	return (real_fsync(fd));
}

__attribute__((visibility("default"))) int
fdatasync(int fd)
{
	int	rc;

	SHIM_REAL(fdatasync, -1);
	if ((rc = shim_sync(fd, 1)) != -2)
		return (rc);
	return (real_fdatasync(fd));
}
