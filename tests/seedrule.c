/* The seed's aggregation rule and the comparison with meshlog's. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"
#include "tests/seedrule.h"

size_t
seed_levenshtein(const char *a, size_t la, const char *b, size_t lb)
{
	size_t	*row = calloc(lb + 1, sizeof *row), i, j, prev, d, tmp;

	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			d = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < d)
				d = row[j] + 1;
			if (row[j - 1] + 1 < d)
				d = row[j - 1] + 1;
			tmp = row[j];
			row[j] = d;
			prev = tmp;
		}
	}
	d = row[lb];
	free(row);
	return (d);
}

size_t
seed_group(char *const *lines, size_t n, size_t *group)
{
	size_t	*rep = calloc(n + 1, sizeof *rep), i, j, ng = 0, best, li, lr;
	double	 bestr, r;

	for (i = 0; i < n; i++) {
		best = (size_t)-1;
		bestr = 1;
		li = strlen(lines[i]);
		for (j = 0; j < ng; j++) {
			lr = strlen(lines[rep[j]]);
			r = (double)seed_levenshtein(lines[rep[j]], lr,
			    lines[i], li) / (double)(lr > li ? lr : li);
			if (r < 0.15 && r < bestr) {
				bestr = r;
				best = j;
			}
		}
		if (best == (size_t)-1) {
			rep[ng] = i;
			best = ng++;
		}
		group[i] = best;
	}
	free(rep);
	return (ng);
}

void
seed_compare(char *const *lines, size_t n, const size_t *group,
    double *recall, double *agreement)
{
	uint64_t	*ours = calloc(n + 1, sizeof *ours);
	struct origin	 o = { 0, -1, 0, "", -1 };
	struct shape	 sh;
	size_t		 i, j, pairs = 0, agree = 0, seed_pairs = 0, both = 0;
	int		 s, u;

	aggregate_set_window(0);
	for (i = 0; i < n; i++) {
		o.id = i + 1;
		o.pid = (long)i + 1;
		shape_of(lines[i], strlen(lines[i]), &sh);
		ours[i] = aggregate_line(MESHLOG_STDOUT, &o, lines[i],
		    strlen(lines[i]), 0, &sh, 0);
	}
	aggregate_set_window(0);
	for (i = 0; i < n; i++) {
		for (j = i + 1; j < n; j++) {
			s = group[i] == group[j];
			u = ours[i] == ours[j];
			pairs++;
			agree += s == u;
			if (!s)
				continue;
			seed_pairs++;
			both += u;
			if (!u && getenv("MISSES") != NULL)
				fprintf(stderr, "miss: '%s' | '%s'\n",
				    lines[i], lines[j]);
		}
	}
	*recall = seed_pairs == 0 ? 1 : (double)both / (double)seed_pairs;
	*agreement = pairs == 0 ? 1 : (double)agree / (double)pairs;
	free(ours);
}
