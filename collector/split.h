/*
 * The line splitter (split.c): a stream's bytes cut into records, and the
 * flags a record carries everywhere it goes.
 */
#ifndef MESHLOG_SPLIT_H
#define MESHLOG_SPLIT_H

#include <sys/types.h>

#include <stddef.h>

#define SPLIT_TRUNCATED	0x1	/* line continues in the next record */
#define SPLIT_PARTIAL	0x2	/* no line ending before EOF */
#define SPLIT_PROGRESS	0x4	/* final state of a \r progress line */
#define SPLIT_UPDATE	0x8	/* intermediate progress state, console only */
#define SPLIT_PAUSED	0x10	/* with PROGRESS: a bar's state ended by
				 * what followed it, not by a newline */
#define SPLIT_COPY	0x20	/* a launcher's copy of a rank's line */
#define SPLIT_PLAIN	0x40	/* no byte needs JSON escaping (local only) */

/* Called for each record: line (borrowed, len bytes) and SPLIT_* flags. */
typedef void (*split_cb)(void *arg, const char *line, size_t len, int flags);

/* A line splitter for one stream; bounded memory. */
struct split {
	char	*cur;		/* current segment */
	size_t	 len;
	char	*last;		/* last non-empty progress segment */
	size_t	 lastlen;
	size_t	 max;
	int	 progress;	/* current line had \r updates */
	int	 cr;		/* a \r waits to see whether \n follows */
	int	 cont;		/* current line continues a cut record */
	int	 barwait;	/* a bar state, then the writer paused */
};

/* Prepare s to cut records at max bytes (at least 16). */
void	split_init(struct split *s, size_t max);
/* Release s's buffers. */
void	split_free(struct split *s);
/* Feed n bytes; cb runs for every record completed. */
void	split_feed(struct split *s, const char *p, size_t n, split_cb cb,
	    void *arg);
/* The writer paused (its pipe is empty): text other than an update that
 * follows a progress state begins a new line. */
void	split_pause(struct split *s);
/* The line begun and not finished (no \r, not cut), or NULL; *len set. */
const char *split_partial(const struct split *s, size_t *len);
/* Whether s holds the start of a line, of any kind. */
int	split_holding(const struct split *s);
/*
 * What s holds of a line not yet finished, as bytes that fed to a new
 * splitter put it in the same state: 0 and the bytes (maybe none), or -1
 * when its state is more than bytes (a bar, a cut line, a \r).
 */
int	split_pending(const struct split *s, const char **p, size_t *len);
/*
 * Whether nothing of a line waits in s: then the record at p is whole when
 * split_whole() says so (its length, *plain its SPLIT_PLAIN; its \n not in
 * it), else -1, with s->max as max. split_feed would make the same record
 * of it; a caller may take runs of whole lines in a loop of its own.
 */
int	split_idle(const struct split *s);
ssize_t	split_whole(const char *p, size_t n, size_t max, int *plain);
/* End of stream: emit what is left, marked partial. */
void	split_finish(struct split *s, split_cb cb, void *arg);

#endif
