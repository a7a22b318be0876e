/*
 * libFuzzer target: one hello line, as a shim (or anyone who can connect)
 * sends it. Parsing must never crash, leak or read past the input.
 */
#include <stdlib.h>

#include "collector/collector.h"

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct hello	 h;
	json_t		*o;
	char		*cause = NULL;

	if ((o = hello_load((const char *)data, size, &cause)) == NULL) {
		free(cause);
		return (0);
	}
	if (hello_from_json(o, &h, &cause) == 0)
		hello_clear(&h);
	else
		free(cause);
	json_decref(o);
	return (0);
}
