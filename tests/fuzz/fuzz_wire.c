/*
 * libFuzzer target: what a relay link reads, frame after frame: headers,
 * JSON bodies and record batches. Nothing may be read past a frame.
 */
#include <stdlib.h>

#include <event2/buffer.h>

#include "collector/collector.h"

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct evbuffer		*in = evbuffer_new();
	struct wire_frame	 f;
	struct wire_rec		 r;
	const char		*cause, *p;
	size_t			 left, sum = 0;
	json_t			*o;

	if (in == NULL)
		abort();
	evbuffer_add(in, data, size);
	while (wire_next(in, 1 << 20, &f, &cause) == 1) {
		if (f.type == WIRE_RECORDS) {
			p = f.body;
			left = f.len;
			while (wire_record_next(&p, &left, &r) == 1) {
				if (r.len > 0)
					sum += (unsigned char)r.line[r.len - 1];
			}
		} else if ((o = wire_json(&f)) != NULL)
			json_decref(o);
		wire_done(in, &f);
	}
	evbuffer_free(in);
	return (sum == (size_t)-1);
}
