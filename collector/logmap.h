/* meshlogctl logs: a log file read whole, mapped or decompressed. */
#ifndef MESHLOG_LOGMAP_H
#define MESHLOG_LOGMAP_H

#include <stddef.h>

/* A file mapped whole (NULL p when empty), or decompressed (heap). */
struct mapped {
	char		*path;
	int		 fd;
	char		*p;
	size_t		 n;
	int		 heap;
};

/*
 * Map path whole into m (a .zst file: decompressed); 0, or -1 said on
 * stderr. m is to be closed either way.
 */
int	logmap_open(const char *path, struct mapped *m);
void	logmap_close(struct mapped *m);
/*
 * The segment number of the log_rotated record segment k of the log path
 * begins with (as outname_segment_head), or -1 when there is no segment
 * k or it cannot be read.
 */
long long logmap_segment_head(const char *path, int k);

#endif
