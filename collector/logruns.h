/*
 * meshlogctl logs --run, --list-runs: the collector runs a JSON log
 * holds. -j appends, so a log written by several runs of a job (or by a
 * serve-mode collector started again) holds one after the other.
 */
#ifndef MESHLOG_LOGRUNS_H
#define MESHLOG_LOGRUNS_H

#include <stddef.h>
#include <stdint.h>

/* Where a run begins: the file (as read, in order) and the byte in it. */
struct logrun {
	size_t		 file;
	size_t		 off;
	int64_t		 first_ns;	/* its first record's time, or 0 */
	int64_t		 last_ns;	/* its last record's time, or 0 */
	size_t		 sources;	/* processes it opened */
	char		*command;	/* its first process's argv on one line
					   (control characters escaped), or
					   NULL */
};

/*
 * The runs in the files p[i][0..n[i]) read in order: a run begins where
 * a source_open names a process (host and source id) its run opened
 * already, not one taken back from the keeper: ids start anew with each
 * collector. Returns how many (at least 1) into *out (allocated).
 */
size_t	logruns_find(char *const *p, const size_t *n, size_t nfiles,
	    struct logrun **out);
void	logruns_free(struct logrun *, size_t);
/*
 * Run k as journalctl's -b counts boots: 1 the first, 2 the next...; 0
 * the last, -1 the one before it. Returns its index into runs, or -1.
 */
long	logruns_pick(long k, size_t nruns);
/* --list-runs: the runs of the files, a line each, on stdout. */
void	logruns_list(char *const *p, const size_t *n, size_t nfiles);
/*
 * Run k (as logruns_pick) as a range of each file, lo[i]..hi[i]: 0; 1
 * when the files hold no run k, 2 when follow asks to follow a run that
 * has ended; said on stderr.
 */
int	logruns_range(char *const *p, const size_t *n, size_t nfiles, long k,
	    int follow, size_t *lo, size_t *hi);

#endif
