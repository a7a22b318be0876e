/*
 * The job's account at its end: per rank, its lines, warnings and errors
 * (the severity the console detects), how its process ended and when; the
 * first failure with its last lines; ranks that never registered when the
 * world size is known; processes without a rank, counted, and what they
 * wrote; the job's totals, of every process. Processes are
 * added as they end (summary_add); the ones still running are passed in
 * when an account is asked for.
 *
 * A rank's lines, warnings and errors are those of every process that had
 * the rank (its forked workers, a restarted process); its pid, exit and
 * end are its last registered process's (not a forked worker's).
 */

#include <sys/wait.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"

/* Largest world whose missing ranks are listed. */
#define SUMMARY_WORLD_MAX	(1L << 20)

/* One rank's account, or the processes without a rank. */
struct summary_rank {
	long			 rank;
	struct summary_proc	 main;		/* its last registered process */
	int			 have_main;
	uint64_t		 lines;
	uint64_t		 warnings;
	uint64_t		 errors;
	unsigned		 procs;
};

/* Accounts sorted by rank, each allocated on its own. */
struct summary_table {
	struct summary_rank	**v;
	size_t			  n;
	size_t			  cap;
};

static struct summary_table	 ended;		/* of processes that ended */
static struct summary_proc	 first;		/* the first failure */
static json_t			*first_lines;	/* its last lines */
static json_t			*lead_lines;	/* its runtime's first words */
static json_int_t		 lead_between;	/* lines after them, before */
static int			 have_first;
static long			 world_size = -1;
/*
 * Processes without a rank: how many, how many failed, the first few, and
 * the lines, warnings and errors they wrote.
 */
static unsigned			 others, others_failed;
static unsigned			 others_quiet;	/* ended so, not failed */
static json_t			*others_list;
static uint64_t			 others_said[3];
/* The command a launch-mode collector ran, and whether it registered. */
static struct summary_proc	 command;
static int			 have_command, command_seen;
/* A failure this long before the interrupt was taken is none of its doing
 * (ms). */
#define SUMMARY_INTERRUPT_SLACK_MS	1000

static int			 interrupt_sig;	/* the job was told to end */
static struct timespec		 interrupt_at;
static int			(*interrupt_probe)(void);

/*
 * The account of rank r in t, made if new. Put in its place at once: a
 * job of thousands of ranks ends in any order, and sorting the table at
 * each new rank made that quadratic.
 */
static struct summary_rank *
summary_rank_get(struct summary_table *t, long r)
{
	size_t	lo = 0, hi = t->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (t->v[mid]->rank < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->n && t->v[lo]->rank == r)
		return (t->v[lo]);
	if (t->n == t->cap) {
		t->cap = t->cap == 0 ? 16 : t->cap * 2;
		t->v = xrealloc(t->v, t->cap * sizeof *t->v);
	}
	memmove(t->v + lo + 1, t->v + lo, (t->n - lo) * sizeof *t->v);
	t->n++;
	t->v[lo] = xcalloc(1, sizeof **t->v);
	t->v[lo]->rank = r;
	return (t->v[lo]);
}

/* Free t's accounts; t is empty again. */
static void
summary_table_free(struct summary_table *t)
{
	size_t	i;

	for (i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	memset(t, 0, sizeof *t);
}

/* Whether p ended abnormally. */
static int
summary_failed(const struct summary_proc *p)
{
	return (p->have_status && (!WIFEXITED(p->status) ||
	    WEXITSTATUS(p->status) != 0));
}

/* p's "exit" as the JSON log says it (new reference). */
static json_t *
summary_exit(const struct summary_proc *p)
{
	char	sig[32];

	if (!p->have_status)
		return (json_null());
	if (WIFEXITED(p->status))
		return (json_pack("{s:i}", "code", WEXITSTATUS(p->status)));
	summary_signame(WTERMSIG(p->status), sig, sizeof sig);
	return (json_pack("{s:s, s:b}", "signal", sig, "core",
	    WCOREDUMP(p->status) != 0));
}

/* p's identity and end (new reference). */
static json_t *
summary_proc_json(const struct summary_proc *p)
{
	json_t	*o;

	o = json_pack("{s:o, s:s, s:I, s:s?, s:o, s:s?}", "rank",
	    p->rank < 0 ? json_null() : json_integer(p->rank), "host",
	    p->host, "pid", (json_int_t)p->pid, "program",
	    p->program[0] != '\0' ? p->program : NULL, "exit",
	    summary_exit(p), "ended", p->ended[0] != '\0' ? p->ended : NULL);
	if (p->oom_killed)
		json_object_set_new(o, "oom_killed", json_true());
	if (!p->have_status && p->running)
		json_object_set_new(o, "running", json_true());
	if (!p->have_status && p->relay_lost)
		json_object_set_new(o, "relay_lost", json_true());
	return (o);
}

/* Fold p into table t. */
static void
summary_fold(struct summary_table *t, const struct summary_proc *p)
{
	struct summary_rank	*e;

	if (p->world_size > world_size)
		world_size = p->world_size;
	if (p->rank < 0)
		return;
	e = summary_rank_get(t, p->rank);
	e->lines += p->lines;
	e->warnings += p->warnings;
	e->errors += p->errors;
	e->procs++;
	if ((!p->forked && !p->helper) || !e->have_main) {
		e->main = *p;
		e->have_main = 1;
	}
}

/* Whether p is the launched command itself. */
static int
summary_is_command(const struct summary_proc *p)
{
	return (have_command && p->pid == command.pid &&
	    strcmp(p->host, command.host) == 0);
}

int
summary_failure(const struct summary_proc *p)
{
	if (!summary_failed(p))
		return (0);
	/* A program a rank's process ran is judged as one without a rank. */
	if ((p->rank >= 0 && !p->helper) || summary_is_command(p))
		return (1);
	/*
	 * A signal sent to end it (SIGPIPE: its reader left, yes | head;
	 * SIGTERM: a monitor stopped by its script) is asked for; a crash
	 * (a signal that dumps core by default) or the OOM killer is not.
	 */
	if (WIFSIGNALED(p->status)) {
		switch (WTERMSIG(p->status)) {
		case SIGQUIT: case SIGILL: case SIGTRAP: case SIGABRT:
		case SIGBUS: case SIGFPE: case SIGSEGV: case SIGXCPU:
		case SIGXFSZ: case SIGSYS:
			return (1);
		default:
			return (p->oom_killed);
		}
	}
	/* A code without a word is an answer: grep -q, test, pyenv's. */
	return (p->lines > 0);
}

/* The last part of a path ("" for NULL). */
static const char *
summary_base(const char *path)
{
	const char	*slash;

	if (path == NULL)
		return ("");
	return ((slash = strrchr(path, '/')) != NULL ? slash + 1 : path);
}

/* Whether name is an interpreter whose first argument names the program. */
static int
summary_interpreter(const char *name)
{
	static const char *const	 family[] = { "python", "pypy", "perl",
					    "ruby", "node", "bash", "sh",
					    "dash", "zsh" };
	size_t				 i, n;

	for (i = 0; i < sizeof family / sizeof family[0]; i++) {
		n = strlen(family[i]);
		/* python3, python3.11, perl5.36: a version may follow. */
		if (strncmp(name, family[i], n) == 0 && (name[n] == '\0' ||
		    (n > 2 && (name[n] == '.' || (name[n] >= '0' &&
		    name[n] <= '9')))))
			return (1);
	}
	return (0);
}

void
summary_program(char *buf, size_t len, const char *a0, const char *a1,
    const char *a2)
{
	char	text[256];
	size_t	i;

	a0 = summary_base(a0);
	if (a1 != NULL && summary_interpreter(a0) && strcmp(a1, "-m") == 0 &&
	    a2 != NULL)
		snprintf(text, sizeof text, "%s -m %s", a0, a2);
	else if (a1 != NULL && a1[0] != '-' && a1[0] != '\0' &&
	    summary_interpreter(a0))
		snprintf(text, sizeof text, "%s %s", a0, summary_base(a1));
	else
		strlcpy(text, a0, sizeof text);
	/*
	 * Printable ASCII only: the name goes to a terminal and into JSON,
	 * and a cut must not split a character.
	 */
	for (i = 0; i + 1 < len && text[i] != '\0'; i++)
		buf[i] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?';
	if (len > 0)
		buf[i] = '\0';
}

void
summary_command(const char *host, long pid, char *const *argv,
    const int *status)
{
	struct timespec	now;

	if (status != NULL) {
		command.have_status = 1;
		command.status = *status;
		/* Its own end, if it registered; else when it was reaped. */
		if (command.ended[0] == '\0' &&
		    clock_gettime(CLOCK_REALTIME, &now) == 0)
			record_ts(command.ended, &now);
		return;
	}
	memset(&command, 0, sizeof command);
	command.rank = -1;
	command.world_size = -1;
	strlcpy(command.host, host, sizeof command.host);
	command.pid = pid;
	summary_program(command.program, sizeof command.program, argv[0],
	    argv[0] != NULL ? argv[1] : NULL, argv[0] != NULL &&
	    argv[1] != NULL ? argv[2] : NULL);
	have_command = 1;
}

void
summary_add(const struct summary_proc *p, const struct ending_lines *tail)
{
	size_t	i;

	if (summary_is_command(p)) {
		command_seen = 1;
		if (p->ended[0] != '\0')
			strlcpy(command.ended, p->ended, sizeof command.ended);
	}
	summary_fold(&ended, p);
	if (p->first_failure && !have_first) {
		first = *p;
		have_first = 1;
		first_lines = json_array();
		for (i = 0; tail != NULL && i < tail->n; i++)
			json_array_append_new(first_lines, json_stringn_nocheck(
			    tail->line[i], tail->len[i]));
		lead_lines = json_array();
		for (i = 0; tail != NULL && i < tail->nfirst; i++)
			json_array_append_new(lead_lines, json_stringn_nocheck(
			    tail->first[i], tail->first_len[i]));
		lead_between = tail != NULL ? (json_int_t)tail->between : 0;
	}
	if (p->rank >= 0)
		return;
	others++;
	others_said[0] += p->lines;
	others_said[1] += p->warnings;
	others_said[2] += p->errors;
	if (!summary_failed(p))
		return;
	if (!summary_failure(p)) {
		others_quiet++;
		return;
	}
	others_failed++;
	if (others_list == NULL)
		others_list = json_array();
	if (json_array_size(others_list) < 8)
		json_array_append_new(others_list, summary_proc_json(p));
}

json_t *
summary_build(const struct summary_proc *live, size_t nlive,
    const char *log)
{
	struct summary_table	 t = { NULL, 0, 0 };
	struct summary_rank	*e;
	size_t			 i;
	json_t			*o, *a, *missing, *other, *list, *cmd = NULL;
	uint64_t		 lines, warnings, errors;
	unsigned		 failed = 0, nothers = others;
	unsigned		 ofailed = others_failed;
	long			 r;
	int			 seen = command_seen;
	char			 name[32], at[TS_LEN];

	/* The ended processes' accounts, then the running ones, on a copy. */
	for (i = 0; i < ended.n; i++)
		*summary_rank_get(&t, ended.v[i]->rank) = *ended.v[i];
	lines = others_said[0];
	warnings = others_said[1];
	errors = others_said[2];
	for (i = 0; i < nlive; i++) {
		seen |= summary_is_command(&live[i]);
		summary_fold(&t, &live[i]);
		if (live[i].rank >= 0)
			continue;
		nothers++;
		lines += live[i].lines;
		warnings += live[i].warnings;
		errors += live[i].errors;
	}
	/*
	 * A command that never registered (it did not start, is static or
	 * setuid, or cleared LD_PRELOAD) still ended: one more process.
	 */
	list = others_list != NULL ? json_copy(others_list) : NULL;
	if (have_command) {
		cmd = summary_proc_json(&command);
		json_object_set_new(cmd, "captured", json_boolean(seen));
	}
	if (have_command && !seen) {
		nothers++;
		if (summary_failed(&command)) {
			ofailed++;
			if (list == NULL)
				list = json_array();
			json_array_append_new(list,
			    summary_proc_json(&command));
		}
	}
	other = json_pack("{s:i, s:i, s:i, s:o?, s:I, s:I, s:I}", "count",
	    nothers, "failed", ofailed, "not_failures", others_quiet,
	    "failures", list, "lines",
	    (json_int_t)lines, "warnings", (json_int_t)warnings, "errors",
	    (json_int_t)errors);
	a = json_array();
	for (i = 0; i < t.n; i++) {
		e = t.v[i];
		o = summary_proc_json(&e->main);
		json_object_set_new(o, "lines", json_integer((json_int_t)
		    e->lines));
		json_object_set_new(o, "warnings", json_integer((json_int_t)
		    e->warnings));
		json_object_set_new(o, "errors", json_integer((json_int_t)
		    e->errors));
		if (e->procs > 1)
			json_object_set_new(o, "processes", json_integer(
			    e->procs));
		json_array_append_new(a, o);
		lines += e->lines;
		warnings += e->warnings;
		errors += e->errors;
		failed += summary_failed(&e->main);
	}
	missing = json_array();
	/* A world of more than a million ranks is a wrong WORLD_SIZE. */
	for (r = 0, i = 0; world_size > 0 && world_size <= SUMMARY_WORLD_MAX &&
	    r < world_size; r++) {
		while (i < t.n && t.v[i]->rank < r)
			i++;
		if (i == t.n || t.v[i]->rank != r)
			json_array_append_new(missing, json_integer(r));
	}
	o = json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:s?}",
	    "event", "summary", "ranks", a, "ranks_failed", (json_int_t)failed,
	    "lines", (json_int_t)lines, "warnings", (json_int_t)warnings,
	    "errors", (json_int_t)errors, "missing_ranks", missing,
	    "other_processes", other, "log", log);
	json_object_set_new(o, "world_size", world_size > 0 ?
	    json_integer(world_size) : json_null());
	if (cmd != NULL)
		json_object_set_new(o, "command", cmd);
	if (interrupt_sig != 0) {
		summary_signame(interrupt_sig, name, sizeof name);
		record_ts(at, &interrupt_at);
		json_object_set_new(o, "interrupted", json_pack("{s:s, s:s}",
		    "signal", name, "at", at));
	}
	if (have_first) {
		json_object_set_new(o, "first_failure", summary_proc_json(
		    &first));
		json_object_set_new(json_object_get(o, "first_failure"),
		    "last_lines", json_incref(first_lines));
		if (json_array_size(lead_lines) > 0) {
			json_object_set_new(json_object_get(o,
			    "first_failure"), "first_lines",
			    json_incref(lead_lines));
			json_object_set_new(json_object_get(o,
			    "first_failure"), "lines_between",
			    json_integer(lead_between));
		}
	}
	summary_table_free(&t);
	return (o);
}

void
summary_interrupt(int sig)
{
	if (interrupt_sig != 0 || (sig != SIGINT && sig != SIGTERM &&
	    sig != SIGHUP && sig != SIGQUIT))
		return;
	interrupt_sig = sig;
	clock_gettime(CLOCK_REALTIME, &interrupt_at);
}

void
summary_interrupt_probe(int (*probe)(void))
{
	interrupt_probe = probe;
}

int
summary_interrupted(const struct timespec *at, int sig)
{
	int64_t	ms;

	if (interrupt_sig == 0 && interrupt_probe != NULL)
		summary_interrupt(interrupt_probe());
	if (interrupt_sig == 0)
		return (0);
	ms = ((int64_t)at->tv_sec - interrupt_at.tv_sec) * 1000 +
	    ((int64_t)at->tv_nsec - interrupt_at.tv_nsec) / 1000000;
	/*
	 * The collector takes the signal from its event loop, after lines
	 * and deaths it caused may have been read: a process dead of that
	 * very signal (Python's KeyboardInterrupt) is its doing, unless it
	 * had failed well before. Another way of ending is when its failure
	 * (a traceback begun, or the death) came after the signal was taken.
	 */
	if (ms < -SUMMARY_INTERRUPT_SLACK_MS)
		return (0);
	return (sig == interrupt_sig || ms >= 0);
}

int
summary_any_failure(void)
{
	return (have_first);
}

void
summary_reset(void)
{
	summary_table_free(&ended);
	json_decref(first_lines);
	first_lines = NULL;
	json_decref(lead_lines);
	lead_lines = NULL;
	have_first = 0;
	json_decref(others_list);
	others_list = NULL;
	others = others_failed = others_quiet = 0;
	memset(others_said, 0, sizeof others_said);
	world_size = -1;
	have_command = command_seen = 0;
	interrupt_sig = 0;
}
