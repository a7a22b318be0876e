/*
 * libFuzzer target: the line splitter, fed a stream in chunks. The first
 * two bytes choose the longest record and the chunk size, and whether the
 * writer pauses (split_pause) after each chunk. No record may be longer
 * than that bound, and every byte must come out once: as a record, or as
 * the line ending or progress separator it ended with. A line marked
 * plain must need no JSON escaping. The same bytes fed as the read loop
 * feeds them (whole lines taken with split_whole) make the same records.
 */
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"
#include "runtime/jwplain.h"

struct seen {
	size_t		max;
	size_t		out;
	uint64_t	digest;		/* of the records, in order */
	size_t		records;
};

/* Mix a record into s's digest. */
static void
digest(struct seen *s, const char *line, size_t len, int flags)
{
	size_t	i;

	s->digest = (s->digest ^ (uint64_t)(flags & ~SPLIT_PLAIN) ^
	    ((uint64_t)len << 8)) * 0x100000001b3ULL;
	for (i = 0; i < len; i++)
		s->digest = (s->digest ^ (unsigned char)line[i]) *
		    0x100000001b3ULL;
	s->records++;
}

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
	digest(s, line, len, flags);
}

/*
 * Feed p as the collector's read loop does (emit.c): whole lines taken
 * with split_whole() while the splitter is idle, the rest through
 * split_feed() up to its line's end.
 */
static void
feed_whole(struct split *sp, const char *p, size_t n, struct seen *s)
{
	const char	*e;
	ssize_t		 len;
	size_t		 k;
	int		 plain;

	while (n > 0) {
		while (split_idle(sp) &&
		    (len = split_whole(p, n, sp->max, &plain)) >= 0) {
			record(s, p, (size_t)len, plain ? SPLIT_PLAIN : 0);
			p += len + 1;
			n -= (size_t)len + 1;
		}
		if ((e = memchr(p, '\n', n)) == NULL)
			break;
		k = (size_t)(e - p) + 1;
		split_feed(sp, p, k, record, s);
		p += k;
		n -= k;
	}
	split_feed(sp, p, n, record, s);
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct split	sp, sq;
	struct seen	s, t;
	size_t		chunk, off, n;
	int		pause;

	if (size < 2)
		return (0);
	memset(&s, 0, sizeof s);
	s.max = 16 + data[0] % 64;
	t = s;
	chunk = 1 + data[1] % 32;
	pause = data[1] & 0x80;
	data += 2;
	size -= 2;
	split_init(&sp, s.max);
	split_init(&sq, s.max);
	for (off = 0; off < size; off += n) {
		n = size - off < chunk ? size - off : chunk;
		split_feed(&sp, (const char *)data + off, n, record, &s);
		feed_whole(&sq, (const char *)data + off, n, &t);
		if (pause) {
			split_pause(&sp);
			split_pause(&sq);
		}
	}
	split_finish(&sp, record, &s);
	split_finish(&sq, record, &t);
	split_free(&sp);
	split_free(&sq);
	/* Records hold at most what came in. */
	if (s.out > size)
		abort();
	/* Whole lines taken apart make the records the splitter makes. */
	if (s.records != t.records || s.digest != t.digest || s.out != t.out)
		abort();
	return (0);
}
