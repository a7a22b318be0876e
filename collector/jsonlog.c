/*
 * The JSON Lines log: records collect in one buffer that is written to the
 * kernel at the end of every event-loop pass (and when it grows large), so
 * a burst costs few writes and a quiet line waits for no timer.
 *
 * A log that cannot be written (a full disk) loses nothing silently: what
 * was not written stays in the buffer, up to JSONLOG_KEEP, and is retried
 * every pass and every JSONLOG_RETRY_MS; records past that bound are
 * counted, and once the buffer is through a "dropped" record says how many
 * lines and bytes never reached the log. A record half written stays half
 * written only until the retry completes it; a log closed while failing is
 * cut back to its last whole record. Flushes answer "incomplete" meanwhile.
 *
 * A collector killed at once (SIGKILL, the OOM killer) leaves nothing
 * unwritten either: the buffer lives in a memfd shared with the keeper,
 * whose head says which committed records are not yet in the file
 * (struct jsonlog_shared), and the keeper writes those when the collector
 * is gone. A record is committed whole, so the keeper never writes a torn
 * one; the file's size tells it whether the last write got through.
 */

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "collector.h"
#include "keeper.h"
#include "outname.h"

/* Write out once this much is buffered, even within a pass. */
#define JSONLOG_HIGH	(256 * 1024)
/* Room an event is first dumped into: a source_open with a long argv fits. */
#define JSONLOG_EVENT_GUESS	4096

/* What a failing log may keep in memory for it; past this, records count. */
#define JSONLOG_KEEP		(16 * 1024 * 1024)
/* How often a failing log is tried again when nothing else happens. */
#define JSONLOG_RETRY_MS	500
/* How often a log that goes on failing says so again. */
#define JSONLOG_WARN_MS		30000

static int	 jsonlog_fd = -1;
static char	*jbuf;
static size_t	 jlen, jcap;
static int	 jmfd = -1;	/* the buffer's memfd, or -1: on the heap */
static volatile struct jsonlog_shared *jsh;	/* its head, in the memfd */
static off_t	 jsize;		/* bytes in the file */
static off_t	 jwhole;	/* of them, up to the last whole record */
static size_t	 jpart;		/* the buffer's first bytes already there */
static int	 jerr;		/* errno of the failing write; 0: writable */
static int	 jdropping;	/* past JSONLOG_KEEP: records are counted */
static int	 jclosing;	/* the last flush: no rotation now */
static uint64_t	 jdrop_lines, jdrop_events, jdrop_bytes;
static char	 jdrop_since[TS_LEN];
static struct event	*jretry;
static long long	 jwarned;	/* last warning, monotonic ms */

static char	*jpath;		/* as opened, for rotation */
static long long jsegment;	/* rotations the log went through */

static void	jsonlog_retry_cb(int, short, void *);
static void	jsonlog_share(void);
static long long jsonlog_segment_of(const char *);

static char	 jwhy[320];	/* why the last open was refused, or "" */

/* Open path for appending and learn where its whole records end. */
static int
jsonlog_open_file(const char *path)
{
	struct stat	 sb;
	char		 name[NAME_MAX + 1], *cause;
	int		 dfd, fd;

	jwhy[0] = '\0';
	/* Nor through a link someone else planted on the way. */
	if ((dfd = path_parent_open(path, name, sizeof name, &cause)) ==
	    -1) {
		if (cause != NULL)
			strlcpy(jwhy, cause, sizeof jwhy);
		free(cause);
		return (-1);
	}
	/*
	 * Every line of the job, secrets printed by mistake included: made
	 * readable by this user only (an existing file keeps its mode), and
	 * never through a link someone else may have planted.
	 */
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1 && fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(sb.st_mode))
		errno = ELOOP;
	close(dfd);
	if (fd == -1)
		return (-1);
	/*
	 * Nor into a file or FIFO someone else made for it (in /tmp, to
	 * read the log), nor through a hard link to another file (to spoil
	 * it). A character device (/dev/null) no one else can make.
	 */
	if (fstat(fd, &sb) != 0) {
		close(fd);
		return (-1);
	}
	if (!S_ISCHR(sb.st_mode) && (!(S_ISREG(sb.st_mode) ||
	    S_ISFIFO(sb.st_mode)) || sb.st_uid != geteuid() ||
	    sb.st_nlink != 1)) {
		if (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode))
			snprintf(jwhy, sizeof jwhy, "not a file, FIFO or "
			    "character device");
		else if (sb.st_uid != geteuid())
			snprintf(jwhy, sizeof jwhy, "it belongs to uid %lu, "
			    "not to this user (uid %lu): refusing to write "
			    "the log into it", (unsigned long)sb.st_uid,
			    (unsigned long)geteuid());
		else
			snprintf(jwhy, sizeof jwhy, "it has %lu names (hard "
			    "links): refusing to write the log into it",
			    (unsigned long)sb.st_nlink);
		close(fd);
		errno = EPERM;
		return (-1);
	}
	jsize = jwhole = sb.st_size;
	return (fd);
}

const char *
jsonlog_error(int err)
{
	if (jwhy[0] != '\0')
		return (jwhy);
	if (err == ELOOP)
		return ("it is a symbolic link, which is not followed");
	return (strerror(err));
}

/*
 * Cut the file back to its last whole record: what was half written when
 * the log is closed or left while failing. The rest is counted as never
 * written.
 */
static void
jsonlog_cut(void)
{
	if (jsize == jwhole)
		return;
	/* The record's start is still in the buffer: it is written whole. */
	if (ftruncate(jsonlog_fd, jwhole) == 0) {
		jsize = jwhole;
		jpart = 0;
		jsonlog_share();
	} else
		log_warn("JSON log: cannot cut a half-written record: %s",
		    strerror(errno));
}

/* Say how much the log never got, at close or when the file changes. */
static void
jsonlog_lost(const char *when)
{
	if (jlen == 0 && jdrop_lines == 0 && jdrop_events == 0)
		return;
	log_warn("JSON log %s while failing (%s): %zu bytes kept and %llu "
	    "lines and %llu events (%llu bytes) counted were never written to "
	    "it", when, strerror(jerr), jlen - jpart,
	    (unsigned long long)jdrop_lines, (unsigned long long)jdrop_events,
	    (unsigned long long)jdrop_bytes);
}

/*
 * Make the buffer hold cap bytes, keeping its contents: in the shared
 * memfd when there is one (its head before the bytes), else on the heap.
 */
static void
jsonlog_grow(size_t cap)
{
	void	*m, *old = jsh != NULL ? (void *)jsh : NULL;
	size_t	 oldsz = JSONLOG_SHARED_HEAD + jcap;
	size_t	 sz = JSONLOG_SHARED_HEAD + cap;

	if (jmfd == -1) {
		jbuf = xrealloc(jbuf, cap);
		jcap = cap;
		return;
	}
	if (ftruncate(jmfd, (off_t)sz) != 0)
		fatal("JSON log buffer");
	m = old == NULL ? mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED,
	    jmfd, 0) : mremap(old, oldsz, sz, MREMAP_MAYMOVE);
	if (m == MAP_FAILED)
		fatal("JSON log buffer");
	jsh = m;
	jsh->cap = cap;
	jbuf = (char *)m + JSONLOG_SHARED_HEAD;
	jcap = cap;
}

/*
 * Say in the shared head what the keeper would write if the collector
 * died now: records [f - base, len) of the buffer, f being the file's
 * size then. Within a flush base stays true (file and buffer offset move
 * together); it changes only with the buffer's layout or the file, and
 * len is 0 meanwhile, so a death between two stores never makes the
 * keeper write a record twice or skip one.
 */
static void
jsonlog_share(void)
{
	if (jsh == NULL)
		return;
	jsh->len = 0;
	jsh->base = (int64_t)jsize - (int64_t)jpart;
	jsh->len = jlen;
}

int
jsonlog_open(const char *path)
{
	if ((jsonlog_fd = jsonlog_open_file(path)) == -1)
		return (-1);
	jpath = xstrdup(path);
	/* Appending to a rotated log: its numbering goes on. */
	jsegment = jsonlog_segment_of(path);
	jmfd = memfd_create("meshlog-jsonlog", MFD_CLOEXEC);
	jsonlog_grow(2 * JSONLOG_HIGH);
	jsonlog_share();
	keeper_log(jsonlog_fd, jmfd);
	return (0);
}

int
jsonlog_reopen(const char *path)
{
	int	fd;

	if (jsonlog_fd == -1)
		return (0);
	/* What the old file was promised goes there first. */
	jsonlog_flush();
	if (jerr != 0)
		jsonlog_cut();
	if ((fd = jsonlog_open_file(path)) == -1)
		return (-1);
	close(jsonlog_fd);
	jsonlog_fd = fd;
	jsonlog_share();
	keeper_log(jsonlog_fd, jmfd);
	free(jpath);
	jpath = xstrdup(path);
	/* What the old file did not take goes to the new one. */
	return (0);
}

int
jsonlog_active(void)
{
	return (jsonlog_fd != -1);
}

char *
jsonlog_reserve(size_t n)
{
	if (jlen >= JSONLOG_HIGH && jerr == 0)
		jsonlog_flush();
	if (n > jcap - jlen)
		jsonlog_grow(jlen + n + JSONLOG_HIGH);
	return (jbuf + jlen);
}

/*
 * Keep n bytes just written at the end of the buffer (lines: the line
 * records among them), unless the log is failing and holds JSONLOG_KEEP
 * already: then count them.
 */
static void
jsonlog_keep(size_t n, size_t lines)
{
	struct timespec	now;

	if (jerr != 0 && !jdropping && jlen + n > JSONLOG_KEEP) {
		jdropping = 1;
		clock_gettime(CLOCK_REALTIME, &now);
		record_ts(jdrop_since, &now);
	}
	if (!jdropping) {
		jlen += n;
		if (jsh != NULL) {
			/* The record's bytes are there before it counts. */
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			jsh->len = jlen;
		}
		return;
	}
	if (lines > 0)
		jdrop_lines += lines;
	else
		jdrop_events++;
	jdrop_bytes += n;
}

char *
jsonlog_room(size_t pending, size_t n)
{
	if (pending + n > jcap - jlen)
		jsonlog_grow(jlen + pending + n + JSONLOG_HIGH);
	return (jbuf + jlen + pending);
}

void
jsonlog_commit_run(size_t n, size_t k, struct keeper_slot *slot)
{
	volatile struct keeper_slot	*sl = slot;

	if (sl == NULL)
		jsonlog_keep(n, k);
	else {
		/* A kill between two of these leaves the keeper able to
		 * tell. */
		sl->pend_len = jlen + n;
		sl->pend_done = sl->done + k;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		jsonlog_keep(n, k);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		sl->done += k;
	}
	if (jlen >= JSONLOG_HIGH && jerr == 0)
		jsonlog_flush();
}

void
jsonlog_commit_counted(size_t n, struct keeper_slot *slot)
{
	jsonlog_commit_run(n, 1, slot);
}

void
jsonlog_event(json_t *o)
{
	char	*p;
	size_t	 n;

	if (jsonlog_fd == -1)
		return;
	/* Once into room that fits nearly every event; twice otherwise. */
	p = jsonlog_reserve(JSONLOG_EVENT_GUESS);
	if ((n = json_dumpb(o, p, JSONLOG_EVENT_GUESS, JSON_COMPACT)) >=
	    JSONLOG_EVENT_GUESS) {
		p = jsonlog_reserve(n + 1);
		json_dumpb(o, p, n, JSON_COMPACT);
	}
	p[n] = '\n';
	jsonlog_keep(n + 1, 0);
}

void
jsonlog_text(const char *s, size_t n)
{
	char	*p;

	if (jsonlog_fd == -1)
		return;
	p = jsonlog_reserve(n + 1);
	memcpy(p, s, n);
	p[n] = '\n';
	jsonlog_keep(n + 1, 0);
}

/* The log took everything again: say what it missed, in its place. */
static void
jsonlog_recovered(void)
{
	char		 buf[256];
	struct jw	 w;
	struct timespec	 now;
	char		 ts[TS_LEN];
	int		 was = jerr;

	jerr = 0;
	if (jretry != NULL)
		evtimer_del(jretry);
	if (!jdropping) {
		log_warn("JSON log writable again: nothing was lost");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	jw_init(&w, buf, sizeof buf);
	jw_lit(&w, "{\"ts\":\"");
	jw_lit(&w, ts);
	jw_lit(&w, "\",\"event\":\"dropped\",\"what\":\"log\",\"since\":\"");
	jw_lit(&w, jdrop_since);
	jw_lit(&w, "\",\"lines\":");
	jw_int(&w, (long long)jdrop_lines);
	jw_lit(&w, ",\"events\":");
	jw_int(&w, (long long)jdrop_events);
	jw_lit(&w, ",\"bytes\":");
	jw_int(&w, (long long)jdrop_bytes);
	jw_lit(&w, ",\"error\":");
	jw_str(&w, strerror(was), strlen(strerror(was)));
	jw_lit(&w, "}");
	log_warn("JSON log writable again: %llu lines and %llu events (%llu "
	    "bytes) since %s could not be kept and are counted in a dropped "
	    "record", (unsigned long long)jdrop_lines,
	    (unsigned long long)jdrop_events, (unsigned long long)jdrop_bytes,
	    jdrop_since);
	jdropping = 0;
	jdrop_lines = jdrop_events = jdrop_bytes = 0;
	jsonlog_text(w.buf, w.len);
}

/* A failing log: try again soon even if nothing else happens. */
static void
jsonlog_failing(int err, size_t left)
{
	struct timeval	tv = { 0, JSONLOG_RETRY_MS * 1000 };

	/* Said when it starts, then again with the counts now and then. */
	if (jerr == 0 || err != jerr || clock_now_ms() - jwarned >=
	    JSONLOG_WARN_MS) {
		log_warn("JSON log write failed (%s): %zu bytes kept to write "
		    "again, %llu lines counted as dropped", strerror(err), left,
		    (unsigned long long)jdrop_lines);
		jwarned = clock_now_ms();
	}
	jerr = err;
	if (jretry == NULL && base != NULL &&
	    (jretry = evtimer_new(base, jsonlog_retry_cb, NULL)) == NULL)
		fatalx("out of memory for a timer");
	if (jretry != NULL && !evtimer_pending(jretry, NULL))
		evtimer_add(jretry, &tv);
}

static void
jsonlog_retry_cb(int fd, short what, void *arg)
{
	jsonlog_flush();
}

/*
 * The first record of a new segment: its number, and the name its
 * predecessor has now, so that a reader that follows the log (meshlogctl
 * logs -f) finds segments that came and went between two looks.
 */
static void
jsonlog_segment_head(void)
{
	char		 buf[PATH_MAX + 256], one[PATH_MAX], ts[TS_LEN];
	const char	*name;
	struct jw	 w;
	struct timespec	 now;

	outname_segment(jpath, 1, 1, one, sizeof one);
	name = strrchr(one, '/') != NULL ? strrchr(one, '/') + 1 : one;
	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	jw_init(&w, buf, sizeof buf);
	jw_lit(&w, "{\"ts\":\"");
	jw_lit(&w, ts);
	jw_lit(&w, "\",\"event\":\"log_rotated\",\"segment\":");
	jw_int(&w, ++jsegment);
	jw_lit(&w, ",\"previous\":");
	jw_str(&w, name, strlen(name));
	jw_lit(&w, "}");
	jsonlog_text(w.buf, w.len);
}

/* The segment number a log begins with (its log_rotated record), or 0. */
static long long
jsonlog_segment_of(const char *path)
{
	char		head[PATH_MAX + 256];	/* "previous" names a path */
	ssize_t		n;
	long long	seg;
	int		fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return (0);
	n = pread(fd, head, sizeof head, 0);
	close(fd);
	if (n <= 0 || (seg = outname_segment_head(head, (size_t)n)) < 0)
		return (0);
	return (seg);
}

/*
 * The log is past --json-max-size and holds whole records only: it
 * becomes segment 1 and a new file starts; compressed by a child.
 */
static void
jsonlog_rotate(void)
{
	off_t	size = jsize, whole = jwhole;
	int	fd;

	if (rotate_now(jpath) != 0) {
		log_warn("JSON log: cannot rotate %s: %s; it grows on", jpath,
		    strerror(errno));
		rotate_config(0, 0);
		return;
	}
	if ((fd = jsonlog_open_file(jpath)) == -1) {
		log_warn("JSON log: cannot start a new %s: %s; it grows on",
		    jpath, jsonlog_error(errno));
		rotate_undo(jpath);
		rotate_config(0, 0);
		jsize = size;
		jwhole = whole;
		return;
	}
	close(jsonlog_fd);
	jsonlog_fd = fd;
	jsonlog_share();
	keeper_log(jsonlog_fd, jmfd);
	rotate_start(jpath);
	jsonlog_segment_head();
}

void
jsonlog_flush(void)
{
	size_t	done = jpart, rec;
	ssize_t	n;

	if (jsonlog_fd == -1)
		return;
	while (done < jlen) {
		n = write(jsonlog_fd, jbuf + done, jlen - done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			/*
			 * Kept from the start of the record being written, to
			 * go on with it (or write it whole after a cut).
			 */
			for (rec = done; rec > 0 && jbuf[rec - 1] != '\n'; rec--)
				;
			if (jsh != NULL)
				jsh->len = 0;	/* moving: nothing to write */
			memmove(jbuf, jbuf + rec, jlen - rec);
			jlen -= rec;
			jpart = done - rec;
			jsonlog_share();
			jsonlog_failing(n == 0 ? EIO : errno, jlen - jpart);
			return;
		}
		done += (size_t)n;
		jsize += n;
		if (jbuf[done - 1] == '\n')
			jwhole = jsize;
	}
	jlen = 0;
	jpart = 0;
	jsonlog_share();
	if (jerr != 0) {
		jsonlog_recovered();
		jsonlog_flush();
		return;
	}
	rotate_poll();
	/*
	 * Not as the log closes: the new file would stay empty, its
	 * log_rotated record never written (readers of the log number
	 * segments by it, and so does the next collector appending to it).
	 */
	if (!jclosing && rotate_due(jsize))
		jsonlog_rotate();
}

int
jsonlog_failed(void)
{
	return (jerr);
}

void
jsonlog_close(int sync)
{
	if (jsonlog_fd == -1)
		return;
	jclosing = 1;
	jsonlog_flush();
	jclosing = 0;
	if (jerr != 0) {
		jsonlog_cut();
		jsonlog_lost("closed");
	}
	if (jretry != NULL) {
		event_free(jretry);
		jretry = NULL;
	}
	if (sync && fsync(jsonlog_fd) == -1 && errno != EINVAL)
		log_warn("JSON log fsync: %s", strerror(errno));
	close(jsonlog_fd);
	jsonlog_fd = -1;
	keeper_log(-1, -1);
	if (jmfd != -1) {
		munmap((void *)jsh, JSONLOG_SHARED_HEAD + jcap);
		close(jmfd);
		jmfd = -1;
		jsh = NULL;
	} else
		free(jbuf);
	jbuf = NULL;
	free(jpath);
	jpath = NULL;
	/* A segment being compressed is whole before the collector goes. */
	rotate_finish();
}
