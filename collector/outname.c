/* Names of files shared by the collector and meshlogctl: see outname.h. */

#include <stdio.h>
#include <stdlib.h>
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

void
outname_segment(const char *path, int k, int zst, char *buf, size_t len)
{
	const char	*slash = strrchr(path, '/');
	const char	*base = slash != NULL ? slash + 1 : path;
	const char	*dot = strrchr(base, '.');

	if (k == 0)
		snprintf(buf, len, "%s", path);
	else if (dot == NULL || dot == base)
		snprintf(buf, len, "%s.%d%s", path, k, zst ? ".zst" : "");
	else
		snprintf(buf, len, "%.*s.%d%s%s", (int)(dot - path), path, k,
		    dot, zst ? ".zst" : "");
}

long long
outname_segment_head(const char *buf, size_t n)
{
	static const char	 key[] = "\"event\":\"log_rotated\",\"segment\":";
	const char		*nl = memchr(buf, '\n', n), *p;

	if (nl == NULL)
		return (-1);
	if ((p = memmem(buf, (size_t)(nl - buf), key, sizeof key - 1)) ==
	    NULL)
		return (0);
	return (strtoll(p + sizeof key - 1, NULL, 10));
}
