/*
 * The aggregator's groups, shared by aggregate.c (what joins what, and
 * when a group is printed) and aggtext.c (how a group reads).
 */

#ifndef MESHLOG_AGGREGATE_H
#define MESHLOG_AGGREGATE_H

#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include "collector.h"

/* One process's line (or block) in a group. */
struct agg_member {
	const char		*prefix;	/* its own, "[rank 3] " */
	long			 rank;		/* -1 when none */
	long			 pid;
	const char		*text;		/* its own line; a block's
						 * members share the group's */
	size_t			 len;
	struct agg_chunk	*chunk;		/* where text is kept, or NULL */
	/*
	 * Where text differs from the group's first line when only digits
	 * do (aggtok_digit_diffs): bytes [dfrom, dto), dfrom == len when
	 * nowhere; else dfrom is AGG_UNALIGNED.
	 */
	uint32_t		 dfrom;
	uint32_t		 dto;
};
#define AGG_UNALIGNED	UINT32_MAX

/*
 * Lines of different processes shown as one: the same template (or close
 * by the seed's edit distance), or blocks with the same bytes.
 */
struct agg_group {
	uint64_t		 key;
	uint64_t		 serial;	/* creation order = print order */
	double			 deadline;	/* printed no later than this */
	uint64_t		 us;		/* when its first line was read */
	int			 which;
	int			 severity;
	int			 flags;		/* SPLIT_* of the first line */
	int			 block;		/* text is several lines */
	char			*text;		/* the first member's, owned */
	size_t			 len;
	long			 world;		/* largest world size, or -1 */
	struct agg_member	*members;
	size_t			 nmembers;
	size_t			 capmembers;
	struct agg_queue	*queue;		/* groups of the same key */
	struct agg_sig		*sigs[3];	/* edit-distance candidates */
	size_t			 nsigs;
	int			 candidate;	/* aggmatch_add()ed */
	struct agg_sketch	*sketch;	/* a long line's q-grams */
	int			 ranked;	/* its members have a rank */
	int			 colour;	/* text has an ESC */
	uint32_t		 occ;		/* the fewest lines of its key a
						 * member's rank had said, its
						 * own included (agg_rank_say) */
	TAILQ_ENTRY(agg_group)	 entry;		/* print order */
};

/* Hash h made particular to a stream, a severity and rankedness. */
static inline uint64_t
agg_salt(uint64_t h, int which, int severity, int ranked)
{
	h = (h ^ ((uint64_t)(unsigned)which << 32 | (uint64_t)ranked << 40 |
	    (unsigned)severity)) * 0x9e3779b97f4a7c15ULL;
	return (h ^ (h >> 32));
}

/* Severity slot 0..5 of a level. */
static inline int
agg_slot(int severity)
{
	return (severity <= 0 ? 0 : severity >= 50 ? 5 : severity / 10);
}

/* aggmatch.c: close groups by the seed's edit distance */
/* Edit distance of a and b if at most k, else k + 1; O(len * k). */
size_t	aggregate_distance(const char *a, size_t la, const char *b,
	    size_t lb, size_t k);
/* A lower bound of that distance, in O(la + lb). */
size_t	aggregate_distance_bound(const char *a, size_t la, const char *b,
	    size_t lb);
/* The (up to three) signatures of a line's template (key tkey), salted. */
size_t	aggmatch_signatures(const char *line, size_t len, uint64_t tkey,
	    uint64_t sig[3], int which, int severity, int ranked);
/* Make g a candidate for the lines to come, under its signatures. */
void	aggmatch_add(struct agg_group *g, int ranked, const uint64_t *sig,
	    size_t nsig);
/* g is printed: no candidate any more. */
void	aggmatch_remove(struct agg_group *g);
/* g is freed or reused: what aggmatch made for it goes. */
void	aggmatch_forget(struct agg_group *g);
/*
 * The closest waiting group to line by the seed's rule, or NULL, among
 * those whose key has a group begun after serial after (the line's
 * process's last one): the line can join no other. *sketch is the line's
 * sketch if one was made (a long line), for the group it may begin, or
 * NULL; the caller frees it.
 */
struct agg_group *aggmatch_find(int which, int ranked, int slot,
	    const uint64_t *sig, size_t nsig, const char *line, size_t len,
	    uint64_t after, struct agg_sketch **sketch);
/* aggregate.c: the serial of the newest group with g's key. */
uint64_t	agg_key_newest(const struct agg_group *g);

/* Whether c is a decimal digit (aggtok.c and aggtext.c). */
static inline int
agg_digit(char c)
{
	return ((unsigned)((unsigned char)c - '0') < 10);
}

/* aggtok.c: a line cut into tokens */
/* Words compared per line; the rest of a longer line is one token. */
#define AGG_TOK_MAX	128
struct agg_tok {
	uint32_t	off;
	uint32_t	len;
	int		word;	/* a word may differ between members */
};
/* Build the byte classes the cutting uses; once, before any cut. */
void	aggtok_init(void);
/*
 * The key of a block (a traceback, its lines in p[0..len)): its lines'
 * templates in order, so that several ranks' tracebacks of one error
 * group though each names its own numbers, addresses and files; a line
 * of fewer than min_letters letters by its bytes, as it would be alone.
 */
uint64_t aggtok_block_key(const char *p, size_t len, int min_letters);
/* Cut s (at most AGG_TOK_MAX tokens) like the line cut before it. */
size_t	aggtok_prev(const char *s, size_t n, struct agg_tok *t);
/*
 * Whether y reads as x (xnt tokens xt) but for some words: cut like x
 * (into t, with room for xnt + 1 tokens), the same number of tokens and
 * the same marks between *lo and *hi. 1 when it does, 2 when its tokens
 * are x's, at the same places (t is not written), 0 when it does not.
 */
int	aggtok_member(const char *x, size_t xn, const struct agg_tok *xt,
	    size_t xnt, const char *y, size_t yn, struct agg_tok *t,
	    size_t *lo, size_t *hi);
/*
 * Whether x and y (n bytes each) differ only where both have a digit:
 * then they cut into the same tokens, and they differ in bytes [*first,
 * *end) (*first is n when nowhere). Not where a digit of a colour's escape
 * sequence differs ("\x1b[31m" and "\x1b[33m"): another colour is no value
 * a group's line could show. _raw: that too (x has no ESC, or only the
 * tokens are wanted).
 */
int	aggtok_digit_diffs(const char *x, const char *y, size_t n,
	    size_t *first, size_t *end);
int	aggtok_digit_diffs_raw(const char *x, const char *y, size_t n,
	    size_t *first, size_t *end);
/*
 * Whether y, whose tokens are x's (xt, xnt) at the same places, has x's
 * bytes in the last one when that is the rest of a line cut short at
 * AGG_TOK_MAX tokens (a mark, compared as it is, which digits change
 * too) and hi, the end of the tokens where they differ, reaches it.
 */
int	aggtok_rest_same(const char *x, const struct agg_tok *xt, size_t xnt,
	    const char *y, size_t hi);
/* The tokens of xt (xnt) from *lo to *hi hold bytes [first, end). */
void	aggtok_span(const struct agg_tok *xt, size_t xnt, size_t first,
	    size_t end, size_t *lo, size_t *hi);

/*
 * Where m, g's latest member, saying text, differs from g's first line
 * (as members join, and as the live line's bars are rendered). Most
 * members say the same, or differ in a few digits: where, found now in
 * one pass, spares printing a cut of each member.
 */
static inline void
agg_member_diffs(struct agg_member *m, const struct agg_group *g,
    const char *text, size_t len)
{
	size_t	from, to;

	if (g->nmembers == 1) {		/* the line g was made of */
		m->dfrom = (uint32_t)len;
		m->dto = 0;
	} else if (len == g->len && (g->colour ? aggtok_digit_diffs(text,
	    g->text, len, &from, &to) : aggtok_digit_diffs_raw(text, g->text,
	    len, &from, &to))) {
		m->dfrom = (uint32_t)from;
		m->dto = (uint32_t)to;
	} else
		m->dfrom = AGG_UNALIGNED;
}

/* Members a group has room for when it is made, kept right after it. */
#define AGG_INLINE		8
#define AGG_INLINE_MEMBERS(g)	((struct agg_member *)(void *)((g) + 1))

/* aggchunk.c */
/* A group with room for a first line of len bytes; only its header
 * zeroed. */
struct agg_group	*agg_group_alloc(size_t len);
/* Kept for the next group of its size, or freed. */
void	 agg_group_release(struct agg_group *g);
/*
 * Members' own texts are kept in chunks: groups are freed about in the
 * order they were made, so a chunk is freed once the last text in it is,
 * and a text costs a bump of a pointer instead of a malloc and a free.
 * Once a line: inline, with a new chunk (or a long text's own) made out
 * of line. Hidden: read without the GOT's indirection.
 */
#define AGG_CHUNK		(64 * 1024)
struct agg_chunk {
	size_t	used;
	size_t	live;		/* texts in it not yet freed */
	char	data[AGG_CHUNK];
};
extern struct agg_chunk	*agg_chunk_cur __attribute__((visibility("hidden")));
/* agg_text_keep() of a long text, or when the current chunk is full. */
char	*agg_text_keep_new(const char *text, size_t len,
	    struct agg_chunk **owner);

/* A copy of text for a member, in a chunk shared with others unless it is
 * long; *owner is that chunk, or NULL when the copy is malloc()ed. */
static inline char *
agg_text_keep(const char *text, size_t len, struct agg_chunk **owner)
{
	struct agg_chunk	*c = agg_chunk_cur;
	char			*p;

	if (c == NULL || len > AGG_CHUNK / 16 || AGG_CHUNK - c->used < len)
		return (agg_text_keep_new(text, len, owner));
	p = c->data + c->used;
	memcpy(p, text, len);
	c->used += len;
	c->live++;
	*owner = c;
	return (p);
}

/* A member's copy is no longer needed. */
static inline void
agg_text_drop(struct agg_member *m)
{
	if (m->chunk == NULL)
		free((char *)(uintptr_t)m->text);
	else if (--m->chunk->live == 0 && m->chunk != agg_chunk_cur)
		free(m->chunk);
}

/* aggranks.c */
/* Ranks counted by aggregate_rank_process, at most. */
#define AGG_RANKS	1048576
/* Whether every process of rank has ended (one had begun). */
int	agg_rank_ended(long rank);
/*
 * Per rank, the serial of the last group a line of that rank joined, per
 * stream (aggregate.c): a rank's forked workers are sources of their own,
 * and a line should not join a group its rank is in already when another
 * would do. Room for agg_nrlast ranks. Hidden: read without the GOT's
 * indirection, twice a line.
 */
extern uint64_t	(*agg_rlast)[2] __attribute__((visibility("hidden")));
extern size_t	 agg_nrlast __attribute__((visibility("hidden")));
/* Room in agg_rlast for rank, which it has not. */
uint64_t	*agg_rank_grow(long rank);

/* Twice a line: inline, with the rare growing out of line. */
static inline uint64_t *
agg_rank_last(long rank)
{
	if (rank < 0 || rank >= AGG_RANKS)
		return (NULL);
	if ((size_t)rank < agg_nrlast)
		return (agg_rlast[rank]);
	return (agg_rank_grow(rank));
}

/*
 * How many lines of each key each rank said, as they joined groups: the
 * n-th "step" of a rank that runs ahead was printed apart, and the group
 * of the others' n-th is not to name it as missing. Direct-mapped, a
 * count lost to a collision is read as none. Once a line: inline.
 */
struct agg_said {
	uint64_t	tag;		/* rank and key */
	uint32_t	n;
};
#define AGG_SAID	(1 << 15)
extern struct agg_said	agg_said[AGG_SAID]
    __attribute__((visibility("hidden")));
/* Lines of key rank is known to have said. */
uint32_t	 agg_rank_said(long rank, uint64_t key);

/* The slot of rank and key, and their *tag. Key is a hash: its low bits
 * are the slot's. */
static inline struct agg_said *
agg_said_slot(long rank, uint64_t key, uint64_t *tag)
{
	*tag = key ^ (uint64_t)rank * 0x9e3779b97f4a7c15ULL;
	return (&agg_said[*tag & (AGG_SAID - 1)]);
}

/* rank said one more line of key: how many it has said. */
static inline uint32_t
agg_rank_say(long rank, uint64_t key)
{
	uint64_t	 tag;
	struct agg_said	*e = agg_said_slot(rank, key, &tag);

	if (e->tag != tag) {
		e->tag = tag;
		e->n = 0;
	}
	return (++e->n);
}

/* What a member said at a word of a line (aggtext.c). */
struct agg_val {
	const char	*p;
	size_t		 len;
	int		 kind;	/* at_number's: 0 a word, 1 an integer, 2 */
	double		 num;	/* its value when a number */
	long long	 ll;	/* its value when an integer */
};

/*
 * Whether integer text s (n bytes, value l) is written as %lld writes l,
 * and l is exact in a double: for such values equal numbers are equal
 * texts, and the order by number is the order of aggtext.c's
 * at_value_cmp. Asked of every value: inline.
 */
static inline int
aggsort_plain_int(const char *s, size_t n, long long l)
{
	size_t	i = s[0] == '-';

	return (s[0] != '+' && (s[i] != '0' || n == 1) &&
	    l > -(1LL << 53) && l < (1LL << 53));
}

/* aggsort.c: a word's values sorted */
/* Sort v[0..n), plain integers all, by value, each kept once; how many
 * are distinct. */
size_t	aggsort_ints(struct agg_val *v, size_t n);

/* aggtext.c */
/*
 * Print g through line (one member) or group (several): a line group
 * as one line per set of members whose texts align, fields that differ
 * shown as sets or ranges; a block line by line. Members are reordered.
 */
void	aggtext_print(struct agg_group *g, aggregate_print_cb line,
	    aggregate_print_cb group);

#endif
