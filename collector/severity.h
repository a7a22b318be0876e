/*
 * A line's level as its text announces it, and blocks of lines read as one
 * (a traceback): severity.c, for the collector (included by collector.h).
 */

#ifndef MESHLOG_SEVERITY_H
#define MESHLOG_SEVERITY_H

#include <stddef.h>
#include <string.h>

/* The first line of a Python traceback. */
#define PY_TRACEBACK	"Traceback (most recent call last):"

/* Python level (10..50) a line announces, or 0 when none is recognised. */
int	severity_detect(const char *line, size_t len);
/*
 * Blocks of lines read as one: a Python traceback from its first line to
 * its exception's (and chained ones), a Python warning and the source
 * line quoted under it, "Exception in thread ..." and the indented lines
 * under it, and what a runtime writes as it dies with the
 * frames after it (libstdc++'s terminate with PyTorch's C++ frames,
 * CPython's faulthandler, Go's and Rust's panics). A block's records take
 * its first line's level. The console view takes only tracebacks whole
 * (block_in_view): a runtime's last words, and C++ frames, which name an
 * address of their process's own on every line, group line by line with
 * other ranks', as other lines do.
 */
enum block_state {
	BLK_NONE,
	BLK_HEAD,	/* "Exception in thread ...": a trace may follow */
	BLK_FRAMES,	/* after "Traceback ...": indented frames */
	BLK_AFTER,	/* after the exception line: a chained one may follow */
	BLK_AFTER_CXX,	/* the same, in PyTorch's C++ frames of the exception */
	BLK_INDENTED,	/* indented lines under a header (Java, others) */
	BLK_CXX,	/* "terminate called ...": what(), c10's frames */
	BLK_FAULT,	/* "Fatal Python error: ": faulthandler's threads */
	BLK_GO,		/* "panic: ", "fatal error: ": goroutines */
	BLK_RUST_MSG,	/* "thread '...' panicked at": its message next */
	BLK_RUST,	/* then notes and an indented backtrace */
	BLK_PYWARN,	/* Python's warning: its source line may follow */
	BLK_LAST,	/* the block's last line was the one before */
};
/*
 * Whether line begins with the literal lit; asked of every line, so the
 * first byte is compared before memcmp() is called.
 */
static inline int
block_begins(const char *line, size_t len, const char *lit)
{
	size_t	n = strlen(lit);

	return (len >= n && (n == 0 || line[0] == lit[0]) &&
	    memcmp(line, lit, n) == 0);
}
/* Whether the console view takes a line in state st into a block. */
static inline int
block_in_view(enum block_state st)
{
	return (st == BLK_HEAD || st == BLK_FRAMES || st == BLK_AFTER ||
	    st == BLK_INDENTED);
}
/* A runtime's last words that open a block (severity.c), or BLK_NONE. */
enum block_state block_start_fatal(const char *line, size_t len);
/* The state a line opens a block in, or BLK_NONE (asked of every line). */
static inline enum block_state
block_start(const char *line, size_t len)
{
	if (len == 0)
		return (BLK_NONE);
	switch (line[0]) {
	case 'T':
		return (block_begins(line, len, PY_TRACEBACK) ? BLK_FRAMES :
		    BLK_NONE);
	case 'E':
		return (block_begins(line, len, "Exception in thread ") ?
		    BLK_HEAD : BLK_NONE);
	case 't':
	case 'F':
	case 'p':
	case 'f':
		return (block_start_fatal(line, len));
	default:
		return (BLK_NONE);
	}
}
/* The state after line in a block in state st, or BLK_NONE when line is
 * not part of it. */
enum block_state block_next(enum block_state st, const char *line,
	    size_t len);
/*
 * The level of a line's record: its own (severity), or in a traceback
 * whose first line has one, the higher of that and its own, so that a
 * query by level shows the traceback whole. *st and *level: the stream's
 * block and that level, BLK_NONE and 0 at first. *within (unless NULL):
 * whether the line continued a block, as logging.exception's traceback
 * continues its ERROR line.
 */
int	severity_in_block(enum block_state *st, int *level, const char *line,
	    size_t len, int severity, int *within);

#endif
