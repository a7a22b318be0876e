/*
 * libFuzzer target: the line splitter, fed a stream in chunks. The first
 * two bytes choose the longest record and the chunk size, and whether the
 * writer pauses (split_pause) after each chunk. No record may be longer
 * than that bound, and every byte must come out once: as a record, or as
 * the line ending or progress separator it ended with. A line marked
 * plain must need no JSON escaping.
 */
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"
#include "runtime/jwplain.h"

struct seen {
	size_t	max;
	size_t	out;
};

static void
record(void *arg, const char *line, size_t len, int flags)
{
	struct seen	*s = arg;
	size_t		 i;

	if (len > s->max)
		abort();
	/* Read every byte: ASan checks the record is all there. */
	if (len > 0 && memchr(line, '\0', len) == line + len)
		abort();
	/* A line called plain must need no JSON escaping. */
	if (flags & SPLIT_PLAIN) {
		for (i = 0; i < len; i++)
			if (!json_plain((unsigned char)line[i]))
				abort();
	}
	if (!(flags & SPLIT_UPDATE))
		s->out += len;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct split	sp;
	struct seen	s;
	size_t		chunk, off, n;
	int		pause;

	if (size < 2)
		return (0);
	s.max = 16 + data[0] % 64;
	s.out = 0;
	chunk = 1 + data[1] % 32;
	pause = data[1] & 0x80;
	data += 2;
	size -= 2;
	split_init(&sp, s.max);
	for (off = 0; off < size; off += n) {
		n = size - off < chunk ? size - off : chunk;
		split_feed(&sp, (const char *)data + off, n, record, &s);
		if (pause)
			split_pause(&sp);
	}
	split_finish(&sp, record, &s);
	split_free(&sp);
	/* Records hold at most what came in. */
	if (s.out > size)
		abort();
	return (0);
}
