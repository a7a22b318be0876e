/*
 * Lines a launcher forwards. mpirun reads its ranks' output from pipes and
 * writes it again on its own stdout and stderr; torchrun --tee tails its
 * workers' files and prints each line with a "[default0]:" tag. Under
 * meshlog both copies are captured: the rank's own line and the
 * launcher's. The rank's is the record; the launcher's is marked a copy
 * (copy_of names the rank's record) and kept off the console, where the
 * rank's line shows in its place, as the rank's, if it was not shown (its
 * output went only to the launcher's pipe or file).
 *
 * A ranked process whose parent is a registered process without a rank
 * (the launcher) notes each line it writes where the launcher can read it
 * (forward_readable) in the launcher's table. A line of the launcher that
 * is one of those, whole or after a tag that ends in ':', ']' or '>'
 * within its first 64 bytes, is that line's copy, matched once, oldest
 * first. The rank's line is always recorded before the launcher can read
 * it (the collector passes the bytes on only when it reads them). The
 * table holds the last FWD_LINES lines; a launcher slower than that shows
 * its copies again, which loses nothing.
 */

#include <sys/tree.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

/* Lines remembered per launcher. */
#define FWD_LINES	8192
/* Bytes of a launcher's line searched for the end of a tag. */
#define FWD_TAG_MAX	64
/* Tags tried per launcher line. */
#define FWD_TAGS	4

struct fwd_line {
	uint64_t		 hash;
	uint32_t		 len;
	uint64_t		 order;		/* insertion, oldest first */
	uint64_t		 src;
	uint64_t		 seq;
	int			 shown;		/* on the console already */
	long			 rank;		/* who wrote it, to show it */
	long			 pid;
	long			 world;
	int			 used;
	RB_ENTRY(fwd_line)	 entry;
};

RB_HEAD(fwd_tree, fwd_line);

struct forward {
	int			 refs;
	int			 dead;		/* its launcher has gone */
	struct fwd_tree		 tree;
	struct fwd_line		*ring;		/* FWD_LINES, reused in turn */
	uint64_t		 next;
};

static int
fwd_cmp(struct fwd_line *a, struct fwd_line *b)
{
	if (a->hash != b->hash)
		return (a->hash < b->hash ? -1 : 1);
	if (a->len != b->len)
		return (a->len < b->len ? -1 : 1);
	return (a->order < b->order ? -1 : a->order > b->order);
}

RB_GENERATE(fwd_tree, fwd_line, entry, fwd_cmp)

/* Drop one reference; the last frees it. */
static void
forward_unref(struct forward *f)
{
	if (f == NULL || --f->refs > 0)
		return;
	free(f->ring);
	free(f);
}

/*
 * Whether the launcher up can read what s writes: s passes to a
 * destination of its own, neither the collector's console nor one of
 * up's. A rank that writes to its launcher's terminal or pipe (torchrun
 * without --tee) writes past it, so none of the launcher's lines is a
 * copy of that rank's, however alike they are ("Traceback (most recent
 * call last):", an empty line).
 */
static int
forward_readable(const struct stream *s, const struct source *up)
{
	int	i;

	if (s == NULL || s->dest == NULL || dest_is_view(s->dest))
		return (0);
	for (i = 0; i < 2; i++) {
		if (up->st[i] != NULL && up->st[i]->dest == s->dest)
			return (0);
	}
	return (1);
}

/* The rankless source whose process is pid, or NULL. */
static struct source *
forward_parent(long pid)
{
	struct source	*src;

	TAILQ_FOREACH_REVERSE(src, &sources, sourcelist, entry) {
		if (src->pid == pid)
			return (src->rank < 0 ? src : NULL);
	}
	return (NULL);
}

void
forward_open(struct source *src)
{
	struct source	*up;
	int		 i, any = 0;

	if (src->rank < 0 || src->ppid <= 1 ||
	    (up = forward_parent(src->ppid)) == NULL)
		return;
	for (i = 0; i < 2; i++) {
		if (src->st[i] != NULL &&
		    (src->st[i]->fwd = forward_readable(src->st[i], up)))
			any = 1;
	}
	if (!any)
		return;
	if (up->fwd == NULL) {
		up->fwd = xcalloc(1, sizeof *up->fwd);
		up->fwd->refs = 1;
		RB_INIT(&up->fwd->tree);
		up->fwd->ring = xcalloc(FWD_LINES, sizeof *up->fwd->ring);
	}
	src->fwd_to = up->fwd;
	src->fwd_to->refs++;
}

void
forward_close(struct source *src)
{
	if (src->fwd != NULL) {
		src->fwd->dead = 1;
		forward_unref(src->fwd);
		src->fwd = NULL;
	}
	forward_unref(src->fwd_to);
	src->fwd_to = NULL;
}

void
forward_note(struct source *src, uint64_t seq, const char *line, size_t len,
    int shown)
{
	struct forward	*f = src->fwd_to;
	struct fwd_line	*l;

	if (f == NULL)
		return;
	if (f->dead) {
		forward_unref(f);
		src->fwd_to = NULL;
		return;
	}
	if (len > UINT32_MAX)
		return;
	l = &f->ring[f->next % FWD_LINES];
	if (f->next >= FWD_LINES)
		RB_REMOVE(fwd_tree, &f->tree, l);
	l->hash = shape_bytes(line, len);
	l->len = (uint32_t)len;
	l->order = f->next++;
	l->src = src->id;
	l->seq = seq;
	l->shown = shown;
	l->rank = src->rank;
	l->pid = src->pid;
	l->world = src->world_size;
	l->used = 0;
	RB_INSERT(fwd_tree, &f->tree, l);
}

/* The oldest unmatched line of f that is p[0..n), or NULL. */
static struct fwd_line *
forward_find(struct forward *f, const char *p, size_t n)
{
	struct fwd_line	 key, *l;

	key.hash = shape_bytes(p, n);
	key.len = (uint32_t)n;
	key.order = 0;
	for (l = RB_NFIND(fwd_tree, &f->tree, &key); l != NULL &&
	    l->hash == key.hash && l->len == key.len;
	    l = RB_NEXT(fwd_tree, &f->tree, l)) {
		if (!l->used)
			return (l);
	}
	return (NULL);
}

int
forward_copy(struct source *src, const char *line, size_t len,
    struct fwd_match *m)
{
	struct forward	*f = src->fwd;
	struct fwd_line	*l;
	size_t		 i, tags = 0, at = 0;

	if (f == NULL || RB_EMPTY(&f->tree) || len > UINT32_MAX)
		return (0);
	l = forward_find(f, line, len);
	/* "[1,0]<stderr>:text", "[default0]:text": after the tag. */
	for (i = 0; l == NULL && i < len && i < FWD_TAG_MAX &&
	    tags < FWD_TAGS; i++) {
		if (line[i] != ':' && line[i] != ']' && line[i] != '>')
			continue;
		tags++;
		at = i + 1;
		l = forward_find(f, line + at, len - at);
		if (l == NULL && at < len && line[at] == ' ') {
			at++;
			l = forward_find(f, line + at, len - at);
		}
	}
	if (l == NULL)
		return (0);
	l->used = 1;
	m->src = l->src;
	m->seq = l->seq;
	m->at = at;
	m->shown = l->shown;
	m->origin.id = l->src;
	m->origin.rank = l->rank;
	m->origin.pid = l->pid;
	m->origin.world = l->world;
	snprintf(m->prefix, sizeof m->prefix, "[rank %ld] ", l->rank);
	m->origin.prefix = m->prefix;
	return (1);
}
