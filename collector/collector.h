/*
 * meshlog-collector: reads every registered process's stdout/stderr pipes,
 * splits them into lines, writes the JSON log and the console view, and tees
 * raw bytes back to each process's original destination.
 */
#ifndef MESHLOG_COLLECTOR_H
#define MESHLOG_COLLECTOR_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "runtime/runtime.h"

struct event_base;
struct event;
struct evbuffer;
struct wire_rec;

/* Default longest record, in bytes; longer lines are cut. */
#define LINE_MAX_DEFAULT	4096

/* Settings from the command line, fixed once the collector runs (the
 * console's live mode is console.c's: console_mode). */
struct config {
	const char	*socket_path;
	const char	*json_path;
	int		 tee;		/* raw copy to the original fds */
	int		 console;	/* console view on at start */
	double		 aggregate;	/* window in s; 0 = off */
	int		 level;		/* console level filter; 0 = all */
	int		 timestamps;	/* CONSOLE_TS_* on console lines */
	int		 colour;	/* -1 never, 0 on a terminal, 1 always */
	long		*ranks;		/* console ranks filter (sorted) */
	size_t		 nranks;	/* 0 = every rank */
	double		 stall;		/* s a rank may be silent; 0 = off */
	size_t		 line_max;
	int		 verbose;
	int		 hello_timeout;	/* seconds for a peer's message */
	char		*const *command;	/* launch mode when non-NULL */
	char		 host[256];	/* this host's name */
	const char	*listen_tcp;	/* ADDR:PORT for relays, or NULL */
	const char	*upstream;	/* tcp://HOST:PORT, or NULL */
	const char	*token_file;
	const char	*spool_dir;
	size_t		 spool_memory;	/* bytes */
	size_t		 spool_disk;	/* bytes; 0 = memory only */
	int		 link_timeout_ms;
	int		 reconnect_max_ms;
	int		 idle_exit;	/* seconds; 0 = never */
	int		 ready_fd;	/* told "ready" once serving, or -1 */
};

extern struct config	 cfg;
extern struct event_base *base;

/* Receives the answer (borrowed) of a request answered later. */
typedef void (*reply_cb)(json_t *reply, void *arg);
/*
 * Answers one control request (borrowed): a reply (new reference), or NULL
 * with cb called later (cb may run before it returns). main.c passes
 * control_dispatch to the transports that take requests.
 */
typedef json_t *(*dispatch_fn)(json_t *req, reply_cb cb, void *arg);

/* Order two files by device and inode (for RB trees keyed by file). */
static inline int
devino_cmp(dev_t ad, ino_t ai, dev_t bd, ino_t bi)
{
	if (ad != bd)
		return (ad < bd ? -1 : 1);
	return (ai < bi ? -1 : ai > bi);
}

/* ---- Utilities. */

/* log.c */
void	log_open(const char *name, int verbose);
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
/* A kind of warning peers can provoke: LOG_LIMIT_BURST per LOG_LIMIT_MS. */
#define LOG_LIMIT_BURST	10
#define LOG_LIMIT_MS	10000
struct log_limit {
	const char		*what;		/* "refusals", for the summary */
	long long		 start;		/* of the window, monotonic ms */
	unsigned		 shown;
	unsigned long long	 suppressed;
};
/* Warn unless this kind has had its share of the window; then count. */
void	log_warn_limit(struct log_limit *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* xmalloc.c */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* summarytext.c: a job's summary as text (shared with meshlogctl) */
#include "summarytext.h"

/* rankset.c: sets of ranks, "0,2-5" (shared with meshlogctl) */
#include "rankset.h"

/* sockdir.c: the socket's verified directory, and the way to any other */
/*
 * The directory holding path's last part (copied into name, len bytes:
 * "." for "/"), walked from / or . a part at a time, not following a
 * symbolic link someone other than this user or the directory's owner
 * made in a sticky directory anyone may write to (the kernel's
 * protected_symlinks rule, applied where it is off). An O_PATH
 * descriptor, or -1 with errno set, and an allocated *cause when the walk
 * was refused.
 */
int	path_parent_open(const char *path, char *name, size_t len,
	    char **cause);
/*
 * Create the directory of path (0700) if missing and check it is this
 * user's and writable by nobody else; keep a descriptor to it. 0, or -1
 * with an allocated *cause.
 */
int	sockdir_open(const char *path, char **cause);
/* openat() of the socket's name + suffix, always O_NOFOLLOW|O_CLOEXEC. */
int	sockdir_openat(const char *suffix, int flags, mode_t mode);
/* Rename name + from to name + to inside the directory; 0 or -1. */
int	sockdir_rename(const char *from, const char *to);
/* Remove name + suffix ("" is the socket itself); 0 or -1. */
int	sockdir_unlink(const char *suffix);
/*
 * Remove the sockets (and locks) that launch-mode collectors killed
 * before they could (SIGKILL, the OOM killer) left in the directory:
 * launch-PID.sock whose pid is gone, whose lock is free and on which
 * nobody listens. How many.
 */
int	sockdir_sweep(void);
/* fdreserve.c: descriptors kept back for messages (fdreserve.h) */

/* ---- Codecs and state machines. */

/* visible.c: a program's bytes made safe for a terminal */
#include "visible.h"

/* split.c: the line splitter, and its record flags */
#include "split.h"

/* record.c */

/* Room for an RFC 3339 timestamp with microseconds, NUL included. */
#define TS_LEN	40

/* Format ts as 2026-01-02T03:04:05.123456Z into buf (TS_LEN bytes). */
void	record_ts(char *buf, const struct timespec *ts);
/* Bytes record_line() may write for a line of n bytes and prefix plen. */
#define RECORD_MAX(n, plen)	(JSON_ESCAPE_MAX(n) + (plen) + 256)
/*
 * Write one JSON line record into dst (RECORD_MAX bytes): ts (record_ts's
 * text of us) and us as ts_ns (since the epoch, in ns), the constant prefix
 * ("host":..,"stream":..,), seq, line, the flags, and level when it is a
 * detected severity (10..50); a SPLIT_PLAIN line is copied as it is.
 * Returns the length.
 */
size_t	record_line(char *dst, const char *ts, uint64_t us, const char *prefix,
	    size_t plen, uint64_t seq, const char *line, size_t n, int flags,
	    int level);
/* Mark the record of n bytes at rec (room for RECORD_MAX) as a copy of
 * source src's record seq: "copy_of":{...}. Returns its new length. */
size_t	record_copy_of(char *rec, size_t n, uint64_t src, uint64_t seq);

/* hello.c */

/* A parsed hello. */
struct hello {
	long		 proto;
	long		 pid;
	long		 ppid;
	long		 uid;
	char		*host;
	long long	 start_us;
	json_t		*argv;		/* array of strings, owned */
	int		 argv_truncated;
	long		 rank;		/* -1 when null */
	long		 local_rank;
	long		 world_size;
	char		*rank_var;	/* NULL when absent */
	int		 keep_buffering;
	int		 auto_buffering;	/* the shim leaves it to us */
	int		 runtime;	/* a level runtime asks for SIGURG */
	int		 nested;	/* an ancestor registered */
	int		 nstreams;
	int		 which[2];	/* MESHLOG_STDOUT / MESHLOG_STDERR */
	int		 tty[2];
	int		 merged;	/* one stdout stream carries stderr too */
	int		 tty_shared;	/* both on one terminal's open file, */
	long long	 tty_at[2];	/* its st_dev and st_ino */
	/* Set by source_prepare: the stream of a capture pipe each original
	 * is (a descendant's), -1 for a destination of its own; and the
	 * source whose pipe that is (for the log), or -1. */
	int		 inherit[2];
	long long	 parent;
};

/*
 * Parse one hello line. Returns 0 and fills h (release with hello_clear), or
 * -1 with an allocated reason in *cause.
 */
int	hello_parse(const char *line, size_t len, struct hello *h,
	    char **cause);
/* The same from a message already parsed (borrowed). */
int	hello_from_json(json_t *root, struct hello *h, char **cause);
/*
 * Parse one message line as every peer message is parsed (duplicate keys
 * refused): a new reference, or NULL with an allocated reason in *cause.
 */
json_t	*hello_load(const char *line, size_t len, char **cause);
/* Release what hello_parse() allocated; h may be partly filled. */
void	hello_clear(struct hello *h);

/* barrier.c */

/* One flush barrier: its version and who it still waits for. */
struct barrier {
	uint64_t		 version;
	uint64_t		*waiting;	/* sorted participant ids */
	size_t			 nwaiting;
	long long		 deadline_ms;	/* monotonic clock */
	int			 timed_out;
	TAILQ_ENTRY(barrier)	 entry;
};

/* Every barrier under way, and the last version given out. */
struct barriers {
	uint64_t		 last;
	TAILQ_HEAD(, barrier)	 active;
};

/* Start with no barrier and version 0. */
void	barriers_init(struct barriers *);
/* Start the next version, waiting for ids[0..n); owned by bs. */
struct barrier *barrier_start(struct barriers *, const uint64_t *ids,
	    size_t n, long long deadline_ms);
/*
 * Participant id has drained everything written before version: it no
 * longer holds back that barrier or any older one. Stale versions change
 * nothing. Returns 1 when this completed a barrier.
 */
int	barrier_ack(struct barriers *, uint64_t id, uint64_t version);
/* Participant id is gone; returns 1 when this completed a barrier. */
int	barrier_leave(struct barriers *, uint64_t id);
/* A barrier that is complete or past its deadline (marked), or NULL. */
struct barrier *barrier_next_done(struct barriers *, long long now_ms);
/* Forget a finished barrier. */
void	barrier_finish(struct barriers *, struct barrier *);

/* severity.c: levels of lines, and blocks of lines (severity.h) */
#include "severity.h"

/* shape.c: what the console needs to know of a line's text */
struct shape {
	uint64_t	key;		/* shape_template() */
	int		letters;	/* literal letters in the template */
	int		severity;	/* severity_detect() */
};
/* The shape of line, taken from a recent line equal to it once each digit
 * reads as '0' when there is one, else computed and remembered. */
void	shape_of(const char *line, size_t len, struct shape *out);
/*
 * The length of the whole line at p (n bytes there) when no byte of it
 * needs JSON escaping and it is max bytes at most, and its shape, in one
 * pass: what split_whole() with *plain and shape_of() say of it. Else -1,
 * and the caller asks them (always, without AES instructions).
 */
ssize_t	shape_line(const char *p, size_t n, size_t max, struct shape *out);
/* shape_of(), and whether no byte of the line needs JSON escaping (0 also
 * when that was not looked at: without AES instructions). */
int	shape_whole(const char *line, size_t len, struct shape *out);
#define SHAPE_MAX_TOKENS	64	/* apart; more fold into the last */
/* Hashes of a line's template tokens. */
struct shape_tokens {
	uint64_t	h[SHAPE_MAX_TOKENS];
	size_t		n;		/* tokens, all counted */
	uint64_t	key;		/* the whole template */
	int		letters;	/* literal letters kept */
};
/* Cut a line into template tokens and hash them. */
void	shape_tokenize(const char *line, size_t len, struct shape_tokens *);
/* Hash of tokens [from, to), positions counted from from. */
uint64_t shape_span(const struct shape_tokens *, size_t from, size_t to);
/* Hash of a line's template (variable tokens masked); letters it kept. */
uint64_t shape_template(const char *line, size_t len, int *letters);
/* Hash of n bytes, eight at a time. */
uint64_t shape_bytes(const char *, size_t);
/* Lines whose shape was remembered, lines shaped in full. */
void	shape_stats(uint64_t *hits, uint64_t *misses);
/* Tests: forget every shape, and from now on hash as a processor without
 * AVX (SHAPE_SSE) or AES instructions (SHAPE_PORTABLE) would, or as this
 * one does (SHAPE_AVX) unless told otherwise before. */
#define SHAPE_PORTABLE	0
#define SHAPE_SSE	1
#define SHAPE_AVX	2
void	shape_use(int level);

/* wire.c: frames between collectors */
#define WIRE_PROTO		2	/* 2: sealed after the handshake */
#define WIRE_HDR		13
#define WIRE_HELLO		'H'	/* handshake, JSON, before anything */
#define WIRE_CONTROL		'C'	/* JSON, not sequenced */
#define WIRE_EVENT		'E'	/* JSON, sequenced */
#define WIRE_RECORDS		'B'	/* a batch of records, sequenced */
#define WIRE_PRE_AUTH_MAX	4096
#define WIRE_CONTROL_MAX	(1024 * 1024)
#define WIRE_FRAME_MAX		(64 * 1024 * 1024)
#define WIRE_REC_HDR		30

/* One frame; body points into the input buffer until wire_done. */
struct wire_frame {
	int		 type;
	uint64_t	 seq;
	const char	*body;
	size_t		 len;
};

/* One record of a batch; line is borrowed. */
struct wire_rec {
	uint64_t	 source;
	int		 which;
	int		 flags;
	uint64_t	 seq;
	uint64_t	 ts_us;
	const char	*line;
	size_t		 len;
};

/* Write a frame header (WIRE_HDR bytes) into dst. */
void	 wire_header(char *dst, int type, uint64_t seq, size_t len);
/*
 * Look at the front of in: 1 with a whole frame in f, 0 when more is
 * needed, -1 (static *cause) when it is longer than max or unknown.
 */
int	 wire_next(struct evbuffer *in, size_t max, struct wire_frame *f,
	    const char **cause);
/* Remove frame f from the front of in. */
void	 wire_done(struct evbuffer *in, const struct wire_frame *f);
/* Append msg (borrowed) as a JSON frame. */
void	 wire_send_json(struct evbuffer *out, int type, uint64_t seq,
	    json_t *msg);
/* A frame's body as a JSON object (new reference), or NULL. */
json_t	*wire_json(const struct wire_frame *f);
/* Encode r at dst (WIRE_REC_HDR + r->len bytes); returns the length. */
size_t	 wire_record(char *dst, const struct wire_rec *r);
/* Decode the next record of a batch: 1, 0 at the end, -1 if malformed. */
int	 wire_record_next(const char **p, size_t *left, struct wire_rec *r);
/* Split HOST:PORT or [V6]:PORT (allocated); 0 or -1. */
int	 wire_split_hostport(const char *s, char **host, char **port);

/* spool.c: sequenced frames kept until acknowledged */
/* A chunk is sealed past this many bytes, and at every loop pass. */
#define SPOOL_CHUNK	(256 * 1024)
/* A run of frames, sealed, waiting for the acknowledgement. */
struct spool_chunk {
	uint64_t			 seq_lo;
	uint64_t			 seq_hi;
	size_t				 len;
	char				*mem;		/* NULL when on disk */
	off_t				 off;
	TAILQ_ENTRY(spool_chunk)	 entry;
};
struct spool {
	const char			*dir;		/* for the file */
	size_t				 mem_max;
	size_t				 disk_max;	/* 0: memory only */
	uint64_t			 next_seq;	/* the last given */
	uint64_t			 acked;
	TAILQ_HEAD(, spool_chunk)	 chunks;
	struct spool_chunk		*unsent;
	size_t				 nchunks;
	char				*cur;		/* the open chunk */
	size_t				 cur_len;
	size_t				 cur_cap;
	size_t				 batch_off;
	int				 batch_open;
	uint64_t			 cur_lo;
	size_t				 mem_bytes;	/* sealed, in memory */
	int				 disk_fd;
	int				 disk_broken;
	off_t				 disk_end;
	size_t				 disk_bytes;
};
/* An empty spool: memory up to mem_max, then a file in dir to disk_max. */
void	 spool_init(struct spool *, const char *dir, size_t mem_max,
	    size_t disk_max);
/* Forget everything; the spool is empty again. */
void	 spool_free(struct spool *);
/* Whether n more bytes fit, moving old chunks to disk to make room. */
int	 spool_admit(struct spool *, size_t n);
/* Add a record to the open records frame; returns the open chunk's size. */
size_t	 spool_record(struct spool *, const struct wire_rec *);
/* Add an event frame (JSON text, n bytes); always taken. */
void	 spool_event(struct spool *, const char *, size_t);
/* Seal the open chunk, if any, for sending; 1 when one was sealed. */
int	 spool_seal(struct spool *);
/* Append sealed chunks not yet sent to out while it holds less than
 * window bytes, each once even if out's callbacks call this again;
 * returns how many this call appended. */
int	 spool_send(struct spool *, struct evbuffer *out, size_t window);
/* Send again from the first chunk not acknowledged (a new link). */
void	 spool_rewind(struct spool *);
/* Every frame up to seq is acknowledged: free the chunks it covers. */
void	 spool_ack(struct spool *, uint64_t seq);
/* Nothing sealed or open is left. */
int	 spool_empty(const struct spool *);

/* auth.c */
#define AUTH_BYTES	32
#define AUTH_HEX	(2 * AUTH_BYTES + 1)	/* hex digits and NUL */
/* Read and check the token file; 0, or -1 with an allocated *cause. */
int	 auth_load(const char *path, char **cause);
/* Whether a token is loaded. */
int	 auth_loaded(void);
/* A fresh random nonce, in hex. */
void	 auth_nonce(char hex[AUTH_HEX]);
/* The proof that role knows the token, over two nonces, in hex. */
void	 auth_proof(char hex[AUTH_HEX], const char *role, const char *first,
	    const char *second);
/* 0 when proof is role's for these nonces, else -1; constant time. */
int	 auth_check(const char *proof, const char *role, const char *first,
	    const char *second);
/* Whether hex looks like a nonce (AUTH_HEX - 1 lower-case hex digits). */
int	 auth_valid_nonce(const char *hex);
/* Bytes of a sealed link's key (seal.c). */
#define SEAL_KEY	32
/*
 * A sealed link's key for one direction (role "link to root" or "link to
 * relay"), from the token and the handshake's relay and root nonces.
 */
void	 auth_session_key(unsigned char key[SEAL_KEY], const char *role,
	    const char *nonce_r, const char *nonce_s);

/* seal.c: relay links encrypted once the handshake is done */
struct bufferevent;
/*
 * A filter over under (freed with it) that seals what is written and
 * opens what is read, each direction with its key; a record that does
 * not open is an error event.
 */
struct bufferevent *seal_wrap(struct bufferevent *under,
	    const unsigned char key_out[SEAL_KEY],
	    const unsigned char key_in[SEAL_KEY]);
/*
 * Seal plain[0..len) (at most 64 KiB) as record n into out (len + 20
 * bytes); returns the bytes written. For tests and the fuzz target.
 */
size_t	 seal_record(const unsigned char key[SEAL_KEY], uint64_t n,
	    const void *plain, size_t len, unsigned char *out);

/* ---- Sinks: where records go. */
/* outname.c: file names of outdir.c, rotate.c and meshlogctl (outname.h). */

/* rotate.c */

/* Rotated segments kept when --json-keep is not given. */
#define ROTATE_KEEP_DEFAULT	10
/* Rotate once the log holds max bytes (0: never), keeping keep segments. */
void	rotate_config(off_t max, int keep);
/* Whether a log of size bytes is due for rotation. */
int	rotate_due(off_t size);
/*
 * The log at path becomes segment 1 (older ones move up, the one past
 * the keep goes): 0, or -1 with errno when path could not be renamed.
 */
int	rotate_now(const char *path);
/* Segment 1 is path again: a new log could not be opened. */
void	rotate_undo(const char *path);
/* Compress segment 1 in a child process, at low priority. */
void	rotate_start(const char *path);
/* Reap the compressor if it is done; rotate_finish waits for it. */
void	rotate_poll(void);
void	rotate_finish(void);

/* outdir.c (per-process calls in source.h) */
/*
 * Write per-process text files under path (--output-dir), made 0700 if
 * missing; it must be a directory of this user only. 0, or -1 with an
 * allocated *cause.
 */
int	outdir_open(const char *path, char **cause);

/* keeper.c (and destq.c): its calls and what it shares, in keeper.h. */

/* ---- The flush barrier over its participants. */

/* jsonlog.c */
/* Open path for appending; 0 or -1 with errno (jsonlog_error says why). */
int	jsonlog_open(const char *path);
/* Why the last open failed, errno err then: a refusal's reason, or err's. */
const char *jsonlog_error(int err);
/*
 * Reserve n bytes at the end of the log buffer; commit a line record with
 * jsonlog_commit_counted (keeper.h).
 */
char	*jsonlog_reserve(size_t n);
/* Append an event object (borrowed) as one line. */
void	jsonlog_event(json_t *);
/* Append an event already written as JSON text (n bytes, no newline). */
void	jsonlog_text(const char *s, size_t n);
/* Write the buffer to the kernel. */
void	jsonlog_flush(void);
/* Whether a JSON log is open. */
int	jsonlog_active(void);
/* The errno of a JSON log that cannot be written now, else 0. */
int	jsonlog_failed(void);
/*
 * Write what is buffered to the open log, then go on in path, created
 * anew if it was moved away (the logrotate contract). 0, or -1 with errno
 * set and the old file kept.
 */
int	jsonlog_reopen(const char *path);
/*
 * Flush and close; with sync, wait until the log is on the disk (fsync)
 * first.
 */
void	jsonlog_close(int sync);

/* dest.c */

/*
 * A destination for raw bytes or console lines; never blocks the loop.
 * Program data passes with back-pressure and is never dropped while its
 * reader lives; only console lines (dest_write) may be dropped, counted.
 */
struct dest;

/* What a stream feeding a destination is told: room again, or gone. */
typedef void (*dest_watch_cb)(void *arg, int gone);

/* A stream's link to the destination it feeds; owned by the stream. */
struct dest_watch {
	dest_watch_cb		 cb;
	void			*arg;
	struct dest		*d;
	int			 waiting;
	TAILQ_ENTRY(dest_watch)	 entry;
	TAILQ_ENTRY(dest_watch)	 wentry;
};

/* What dest_pass() did. */
enum dest_rc {
	DEST_OK,	/* *got bytes passed, a copy in buf */
	DEST_EMPTY,	/* the pipe has nothing now */
	DEST_EOF,	/* the pipe's writers are all gone */
	DEST_FULL,	/* the destination cannot take more: wait for cb */
	DEST_GONE,	/* the destination's reader is gone */
	DEST_ERROR	/* reading the pipe failed (errno) */
};

/* Destination for fd (ownership passes); shared when already known. */
struct dest	*dest_get(int fd);
struct stat;
/* The same, for an fd whose fstat(2) is *sb. */
struct dest	*dest_get_stat(int fd, const struct stat *sb);
/* Another reference to d. */
struct dest	*dest_ref(struct dest *d);
/* Drop a reference; what is queued is still written before d closes. */
void		 dest_unref(struct dest *d);
/* Link w to d (NULL: w links nothing): cb hears of room and of d gone. */
void		 dest_watch(struct dest *d, struct dest_watch *w,
		    dest_watch_cb cb, void *arg);
/* Unlink w; safe when it links nothing. */
void		 dest_unwatch(struct dest_watch *w);
/*
 * Where a read is noted for the keeper (struct keeper_reading): the pipe
 * is spliced into fd at its offset, which buf maps, and *passed says what
 * the destination has, or *dest_at where a file's offset was.
 */
struct dest_note {
	int			 fd;
	volatile uint32_t	*passed;
	volatile int64_t	*dest_at;
};
/*
 * Move up to max bytes from the pipe in to d (NULL: only read them), as
 * much as d can take now; the bytes passed are copied into buf for the
 * log, through note when it is not NULL. On DEST_FULL, w's callback runs
 * once d has room.
 */
enum dest_rc	 dest_pass(struct dest *d, struct dest_watch *w, int in,
		    char *buf, size_t max, size_t *got,
		    const struct dest_note *note);
/* Queue n console bytes; dropped (and counted) past the bound or dead. */
void		 dest_write(struct dest *d, const char *p, size_t n);
/*
 * Whether d is the collector's own console; a terminal; a terminal now
 * out of canonical mode (a full-screen program or a line editor holds it).
 */
int		 dest_is_view(struct dest *d);
int		 dest_is_tty(struct dest *d);
int		 dest_is_stream(struct dest *d);
int		 dest_tty_raw(struct dest *d);
/* Mark d as one of the collector's own console outputs. */
void		 dest_set_console(struct dest *d);
/* Whether a destination writes to the file dev/ino; the view's does. */
int		 dest_known(dev_t dev, ino_t ino);
int		 dest_view_at(dev_t dev, ino_t ino);
/* Whether d's reader is gone (its writers are to get EPIPE). */
int		 dest_gone(struct dest *d);
/* The errno that stopped writes to d, or 0. */
int		 dest_error(struct dest *d);
/* The descriptor as received, for the keeper (borrowed). */
int		 dest_fd(struct dest *d);
/* Write what this loop pass queued, without waiting; free unused ones;
 * tell the streams of destinations found gone. */
void		 dest_flush_pending(void);
/* At exit: wait (no longer than stall_ms without progress) until d has
 * room; 0, or -1 when it is gone or stalled. */
int		 dest_wait_room(struct dest *d, int stall_ms);
/* Write what is queued, giving up on one after stall_ms without progress;
 * at exit. */
void		 dest_drain_all(int stall_ms);

/* Who a console line comes from. */
struct origin {
	uint64_t	 id;		/* source */
	long		 rank;		/* -1 when none */
	long		 pid;
	const char	*prefix;	/* "[rank 3] " */
	long		 world;		/* world size, -1 when not known */
};

/* aggregate.c */
/* Prints a line or a group: stream, prefix, text and SPLIT_* flags. */
typedef void (*aggregate_print_cb)(int which, const char *prefix,
	    const char *line, size_t len, int flags, uint64_t us);
/* Where groups are printed: single lines, and groups (NULL: dropped). */
void	aggregate_set_output(aggregate_print_cb line, aggregate_print_cb group);
/* Take a console line: it waits at most the window for similar lines of
 * other sources; returns the id of its group, 0 for a line of a block. */
uint64_t aggregate_line(int which, const struct origin *o, const char *line,
	    size_t len, int flags, const struct shape *sh, uint64_t us);
/* Print n lines of n sources at once, as a group reads (text[i] said by
 * o[i]): cb runs for each line printed. Nothing waits. */
void	aggregate_render(int which, const struct origin *o,
	    const char *const *text, const size_t *len, size_t n,
	    aggregate_print_cb cb);
/* Print the groups and blocks whose time has come (the timer's work). */
void	aggregate_tick(void);
/* Print every waiting group and open block now. */
void	aggregate_flush(void);
/* Source id's pipes are closed: its open tracebacks are whole. */
void	aggregate_source_ended(uint64_t id);
/* Print what waits up to source id's last lines (before news of it). */
void	aggregate_flush_source(uint64_t id);
/* Seconds the news of source id's end waits: until what the view holds
 * of it is due, and tracebacks of its kind (ranked) being written are
 * whole; 0. */
double	aggregate_news_in(uint64_t id, int ranked);
/* Set the window, the longest a line waits, in seconds (0: no timer,
 * lines wait for aggregate_flush), printing what waits first. */
void	aggregate_set_window(double secs);
/*
 * A process of rank began (delta 1) or ended (-1): a group's line names
 * the ranks that did not say it ("(not: 7)") among those not yet started
 * or running, not those whose processes have all ended.
 */
void	aggregate_rank_process(long rank, int delta);
/* Take the time from clock instead of the event loop (tests). */
void	aggregate_set_clock(double (*clock)(void));
/* The current window in seconds, 0 when off. */
double	aggregate_window(void);
/* Lines taken, groups printed, groups pending. */
void	aggregate_stats(uint64_t *lines, uint64_t *printed, size_t *pending);

/* console.c */
#define CONSOLE_TS_NONE		0
#define CONSOLE_TS_WALL		1	/* local time, 13:40:17.514 */
#define CONSOLE_TS_ELAPSED	2	/* since the collector started */
/* The console view's live mode: set at start, then by set_mode. */
struct console_mode {
	int		 on;		/* the view is shown */
	double		 window;	/* aggregation window, s; 0 = off */
	int		 level;		/* lines below it are not shown; 0 = all */
	long		*ranks;		/* only these ranks are shown (sorted;
					 * processes without a rank always) */
	size_t		 nranks;	/* 0: every rank */
};
/* Set up the console outputs on the collector's own fds 1 and 2. */
void	console_open(void);
/* The live mode (ranks borrowed until the next change). */
const struct console_mode *console_mode(void);
/* Change the live mode (ranks copied); what the aggregator holds is
 * printed first when the view goes off or the window changes. */
void	console_set_mode(const struct console_mode *);
/* Show one record of a stream the route sends here (source.c's
 * record_route), sh its shape: level filter, then aggregation or
 * straight out. */
void	console_record(int which, const struct origin *o, const char *line,
	    size_t len, int flags, const struct shape *sh, uint64_t us);
/* A progress state of o, if its rank is shown: on a terminal, into the
 * live line drawn below the log; elsewhere a line. */
void	console_live(int which, const struct origin *o, const char *line,
	    size_t len);
/* Show a line o left unfinished (a prompt), without its end, what
 * waits in the aggregator first. */
void	console_partial(int which, const struct origin *o, const char *text,
	    size_t len);
/* The rest of that line, now finished: at once, on the same screen line
 * when nothing came between. */
void	console_rest(int which, const struct origin *o, const char *text,
	    size_t len, int flags, uint64_t us);
/* Erase the live line and forget the bars; at exit. */
void	console_live_stop(void);
/* Raw bytes went to the view's terminal, ending mid-line or not. */
void	console_raw_passed(int which, const char *prefix, int mid);
/* Print one line with its prefix on the console view; us, when not 0,
 * the time it was read (--timestamps). */
void	console_line(int which, const char *prefix, const char *line,
	    size_t len, int flags, uint64_t us);
/* Print an aggregated group: prefix highlighted on a terminal. */
void	console_group(int which, const char *prefix, const char *line,
	    size_t len, int flags, uint64_t us);
/* Say text at once on the console's stderr (red on a terminal), before
 * what the aggregator holds; 0 when the view is off. */
int	console_alert(const char *text);
/* Whether the console's stderr is a terminal (and the view is on). */
int	console_colour(void);
/* Write lines of text as they are to the console's stderr, if on. */
void	console_text(const char *text);
/* Lines the level filter kept from the console. */
uint64_t console_filtered(void);

/* summary.c: the job's account at its end; see summary.h. */
#include "summary.h"

/* upstream.c: this collector as a relay */
/* Check and keep the upstream URL; 0, or -1 with an allocated *cause. */
int	 upstream_parse(const char *url, char **cause);
/*
 * Start connecting; the spool takes records from now on. The upstream's
 * requests (flush, set_mode) are answered by dispatch.
 */
void	 upstream_start(dispatch_fn dispatch);
/* Whether this collector forwards upstream. */
int	 upstream_active(void);
/* Queue a record (line borrowed) for the upstream. */
void	 upstream_record(uint64_t source, int which, int flags, uint64_t seq,
	    uint64_t ts_us, const char *line, size_t len);
/* Queue a source event (borrowed) for the upstream. */
void	 upstream_event(json_t *o);
/* The same, already written as JSON text of n bytes. */
void	 upstream_event_text(const char *s, size_t n);
/* Seal what this loop pass queued and start sending it. */
void	 upstream_flush_pending(void);
/* Whether everything queued has been acknowledged. */
int	 upstream_idle(void);
/* Wait up to ms for the upstream to take the spool, then say bye. */
void	 upstream_finish(int ms);
/* The link's state and spool (new reference; null without upstream). */
json_t	*upstream_status(void);

/* flush.c: the flush barrier over sources and relays */
enum flush_kind { FLUSH_SOURCE, FLUSH_RELAY };
struct flush_part;
struct flush_ops {
	/*
	 * Drain everything written before version within timeout_ms: 0 when
	 * done now, 1 when the answer comes later (flush_ack), -1 when the
	 * participant is gone. It may leave (and be freed) meanwhile.
	 */
	int	 (*drain)(struct flush_part *, uint64_t version, int timeout_ms);
	/* Who it is, for a flush's "incomplete" list (new reference). */
	json_t	*(*describe)(struct flush_part *);
};
/* A participant, kept inside what it stands for. */
struct flush_part {
	uint64_t		 id;		/* given by flush_join */
	enum flush_kind		 kind;
	const struct flush_ops	*ops;
	void			*arg;		/* the owner's */
	int			 joined;
	RB_ENTRY(flush_part)	 entry;
};
/* Take part in every flush from the next one on. */
void	 flush_join(struct flush_part *, enum flush_kind,
	    const struct flush_ops *, void *arg);
/* Nothing left to drain: holds back no flush; idempotent. */
void	 flush_leave(struct flush_part *);
/* Everything written before version is drained (an answer from later). */
void	 flush_ack(struct flush_part *, uint64_t version);
/* Back after a lost link: asked again for the barriers it holds back. */
void	 flush_rejoin(struct flush_part *);
/* Start a barrier over every participant; cb gets the reply when all have
 * drained or timeout_ms has passed. */
void	 flush_start(int timeout_ms, reply_cb cb, void *arg);
/* Run a barrier to its end; the reply (new reference). */
json_t	*flush_run(int timeout_ms);
/* The last version given out. */
uint64_t flush_last_version(void);

/* ---- Sources: local (with forked.c), relayed, and their runtimes. */

/* source.c */

struct source;

/*
 * Columns the console's prefix takes on stream which of src when
 * the console shows it instead of its raw bytes, else 0: a program that
 * asks its terminal's width is told that much less (its bars then fit).
 */
size_t	source_console_margin(const struct source *src, int which);

/*
 * Register a source from a parsed hello and its descriptors (read end and
 * original per stream, in hello order; ownership passes) in two steps, so
 * that the process waits only for the first: source_prepare checks and
 * routes them (the source, its id in *id; or NULL with an allocated reason
 * in *cause, the descriptors then still the caller's); source_start reads
 * its pipes and tells the keeper and the log, and returns its id.
 */
struct source *source_prepare(struct hello *h, int *fds, int nfds,
	    uint64_t *id, char **cause);
uint64_t source_start(struct source *src, struct hello *h);
/*
 * Register forked child pid of a source: fds are the read ends of its new
 * pipes (ownership passes), dev/ino[i] the parent's pipe fds[i] takes over
 * from, held[i] what it held unread at the fork (-1: not known). Returns
 * the new source's id, or 0 with an allocated reason in *cause.
 */
uint64_t source_fork(long pid, const dev_t *dev, const ino_t *ino,
	    const long *held, int *fds, int nfds, char **cause);
/*
 * Take a process back from the keeper of a collector that died on this
 * socket (a "handover" message o, borrowed): fds by its "fds" mask
 * (ownership passes; all are closed when it is refused). What the keeper
 * copied meanwhile is logged, not written again. Returns the new source's
 * id, or 0 with an allocated reason in *cause.
 */
uint64_t source_handover(json_t *o, int *fds, int nfds, char **cause);
/*
 * How sources ask for forked children's queued registrations (of process
 * pid; every process's when pid < 0): before a capture pipe is looked up
 * and not found, before a pipe closes at end of file, and (those waiting
 * for the batch) before a parent's pipe is read: server_read_families.
 */
void	 source_on_pending_forks(int (*fn)(long pid, int waiting));
/* Read every pipe until it would block; at exit. */
void	 source_drain_all(void);
/* Why a source closed: the JSON log's source_closed "reason". */
enum close_reason {
	CLOSE_EOF,		/* every writer of its pipes is gone */
	CLOSE_READER_GONE,	/* its destination's reader left */
	CLOSE_COLLECTOR_EXIT,
	CLOSE_RELAY_LOST,	/* its relay was away past its link timeout */
	CLOSE_RELAYED		/* its relay's own source_closed says */
};
/* The reason as the JSON log writes it. */
const char *close_reason_name(enum close_reason);
/* Emit what is buffered and close every source; at exit. */
void	 source_close_all(enum close_reason);
/* Write the source_closed of every source still waiting for its
 * process's status; at exit, after source_close_all. */
void	 ending_close_all(void);
/*
 * Process pid was reaped with wait status status by its parent (a
 * registered process; 0: this collector, for the launched command).
 */
void	 source_reaped(long parent, long pid, int status);
/* Number of open local sources. */
unsigned source_count(void);

/*
 * Read every byte the writers of the pipe dev/ino had written when called
 * (what FIONREAD counts), not what comes later; -1 when no stream has it.
 */
int	 source_drain_pipe(dev_t dev, ino_t ino);
/* Then sync its destination (fdatasync when data): 0 or the errno. */
int	 source_sync_pipe(dev_t dev, ino_t ino, int data);
/* Every open local source with its counters (new reference). */
json_t	*source_status_all(void);

/* remote.c: the sources relays forward */
/* A relay's source event (borrowed, rewritten): open, closed, dropped. */
void	 source_remote_event(uint64_t link, json_t *o);
/* A relay's record for one of its sources. */
void	 source_remote_record(uint64_t link, const struct wire_rec *r);
/* Open sources that came through relay link. */
int	 source_count_link(uint64_t link);
/* Open sources that came through relays. */
unsigned source_remote_count(void);
/* Append every relayed source's status to the array all. */
void	 source_remote_status(json_t *all);
/* Start watching for silent ranks, local and relayed (--stall). */
void	 source_remote_stall_start(void);
/* Stop watching; at exit. */
void	 stall_stop_all(void);
/* The summary of the job so far, local and relayed sources (new
 * reference; see summary.c). */
json_t	*source_summary(void);
/* Relay link is lost: close its sources, remembered for a resume. */
void	 source_remote_lost(uint64_t link);
/* Relay link is back: open again the sources closed when it was lost. */
void	 source_remote_resume(uint64_t link);
/* Close every relayed source; at exit, before source_close_all. */
void	 source_remote_close_all(enum close_reason);
/* Records that named a source no relay had opened. */
uint64_t source_remote_unknown(void);

/* runtime.c */
/* Tell the processes' runtimes the new level (rank subset when n > 0). */
void	 runtime_push_level(int level, const long *ranks, size_t n);
/* Remove the level file at exit. */
void	 runtime_cleanup(void);
/*
 * Send sig to the local processes whose rank is in ranks (all when n is
 * 0) and whose runtime asked for level signals; returns how many.
 */
size_t	 source_signal_runtimes(const long *ranks, size_t n, int sig);
/*
 * The local process pid now runs a level runtime (on) or none: it is
 * signalled on level changes, or no longer. Called while pid waits for the
 * answer, so it is alive and a pidfd names it. 0, or -1 when pid has no
 * open source.
 */
int	 source_set_runtime(long pid, int on);
/* After an exec in the same pid, the local process pid runs argv
 * (borrowed): its records and its ending name that program. */
void	 source_exec(long pid, json_t *argv, int truncated);
/* The local rankless process pid joined a process group: msg says its
 * rank and world_size (sourcelog.c). */
void	 source_rank(long pid, json_t *msg);

/* ---- Transports that bring sources and requests. */

/* server.c */
/* Create the listening socket at path, requests answered by dispatch;
 * exits on error. */
void	server_open(const char *path, dispatch_fn dispatch);
/* Remove the socket file and stop listening. */
void	server_close(void);
/* Open connections on the control socket. */
unsigned server_peer_count(void);
/* Accept and answer whatever is pending, without waiting; at exit. */
void	server_poll_pending(void);
/* Read the family connections of process pid (every one when pid < 0;
 * with waiting, those waiting for the batch): register their children.
 * 0 when there was nothing to read. */
int	server_read_families(long pid, int waiting);

/* link.c: relays connected to this collector */
/* Listen for relays on ADDR:PORT; exits on error. */
void	 link_listen(const char *spec);
struct sockaddr;
/*
 * Take a relay's connection on fd (its address sa, for messages): it has
 * hello_timeout to prove the token. The fuzz target feeds links this way.
 */
void	 link_adopt(int fd, const struct sockaddr *sa);
/* Close every link and forget the relays; at exit. */
void	 link_close_all(void);
/* Send a control message (borrowed) to every connected relay, and to
 * each relay that connects later (the last message only). */
void	 link_broadcast(json_t *msg);
/* Open relay connections. */
unsigned link_count(void);
/* Every relay known, with counters (new reference). */
json_t	*link_status_all(void);

/* ---- Control requests. */

/* control.c */
/* Longest flush a request may ask for, in ms (an hour). */
#define FLUSH_TIMEOUT_MAX_MS	(3600 * 1000)
/* Note the start time, for status; call once at start. */
void	 control_init(void);
/*
 * Answer one control request (borrowed) with a reply (new reference), or
 * return NULL and call cb with it later (flush; cb may run before return).
 */
json_t	*control_dispatch(json_t *req, reply_cb cb, void *arg);
/* Parse a level name or number; -1 when invalid. */
int	 control_parse_level(json_t *v);

/* ---- The program. */

/* launch.c: see launch.h. */

#endif
