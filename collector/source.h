/*
 * Internal to the source modules: source.c (registered processes and
 * their pipes), emit.c (their bytes become records), forked.c (processes
 * forked without exec) and remote.c (the sources a relay forwards).
 * Nothing else includes it.
 */
#ifndef MESHLOG_SOURCE_H
#define MESHLOG_SOURCE_H

#include <sys/stat.h>

#include "collector.h"

/* Bytes read from a pipe at once (a full capture pipe), and reads per
 * wake-up before yielding. */
#define SOURCE_READ	(256 * 1024)
#define SOURCE_READS	2

extern const char *const stream_names[2];

struct source;

struct stream {
	struct source		*src;
	int			 which;
	int			 fd;
	struct event		*ev;
	struct split		 split;
	uint64_t		 seq;
	uint64_t		 seq_base;	/* a resumed relay source's */
	int			 continued;	/* the next record continues a
						   cut line */
	enum block_state	 blk;		/* its records' traceback, */
	int			 blk_level;	/* ... and the level it gives */
	int			 after_error;	/* its last line an error's */
	uint64_t		 bytes;
	struct dest		*dest;
	struct dest_watch	 watch;		/* room and gone, from dest */
	int			 paused;	/* waiting for dest to take more */
	int			 tee;		/* raw copy to dest */
	int			 console;	/* shown in the console view */
	int			 viewtty;	/* dest the view's terminal: */
	int			 raw;		/* ... raw while not canonical */
	int			 fwd;		/* its launcher may read it */
	int			 inherited;	/* its rank's output, passed
						 * down (stream_route_as) */
	dev_t			 dev;
	ino_t			 ino;
	dev_t			 updev;		/* a forked child's: the */
	ino_t			 upino;		/* parent's pipe, read first */
	int			 quiet;		/* polled, not watched */
	int			 holding;	/* a reaped child's: its parent */
	uint64_t		 hold_off;	/* waits past this many bytes */
	int			 held;		/* children holding this one */
	uint64_t		 hold_at;	/* reads no further until then */
	uint64_t		 fork_off;	/* a forked child's: its parent's
						   bytes that come first, or 0 */
	uint64_t		 wait_at;	/* the lowest fork_off of the
						   children waiting for it */
	unsigned		 qgen;		/* poll pass that kept it */
	TAILQ_ENTRY(stream)	 qentry;
	char			*jprefix;	/* constant JSON fields */
	size_t			 jplen;
	time_t			 last_update;	/* console progress rate */
	struct event		*partial_ev;	/* a line left unfinished */
	uint64_t		 partial_at;	/* bytes when it was left */
	size_t			 partial_shown;	/* of it, on the console */
	struct timespec		 last_read;	/* last activity */
	struct outfile		*out;		/* --output-dir's, once opened */
	int			 slot;		/* its keeper slot, or -1 */
	uint64_t		 skip;		/* records the log has: a
						 * handed-over read's first */
	RB_ENTRY(stream)	 entry;
};

struct source {
	uint64_t		 id;
	uint64_t		 link;		/* relay it came from, or 0 */
	uint64_t		 rid;		/* its id at that relay */
	long			 pid;
	long			 rank;
	long			 live_rank;	/* counted running, or -1 */
	char			*host;
	json_t			*argv;
	char			 prefix[64];	/* console */
	struct origin		 origin;
	struct stream		*st[2];
	int			 nopen;
	int			 runtime;	/* signal it on level changes */
	uint64_t		 fork_of;	/* forked child of, or 0 */
	uint64_t		 anchor;	/* nearest registered ancestor */
	int			 helper;	/* started by a process of its
						 * own rank: not the rank */
	int			 rank_late;	/* its rank told after start,
						 * or a child's of such */
	long			 ppid;
	int			 outplain;	/* --output-dir: has its rank's
						   name (1), not (0), or -1 */
	int			 announced;	/* source_open written */
	int			 taken_back;	/* from a dead collector's
						 * keeper (handover.c) */
	struct forward		*fwd;		/* a launcher's: its ranks' lines */
	struct forward		*fwd_to;	/* a rank's: its launcher's */
	TAILQ_ENTRY(source)	 fwd_entry;	/* ... among its ranks */
	int			 pidfd;		/* names pid for that, or -1 */
	int			 claim;		/* taken back: keeper_claim */
	struct flush_part	 part;		/* a local one's */
	/* How it ended (ending.c). */
	struct event		*death;		/* its pidfd, readable at death */
	struct timespec		 died;		/* 0 until seen */
	int			 status;	/* wait status, if have_status */
	int			 have_status;
	int			 ending_reason;	/* its pipes closed: why; or -1 */
	struct event		*ending_timer;	/* waits for the status */
	int			 hold;		/* not freed meanwhile */
	int			 first_failure;
	struct timespec		 trace_at;	/* its last traceback began */
	char			*oom_path;	/* its cgroup's OOM kill count */
	long long		 oom_base;	/* that count at its start */
	int			 oom_killed;
	char			 ended_text[TS_LEN];	/* a relay's "ended" */
	uint64_t		 warnings;	/* lines of severity 30 */
	uint64_t		 errors;	/* and 40 and above */
	uint64_t		 copies;	/* records that copy a rank's */
	long			 world_size;	/* -1: not known */
	struct timespec		 start;		/* registered (CLOCK_REALTIME) */
	struct ending_line	*tail;		/* its last lines, a ring */
	int			 ntail;
	int			 tail_next;
	uint64_t		 nkept;		/* lines the tail has seen */
	struct ending_line	*lead;		/* the first of a runtime's */
	int			 nlead;		/* last words (ENDING_LEAD) */
	int			 lead_want;	/* lines of them to come */
	json_t			*opened;	/* a relay's: its source_open */
	TAILQ_ENTRY(source)	 entry;
};

/*
 * What a program a rank ran (a helper) answered through a pipe, not where
 * the rank's output goes: logged under the rank, no line of the rank's.
 */
static inline int
stream_piped(const struct stream *s)
{
	return (s->src->helper && !s->inherited);
}

/* One of the last lines of a process, for the first failure's account. */
#define ENDING_TAIL	8
/*
 * And the first of a runtime's last words ("terminate called ...", its
 * "what():"), said before the tail when later lines (C++ frames) pushed
 * them out of it.
 */
#define ENDING_LEAD	3
struct ending_line {
	size_t		len;
	int		flags;		/* SPLIT_PROGRESS: a bar's state */
	uint64_t	ord;		/* the source's line number, from 0 */
	char		text[200];
};

RB_HEAD(streams, stream);
RB_PROTOTYPE(streams, stream, entry, stream_cmp)
TAILQ_HEAD(sourcelist, source);

/* Every local stream by its pipe; every local source, oldest first (a
 * relay's are remote.c's). */
extern struct streams		 stream_tree;
extern struct sourcelist	 sources;
extern unsigned			 nsources;

/* sourcelog.c */

/* The source_open event of a source just made from hello h. */
void	 source_open_event(struct source *, const struct hello *, long long);
/* {source, pid, rank, host, argv} of a source (new reference). */
json_t	*source_describe(struct source *);

/* emit.c */

/* One record of a stream, read here or relayed, to every sink. */
void	 stream_emit(struct stream *, const char *, uint64_t, uint64_t,
	    const char *, size_t, int);
/*
 * Bytes of s's pipe that already reached its destination, read at *at:
 * to the log, the view and --output-dir (a keeper's, at a handover).
 */
void	 stream_bytes_at(struct stream *, const char *, size_t,
	    const struct timespec *);
/* End of s's bytes: a line left unfinished is its last record. */
void	 stream_bytes_end(struct stream *);
/* The pipe ran dry in the middle of a line: show it if it stays so. */
void	 stream_watch_partial(struct stream *);

/* source.c */

/* The lifecycle event's common fields, and its way to the log. */
void	 source_event_head(struct jw *, struct source *, const char *);
void	 source_log_text(struct jw *);
void	 source_log(json_t *);
/* A stream's constant JSON fields; a source's console label. */
void	 stream_prefix(struct stream *, struct source *);
void	 source_label(struct source *);
/*
 * A rankless src learned its rank (torch.distributed's, once a process
 * that mp.spawn started joined the group): what the view holds of it is
 * printed first, then its label, records and count are the rank's.
 */
void	 source_rank_set(struct source *, long, long);
/*
 * source_rank: {"rank":R,"world_size":W}, 0 <= R < W <= 2^20, from the
 * Python runtime of pid after torch.distributed.init_process_group; its
 * records and ending are the rank's from now on, and a rank event says
 * so. A process with a rank (the launcher's word) keeps it.
 * source_rank_valid: whether msg's are such; 1 and set, or 0.
 */
int	 source_rank_valid(json_t *msg, long *rank, long *world);
/*
 * Write src's source_open event: the common head, what fields() adds,
 * the streams on the console. source_argv_json writes ,"argv":[...].
 */
void	 source_open_log(struct source *, void (*)(struct jw *,
	    struct source *, const void *), const void *);
void	 source_argv_json(struct jw *, json_t *);
/* Give src argv (borrowed) when it is a program's argv (strings, at
 * least one): 1, else 0 and src keeps its own. */
int	 source_argv_set(struct source *, json_t *);
/* ,"key":["stdout",...]: src's streams, or only those on the console. */
void	 source_streams_json(struct jw *, struct source *, const char *, int);
#define STREAMS_ALL		0
#define STREAMS_CONSOLE		1
#define STREAMS_FORWARDED	2
#define STREAMS_INHERITED	3
/*
 * A stream whose process writes into another's capture pipe (a forked
 * child, an exec'd program that inherited it) goes where that one goes.
 */
void	 stream_route_as(struct stream *, const struct stream *);
/*
 * A source with the next id, its identity copied (argv referenced; NULL:
 * none), no pidfd, open, started now: every constructor's first step.
 */
struct source *source_new(long, long, long, const char *, json_t *);
/* A local stream of src reading pipe fd (sb its fstat), not yet attached. */
struct stream *stream_new(struct source *, int, int, const struct stat *);
/* Index s, watch its dest and, when watch is set, its pipe; count it. */
void	 stream_attach(struct stream *, int);
/* List a source whose streams are attached, and give the keeper its pipes. */
void	 source_add(struct source *);
/*
 * Close the streams of src whose destination's reader is already gone,
 * so the first write fails with EPIPE as it would have. Returns src's id
 * (src may be freed by then).
 */
uint64_t source_check_gone(struct source *);
/* Free a source whose streams are closed (reason NULL: a relay's). */
void	 source_free(struct source *, enum close_reason);
void	 stream_close(struct stream *, enum close_reason);
void	 stream_pause(struct stream *);
/* Move bytes from a stream's pipe (stream_move in source.c says how). */
int	 stream_move(struct stream *, size_t);
/* What s's pipe holds now; and that, or one more at its end (drains). */
size_t	 stream_avail(struct stream *);
size_t	 stream_pending(struct stream *);
/* src's runtime asks for level signals; it is alive now. */
void	 source_runtime_on(struct source *);
void	 stream_watch_cb(void *, int);
void	 source_read_cb(int, short, void *);
int	 source_check_pipe(int, struct stat *);
struct source *source_find(uint64_t);
/* Whether a program registered with pid and rank on this host (forked.c:
 * a fork whose exec'd program came first is that program's). */
int	 source_registered_as(long pid, long rank);
/* The newest local source of pid with a stream still open, or NULL. */
struct source *source_newest_open(long pid);
/* Append the status of each announced source of list to the array all. */
void	 source_status(struct sourcelist *, json_t *);

/* outdir.c: per-process text files (--output-dir). */

/* The bytes a local process wrote, read from its pipe. */
void	 outdir_bytes(struct stream *, const char *, size_t);
/* A relayed process's record: its line, and its newline unless cut. */
void	 outdir_record(struct stream *, const char *, size_t, int);
/* The stream is freed: its file is closed. */
void	 outdir_close(struct stream *);
/* The source told its rank: its files take the rank's name. */
void	 outdir_rank(struct source *);

/* handover.c */

/*
 * What the keeper keeps of src, to offer it to a collector restarted on
 * the same socket (source_handover reads it): the identity and the routes
 * of its streams, in buf. 0 when it does not fit: it is then never handed
 * over.
 */
size_t	 handover_identity(struct source *, char *, size_t);
/* src's identity changed (its rank told, an exec, its runtime): the
 * keeper's copy too, so that a restarted collector takes the new one. */
void	 handover_renew(struct source *);
/*
 * Around cutting a read of s into records: its keeper slot is marked as
 * changing, then given the beginning of the line left unfinished.
 */
void	 handover_slot_begin(struct stream *);
void	 handover_slot_end(struct stream *);
/*
 * Where to read s's pipe: in memory shared with the keeper when there is
 * one, after the line beginning its slot holds; the read is noted there
 * before it begins, and *note says how to make it (NULL: into the
 * fallback, no keeper). handover_read_done then says that n bytes were
 * taken at *at.
 */
char	*handover_read_buf(struct stream *, char *fallback,
	    const struct dest_note **note);
void	 handover_read_done(size_t n, const struct timespec *at);

/* forked.c */

/*
 * Whether a forked child's stream must wait for its parent's bytes
 * (moving those first), and whether a parent stream has read up to a
 * reaped child's place; 1 when it waits.
 */
int	 stream_order(struct stream *);
int	 stream_held(struct stream *);
/* A reaped child's bytes are through, or its pipe closed. */
void	 stream_release(struct stream *);
/* A parent reaped this child: keep its bytes' place. */
void	 stream_hold(struct stream *);
/* A parent's bytes reached a waiting child's place, or it closed. */
void	 stream_kids_wake(struct stream *);
/* The source_open event of a forked child, at its first record. */
void	 source_fork_event(struct source *);
/* A parent's quiet children's bytes go first; 1 when it waits. */
int	 forked_kids_first(struct stream *);
/* A quiet stream is watched from now on, or closes. */
void	 forked_unquiet(struct stream *);
/* A stream of this destination closed: quiet ones at their end close. */
void	 forked_quiet_ended(struct dest *);
/* The stream of a capture pipe, reading queued forks first if needed. */
struct stream *source_find_pipe(struct stream *);
/* Registrations of children process pid forked, still queued. */
void	 forked_pending(long);
/* At exit. */
void	 forked_close(void);

/* endproc.c: how a process died, from /proc and its memory cgroup */
/* Note src's memory cgroup and its OOM kills so far; at registration. */
void	 ending_oom_watch(struct source *);
/* Whether the OOM killer killed src (dead by SIGKILL), inferred from its
 * cgroup's count of kills since ending_oom_watch. */
int	 ending_oom_killed(struct source *);
/* A zombie's wait status from /proc/PID/stat; 0, or -1 when not one. */
int	 ending_zombie_status(struct source *, int *);
/* ending.c */

/* Watch for src's death (pidfd): before its welcome, or at source_add. */
void	 ending_watch(struct source *);
/*
 * src's last stream closed for reason: its source_closed is written when
 * its exit status is known, or will not be.
 */
void	 source_end(struct source *, enum close_reason);
/* The exit fields of src's source_closed. */
void	 ending_fields(struct jw *, struct source *, enum close_reason);
/* Keep a line among src's last ones (ending_keep), and see whether it
 * begins a Python traceback or a runtime's last words (ending_traceback:
 * asked of lines of ERROR and above and while src->lead_want, or of every
 * line), whose first lines it keeps; ahead: the lines before it that are
 * still to be kept (ending_keep_lines). */
void	 ending_tail(struct source *, const char *, size_t, int);
void	 ending_keep(struct source *, const char *, size_t, int);
void	 ending_traceback(struct source *, const char *, size_t,
	    uint64_t ahead);
/* Keep the last of the n whole lines in [p, end) (each ends in \n). */
void	 ending_keep_lines(struct source *, const char *p, const char *end,
	    uint64_t n);
/*
 * Around the split of one read of src's, the n bytes at p: lines within
 * them are kept by where they are until ending_tail_flush copies the last
 * few (before the bytes are reused).
 */
void	 ending_tail_defer(struct source *, const char *p, size_t n);
void	 ending_tail_flush(void);
/* A launcher passed on a line of source id not shown yet, or ended (id
 * 0): a failure's announcement waiting for its lines may go. */
void	 ending_forwarded(uint64_t id);
/* Read what src's pipes hold now (source.c). */
void	 source_drain_now(struct source *);
/* A relay's process ended abnormally (its status in src): the first
 * failure of the job, if none was seen. */
void	 ending_relayed(struct source *);
/* src's account for the summary. */
void	 ending_summary(struct source *, struct summary_proc *);
/* src's last lines, for the summary (borrowed). */
void	 ending_lines(struct source *, struct ending_lines *);

/* forward.c */

/* A ranked source whose parent is a rankless one (its launcher): note
 * its lines there, to know the launcher's copies. At registration. */
void	 forward_open(struct source *);
/* Let go of forwarding state; when the source is freed. */
void	 forward_close(struct source *);
/* Note the lines of a rank's worker (forked, or a program it started)
 * with the rank's launcher, where it writes as the rank does. */
void	 forward_fork(struct source *, struct source *);
/* The rank src wrote record seq, line, on stream which; shown: on the
 * console. */
void	 forward_note(struct source *src, int which, uint64_t seq,
	    const char *line, size_t len, int shown);
/* A launcher's line that copies a rank's. */
struct fwd_match {
	uint64_t	 src;		/* the rank's source */
	uint64_t	 seq;		/* and record */
	const char	*text;		/* the rank's line: in the launcher's,
					   after a tag, or its pieces joined
					   (borrowed) */
	size_t		 len;
	int		 shown;		/* the rank's line was on the console */
	struct origin	 origin;	/* the rank, to show its line */
	char		 prefix[32];
	/* A line of the same rank's to show first (blen 0: none), found
	 * ended only now. */
	const char	*before;
	size_t		 blen;
	int		 bshown;
	struct origin	 borigin;
	char		 bprefix[32];
};
/* Whether src's launcher has lines of src it is yet to pass on. */
int	 forward_pending(const struct source *);
/* Whether launcher src's line is a copy of a rank's line (whole, after a
 * tag, or among ranks' lines run together); 1 and *m, once per rank
 * line. */
int	 forward_copy(struct source *src, const char *line, size_t len,
	    struct fwd_match *m);

/* stall.c */

/* Watch for silent ranks (--stall) among the local and relayed sources. */
void	 stall_start(struct sourcelist *relayed);

#endif
