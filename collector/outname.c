/* Names of per-process text files: see outname.h. */

#include <stdio.h>
#include <string.h>

#include "outname.h"

char *
outname_host(const char *host, char *buf, size_t len)
{
	size_t	i, n = 0;
	char	c;

	for (i = 0; host != NULL && host[i] != '\0' && n + 1 < len; i++) {
		c = host[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
			c = '_';
		buf[n++] = c;
	}
	buf[n] = '\0';
	/* Never empty, never the directory itself or its parent. */
	if (n == 0)
		snprintf(buf, len, "_");
	else if (strspn(buf, ".") == n)
		buf[0] = '_';
	return (buf);
}

void
outname_file(long rank, long pid, int plain, const char *stream, char *buf,
    size_t len)
{
	if (rank < 0)
		snprintf(buf, len, "pid-%ld.%s.log", pid, stream);
	else if (plain)
		snprintf(buf, len, "rank-%ld.%s.log", rank, stream);
	else
		snprintf(buf, len, "rank-%ld.pid-%ld.%s.log", rank, pid,
		    stream);
}
