/*
 * How each local process ended, and which failed first.
 *
 * The collector is not the parent of the processes it reads, so it learns
 * an exit status three ways, the first that answers wins:
 *
 * - a pidfd per process, watched: it becomes readable when the process
 *   dies, which gives the time of death; the process is then a zombie
 *   until its parent reaps it, and /proc/PID/stat's exit_code field holds
 *   its wait status. The pidfd, still pointing at the zombie after the
 *   read, proves the pid was not reused in between;
 * - the parent's own wait: the shim in a parent reports each child it
 *   reaps, with the status its wait call returned, on its family
 *   connection; the kernel names the sender, which must be the process's
 *   parent;
 * - in launch mode, the collector's own child (the command).
 *
 * A process's source_closed waits for its status (ENDING_WAIT_MS at most,
 * from the later of its pipes' end and its death) and then says
 * "exit": {"code": N} or {"signal": "SIGKILL", "core": false}, the time
 * of death ("ended"), or "exit": null with the reason it is not known.
 *
 * The first process of the job to fail (end with a non-zero code or a
 * signal) is announced on the console with its last lines, and marked
 * "first_failure" in the JSON log. A process fails when it dies, or, when
 * it wrote a traceback shortly before it died, when that traceback began:
 * a rank that raises can take a second to tear its framework down, while
 * the ranks it leaves in a collective fail at once and die before it (as
 * torchrun's error files time the exception, not the exit). So a failure
 * is announced at once unless a process still alive began a traceback
 * before it failed, or one that died before it has its status to come
 * (its parent reaped it and says how: a shell that ran the rank ends a
 * moment after it, with its code); then the announcement waits for that
 * process (ENDING_CAUSE_MS at most), and the earliest failure is named;
 * a child its parent reaped died before the parent did. It waits
 * too (ENDING_FWD_MS at most) while the failed process's launcher has its
 * last lines to pass on (forward_pending): mpirun tearing a job down
 * passes them on a moment after the rank died, and they come first.
 * Last, it waits (ENDING_SETTLE_MS at most) until what the console view
 * holds of the failed process is due to print, and while other ranks'
 * tracebacks are still coming in (one error that ends them all) until
 * each has been quiet a moment: the view then shows its last lines and
 * its traceback with theirs, as without the news, not forced out alone.
 */

#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "source.h"

/* How long a source_closed waits for its process's status. */
#define ENDING_WAIT_MS	1000
/* How long the announcement waits for a process dying after a traceback. */
#define ENDING_CAUSE_MS	3000
/* ... and for the lines the failed process's launcher is to pass on. */
#define ENDING_FWD_MS	1000
/* ... and for the view to print what it holds of the failed process. */
#define ENDING_SETTLE_MS	500
/* A traceback this much older than the death did not cause it. */
#define ENDING_TRACE_S	30

static struct sourcelist ending = TAILQ_HEAD_INITIALIZER(ending);
static int		 failure_seen;	/* the first one was announced */
static struct event	*announce;	/* its announcement, to come */
static struct source	*announce_src;	/* the earliest failure so far */
static struct timespec	 announce_by;	/* its launcher's lines waited for
					 * until then (CLOCK_MONOTONIC) */
static struct timespec	 settle_by;	/* the view waited for until then */

static void	ending_finish(struct source *);
static int	ending_failed(struct source *);
static void	ending_announce(struct source *);

/* Set *by ms from now (CLOCK_MONOTONIC). */
static void
ending_deadline(struct timespec *by, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, by);
	by->tv_sec += ms / 1000;
	by->tv_nsec += ms % 1000 * 1000000L;
}

/* Nanoseconds from now until by (CLOCK_MONOTONIC); <= 0 once past. */
static long
ending_left(const struct timespec *by)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return ((by->tv_sec - now.tv_sec) * 1000000000L + by->tv_nsec -
	    now.tv_nsec);
}

/*
 * Whether the announcement of src waits for the console view (*tv): for
 * its groups to be due, and the tracebacks processes of its kind (ranks,
 * or not) are writing to be whole; ENDING_SETTLE_MS in all at most.
 */
static int
ending_settle(const struct source *src, struct timeval *tv)
{
	double		 in;
	long		 ns;

	if (settle_by.tv_sec == 0)
		ending_deadline(&settle_by, ENDING_SETTLE_MS);
	ns = ending_left(&settle_by);
	if (ns <= 0 || (in = aggregate_news_in(src->id, src->rank >= 0)) <= 0)
		return (0);
	/* A millisecond more: the view's deadline is then surely past. */
	if (in * 1e9 + 1e6 < (double)ns)
		ns = (long)(in * 1e9) + 1000000L;
	tv->tv_sec = ns / 1000000000L;
	tv->tv_usec = ns % 1000000000L / 1000;
	return (1);
}

/*
 * The first failure's announcement, from the event loop: its pipes are
 * read first (not from inside a read, where the news may come from), so
 * that its last words (a traceback) are in it. A forked worker that never
 * wrote is announced now: its end belongs in the log.
 */
static void
ending_announce_cb(int fd, short what, void *arg)
{
	struct source	*src = announce_src;
	struct timeval	 tv;
	long		 ns;

	if (!failure_seen) {
		if (src->ending_reason < 0)
			source_drain_now(src);
		/* Its last lines, just read, are its launcher's to pass on. */
		ns = ending_left(&announce_by);
		if (ns > 0 && forward_pending(src)) {
			tv.tv_sec = ns / 1000000000L;
			tv.tv_usec = ns % 1000000000L / 1000;
			evtimer_add(announce, &tv);
			return;
		}
		/* Not when the collector is ending (arg: made now). */
		if (arg == NULL && ending_settle(src, &tv)) {
			evtimer_add(announce, &tv);
			return;
		}
	}
	event_free(announce);
	announce = NULL;
	announce_src = NULL;
	/* A relay's failure came first, while this one waited. */
	if (failure_seen) {
		src->hold = 0;
		ending_finish(src);
		return;
	}
	failure_seen = 1;
	src->first_failure = 1;
	if (!src->announced)
		source_fork_event(src);
	ending_announce(src);
	src->hold = 0;
	if (src->ending_reason >= 0)
		ending_finish(src);
}

/* Whether a is before b. */
static int
ending_before(const struct timespec *a, const struct timespec *b)
{
	return (a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec &&
	    a->tv_nsec < b->tv_nsec));
}

/* When src failed: when its last traceback began, if it began shortly
 * before src died (at t, or now when not seen yet), or at t. */
static struct timespec
ending_failed_at(const struct source *src, const struct timespec *t)
{
	if (src->trace_at.tv_sec != 0 && ending_before(&src->trace_at, t) &&
	    t->tv_sec - src->trace_at.tv_sec <= ENDING_TRACE_S)
		return (src->trace_at);
	return (*t);
}

/*
 * Whether s may yet be found to have failed before t: it began a
 * traceback lately, before t, and is alive or dead with its status to
 * come; or it died before t, its status to come (its parent reaped it
 * and is to say how: a launcher, a shell or env, ends as its rank did a
 * moment later, and its end may be heard of first).
 */
static int
ending_may_precede(const struct source *s, const struct timespec *t,
    const struct timespec *now)
{
	if (s->have_status || s->link != 0 || (s->died.tv_sec != 0 &&
	    now->tv_sec - s->died.tv_sec > ENDING_WAIT_MS / 1000))
		return (0);
	if (s->trace_at.tv_sec != 0 && ending_before(&s->trace_at, t) &&
	    now->tv_sec - s->trace_at.tv_sec <= ENDING_TRACE_S)
		return (1);
	return (s->died.tv_sec != 0 && ending_before(&s->died, t));
}

/* Whether a process may have failed before t, and is still to be heard
 * of: then the announcement waits. */
static int
ending_dying_before(const struct timespec *t)
{
	struct source	*s;
	struct timespec	 now;

	clock_gettime(CLOCK_REALTIME, &now);
	TAILQ_FOREACH(s, &sources, entry) {
		if (ending_may_precede(s, t, &now))
			return (1);
	}
	TAILQ_FOREACH(s, &ending, entry) {
		if (ending_may_precede(s, t, &now))
			return (1);
	}
	return (0);
}

/*
 * Whether src failed (at *at) other than as the job was told to end: a
 * rank that a terminal's ^C or a scheduler's SIGTERM ended did as asked.
 */
static int
ending_announceable(struct source *src, const struct timespec *now,
    struct timespec *at)
{
	if (!ending_failed(src))
		return (0);
	*at = ending_failed_at(src, src->died.tv_sec != 0 ? &src->died : now);
	return (!summary_interrupted(at, WIFSIGNALED(src->status) ?
	    WTERMSIG(src->status) : 0));
}

/*
 * src failed, or a process died: src becomes the failure to announce if
 * it failed before the one waiting, and the announcement is made once no
 * process still alive may have failed before that one.
 */
static void
ending_consider(struct source *src)
{
	struct timeval	 tv = { ENDING_CAUSE_MS / 1000,
			    (ENDING_CAUSE_MS % 1000) * 1000 };
	struct timeval	 fwd = { ENDING_FWD_MS / 1000,
			    (ENDING_FWD_MS % 1000) * 1000 };
	struct timespec	 now, at, prev_at;
	struct source	*prev = announce_src;
	int		 dying;

	if (failure_seen)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	if (src != NULL && src != prev && ending_announceable(src, &now,
	    &at)) {
		if (prev != NULL) {
			prev_at = ending_failed_at(prev, &prev->died);
			/* At the same time: its parent, that reaped it. */
			if (!ending_before(&at, &prev_at) &&
			    (ending_before(&prev_at, &at) ||
			    src->ppid != prev->pid))
				return;
			/* src failed before the one waiting. */
			prev->hold = 0;
			ending_finish(prev);
		}
		src->hold = 1;
		announce_src = src;
		ending_deadline(&announce_by, ENDING_FWD_MS);
		/* Once per collector: failure_seen is never cleared. */
		if (announce == NULL && (announce = evtimer_new(base,
		    ending_announce_cb, NULL)) == NULL)
			fatalx("cannot announce a failure");
	}
	if (announce_src == NULL)
		return;
	at = ending_failed_at(announce_src, &announce_src->died);
	/*
	 * Its launcher (mpirun) may pass on its last lines a moment after it
	 * died: they come before the announcement, as in mpirun's output.
	 */
	if (!(dying = ending_dying_before(&at)) &&
	    !forward_pending(announce_src))
		event_active(announce, EV_TIMEOUT, 1);
	else if (!evtimer_pending(announce, NULL))
		evtimer_add(announce, dying ? &tv : &fwd);
}

void
ending_forwarded(uint64_t id)
{
	if (announce_src != NULL && announce != NULL &&
	    (id == 0 || id == announce_src->id))
		ending_consider(NULL);
}

/* The status of src is known now. */
static void
ending_known(struct source *src, int status)
{
	if (src->have_status)
		return;
	src->status = status;
	src->have_status = 1;
	/* The kernel's OOM killer sends SIGKILL and counts it. */
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		src->oom_killed = ending_oom_killed(src);
	ending_consider(src);
}

/* The process is dead: note when, and read its status while a zombie. */
static void
ending_death_cb(int fd, short what, void *arg)
{
	struct source	*src = arg;
	struct timeval	 tv = { ENDING_WAIT_MS / 1000,
			    (ENDING_WAIT_MS % 1000) * 1000 };
	int		 status;

	clock_gettime(CLOCK_REALTIME, &src->died);
	if (!src->have_status && ending_zombie_status(src, &status) == 0)
		ending_known(src, status);
	else
		ending_consider(NULL);
	/* Reaped already: its parent may still say how, for a while. */
	if (!src->have_status && src->ending_timer != NULL)
		evtimer_add(src->ending_timer, &tv);
	if (src->ending_reason >= 0)
		ending_finish(src);
}

void
ending_watch(struct source *src)
{
	if (src->death != NULL)
		return;		/* watched already (source_prepare) */
	if (src->pidfd == -1)
		src->pidfd = (int)syscall(SYS_pidfd_open, (pid_t)src->pid, 0);
	if (src->pidfd == -1)
		return;
	/*
	 * Ranks and their workers are what the OOM killer takes from a
	 * training job; a shell's helpers (thousands in a script) are not
	 * worth the six system calls.
	 */
	if (src->rank >= 0)
		ending_oom_watch(src);
	src->death = event_new(base, src->pidfd, EV_READ, ending_death_cb,
	    src);
	if (src->death == NULL || event_add(src->death, NULL) != 0)
		fatalx("cannot watch a process");
}

/*
 * Whether src's end fails the job (summary_failure): a helper's silent
 * nonzero code or a pipeline's SIGPIPE does not. Bytes still in its
 * pipes count as written.
 */
static int
ending_failed(struct source *src)
{
	struct summary_proc	p;
	int			i;

	if (!src->have_status)
		return (0);
	ending_summary(src, &p);
	for (i = 0; i < 2 && p.lines == 0; i++) {
		if (src->st[i] != NULL && src->st[i]->fd != -1)
			p.lines += stream_avail(src->st[i]) > 0;
	}
	return (summary_failure(&p));
}

/* src's program as a person names it (summary_program). */
static void
ending_program(const struct source *src, char *buf, size_t len)
{
	summary_program(buf, len, json_string_value(json_array_get(src->argv,
	    0)), json_string_value(json_array_get(src->argv, 1)),
	    json_string_value(json_array_get(src->argv, 2)));
}

/* "exit code 3", "killed by SIGKILL (core dumped)". */
static void
ending_how(const struct source *src, char *buf, size_t len)
{
	char	sig[32];

	if (WIFEXITED(src->status))
		snprintf(buf, len, "exited with code %d",
		    WEXITSTATUS(src->status));
	else {
		summary_signame(WTERMSIG(src->status), sig, sizeof sig);
		snprintf(buf, len, "killed by %s%s", sig,
		    src->oom_killed ? " (the kernel's OOM killer)" :
		    WCOREDUMP(src->status) ? " (core dumped)" : "");
	}
}

/* src's i-th last line kept, of src->ntail, the oldest first. */
static const struct ending_line *
ending_tail_at(const struct source *src, int i)
{
	return (&src->tail[(src->tail_next + ENDING_TAIL - src->ntail + i) %
	    ENDING_TAIL]);
}

/*
 * How many of the first lines of src's runtime's last words to say before
 * its last lines: those that came before them (none when they began among
 * them, or more than ENDING_TRACE_S before it died: a thread's panic it
 * lived on after); *between, how many lines came between the two.
 */
static int
ending_lead_count(const struct source *src, uint64_t *between)
{
	struct timespec	 now;
	uint64_t	 first;
	int		 n;

	*between = 0;
	if (src->nlead == 0 || src->ntail == 0)
		return (0);
	first = ending_tail_at(src, 0)->ord;
	if (src->lead[0].ord >= first)
		return (0);
	clock_gettime(CLOCK_REALTIME, &now);
	if ((src->died.tv_sec != 0 ? src->died.tv_sec : now.tv_sec) -
	    src->trace_at.tv_sec > ENDING_TRACE_S)
		return (0);
	for (n = 1; n < src->nlead && src->lead[n].ord < first; n++)
		;
	*between = first - src->lead[n - 1].ord - 1;
	return (n);
}

/*
 * The first abnormal end of the job: said on the console now, before the
 * lines of the processes that fail because of it, with its last lines
 * (after the first of its runtime's last words, "... (N lines)" between).
 */
static void
ending_announce(struct source *src)
{
	char			 how[96], ts[TS_LEN], head[512], who[320];
	char			 prefix[80], prog[64];
	const char		*t;
	char			 gap[48];
	const struct ending_line *l;
	uint64_t		 between;
	int			 i, nlead = ending_lead_count(src, &between);

	ending_how(src, how, sizeof how);
	if (src->died.tv_sec != 0)
		record_ts(ts, &src->died);
	else
		strlcpy(ts, src->ended_text, sizeof ts);
	t = strchr(ts, 'T');
	if (src->rank >= 0)
		snprintf(who, sizeof who, "rank %ld (pid %ld, host %s)",
		    src->rank, src->pid, src->host);
	else {
		ending_program(src, prog, sizeof prog);
		snprintf(who, sizeof who, "pid %ld (%s%shost %s)", src->pid,
		    prog, prog[0] != '\0' ? ", " : "", src->host);
	}
	snprintf(head, sizeof head, "first failure: %s %s at %.15s UTC%s",
	    who, how, t != NULL ? t + 1 : ts, src->ntail > 0 ?
	    "; its last lines:" : "");
	/* Its own lines that the view holds go first, not after the quote. */
	aggregate_flush_source(src->id);
	if (!console_alert(head)) {
		log_debug("%s", head);
		return;
	}
	snprintf(prefix, sizeof prefix, "  %s", src->prefix);
	for (i = 0; i < nlead; i++)
		console_line(MESHLOG_STDERR, prefix, src->lead[i].text,
		    src->lead[i].len, 0, 0);
	if (between > 0) {
		snprintf(gap, sizeof gap, "... (%llu line%s)",
		    (unsigned long long)between, between == 1 ? "" : "s");
		console_line(MESHLOG_STDERR, prefix, gap, strlen(gap), 0, 0);
	}
	for (i = 0; i < src->ntail; i++) {
		l = ending_tail_at(src, i);
		console_line(MESHLOG_STDERR, prefix, l->text, l->len,
		    l->flags, 0);
	}
}

/*
 * Whether src's process is alive as the collector exits: its pidfd,
 * readable from its death on, is not yet. Without one, not known: no.
 */
static int
ending_alive(const struct source *src)
{
	struct pollfd	pfd = { .fd = src->pidfd, .events = POLLIN };

	return (src->pidfd != -1 && src->died.tv_sec == 0 &&
	    !src->have_status && poll(&pfd, 1, 0) == 0);
}

/* The status is known, or will not be: write source_closed now. */
static void
ending_finish(struct source *src)
{
	if (src->ending_reason < 0 || src->hold)
		return;
	/* Waiting for its death, or for its parent's word. */
	if (!src->have_status && src->ending_timer != NULL &&
	    evtimer_pending(src->ending_timer, NULL))
		return;
	TAILQ_REMOVE(&ending, src, entry);
	source_free(src, (enum close_reason)src->ending_reason);
}

/* Time is up: what is not known by now is written as unknown. */
static void
ending_timer_cb(int fd, short what, void *arg)
{
	ending_finish(arg);
}

void
source_end(struct source *src, enum close_reason reason)
{
	struct timeval	tv = { ENDING_WAIT_MS / 1000,
			    (ENDING_WAIT_MS % 1000) * 1000 };

	TAILQ_REMOVE(&sources, src, entry);
	nsources--;
	TAILQ_INSERT_TAIL(&ending, src, entry);
	src->ending_reason = (int)reason;
	/* Nothing more can come: its traceback may join others' now. */
	aggregate_source_ended(src->id);
	/* Never announced (a silent fork), or no way to learn more. */
	if (!src->announced || src->have_status || src->death == NULL ||
	    reason == CLOSE_COLLECTOR_EXIT || reason == CLOSE_RELAY_LOST) {
		ending_finish(src);
		return;
	}
	src->ending_timer = evtimer_new(base, ending_timer_cb, src);
	if (src->ending_timer == NULL || evtimer_add(src->ending_timer,
	    &tv) != 0)
		fatalx("cannot arm a timer");
	ending_finish(src);
}

/* Find the process pid among open and ending sources, newest first. */
static struct source *
ending_find(long pid)
{
	struct source	*src;

	TAILQ_FOREACH_REVERSE(src, &ending, sourcelist, entry) {
		if (src->pid == pid)
			return (src);
	}
	TAILQ_FOREACH_REVERSE(src, &sources, sourcelist, entry) {
		if (src->pid == pid)
			return (src);
	}
	return (NULL);
}

void
source_reaped(long parent, long pid, int status)
{
	struct source	*src = ending_find(pid), *p;

	/* Only its parent (or the collector, for its own child) can say. */
	if (src == NULL || (parent != 0 && parent != src->ppid))
		return;
	if (!WIFEXITED(status) && !WIFSIGNALED(status))
		return;
	if (src->died.tv_sec == 0)
		clock_gettime(CLOCK_REALTIME, &src->died);
	/* Its parent reaped it: it died before its parent did. */
	if (parent != 0 && (p = ending_find(parent)) != NULL &&
	    p->died.tv_sec != 0 && ending_before(&p->died, &src->died))
		src->died = p->died;
	ending_known(src, status);
	if (src->ending_reason >= 0) {
		if (src->ending_timer != NULL)
			evtimer_del(src->ending_timer);
		ending_finish(src);
	}
}

void
ending_fields(struct jw *w, struct source *src, enum close_reason reason)
{
	char		 ts[TS_LEN], sig[32];
	const char	*why;

	if (src->link != 0) {
		/* A relay's own source_closed says how its process ended. */
		jw_lit(w, ",\"exit\":null,\"exit_unknown\":\"");
		jw_lit(w, reason == CLOSE_RELAY_LOST ? "its relay was lost" :
		    "still open at its relay when the collector exited");
		jw_lit(w, "\"");
		return;
	}
	if (src->have_status && WIFEXITED(src->status)) {
		jw_lit(w, ",\"exit\":{\"code\":");
		jw_int(w, WEXITSTATUS(src->status));
		jw_lit(w, "}");
	} else if (src->have_status) {
		jw_lit(w, ",\"exit\":{\"signal\":\"");
		summary_signame(WTERMSIG(src->status), sig, sizeof sig);
		jw_lit(w, sig);
		jw_lit(w, WCOREDUMP(src->status) ? "\",\"core\":true}" :
		    "\",\"core\":false}");
		if (src->oom_killed)
			jw_lit(w, ",\"oom_killed\":true");
	} else {
		if (reason == CLOSE_COLLECTOR_EXIT && ending_alive(src))
			why = "still running when the collector exited";
		else if (src->died.tv_sec == 0 &&
		    reason == CLOSE_COLLECTOR_EXIT)
			why = "ended as the collector exited, not yet reaped";
		else if (src->died.tv_sec == 0 && src->death != NULL)
			why = "still running when its pipes closed";
		else if (src->death == NULL)
			why = "no pidfd (Linux 5.3 or later is needed)";
		else
			why = "reaped before its status could be read, by a "
			    "parent that is not under meshlog";
		jw_lit(w, ",\"exit\":null,\"exit_unknown\":\"");
		jw_lit(w, why);
		jw_lit(w, "\"");
	}
	if (src->died.tv_sec != 0) {
		record_ts(ts, &src->died);
		jw_lit(w, ",\"ended\":\"");
		jw_lit(w, ts);
		jw_lit(w, "\"");
	}
	if (src->helper)
		jw_lit(w, ",\"helper\":true");
	if (src->first_failure)
		jw_lit(w, ",\"first_failure\":true");
}

/* l holds line (as much as fits), the source's line number ord. */
static void
ending_line_set(struct ending_line *l, const char *line, size_t len,
    int flags, uint64_t ord)
{
	l->len = len < sizeof l->text ? len : sizeof l->text;
	l->flags = flags & SPLIT_PROGRESS;
	l->ord = ord;
	memcpy(l->text, line, l->len);
}

/*
 * The lines of the read being split: only the last ENDING_TAIL of them are
 * copied, when the read is done (ending_tail_flush), not every line. A
 * line from anywhere else (the splitter's own buffer, a relay's record)
 * is copied at once, after the lines of its source that wait here.
 */
static struct {
	struct source	*src;
	uintptr_t	 lo, hi;	/* the read's bytes */
	struct {
		const char	*p;
		size_t		 len;
		int		 flags;
		uint64_t	 ord;
	}		 line[ENDING_TAIL];
	int		 n, next;
} defer;

static void
ending_tail_copy(struct source *src, const char *line, size_t len, int flags,
    uint64_t ord)
{
	if (src->tail == NULL)
		src->tail = xcalloc(ENDING_TAIL, sizeof *src->tail);
	ending_line_set(&src->tail[src->tail_next], line, len, flags, ord);
	src->tail_next = (src->tail_next + 1) % ENDING_TAIL;
	if (src->ntail < ENDING_TAIL)
		src->ntail++;
}

/* Copy the lines that wait, oldest first. */
static void
ending_tail_pending(void)
{
	int	i, k;

	for (i = 0; i < defer.n; i++) {
		k = (defer.next + ENDING_TAIL - defer.n + i) % ENDING_TAIL;
		ending_tail_copy(defer.src, defer.line[k].p, defer.line[k].len,
		    defer.line[k].flags, defer.line[k].ord);
	}
	defer.n = defer.next = 0;
}

void
ending_tail_defer(struct source *src, const char *p, size_t n)
{
	ending_tail_flush();
	defer.src = src;
	defer.lo = (uintptr_t)p;
	defer.hi = (uintptr_t)p + n;
}

void
ending_tail_flush(void)
{
	if (defer.src != NULL)
		ending_tail_pending();
	defer.src = NULL;
}

void
ending_traceback(struct source *src, const char *line, size_t len,
    uint64_t ahead)
{
	enum block_state	st;
	uint64_t		ord = src->nkept + ahead;

	/* The lines after a runtime's last words' first, blank ones aside. */
	if (src->lead_want > 0) {
		if (len > 0) {
			ending_line_set(&src->lead[src->nlead++], line, len, 0,
			    ord);
			src->lead_want--;
		}
		return;
	}
	/* A traceback or a runtime's last words, not Java's header. */
	st = block_start(line, len);
	if (st == BLK_NONE || st == BLK_HEAD)
		return;
	clock_gettime(CLOCK_REALTIME, &src->trace_at);
	/*
	 * A Python traceback's last line says what it was, and it is later
	 * than any runtime's last words before it; these say it first.
	 */
	if (st == BLK_FRAMES || st == BLK_AFTER) {
		src->nlead = 0;
		return;
	}
	if (src->lead == NULL)
		src->lead = xcalloc(ENDING_LEAD, sizeof *src->lead);
	src->nlead = 0;
	ending_line_set(&src->lead[src->nlead++], line, len, 0, ord);
	src->lead_want = ENDING_LEAD - 1;
}

void
ending_tail(struct source *src, const char *line, size_t len, int flags)
{
	ending_traceback(src, line, len, 0);
	ending_keep(src, line, len, flags);
}

void
ending_keep(struct source *src, const char *line, size_t len, int flags)
{
	uint64_t	ord = src->nkept++;

	if (src == defer.src && (uintptr_t)line >= defer.lo &&
	    (uintptr_t)line + len <= defer.hi) {
		defer.line[defer.next].p = line;
		defer.line[defer.next].len = len;
		defer.line[defer.next].flags = flags;
		defer.line[defer.next].ord = ord;
		defer.next = (defer.next + 1) % ENDING_TAIL;
		if (defer.n < ENDING_TAIL)
			defer.n++;
		return;
	}
	if (src == defer.src)
		ending_tail_pending();
	ending_tail_copy(src, line, len, flags, ord);
}

void
ending_keep_lines(struct source *src, const char *p, const char *end,
    uint64_t lines)
{
	const char	*from[ENDING_TAIL], *q = end, *nl;
	int		 n = 0;

	/* From the last line back: where each of the last few begins. */
	while (q > p && n < ENDING_TAIL) {
		nl = memrchr(p, '\n', (size_t)(q - 1 - p));
		q = nl != NULL ? nl + 1 : p;
		from[n++] = q;
	}
	/* The lines before those went by, and are counted. */
	if (lines > (uint64_t)n)
		src->nkept += lines - (uint64_t)n;
	while (n-- > 0)
		ending_keep(src, from[n], (size_t)((n > 0 ? from[n - 1] :
		    end) - from[n]) - 1, 0);
}

void
ending_close_all(void)
{
	struct source	*src;

	/* An announcement still to come is made now. */
	if (announce != NULL)
		ending_announce_cb(-1, 0, announce_src);
	while ((src = TAILQ_FIRST(&ending)) != NULL) {
		if (src->ending_timer != NULL)
			evtimer_del(src->ending_timer);
		ending_finish(src);
	}
}

void
ending_relayed(struct source *src)
{
	struct timespec	now, at;

	clock_gettime(CLOCK_REALTIME, &now);
	if (failure_seen || !ending_announceable(src, &now, &at))
		return;
	failure_seen = 1;
	src->first_failure = 1;
	ending_announce(src);
}

void
ending_summary(struct source *src, struct summary_proc *p)
{
	int	i;

	memset(p, 0, sizeof *p);
	p->rank = src->rank;
	strlcpy(p->host, src->host, sizeof p->host);
	p->pid = src->pid;
	ending_program(src, p->program, sizeof p->program);
	p->forked = src->fork_of != 0;
	p->helper = src->helper;
	p->world_size = src->world_size;
	/* A helper's: those that were its rank's output (stream_count). */
	for (i = 0; i < 2; i++) {
		if (src->st[i] != NULL && !stream_piped(src->st[i]))
			p->lines += src->st[i]->seq;
	}
	/* Its own: what a launcher passed on is its ranks'. */
	p->lines -= src->copies < p->lines ? src->copies : p->lines;
	p->warnings = src->warnings;
	p->errors = src->errors;
	p->have_status = src->have_status;
	p->status = src->status;
	p->oom_killed = src->oom_killed;
	p->first_failure = src->first_failure;
	/* Open, or left running by a command that ended before it. */
	p->running = !src->have_status && src->died.tv_sec == 0 &&
	    (src->ending_reason < 0 || (src->ending_reason ==
	    CLOSE_COLLECTOR_EXIT && ending_alive(src)));
	if (src->died.tv_sec != 0)
		record_ts(p->ended, &src->died);
	else
		strlcpy(p->ended, src->ended_text, sizeof p->ended);
}

void
ending_lines(struct source *src, struct ending_lines *l)
{
	const struct ending_line	*e;
	int				 i;

	l->n = 0;
	for (i = 0; i < src->ntail && l->n < 8; i++) {
		e = ending_tail_at(src, i);
		l->line[l->n] = e->text;
		l->len[l->n++] = e->len;
	}
	l->nfirst = (size_t)ending_lead_count(src, &l->between);
	for (i = 0; i < (int)l->nfirst; i++) {
		l->first[i] = src->lead[i].text;
		l->first_len[i] = src->lead[i].len;
	}
}
