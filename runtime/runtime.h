/*
 * The wire protocol shared by the shim and the collector, and the identity
 * a process reports when it registers. Everything here is library code that
 * runs inside host processes: no allocation, no exit, no stdio, errno kept
 * only where a comment says so.
 */
#ifndef MESHLOG_RUNTIME_H
#define MESHLOG_RUNTIME_H

#include <sys/stat.h>
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

/* Protocol version carried in hello and welcome. */
#define MESHLOG_PROTO		2
/* Longest control message, one JSON line, in bytes: room for a hello
 * whose argv (MESHLOG_ARGV_MAX) is escaped at its worst, six to one. */
#define MESHLOG_MSG_MAX		32768
/* Descriptors a hello carries at most: read end and original per stream. */
#define MESHLOG_HELLO_FDS	4
/* Descriptors any message carries at most: a keeper's handover adds a
 * process's pidfd, the bytes it copied while no collector ran and the
 * word that says who has the process (keeper.h). */
#define MESHLOG_FDS_MAX		7
/* Longest argv a hello reports, in bytes; longer is cut and marked. */
#define MESHLOG_ARGV_MAX	4096

/* Environment names the shim reads and sets. */
#define MESHLOG_ENV_SOCKET	"MESHLOG_SOCKET"
#define MESHLOG_ENV_STREAM	"MESHLOG_STREAM"
#define MESHLOG_ENV_OWNER	"MESHLOG_OWNER"

/* Stream numbers; index into hello's stream arrays. */
#define MESHLOG_STDOUT		0
#define MESHLOG_STDERR		1

/* jw.c */

/* A JSON writer over a caller-owned buffer; never allocates. */
struct jw {
	char	*buf;
	size_t	 cap;
	size_t	 len;
	int	 overflow;	/* set once anything did not fit */
};

/* Bytes json_escape() may write for n input bytes, at most. */
#define JSON_ESCAPE_MAX(n)	((n) * 6)

/*
 * Write the JSON string body (no quotes) for n bytes of src into dst, which
 * must hold JSON_ESCAPE_MAX(n) bytes. Invalid UTF-8 becomes U+FFFD, one per
 * bad byte; control characters, DEL, '"' and '\\' are escaped. Returns the
 * number of bytes written.
 */
size_t	json_escape(char *dst, const char *src, size_t n);
/* Length of the valid UTF-8 sequence (2-4 bytes) at s, n left, or 0. */
size_t	utf8_valid(const unsigned char *s, size_t n);
/*
 * Copy the UTF-8 sequence at s (n bytes left, s[0] from 0x80) to *d and
 * advance *d, writing U+FFFD instead of a byte that starts no valid
 * sequence; returns the bytes of s used.
 */
size_t	utf8_copy(char **d, const unsigned char *s, size_t n);

/*
 * Whether all eight bytes of w (read from memory in any order) are
 * printable ASCII, 0x20 to 0x7e. The test may flag a fine byte next to
 * one that is not; callers then take the byte-by-byte path.
 */
static inline int
ascii_printable8(uint64_t w)
{
	const uint64_t	ones = 0x0101010101010101ULL;
	const uint64_t	high = 0x8080808080808080ULL;

	return (((w - ones * 0x20) & ~w & high) == 0 &&
	    ((w | (w + ones)) & high) == 0);
}
/* Start writing into buf of cap bytes; the result is NUL-terminated. */
void	jw_init(struct jw *, char *buf, size_t cap);
/* Append n raw bytes. */
void	jw_raw(struct jw *, const char *, size_t);
/* Append a NUL-terminated raw string (inline: a literal's length is
 * known when compiled). */
static inline void
jw_lit(struct jw *w, const char *s)
{
	jw_raw(w, s, __builtin_strlen(s));
}
/* Append a quoted, escaped JSON string of n bytes. */
void	jw_str(struct jw *, const char *, size_t);
/* Append a signed decimal integer. */
void	jw_int(struct jw *, long long);
/* v in decimal, ending at end (FMT_INT_LEN bytes are enough): its
 * first byte. snprintf's "%lld" costs ten times as much. */
#define FMT_INT_LEN	24
char	*fmt_int(char *end, long long v);
/* Append an integer, or null when v is negative. */
void	jw_int_or_null(struct jw *, long long v);

/* fdpass.c */

/*
 * Write all of buf[0..len) to a blocking fd, again after EINTR. 0, or -1
 * with errno (EIO when the fd took nothing).
 */
int	fd_write_all(int fd, const void *buf, size_t len);
/*
 * Send len bytes with nfds descriptors attached (SCM_RIGHTS), without
 * SIGPIPE. Returns bytes sent or -1 with errno set.
 */
ssize_t	fd_send(int sock, const void *buf, size_t len, const int *fds,
	    int nfds);
/* The same with more sendmsg flags (MSG_DONTWAIT). */
ssize_t	fd_send_flags(int sock, const void *buf, size_t len, const int *fds,
	    int nfds, int flags);
/*
 * Receive up to len bytes and up to maxfds descriptors (close-on-exec).
 * Descriptors beyond maxfds, or any when the control data was cut, are
 * closed and the call fails with EBADMSG. On success *nfds holds the count
 * received, owned by the caller. Returns bytes read, 0 at EOF, -1 on error.
 */
ssize_t	fd_recv(int sock, void *buf, size_t len, int *fds, int *nfds,
	    int maxfds);
/*
 * The same, and *pid the sender's pid as the kernel gave it
 * (SCM_CREDENTIALS, with SO_PASSCRED on sock), -1 when none came.
 */
ssize_t	fd_recv_cred(int sock, void *buf, size_t len, int *fds, int *nfds,
	    int maxfds, long *pid);

/*
 * Whether sb is a directory of this (effective) user that no one else may
 * write to, so that no one else can plant or replace an entry in it: the
 * rule for every directory meshlog makes a file in.
 */
static inline int
dir_is_mine(const struct stat *sb)
{
	return (S_ISDIR(sb->st_mode) && sb->st_uid == geteuid() &&
	    (sb->st_mode & 022) == 0);
}

/* ident.c */

/* Rank fields found in the environment; -1 where none. */
struct ident_rank {
	long		 rank;
	long		 local_rank;
	long		 world_size;
	const char	*rank_var;	/* the variable rank came from, or NULL */
};

/* The dev:ino of each managed stream, as MESHLOG_STREAM carries it. */
struct ident_streams {
	int			present[2];
	unsigned long long	dev[2];
	unsigned long long	ino[2];
};

/* Value of name in envp (borrowed), or NULL. */
const char *ident_env(char *const *envp, const char *name);
/*
 * Parse a non-negative decimal that fits in an int, with nothing around it.
 * Returns 0 and sets *out, or -1.
 */
int	ident_parse_uint(const char *s, long *out);
/* Fill r from the launcher variables in envp; MESHLOG_RANK wins. */
void	ident_ranks(char *const *envp, struct ident_rank *r);
/*
 * Parse "dev:ino,dev:ino" (either item may be empty). Returns 0, or -1 when
 * the text is malformed (s is then to be ignored).
 */
int	ident_parse_streams(const char *s, struct ident_streams *);
/* Format st as MESHLOG_STREAM's value into buf of len bytes; 0 or -1. */
int	ident_format_streams(const struct ident_streams *, char *buf,
	    size_t len);
/*
 * The collector's socket for a process: MESHLOG_SOCKET, else
 * $XDG_RUNTIME_DIR/meshlog/collector.sock, else
 * /tmp/meshlog-$UID/collector.sock. Returns 0, or -1 when it does not fit.
 */
int	ident_socket_path(char *const *envp, char *buf, size_t len);
/*
 * Parse MESHLOG_OWNER "pid:bits" or "pid:bits:tty1:tty2"; 0 or -1. Bits 0
 * and 1: stdout's and stderr's original destination is a terminal; bits 2
 * and 3: a regular file; bit 4 (MESHLOG_OWNER_LINEBUF): stdout is a log
 * and is line-buffered (see shim_buffering); bit 5
 * (MESHLOG_OWNER_RUNTIME): a level runtime asked for SIGURG. tty1/tty2 are those terminals' device numbers
 * (0: unknown); tty (may be NULL) receives them.
 */
int	ident_parse_owner(const char *s, long *pid, long *bits, long tty[2]);
#define MESHLOG_OWNER_LINEBUF	16
#define MESHLOG_OWNER_RUNTIME	32	/* the hello asked for SIGURG */

/* elfsym.c */
/*
 * Whether an object loaded in this process defines name (any version),
 * found in the objects' hash tables: unlike dlsym(3), an absent name
 * leaves no error for dlerror(3) and allocates nothing.
 */
int	elfsym_loaded(const char *name);

/* clock.c */
/* Milliseconds on the monotonic clock, for timeouts and deadlines. */
long long clock_now_ms(void);

/* level.c */

/*
 * Parse the collector's level file text for a process of this rank (-1:
 * none). Returns the Python level (0..50) and sets *version; -2 when the
 * level is for other ranks; -1 when the text is malformed.
 */
long	level_parse(const char *text, long rank, unsigned long *version);
/* A level from its name (any case) or a number 0-50; -1 when invalid. */
long	level_by_name(const char *s);
/* The setlogmask(3) mask that lets through a Python level and above. */
int	level_syslog_mask(long level);

#endif
