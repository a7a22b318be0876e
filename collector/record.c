/* Encoding of line records: the JSON log's and the console's. */

#include <stdio.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "collector.h"

/* Two decimal digits for each value below 100. */
static const char record_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

void
record_ts(char *buf, const struct timespec *ts)
{
	static time_t	cached = (time_t)-1;
	static char	head[24];
	static size_t	hlen;
	struct tm	tm;
	unsigned	us = (unsigned)(ts->tv_nsec / 1000) % 1000000;

	if (ts->tv_sec != cached) {
		gmtime_r(&ts->tv_sec, &tm);
		hlen = strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm);
		cached = ts->tv_sec;
	}
	/* A relay's lines each have a time of their own: no stdio. */
	memcpy(buf, head, hlen);
	buf[hlen] = '.';
	memcpy(buf + hlen + 1, record_pairs + 2 * (us / 10000), 2);
	memcpy(buf + hlen + 3, record_pairs + 2 * (us / 100 % 100), 2);
	memcpy(buf + hlen + 5, record_pairs + 2 * (us % 100), 2);
	memcpy(buf + hlen + 7, "Z", 2);
}

/*
 * Append a decimal without stdio, two digits at a time from the end into
 * a scratch buffer, then 20 bytes at once (a copy of fixed size is a few
 * moves): d must have room for 20, of which the bytes past the number
 * are left for what follows to overwrite.
 */
static char *
record_u64(char *d, uint64_t v)
{
	char	tmp[40], *e = tmp + 20;
	size_t	r;

	while (v >= 100) {
		r = (size_t)(v % 100) * 2;
		v /= 100;
		e -= 2;
		e[0] = record_pairs[r];
		e[1] = record_pairs[r + 1];
	}
	if (v >= 10) {
		e -= 2;
		e[0] = record_pairs[v * 2];
		e[1] = record_pairs[v * 2 + 1];
	} else
		*--e = (char)('0' + v);
	memcpy(d, e, 20);
	return (d + (tmp + 20 - e));
}

/*
 * Append seq: the records of a stream come one after another, so the text
 * of the last one is kept and counted up in place, one digit most times.
 */
static char *
record_seq(char *d, uint64_t seq)
{
	static char	 text[24];
	static size_t	 len;
	static uint64_t	 of;
	static int	 valid;
	char		*p;

	if (!valid || seq != of + 1 || of == UINT64_MAX) {
		if (!valid || seq != of) {
			len = (size_t)(record_u64(text, seq) - text);
			of = seq;
			valid = 1;
		}
	} else {
		for (p = text + len; p > text && p[-1] == '9'; )
			*--p = '0';
		if (p == text) {
			memmove(text + 1, text, len++);
			text[0] = '1';
		} else
			p[-1]++;
		of = seq;
	}
	memcpy(d, text, 20);
	return (d + len);
}

/* Append a literal. */
#define APPEND(d, lit)	(memcpy((d), (lit), sizeof(lit) - 1), \
			    (d) += sizeof(lit) - 1)

size_t
record_line(char *dst, const char *ts, uint64_t us, const char *prefix,
    size_t plen, uint64_t seq, const char *line, size_t n, int flags,
    int level)
{
	static const char *const levels[] = { "DEBUG", "INFO", "WARNING",
	    "ERROR", "CRITICAL" };
	/*
	 * Records of one read share their time: its text is made once. ts is
	 * us's text (record_ts), so us alone tells whether it changed.
	 */
	static char	 head[128];
	static size_t	 hlen;
	static uint64_t	 hus = UINT64_MAX;
	char		*d = dst, *h;
	size_t		 tl;

	if (us != hus) {
		tl = strlen(ts);
		/* A time too long to keep (none is) is written in place. */
		h = tl + 48 <= sizeof head ? head : dst;
		d = h;
		APPEND(d, "{\"ts\":\"");
		memcpy(d, ts, tl);
		d += tl;
		APPEND(d, "\",\"ts_ns\":");
		d = record_u64(d, us * 1000);
		*d++ = ',';
		if (h == dst)
			goto prefix;
		hlen = (size_t)(d - head);
		hus = us;
		d = dst;
	}
	memcpy(d, head, hlen);
	d += hlen;
prefix:
	memcpy(d, prefix, plen);
	d += plen;
	APPEND(d, "\"seq\":");
	d = record_seq(d, seq);
	APPEND(d, ",\"line\":\"");
	if (flags & SPLIT_PLAIN) {
		memcpy(d, line, n);
		d += n;
	} else
		d += json_escape(d, line, n);
	/* Most records have no flag and no level: one test for them. */
	if (!(flags & (SPLIT_TRUNCATED | SPLIT_PARTIAL | SPLIT_PROGRESS |
	    SPLIT_COPY)) && level == 0) {
		APPEND(d, "\"}\n");
		return ((size_t)(d - dst));
	}
	*d++ = '"';
	if (flags & SPLIT_TRUNCATED)
		APPEND(d, ",\"truncated\":true");
	if (flags & SPLIT_PARTIAL)
		APPEND(d, ",\"partial\":true");
	if (flags & SPLIT_PROGRESS)
		APPEND(d, ",\"progress\":true");
	if (flags & SPLIT_COPY)
		APPEND(d, ",\"copy\":true");
	if (level >= 10 && level <= 50 && level % 10 == 0) {
		APPEND(d, ",\"level\":\"");
		tl = strlen(levels[level / 10 - 1]);
		memcpy(d, levels[level / 10 - 1], tl);
		d += tl;
		*d++ = '"';
	}
	APPEND(d, "}\n");
	return ((size_t)(d - dst));
}

size_t
record_copy_of(char *rec, size_t n, uint64_t src, uint64_t seq)
{
	char	*d = rec + n - 2;	/* over the closing "}\n" */

	APPEND(d, ",\"copy_of\":{\"source\":");
	d = record_u64(d, src);
	APPEND(d, ",\"seq\":");
	d = record_u64(d, seq);
	APPEND(d, "}}\n");
	return ((size_t)(d - rec));
}
