/*
 * Names of the files the collector writes and meshlogctl reads or
 * writes too: per-process text files (--output-dir, logs --split) and
 * rotated log segments. meshlogctl does not include collector.h.
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
/*
 * Segment k of the rotated log at path into buf: k 0 is path itself,
 * run.jsonl's segment 2 is run.2.jsonl, or run.2.jsonl.zst when zst; a
 * name without an extension gets log.2 and log.2.zst.
 */
void	 outname_segment(const char *path, int k, int zst, char *buf,
	    size_t len);
/*
 * The segment number of the log_rotated record that buf[0..n) begins
 * with, 0 when its first line is another, -1 when it holds no whole line.
 */
long long outname_segment_head(const char *buf, size_t n);

#endif
