/* meshlogctl logs --split: per-process text files from a JSON log. */
#ifndef MESHLOG_LOGSPLIT_H
#define MESHLOG_LOGSPLIT_H

#include <jansson.h>

struct logsplit;

/*
 * Write under the directory path (made 0700 if missing; it must be the
 * user's own, writable by no one else, or meshlogctl exits 1).
 */
struct logsplit	*logsplit_open(const char *path);
/* Take a record (borrowed): a source_open, or a line for its file. */
void		 logsplit_record(struct logsplit *, json_t *);
/* Close the files open now (they are reopened to append when needed). */
void		 logsplit_close_files(struct logsplit *);
/* Close and free everything: 0, or 1 when some file could not be written. */
int		 logsplit_close(struct logsplit *);

#endif
