/*
 * Names of per-process text files (--output-dir, meshlogctl logs
 * --split), shared by the collector and meshlogctl, which does not
 * include collector.h.
 */
#ifndef MESHLOG_OUTNAME_H
#define MESHLOG_OUTNAME_H

#include <stddef.h>

/*
 * A host name as a directory name into buf: letters, digits, '.', '-'
 * and '_' kept, anything else '_', never "", "." or ".." (a relay's
 * host name comes from the network). Returns buf.
 */
char	*outname_host(const char *host, char *buf, size_t len);
/*
 * The file of a process into buf: rank-N.STREAM.log for the first
 * process of rank N on its host (plain), rank-N.pid-P.STREAM.log for any
 * other, pid-P.STREAM.log for a process without a rank (rank < 0).
 */
void	 outname_file(long rank, long pid, int plain, const char *stream,
	    char *buf, size_t len);

#endif
