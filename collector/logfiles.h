/* meshlogctl logs: which files a query reads, and in what order. */
#ifndef MESHLOG_LOGFILES_H
#define MESHLOG_LOGFILES_H

#include <stddef.h>

/* Rotated segments looked for beside a log, at most. */
#define LOGFILES_SEGMENTS	1000

/*
 * Segment k of the log path as it is on disk (run.2.jsonl, or
 * run.2.jsonl.zst once compressed) into buf; 0, or -1 when there is none.
 */
int	 logfiles_segment(const char *path, int k, char *buf, size_t len);
/*
 * The files to read for the n FILEs named, oldest first (allocated, with
 * each path; *out of them): each log preceded by its rotated segments
 * (run.N.jsonl[.zst] ... run.1.jsonl[.zst]), each file once however often
 * and under whatever name it is named, a segment named beside its log
 * read in its place among the log's, and segments of one log named
 * together (as a shell's glob names them) read oldest first.
 */
char	**logfiles_expand(char **files, size_t n, size_t *out);
/* reallocarray(p, n, size) for meshlogctl logs: it says so and exits
 * rather than return NULL. */
void	*logfiles_alloc(void *p, size_t n, size_t size);

#endif
