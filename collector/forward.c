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
 * (forward_readable) in the launcher's table; so do the rank's workers
 * (forked, or programs it started) that write where the rank does
 * (forward_fork). A line of the launcher that
 * is one of those, whole or after a tag that ends in ':', ']' or '>'
 * within its first 64 bytes, is that line's copy, matched once, oldest
 * first. The rank's line is always recorded before the launcher can read
 * it (the collector passes the bytes on only when it reads them). The
 * table holds the last FWD_LINES lines, more (up to FWD_LINES_MAX) while
 * the launcher falls behind its ranks (mpirun reads a burst of 16 ranks'
 * output into its own buffers, and passes it on over a second); a
 * launcher slower than that shows its copies again, which loses nothing.
 *
 * A rank that writes a line in two writes (print() under
 * PYTHONUNBUFFERED=1: the text, then "\n") lets its launcher pass on the
 * text, other ranks' text, then a newline: the launcher's line is ranks'
 * lines run together ("step 0 loss=1.25step 0 loss=0.62"), and later
 * lines end the others (""), each piece after a tag if the launcher tags
 * what it passes on (mpirun --tag-output). Such a line is taken apart
 * when every piece is a rank's line not yet copied or the line a rank's
 * splitter holds unfinished (or, last, its start). The line its newline
 * ends is matched now: the one begun before with the same tag as the
 * line's last (the tag of a newline); else the last piece if whole; else
 * one begun before, or another piece. The other pieces are kept, to be
 * matched with the later line that ends them. A launcher's own line is
 * taken apart only if each piece checks out, so none is hidden from the
 * console by chance.
 *
 * Untagged, which rank a newline ends is a guess. A guess proves wrong
 * when a rank whose line was kept has its next line matched: the kept one
 * has ended then, and is shown first; the newline of the line matched in
 * its stead is still to come, and is owed: when an empty line (or its tag
 * alone) comes, it is that line's copy. A line passed on in pieces that
 * each have the same tag is joined again. What is not taken apart shows
 * as the launcher's, as before: a piece cut inside a line (the launcher's
 * pipe full, the rest passed on later) with another rank's between.
 */

#include <sys/tree.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

/* Lines remembered per launcher; at most, for one falling behind, and
 * for one yet to pass any on (mpirun before the first of a burst; or
 * torchrun --redirects without --tee, which never will). 120 bytes each. */
#define FWD_LINES	8192
#define FWD_LINES_MAX	(16 * FWD_LINES)
#define FWD_LINES_YET	(4 * FWD_LINES)
/* Bytes of a launcher's line searched for the end of a tag. */
#define FWD_TAG_MAX	64
/* Tags tried per launcher line; where a piece may begin, after them. */
#define FWD_TAGS	4
#define FWD_STARTS	(1 + 2 * FWD_TAGS)
/* Longest launcher line taken apart; pieces it may have; ways tried. */
#define FWD_SPLIT_MAX	1024
#define FWD_PIECES	8
#define FWD_TRIES	64
/* Pieces kept at once, their bytes, and the launcher lines a piece is
 * kept for (mpirun may pass on other ranks' lines by the hundred before
 * the rest of one). */
#define FWD_KEPT	16
#define FWD_KEPT_BYTES	4096
#define FWD_KEEP	4096
/* Slots of the filters of lines by length and first or last bytes. */
#define FWD_SLOTS	4096

/* A rank's line: its record, and who wrote it, to show it. */
struct fwd_who {
	uint64_t		 src;
	uint64_t		 seq;
	int			 which;		/* stdout, stderr */
	long			 rank;
	long			 pid;
	long			 world;
};

/*
 * A piece kept: a rank's line begun (its tag, then its text, in the
 * keptbuf), or the newline owed to a line shown already.
 */
struct fwd_kept {
	uint16_t		 off;
	uint16_t		 tag;
	uint16_t		 len;
	uint64_t		 since;		/* launcher lines then */
	uint64_t		 src;		/* whose line it begins */
	int			 which;
	/* Owed: a line shown whose newline is still to come (who, its
	 * pieces after the tag other, a space after a tag's 64 bytes at
	 * most). Else the line matched in its stead when it was kept, whose
	 * newline comes after all if this piece's line turns out to have
	 * ended. */
	int			 owed;
	struct fwd_who		 who;
	uint16_t		 olen;
	char			 other[FWD_TAG_MAX + 2];
};

struct fwd_line {
	uint64_t		 hash;
	uint32_t		 len;
	uint64_t		 order;		/* insertion, oldest first */
	struct fwd_who		 who;
	int			 shown;		/* on the console already */
	int			 used;
	uint16_t		 head;		/* its slots in the filters */
	uint16_t		 tail;
	uint16_t		 start;
	RB_ENTRY(fwd_line)	 entry;
};

RB_HEAD(fwd_tree, fwd_line);

struct forward {
	int			 refs;
	int			 dead;		/* its launcher has gone */
	struct fwd_tree		 tree;
	struct fwd_line		*ring;		/* cap lines, reused in turn */
	uint64_t		 next;
	size_t			 cap;
	uint64_t		 matched;	/* lines passed on so far */
	TAILQ_HEAD(, source)	 ranks;		/* whose lines it notes */
	/* Lines in the ring by length and first (last) bytes, counted: a
	 * position of a launcher's line is looked up only where one may
	 * begin (end). */
	uint16_t		 heads[FWD_SLOTS];
	uint16_t		 tails[FWD_SLOTS];
	/* ... and by their first four bytes alone; those shorter. */
	uint16_t		 starts[FWD_SLOTS];
	uint32_t		 shorts;
	/* Pieces of launcher lines taken apart (rank lines begun), oldest
	 * first, each after the tag it had, in keptbuf; a piece and a later
	 * line, joined to match. */
	struct fwd_kept		 kept[FWD_KEPT];
	int			 nkept;
	uint64_t		 lines;		/* launcher lines seen */
	char			 keptbuf[FWD_KEPT_BYTES];
	char			 join[FWD_KEPT_BYTES];
	char			 before[FWD_SPLIT_MAX];
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

/* The filter slot of a line of len bytes whose first (or last) are p[0..n),
 * n at most 4. */
static uint16_t
fwd_slot(const char *p, size_t n, size_t len)
{
	uint32_t	v = 0;

	memcpy(&v, p, n);
	v = (v ^ (uint32_t)len * 0x9e3779b1U) * 0x85ebca6bU;
	return ((uint16_t)(v >> 20));
}

static uint16_t
fwd_head(const char *p, size_t len)
{
	return (fwd_slot(p, len < 4 ? len : 4, len));
}

static uint16_t
fwd_tail(const char *p, size_t len)
{
	size_t	n = len < 4 ? len : 4;

	return (fwd_slot(p + len - n, n, len));
}

/* The slot of lines whose first four bytes are p[0..4). */
static uint16_t
fwd_start(const char *p)
{
	return (fwd_slot(p, 4, 0));
}

/* Whether a line of f may begin at p, n bytes left there. */
static int
fwd_may_start(const struct forward *f, const char *p, size_t n)
{
	return (f->shorts > 0 || (n >= 4 && f->starts[fwd_start(p)] > 0));
}

/* fwd_head() of k bytes at q followed by p[0..n). */
static uint16_t
fwd_head2(const char *q, size_t k, const char *p, size_t n)
{
	char	b[4];
	size_t	a = k < 4 ? k : 4;

	memcpy(b, q, a);
	memcpy(b + a, p, n < 4 - a ? n : 4 - a);
	return (fwd_head(b, k + n));
}

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

/* The open source whose process is pid, or NULL. */
static struct source *
forward_parent(long pid)
{
	struct source	*src;

	TAILQ_FOREACH_REVERSE(src, &sources, sourcelist, entry) {
		if (src->pid == pid)
			return (src);
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
	/* A program a rank started (multiprocessing's spawn workers). */
	if (up->rank >= 0) {
		forward_fork(src, up);
		return;
	}
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
		TAILQ_INIT(&up->fwd->ranks);
		up->fwd->ring = xcalloc(FWD_LINES, sizeof *up->fwd->ring);
		up->fwd->cap = FWD_LINES;
	}
	src->fwd_to = up->fwd;
	src->fwd_to->refs++;
	TAILQ_INSERT_TAIL(&src->fwd_to->ranks, src, fwd_entry);
}

/*
 * A worker src of rank up (forked, or a program it started) that writes
 * where up does: its lines that up's launcher may pass on are noted in
 * the launcher's table too, as src's.
 */
void
forward_fork(struct source *src, struct source *up)
{
	int	i, any = 0;

	if (up->fwd_to == NULL || up->fwd_to->dead)
		return;
	for (i = 0; i < 2; i++) {
		if (src->st[i] != NULL && (src->st[i]->fwd = up->st[i] !=
		    NULL && up->st[i]->fwd && src->st[i]->dest ==
		    up->st[i]->dest))
			any = 1;
	}
	if (!any)
		return;
	src->fwd_to = up->fwd_to;
	src->fwd_to->refs++;
	TAILQ_INSERT_TAIL(&src->fwd_to->ranks, src, fwd_entry);
}

/* Let go of rank src's launcher. */
static void
forward_leave(struct source *src)
{
	if (src->fwd_to == NULL)
		return;
	TAILQ_REMOVE(&src->fwd_to->ranks, src, fwd_entry);
	forward_unref(src->fwd_to);
	src->fwd_to = NULL;
}

void
forward_close(struct source *src)
{
	if (src->fwd != NULL) {
		src->fwd->dead = 1;
		forward_unref(src->fwd);
		src->fwd = NULL;
		ending_forwarded(0);
	}
	forward_leave(src);
}

/*
 * Whether the launcher of src (a ranked process, maybe ended) has lines
 * of src yet to pass on: lines of src it passed on before, and others it
 * has not, shown nowhere yet. A launcher that passes on none of src's
 * (torchrun without --tee) has none to come.
 */
int
forward_pending(const struct source *src)
{
	struct source	*up;
	struct forward	*f;
	size_t		 i, n;
	int		 passed = 0, waiting = 0;

	if (src->rank < 0 || src->ppid <= 1 ||
	    (up = forward_parent(src->ppid)) == NULL || up->rank >= 0 ||
	    (f = up->fwd) == NULL || f->dead)
		return (0);
	n = f->next < f->cap ? (size_t)f->next : f->cap;
	for (i = 0; i < n && !(passed && waiting); i++) {
		if (f->ring[i].who.src != src->id)
			continue;
		if (f->ring[i].used)
			passed = 1;
		else if (!f->ring[i].shown)
			waiting = 1;
	}
	return (passed && waiting);
}

/* Twice the lines in f's ring: each where its order now falls. */
static void
forward_grow(struct forward *f)
{
	struct fwd_line	*ring = xcalloc(2 * f->cap, sizeof *ring);
	uint64_t	 o;

	for (o = f->next - f->cap; o < f->next; o++)
		ring[o % (2 * f->cap)] = f->ring[o % f->cap];
	free(f->ring);
	f->ring = ring;
	f->cap *= 2;
	RB_INIT(&f->tree);
	for (o = f->next - f->cap / 2; o < f->next; o++)
		RB_INSERT(fwd_tree, &f->tree, &f->ring[o % f->cap]);
}

void
forward_note(struct source *src, int which, uint64_t seq, const char *line,
    size_t len, int shown)
{
	struct forward	*f = src->fwd_to;
	struct fwd_line	*l;

	if (f == NULL)
		return;
	if (f->dead) {
		forward_leave(src);
		return;
	}
	if (len > UINT32_MAX)
		return;
	l = &f->ring[f->next % f->cap];
	/* The oldest is still to come: the launcher is behind. */
	if (f->next >= f->cap && !l->used && f->cap < (f->matched > 0 ?
	    FWD_LINES_MAX : FWD_LINES_YET)) {
		forward_grow(f);
		l = &f->ring[f->next % f->cap];
	}
	if (f->next >= f->cap) {
		RB_REMOVE(fwd_tree, &f->tree, l);
		f->heads[l->head]--;
		f->tails[l->tail]--;
		if (l->len < 4)
			f->shorts--;
		else
			f->starts[l->start]--;
	}
	l->head = fwd_head(line, len);
	l->tail = fwd_tail(line, len);
	f->heads[l->head]++;
	f->tails[l->tail]++;
	if (len < 4)
		f->shorts++;
	else
		f->starts[l->start = fwd_start(line)]++;
	l->hash = shape_bytes(line, len);
	l->len = (uint32_t)len;
	l->order = f->next++;
	l->who.src = src->id;
	l->who.seq = seq;
	l->who.which = which;
	l->who.rank = src->rank;
	l->who.pid = src->pid;
	l->who.world = src->world_size;
	l->shown = shown;
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

/* A piece of a launcher's line after its tag (from at), a rank's whole
 * line (l), or the line a rank's splitter holds unfinished or its start
 * (l NULL); whose it is. */
struct fwd_cut {
	size_t		 from;
	size_t		 at;
	size_t		 len;
	struct fwd_line	*l;
	uint64_t	 src;
	int		 which;
};

/* Whether c ends a tag: ':', ']' or '>'. */
static inline int
fwd_tag_end(char c)
{
	return ((c == ':') | (c == ']') | (c == '>'));
}

/* Whether the tag p[0..t) is in p[t..n) again. */
static int
fwd_tag_again(const char *p, size_t n, size_t t)
{
	const char	*q = p + 2 * t - 1, *e = p + n;

	for (; q < e && (q = memchr(q, p[t - 1], e - q)) != NULL; q++) {
		if (memcmp(q - (t - 1), p, t) == 0)
			return (1);
	}
	return (0);
}

/*
 * Where a piece of p[i..n) may begin: i, and after each of the first tags
 * there ("[1,0]<stdout>:", "[default0]: "); their number.
 */
static int
forward_tags(const char *p, size_t n, size_t i, size_t at[FWD_STARTS])
{
	size_t	j, e = n - i < FWD_TAG_MAX ? n : i + FWD_TAG_MAX;
	int	nat = 0, tags = 0;

	at[nat++] = i;
	for (j = i; j < e && tags < FWD_TAGS; j++) {
		if (!fwd_tag_end(p[j]))
			continue;
		tags++;
		at[nat++] = j + 1;
		if (j + 1 < n && p[j + 1] == ' ')
			at[nat++] = j + 2;
	}
	return (nat);
}

/*
 * Cut p[i..n) into pieces cut[k], cut[k + 1], ...: their number in all,
 * or -1 (*tries spent). A piece may follow a tag, as the launcher's line
 * may ("[1,0]<stdout>:" before each piece mpirun passes on), and a tag
 * may end the line (a newline's, from *tail). A whole line taken is
 * marked used; cut undoes it.
 */
static int
forward_cut(struct forward *f, const char *p, size_t n, size_t i,
    struct fwd_cut *cut, int k, int *tries, size_t *tail,
    const size_t *at0, int nat0)
{
	struct source	*src;
	struct stream	*st;
	struct fwd_line	*l;
	const char	*t;
	size_t		 at[FWD_STARTS], b, j, m, tlen;
	int		 nat, a, r, w;

	*tail = i;
	if (i == n)
		return (k);
	if (k == FWD_PIECES || --*tries < 0)
		return (-1);
	if (i == 0) {
		memcpy(at, at0, nat0 * sizeof *at);
		nat = nat0;
	} else
		nat = forward_tags(p, n, i, at);
	for (a = 0; a < nat; a++) {
		if ((b = at[a]) == n) {
			*tail = i;
			return (k);
		}
		cut[k].from = i;
		cut[k].at = b;
		for (j = fwd_may_start(f, p + b, n - b) ? b + 1 : n + 1;
		    j <= n; j++) {
			if ((b == 0 && j == n) ||
			    f->tails[fwd_tail(p + b, j - b)] == 0 ||
			    (l = forward_find(f, p + b, j - b)) == NULL)
				continue;
			l->used = 1;
			cut[k].len = j - b;
			cut[k].l = l;
			cut[k].src = l->who.src;
			cut[k].which = l->who.which;
			if ((r = forward_cut(f, p, n, j, cut, k + 1, tries,
			    tail, NULL, 0)) > 0)
				return (r);
			l->used = 0;
		}
		TAILQ_FOREACH(src, &f->ranks, fwd_entry) {
			for (w = 0; w < 2; w++) {
				if ((st = src->st[w]) == NULL || !st->fwd ||
				    (t = split_partial(&st->split, &tlen)) ==
				    NULL)
					continue;
				/* Only the last piece may be a start. */
				m = tlen < n - b ? tlen : n - b;
				if (m == 0 || (m < tlen && b + m != n) ||
				    memcmp(t, p + b, m) != 0)
					continue;
				cut[k].len = m;
				cut[k].l = NULL;
				cut[k].src = src->id;
				cut[k].which = st->which;
				if ((r = forward_cut(f, p, n, b + m, cut,
				    k + 1, tries, tail, NULL, 0)) > 0)
					return (r);
			}
		}
	}
	return (-1);
}

/*
 * Keep piece c of p, or, c NULL, the newline owed to the line who; who
 * (if not NULL) after the tag other[0..olen): 0, or -1 when there is no
 * room.
 */
static int
forward_keep(struct forward *f, const char *p, const struct fwd_cut *c,
    const struct fwd_who *who, const char *other, size_t olen)
{
	struct fwd_kept	*k = &f->kept[f->nkept];
	size_t		 used = 0, n = c == NULL ? 0 : c->at + c->len - c->from;

	if (f->nkept > 0)
		used = k[-1].off + k[-1].tag + k[-1].len;
	if (f->nkept == FWD_KEPT || n > sizeof f->keptbuf - used ||
	    olen > sizeof k->other)
		return (-1);
	memset(k, 0, sizeof *k);
	k->off = (uint16_t)used;
	k->since = f->lines;
	if (who != NULL) {
		k->who = *who;
		memcpy(k->other, other, olen);
		k->olen = (uint16_t)olen;
	}
	if (c == NULL)
		k->owed = 1;
	else {
		memcpy(f->keptbuf + used, p + c->from, n);
		k->tag = (uint16_t)(c->at - c->from);
		k->len = (uint16_t)c->len;
		k->src = c->src;
		k->which = c->which;
	}
	f->nkept++;
	return (0);
}

/* Let go of kept piece i. */
static void
forward_unkeep(struct forward *f, int i)
{
	size_t	off = f->kept[i].off, len, end;
	int	k;

	len = f->kept[i].tag + f->kept[i].len;
	end = f->kept[f->nkept - 1].off + f->kept[f->nkept - 1].tag +
	    f->kept[f->nkept - 1].len;
	memmove(f->keptbuf + off, f->keptbuf + off + len, end - off - len);
	for (k = i + 1; k < f->nkept; k++) {
		f->kept[k - 1] = f->kept[k];
		f->kept[k - 1].off -= (uint16_t)len;
	}
	f->nkept--;
}

/*
 * Kept piece i and p[0..n) joined, in buf, as a rank's line not yet
 * copied, or NULL. Then piece i is let go of, and *was is what it was.
 */
static struct fwd_line *
forward_join(struct forward *f, int i, const char *p, size_t n,
    struct fwd_kept *was, char *buf)
{
	struct fwd_line	*l;
	const char	*q = f->keptbuf + f->kept[i].off + f->kept[i].tag;
	size_t		 k = f->kept[i].len;

	if (f->kept[i].owed || n > sizeof f->join - k ||
	    f->heads[fwd_head2(q, k, p, n)] == 0)
		return (NULL);
	memcpy(buf, q, k);
	memcpy(buf + k, p, n);
	if ((l = forward_find(f, buf, k + n)) != NULL) {
		*was = f->kept[i];
		forward_unkeep(f, i);
	}
	return (l);
}

/*
 * A kept piece that is a rank's whole line now, the oldest, and after the
 * tag tag[0..n) when tag is not NULL: its line, its text in f->join, no
 * longer kept. NULL when none is.
 */
static struct fwd_line *
forward_ended(struct forward *f, const char *tag, size_t n, size_t *wlen)
{
	struct fwd_line	*l;
	struct fwd_kept	 was;
	size_t		 k;
	int		 i;

	for (i = 0; i < f->nkept; i++) {
		if (tag != NULL && (f->kept[i].tag != n ||
		    memcmp(f->keptbuf + f->kept[i].off, tag, n) != 0))
			continue;
		k = f->kept[i].len;
		if ((l = forward_join(f, i, "", 0, &was, f->join)) !=
		    NULL) {
			*wlen = k;
			return (l);
		}
	}
	return (NULL);
}

/* The newline owed to a line shown already whose pieces had the tag
 * tag[0..n) (none: n 0), the oldest: 1 and *who, no longer owed; or 0. */
static int
forward_owed(struct forward *f, const char *tag, size_t n,
    struct fwd_who *who)
{
	int	i;

	for (i = 0; i < f->nkept; i++) {
		if (!f->kept[i].owed || n != f->kept[i].olen ||
		    memcmp(tag, f->kept[i].other, n) != 0)
			continue;
		*who = f->kept[i].who;
		forward_unkeep(f, i);
		return (1);
	}
	return (0);
}

/* Piece c of p, a whole line, as the one matched now. */
static struct fwd_line *
forward_take(const struct fwd_cut *c, const char *p, const char **text,
    size_t *wlen)
{
	*text = p + c->at;
	*wlen = c->len;
	return (c->l);
}

/*
 * The launcher's line p[0..n) as pieces of ranks' lines: the line its
 * newline ends, matched now, and its text (*text, *wlen); the other
 * pieces kept. With a tag, that line is the one begun before with the
 * line's last tag, or a piece after it; without, the last piece if it is
 * whole, or one begun before, or another piece. NULL when it is none.
 */
static struct fwd_line *
forward_apart(struct forward *f, const char *p, size_t n,
    const size_t *at, int nat, const char **text, size_t *wlen,
    struct fwd_who *owed)
{
	struct fwd_cut	 cut[FWD_PIECES];
	struct fwd_line	*now = NULL;
	size_t		 tail, tag = 0, tlen = 0;
	int		 k, i, tries = FWD_TRIES;

	if (n > FWD_SPLIT_MAX ||
	    (k = forward_cut(f, p, n, 0, cut, 0, &tries, &tail, at,
	    nat)) < 0)
		return (NULL);
	*text = f->join;
	if (tail < n) {
		/* A tagged newline: the line begun before with its tag, or
		 * else a piece here after it. */
		tag = tail;
		tlen = n - tail;
		now = forward_ended(f, p + tail, n - tail, wlen);
		for (i = k - 1; i >= 0 && now == NULL; i--) {
			if (cut[i].l != NULL &&
			    cut[i].at - cut[i].from == n - tail &&
			    memcmp(p + cut[i].from, p + tail, n - tail) == 0)
				now = forward_take(&cut[i], p, text, wlen);
		}
	} else if (k > 0 && cut[k - 1].l != NULL) {
		/* A whole line last: its newline most likely came with it. */
		i = k - 1;
		now = forward_take(&cut[i], p, text, wlen);
		tag = cut[i].from;
		tlen = cut[i].at - cut[i].from;
	} else if (k > 0 && cut[k - 1].at == cut[k - 1].from) {
		/* Untagged, and a line begun last: a line begun before, or
		 * else a piece here. */
		now = forward_ended(f, NULL, 0, wlen);
		for (i = 0; i < k && now == NULL; i++) {
			if (cut[i].l != NULL) {
				now = forward_take(&cut[i], p, text, wlen);
				tag = cut[i].from;
				tlen = cut[i].at - cut[i].from;
			}
		}
	}
	for (i = 0; i < k; i++) {
		if (cut[i].l != NULL)
			cut[i].l->used = cut[i].l == now;
	}
	/* Else, with a newline or a tag alone last, a shown line's. */
	if (now == NULL && (k == 0 || cut[k - 1].l == NULL) &&
	    forward_owed(f, p + tail, n - tail, owed)) {
		for (i = 0; i < k; i++)
			(void)forward_keep(f, p, &cut[i], owed, p + tail,
			    n - tail);
		return (NULL);
	}
	if (now == NULL)
		return (NULL);
	for (i = 0; i < k; i++) {
		if (cut[i].l != now)
			(void)forward_keep(f, p, &cut[i], &now->who, p + tag,
			    tlen);
	}
	return (now);
}

/*
 * p[0..n) ends a kept piece (joined in f->join, *wlen), or is the newline
 * owed to a line shown already (*owed): that line, or NULL.
 */
static struct fwd_line *
forward_rest(struct forward *f, const char *p, size_t n, size_t *wlen,
    struct fwd_who *owed)
{
	struct fwd_line	*l;
	struct fwd_kept	 was;
	size_t		 k;
	int		 i;

	while (f->nkept > 0 && f->lines - f->kept[0].since > FWD_KEEP)
		forward_unkeep(f, 0);
	for (i = 0; i < f->nkept; i++) {
		/* Empty, or the tag alone of that line's pieces. */
		if (f->kept[i].owed) {
			if (forward_owed(f, p, n, owed))
				return (NULL);
			continue;
		}
		/* A kept piece, and the rest of its line. */
		k = f->kept[i].len + n;
		if ((l = forward_join(f, i, p, n, &was, f->join)) != NULL) {
			*wlen = k;
			return (l);
		}
	}
	return (NULL);
}

/* Fill origin o (prefix its room) for the line who. */
static void
forward_origin(struct origin *o, char prefix[32], const struct fwd_who *who)
{
	o->id = who->src;
	o->rank = who->rank;
	o->pid = who->pid;
	o->world = who->world;
	snprintf(prefix, 32, "[rank %ld] ", who->rank);
	o->prefix = prefix;
}

/*
 * The line l of a rank was matched: a line that rank began before it, kept,
 * has ended then, its newline taken for another's. It is shown first (m's
 * before), and that other's newline is owed.
 */
static void
forward_order(struct forward *f, const struct fwd_line *l,
    struct fwd_match *m)
{
	struct fwd_line	*e;
	struct fwd_kept	 was;
	int		 i;

	for (i = 0; i < f->nkept; i++) {
		if (f->kept[i].owed || f->kept[i].src != l->who.src ||
		    f->kept[i].which != l->who.which)
			continue;
		m->blen = f->kept[i].len;
		if ((e = forward_join(f, i, "", 0, &was, f->before)) ==
		    NULL) {
			m->blen = 0;
			forward_unkeep(f, i);
			return;
		}
		m->before = f->before;
		e->used = 1;
		m->bshown = e->shown;
		forward_origin(&m->borigin, m->bprefix, &e->who);
		if (was.who.src != 0)
			(void)forward_keep(f, NULL, NULL, &was.who, was.other,
			    was.olen);
		return;
	}
}

/*
 * The launcher's line p[0..n) as one rank's line passed on in pieces,
 * each after the same tag ("[1,0]<stdout>:step 10[1,0]<stdout>:2 ms"):
 * that line, its text in f->join (*wlen), or NULL.
 */
static struct fwd_line *
forward_detag(struct forward *f, const char *p, size_t n, const size_t *at,
    int nat, size_t *wlen)
{
	struct fwd_line	*l;
	const char	*q, *e = p + n;
	size_t		 t, k;
	int		 a;

	if (n > sizeof f->join)
		return (NULL);
	for (a = 1; a < nat; a++) {
		/* Once only, the tag loop tried it. */
		if ((t = at[a]) == n || !fwd_tag_again(p, n, t))
			continue;
		for (q = p + t, k = 0; q < e; ) {
			if ((size_t)(e - q) >= t && memcmp(q, p, t) == 0) {
				q += t;
				continue;
			}
			f->join[k++] = *q++;
		}
		if (f->heads[fwd_head(f->join, k)] == 0 ||
		    (l = forward_find(f, f->join, k)) == NULL)
			continue;
		*wlen = k;
		return (l);
	}
	return (NULL);
}

/* forward_find() of the text after a tag, where a line may be. */
static struct fwd_line *
forward_tagged(struct forward *f, const char *p, size_t n)
{
	if (f->heads[fwd_head(p, n)] == 0)
		return (NULL);
	return (forward_find(f, p, n));
}

int
forward_copy(struct source *src, const char *line, size_t len,
    struct fwd_match *m)
{
	struct forward	*f = src->fwd;
	struct fwd_line	*l;
	struct fwd_who	 owed;
	size_t		 at[FWD_STARTS], wlen = len;
	int		 a, nat;

	if (f == NULL || RB_EMPTY(&f->tree) || len > UINT32_MAX)
		return (0);
	f->lines++;
	m->text = line;
	m->blen = 0;
	owed.src = 0;
	/* The rest of a line begun in one taken apart: both, shown. */
	if ((l = forward_rest(f, line, len, &wlen, &owed)) != NULL)
		m->text = f->join;
	else if (owed.src == 0)
		l = forward_find(f, line, len);
	if (l == NULL && owed.src == 0) {
		/* "[1,0]<stderr>:text", "[default0]: text": after a tag. */
		nat = forward_tags(line, len, 0, at);
		for (a = 1; a < nat && l == NULL; a++) {
			if ((l = forward_tagged(f, line + at[a],
			    len - at[a])) != NULL) {
				m->text = line + at[a];
				wlen = len - at[a];
			}
		}
		if (l == NULL && (l = forward_detag(f, line, len, at, nat,
		    &wlen)) != NULL)
			m->text = f->join;
		else if (l == NULL)
			l = forward_apart(f, line, len, at, nat, &m->text,
			    &wlen, &owed);
	}
	if (l == NULL && owed.src != 0) {
		/* The newline of a line shown already. */
		m->src = owed.src;
		m->seq = owed.seq;
		m->shown = 1;
		m->len = 0;
		forward_origin(&m->origin, m->prefix, &owed);
		return (1);
	}
	if (l == NULL)
		return (0);
	m->len = wlen;
	l->used = 1;
	f->matched++;
	/* A failure's announcement may wait for this line. */
	if (!l->shown)
		ending_forwarded(l->who.src);
	m->src = l->who.src;
	m->seq = l->who.seq;
	m->shown = l->shown;
	forward_origin(&m->origin, m->prefix, &l->who);
	forward_order(f, l, m);
	return (1);
}
