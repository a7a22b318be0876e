/*
 * A job's summary as text (summarytext.c), shared by the collector and
 * meshlogctl, which does not include collector.h.
 */
#ifndef MESHLOG_SUMMARYTEXT_H
#define MESHLOG_SUMMARYTEXT_H

#include <stddef.h>

#include <jansson.h>

/* "SIGKILL" for 9 into buf, or the number. */
void	 summary_signame(int sig, char *buf, size_t len);
/*
 * A summary record (borrowed) as lines of text, each ending in a newline:
 * one line when every process exited 0, else a table; ANSI colour when
 * colour is set. Allocated; NULL when out of memory.
 */
char	*summary_text(json_t *summary, int colour);

#endif
