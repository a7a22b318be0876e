/*
 * libFuzzer target: a JSON log record made of any bytes a program wrote.
 * The record must always be one line of valid JSON whose "line" is a
 * string (bytes that are not UTF-8 become U+FFFD, controls are escaped).
 */
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const char	 prefix[] = "\"host\":\"h\",\"pid\":1,\"rank\":null,"
				    "\"source\":1,\"stream\":\"stdout\",";
	char			*buf;
	size_t			 n;
	json_t			*o;
	json_error_t		 err;
	int			 flags;

	if (size < 1)
		return (0);
	flags = data[0] & (SPLIT_TRUNCATED | SPLIT_PARTIAL | SPLIT_PROGRESS);
	data++;
	size--;
	buf = malloc(RECORD_MAX(size, sizeof prefix - 1));
	if (buf == NULL)
		abort();
	n = record_line(buf, "2026-01-01T00:00:00.000000Z", 1767225600000000ULL,
	    prefix, sizeof prefix - 1, 7, (const char *)data, size, flags,
	    size > 0 ? data[0] % 60 : 0);
	if (n == 0 || buf[n - 1] != '\n' || memchr(buf, '\n', n - 1) != NULL)
		abort();
	o = json_loadb(buf, n, JSON_ALLOW_NUL, &err);
	if (o == NULL || !json_is_string(json_object_get(o, "line")))
		abort();
	json_decref(o);
	free(buf);
	return (0);
}
