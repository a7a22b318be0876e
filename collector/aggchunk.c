/*
 * The aggregator's memory (aggregate.c): groups, and members' own texts.
 */

#include <stdlib.h>
#include <string.h>

#include "aggregate.h"

/*
 * Groups whose first line is at most AGG_SMALL bytes come in sizes of
 * AGG_CLASS bytes more text, and up to AGG_SPARE printed ones of each
 * size are kept for the next rather than freed.
 */
#define AGG_SMALL		256
#define AGG_CLASS		64
#define AGG_SPARE		256
#define AGG_CLASSES		(AGG_SMALL / AGG_CLASS)
#define AGG_CLASS_OF(len)	((len) > 0 ? ((len) - 1) / AGG_CLASS : 0)
static struct agg_group	*agg_spare[AGG_CLASSES][AGG_SPARE];
static size_t		 agg_nspare[AGG_CLASSES];

struct agg_group *
agg_group_alloc(size_t len)
{
	struct agg_group	*g;
	size_t			 c = AGG_CLASS_OF(len);

	if (len <= AGG_SMALL && agg_nspare[c] > 0)
		g = agg_spare[c][--agg_nspare[c]];
	else
		g = xmalloc(sizeof *g + AGG_INLINE * sizeof(struct agg_member) +
		    (len <= AGG_SMALL ? (c + 1) * AGG_CLASS : len));
	memset(g, 0, sizeof *g);
	return (g);
}

void
agg_group_release(struct agg_group *g)
{
	size_t	c = AGG_CLASS_OF(g->len);

	if (g->sketch != NULL)
		aggmatch_forget(g);
	if (g->len <= AGG_SMALL && agg_nspare[c] < AGG_SPARE)
		agg_spare[c][agg_nspare[c]++] = g;
	else
		free(g);
}

/* Members' own texts (aggregate.h). */
struct agg_chunk	*agg_chunk_cur;

char *
agg_text_keep_new(const char *text, size_t len, struct agg_chunk **owner)
{
	char	*p;

	if (len > AGG_CHUNK / 16) {
		*owner = NULL;
		p = xmalloc(len == 0 ? 1 : len);
		memcpy(p, text, len);
		return (p);
	}
	/* A chunk nobody uses any more is used again. */
	if (agg_chunk_cur == NULL || agg_chunk_cur->live > 0)
		agg_chunk_cur = xmalloc(sizeof *agg_chunk_cur);
	agg_chunk_cur->used = agg_chunk_cur->live = 0;
	return (agg_text_keep(text, len, owner));
}
