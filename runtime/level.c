/*
 * The level a process should apply, from the collector's level file
 * (SOCKET.level: {"version":N,"level":L,"ranks":null|[r,...]}). Parsed
 * without allocation, for the shim's syslog applier.
 */

#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "runtime.h"

/* The unsigned number after key in text, or -1. */
static long
level_field(const char *text, const char *key, const char **after)
{
	const char	*p = strstr(text, key);
	long		 v = 0;

	if (p == NULL)
		return (-1);
	p += strlen(key);
	if (*p < '0' || *p > '9')
		return (-1);
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > 1000000000L)
			return (-1);
	}
	if (after != NULL)
		*after = p;
	return (v);
}

long
level_parse(const char *text, long rank, unsigned long *version)
{
	const char	*p;
	long		 level, v, r;

	if ((v = level_field(text, "\"version\":", NULL)) < 0 ||
	    (level = level_field(text, "\"level\":", NULL)) < 0 || level > 50)
		return (-1);
	*version = (unsigned long)v;
	if ((p = strstr(text, "\"ranks\":")) == NULL)
		return (-1);
	p += strlen("\"ranks\":");
	if (strncmp(p, "null", 4) == 0)
		return (level);
	if (*p != '[')
		return (-1);
	p++;
	while (*p >= '0' && *p <= '9') {
		for (r = 0; *p >= '0' && *p <= '9'; p++)
			r = r * 10 + (*p - '0');
		if (r == rank)
			return (level);
		if (*p == ',')
			p++;
	}
	return (-2);	/* not for this rank */
}

long
level_by_name(const char *s)
{
	static const char *const names[] = { "DEBUG", "INFO", "WARNING",
	    "ERROR", "CRITICAL" };
	long	v;
	int	i;

	for (i = 0; i < 5; i++) {
		if (strcasecmp(s, names[i]) == 0)
			return ((i + 1) * 10);
	}
	if (ident_parse_uint(s, &v) == 0 && v <= 50)
		return (v);
	return (-1);
}

int
level_syslog_mask(long level)
{
	if (level <= 10)
		return (LOG_UPTO(LOG_DEBUG));
	if (level <= 20)
		return (LOG_UPTO(LOG_INFO));
	if (level <= 30)
		return (LOG_UPTO(LOG_WARNING));
	if (level <= 40)
		return (LOG_UPTO(LOG_ERR));
	return (LOG_UPTO(LOG_CRIT));
}
