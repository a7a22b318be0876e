/*
 * A word's values sorted (aggtext.c): the values many ranks said at one
 * word of a line, in order and each once, in linear time when they are
 * plain integers.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"

/*
 * Sort v[0..n), plain integers all (aggsort_plain_int), by value and
 * keep one of each: what qsort and aggtext.c's at_value_cmp give, in
 * linear time. A line of 16,384 ranks sorts 16,384 values at every word
 * where ranks differ. A radix sort, a byte of (value - least) at a time,
 * stable. Returns how many values are distinct.
 */
size_t
aggsort_ints(struct agg_val *v, size_t n)
{
	static uint64_t		*key[2];
	static uint32_t		*from[2];
	static struct agg_val	*uniq;
	static uint32_t		*dense;
	static size_t		 cap, dcap;
	size_t			 i, nd, cnt[256], at, sum;
	long long		 lo = v[0].ll, hi = lo;
	uint64_t		*k, *k2, *kt, range;
	uint32_t		*f, *f2, *ft;
	unsigned		 shift, b;

	if (n > cap) {
		cap = n;
		for (i = 0; i < 2; i++) {
			key[i] = xrealloc(key[i], cap * sizeof *key[i]);
			from[i] = xrealloc(from[i], cap * sizeof *from[i]);
		}
		uniq = xrealloc(uniq, cap * sizeof *uniq);
	}
	/* In order already (values that count up with the rank): no sort. */
	for (i = 1; i < n && v[i].ll >= v[i - 1].ll; i++)
		;
	if (i == n) {
		for (i = 1, nd = 1; i < n; i++) {
			if (v[i].ll != v[nd - 1].ll)
				v[nd++] = v[i];
		}
		return (nd);
	}
	for (i = 1; i < n; i++) {
		if (v[i].ll < lo)
			lo = v[i].ll;
		if (v[i].ll > hi)
			hi = v[i].ll;
	}
	range = (uint64_t)(hi - lo);
	/*
	 * Few values over a short range (local ranks, a node's number): the
	 * first place of each value, in value order, is the answer.
	 */
	if (range < 2 * (uint64_t)n) {
		if (range + 1 > dcap) {
			dcap = range + 1;
			dense = xrealloc(dense, dcap * sizeof *dense);
		}
		memset(dense, 0xff, (range + 1) * sizeof *dense);
		for (i = n; i-- > 0;)
			dense[v[i].ll - lo] = (uint32_t)i;
		for (at = 0, nd = 0; at <= range; at++) {
			if (dense[at] != UINT32_MAX)
				uniq[nd++] = v[dense[at]];
		}
		memcpy(v, uniq, nd * sizeof *v);
		return (nd);
	}
	k = key[0], k2 = key[1], f = from[0], f2 = from[1];
	for (i = 0; i < n; i++) {
		k[i] = (uint64_t)(v[i].ll - lo);
		f[i] = (uint32_t)i;
	}
	for (shift = 0; shift < 64 && (range >> shift) != 0; shift += 8) {
		memset(cnt, 0, sizeof cnt);
		for (i = 0; i < n; i++)
			cnt[(k[i] >> shift) & 0xff]++;
		for (b = 0, sum = 0; b < 256; b++) {
			at = cnt[b];
			cnt[b] = sum;
			sum += at;
		}
		for (i = 0; i < n; i++) {
			at = cnt[(k[i] >> shift) & 0xff]++;
			k2[at] = k[i];
			f2[at] = f[i];
		}
		kt = k, k = k2, k2 = kt;
		ft = f, f = f2, f2 = ft;
	}
	for (i = 0, nd = 0; i < n; i++) {
		if (i == 0 || k[i] != k[i - 1])
			uniq[nd++] = v[f[i]];
	}
	memcpy(v, uniq, nd * sizeof *v);
	return (nd);
}
