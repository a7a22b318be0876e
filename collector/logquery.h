/*
 * Questions to a JSON log (meshlogctl logs): which records answer them,
 * found on the raw bytes first and parsed only when they may. Shared by
 * meshlogctl and its unit tests; it does not include collector.h.
 */
#ifndef MESHLOG_LOGQUERY_H
#define MESHLOG_LOGQUERY_H

#include <stddef.h>
#include <stdint.h>
#include <regex.h>

#include <jansson.h>

#define LOGQ_NEEDLES	3

/*
 * A process that told its rank after it started (a "rank" event, as the
 * workers of torch.multiprocessing.spawn do): its records before that
 * have "rank":null and are its rank's too.
 */
struct logq_late {
	char		*host;
	long		 pid;
	long long	 source;
	long		 rank;
};

/* What a record must be to be shown. */
struct logq {
	long		*ranks;		/* sorted, or NULL for any */
	size_t		 nranks;
	const char	*host;		/* or NULL */
	long		 pid;		/* or -1 */
	long		 source;	/* or -1 */
	int		 stream;	/* 0 stdout, 1 stderr, -1 either */
	int		 priority;	/* at or above (10..50), or 0 */
	int64_t		 since;		/* ns since the epoch, inclusive */
	int64_t		 until;		/* ns since the epoch, inclusive */
	regex_t		 re;
	int		 have_re;
	int		 events;	/* lifecycle records too */
	int		 copies;	/* launchers' copies of rank lines too */
	int		 piped;		/* helpers' answers through a pipe too */
	/*
	 * Literals of which every answer holds one ("rank":3, or each
	 * level at or above -p), when some are rare enough to look for.
	 */
	char		 needle[LOGQ_NEEDLES][48];
	size_t		 nlen[LOGQ_NEEDLES];
	int		 nneedles;
	/* -p alone settles most lines by their last bytes: "level":"X"} */
	int		 by_tail;
	struct logq_late *late;		/* sorted (logq_learn_ranks) */
	size_t		  nlate;
};

/* A query that takes every line record. */
void	logq_init(struct logq *);
/* Free what the query holds. */
void	logq_free(struct logq *);
/* Done with the options: work out the needles. */
void	logq_ready(struct logq *);
/*
 * Learn the late ranks told in buf[0..len) (records, a torn end left
 * out): each answers -r for that process's records before it. Call
 * logq_ready again after.
 */
void	logq_learn_ranks(struct logq *, const char *buf, size_t len);

/*
 * A time as people write it into ns since the epoch, now being now:
 * RFC 3339 ("2026-11-30T02:15:46.830911Z", an offset or local without
 * one), "YYYY-MM-DD [HH:MM[:SS]]" and "HH:MM[:SS]" (local, today),
 * "now", "today", "yesterday", "tomorrow", and relative "-5m", "+1h30m",
 * "-90s", "-2d". 0, or -1 when s is none of these.
 */
int	logq_parse_time(const char *s, int64_t now, int64_t *out);
/* The level named (DEBUG..CRITICAL, WARN, ERR, or 10..50), or -1. */
int	logq_parse_level(const char *s);

/*
 * Whether the record rec[0..n) (no newline) may answer: cheap tests on
 * its bytes (kind, rank, level, time) that never refuse an answer. 1
 * may, 0 does not.
 */
int	logq_maybe(const struct logq *, const char *rec, size_t n);
/*
 * Whether the parsed record o answers (every test, exactly): 1 or 0.
 */
int	logq_match(const struct logq *, json_t *o);
/*
 * With by_tail: whether the record rec[0..n) may answer by its last
 * bytes (its level is the last key but in a launcher's copy): 1 or 0.
 */
int	logq_tail_maybe(const struct logq *, const char *rec, size_t n);
/* A record's time in ns since the epoch, from its bytes; 0 if none. */
int64_t	logq_time(const char *rec, size_t n);
/* The record's "line" if it is a line record, else NULL (borrowed). */
const char *logq_line(json_t *o, size_t *len);

#endif
