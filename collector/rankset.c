/*
 * Sets of ranks: parsed from "0,2-5", kept sorted, looked up by bisection
 * (a console filter is asked for every line).
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "rankset.h"

/* A rank: decimal digits, at most INT_MAX; the end of the digits. */
static const char *
rankset_number(const char *s, long *v)
{
	long	x = 0;

	if (*s < '0' || *s > '9')
		return (NULL);
	for (; *s >= '0' && *s <= '9'; s++) {
		x = x * 10 + (*s - '0');
		if (x > INT_MAX)
			return (NULL);
	}
	*v = x;
	return (s);
}

static int
rankset_cmp(const void *a, const void *b)
{
	long	x = *(const long *)a, y = *(const long *)b;

	return (x < y ? -1 : x > y);
}

void
rankset_sort(long *v, size_t *n)
{
	size_t	i, k;

	if (*n == 0)
		return;
	qsort(v, *n, sizeof *v, rankset_cmp);
	for (i = 1, k = 1; i < *n; i++) {
		if (v[i] != v[k - 1])
			v[k++] = v[i];
	}
	*n = k;
}

int
rankset_parse(const char *s, long **out, size_t *n)
{
	long		*v = NULL, *nv, lo, hi, r;
	size_t		 len = 0, cap = 0;
	const char	*p = s;

	for (;;) {
		if ((p = rankset_number(p, &lo)) == NULL)
			goto fail;
		hi = lo;
		if (*p == '-' && ((p = rankset_number(p + 1, &hi)) == NULL ||
		    hi < lo))
			goto fail;
		if ((size_t)(hi - lo) + len >= RANKSET_MAX)
			goto fail;
		if (len + (size_t)(hi - lo) + 1 > cap) {
			cap = (len + (size_t)(hi - lo) + 1) * 2;
			if ((nv = realloc(v, cap * sizeof *v)) == NULL)
				goto fail;
			v = nv;
		}
		for (r = lo; r <= hi; r++)
			v[len++] = r;
		if (*p == '\0')
			break;
		if (*p++ != ',')
			goto fail;
	}
	rankset_sort(v, &len);
	*out = v;
	*n = len;
	return (0);
fail:
	free(v);
	return (-1);
}

int
rankset_has(const long *v, size_t n, long r)
{
	size_t	lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (v[mid] == r)
			return (1);
		if (v[mid] < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (0);
}
