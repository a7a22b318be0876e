/*
 * meshlogctl logs --split DIR: the per-process text files of
 * meshlog-collector --output-dir, made from a JSON log after the fact.
 * Each record gives back its line and its newline (but for a line cut
 * short or left without one); only streams the job's own stdout and
 * stderr received, or a launcher passing lines on there, are written, as
 * their source_open records say.
 */

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logsplit.h"
#include "outname.h"
#include "runtime/runtime.h"

/* A source of the log: where its streams go. */
struct split_src {
	long long	 id;
	int		 console;	/* bit 0 stdout, bit 1 stderr: shown */
	int		 plain;		/* -1 undecided */
	int		 fd[2];		/* -1: not open */
	int		 made[2];	/* the file was begun (truncated) */
	int		 pidname;	/* begun before it had a rank */
	int		 opened;	/* its source_open was seen */
	long		 pid;		/* its source_open's */
	char		*host;
	struct split_src *next;
};

/* A rank whose plain name a process took, per host. */
struct split_claim {
	char			*host;
	long			 rank;
	struct split_claim	*next;
};

#define SPLIT_BUCKETS	4096

struct logsplit {
	int			 dirfd;
	const char		*path;
	struct split_src	*src[SPLIT_BUCKETS];
	struct split_src	*prev[SPLIT_BUCKETS];	/* the run before */
	struct split_claim	*claims[SPLIT_BUCKETS];
	int			 failed;
};

static unsigned
split_hash(long long v)
{
	return ((unsigned)((unsigned long long)v * 0x9e3779b97f4a7c15ULL >> 52) %
	    SPLIT_BUCKETS);
}

struct logsplit *
logsplit_open(const char *path)
{
	struct logsplit	*ls = calloc(1, sizeof *ls);
	struct stat	 sb;

	if (ls == NULL) {
		perror("meshlogctl logs");
		exit(1);
	}
	ls->path = path;
	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "meshlogctl logs: cannot make %s: %s\n", path,
		    strerror(errno));
		exit(1);
	}
	ls->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (ls->dirfd == -1 || fstat(ls->dirfd, &sb) == -1 ||
	    !dir_is_mine(&sb)) {
		fprintf(stderr, "meshlogctl logs: %s is not a directory of "
		    "yours that only you may write to\n", path);
		exit(1);
	}
	return (ls);
}

/* The source id of o, made known at first sight. */
static struct split_src *
split_source(struct logsplit *ls, json_t *o)
{
	long long		 id = json_integer_value(json_object_get(o,
				    "source"));
	struct split_src	*s, **b = &ls->src[split_hash(id)];

	for (s = *b; s != NULL; s = s->next) {
		if (s->id == id)
			return (s);
	}
	if ((s = calloc(1, sizeof *s)) == NULL) {
		perror("meshlogctl logs");
		exit(1);
	}
	s->id = id;
	s->console = 3;		/* unless its source_open says otherwise */
	s->plain = -1;
	s->fd[0] = s->fd[1] = -1;
	s->next = *b;
	*b = s;
	return (s);
}

/* Whether a process of rank on host takes the rank's plain name. */
static int
split_claim(struct logsplit *ls, const char *host, long rank)
{
	struct split_claim	*c, **b = &ls->claims[split_hash(rank)];

	for (c = *b; c != NULL; c = c->next) {
		if (c->rank == rank && strcmp(c->host, host) == 0)
			return (0);
	}
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->host = strdup(host)) == NULL) {
		perror("meshlogctl logs");
		exit(1);
	}
	c->rank = rank;
	c->next = *b;
	*b = c;
	return (1);
}

/* Open (or reopen, to append) the file of s's stream which; or -1. */
static int
split_file(struct logsplit *ls, struct split_src *s, json_t *o, int which)
{
	const char	*host = json_string_value(json_object_get(o, "host"));
	json_t		*r = json_object_get(o, "rank");
	long		 rank = json_is_integer(r) ? (long)json_integer_value(r) :
			    -1;
	char		 hdir[256], name[128], path[512];
	int		 fl;

	if (s->fd[which] != -1)
		return (s->fd[which]);
	outname_host(host != NULL ? host : "", hdir, sizeof hdir);
	if (s->plain < 0)
		s->plain = rank >= 0 && split_claim(ls, hdir, rank);
	if (rank < 0)
		s->pidname = 1;
	outname_file(rank, (long)json_integer_value(json_object_get(o, "pid")),
	    s->plain, which ? "stderr" : "stdout", name, sizeof name);
	if (mkdirat(ls->dirfd, hdir, 0700) == -1 && errno != EEXIST)
		goto fail;
	snprintf(path, sizeof path, "%s/%s", hdir, name);
	fl = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
	    (s->made[which] ? O_APPEND : O_TRUNC);
	s->fd[which] = openat(ls->dirfd, path, fl, 0600);
	if (s->fd[which] == -1 && errno == EMFILE) {
		logsplit_close_files(ls);
		s->fd[which] = openat(ls->dirfd, path, fl, 0600);
	}
	if (s->fd[which] == -1)
		goto fail;
	s->made[which] = 1;
	return (s->fd[which]);
fail:
	fprintf(stderr, "meshlogctl logs: %s/%s/%s: %s\n", ls->path, hdir,
	    name, strerror(errno));
	ls->failed = 1;
	return (-1);
}

void
logsplit_close_files(struct logsplit *ls)
{
	struct split_src	*s;
	int			 i, k;

	for (i = 0; i < SPLIT_BUCKETS; i++) {
		for (s = ls->src[i]; s != NULL; s = s->next) {
			for (k = 0; k < 2; k++) {
				if (s->fd[k] != -1)
					close(s->fd[k]);
				s->fd[k] = -1;
			}
		}
	}
}

/*
 * A log's next collector run begins: its sources and claims start anew,
 * those of the run before kept aside for the processes the new collector
 * takes back from the keeper (split_resume).
 */
static void
split_forget(struct logsplit *ls)
{
	struct split_src	*s, *sn;
	struct split_claim	*c, *cn;
	int			 i;

	logsplit_close_files(ls);
	for (i = 0; i < SPLIT_BUCKETS; i++) {
		for (s = ls->prev[i]; s != NULL; s = sn) {
			sn = s->next;
			free(s->host);
			free(s);
		}
		ls->prev[i] = ls->src[i];
		for (c = ls->claims[i]; c != NULL; c = cn) {
			cn = c->next;
			free(c->host);
			free(c);
		}
		ls->src[i] = NULL;
		ls->claims[i] = NULL;
	}
}

/* Whether s is the process the source_open o names (pid and host). */
static int
split_same(const struct split_src *s, json_t *o)
{
	const char	*host = json_string_value(json_object_get(o, "host"));

	return (s->pid == (long)json_integer_value(json_object_get(o,
	    "pid")) && s->host != NULL && host != NULL &&
	    strcmp(s->host, host) == 0);
}

/* Source old of pid on host in table t, unlinked from it; or NULL. */
static struct split_src *
split_unlink(struct split_src **t, long long old, long pid, const char *host)
{
	struct split_src	**b, *s;

	for (b = &t[split_hash(old)]; (s = *b) != NULL; b = &s->next) {
		if (s->id == old && s->pid == pid && s->host != NULL &&
		    strcmp(s->host, host) == 0) {
			*b = s->next;
			return (s);
		}
	}
	return (NULL);
}

/*
 * A process a restarted collector took back from the keeper (a
 * source_open "from_keeper" that "resumes" its id under the one before):
 * its files go on, under its new id. Its entry is the run before's: the
 * current table's while it still holds it (the new collector's first
 * record: the others are set aside), else one set aside. NULL when
 * neither has it.
 */
static struct split_src *
split_resume(struct logsplit *ls, json_t *o)
{
	json_t			*r = json_object_get(o, "resumes");
	json_t			*rank = json_object_get(o, "rank");
	const char		*host = json_string_value(json_object_get(o,
				    "host"));
	long			 pid = (long)json_integer_value(
				    json_object_get(o, "pid"));
	long long		 id = json_integer_value(json_object_get(o,
				    "source"));
	struct split_src	*s;
	char			 hdir[256];

	if (!json_is_integer(r) || host == NULL)
		return (NULL);
	if ((s = split_unlink(ls->src, json_integer_value(r), pid, host)) !=
	    NULL)
		split_forget(ls);	/* the new collector's first record */
	else if ((s = split_unlink(ls->prev, json_integer_value(r), pid,
	    host)) == NULL)
		return (NULL);
	s->id = id;
	s->next = ls->src[split_hash(id)];
	ls->src[split_hash(id)] = s;
	/* Its plain name stays its own in the new run. */
	outname_host(host, hdir, sizeof hdir);
	if (s->plain == 1 && json_is_integer(rank))
		(void)split_claim(ls, hdir, (long)json_integer_value(rank));
	return (s);
}

/*
 * s told its rank (a "rank" event: it learned it after it started): the
 * files begun under its pid take the rank's name, as the collector's
 * --output-dir renames them.
 */
static void
split_rank(struct logsplit *ls, struct split_src *s, json_t *o)
{
	const char	*host = json_string_value(json_object_get(o, "host"));
	json_t		*r = json_object_get(o, "rank");
	long		 pid = (long)json_integer_value(json_object_get(o,
			    "pid"));
	char		 hdir[256], name[128], from[512], to[512];
	int		 k;

	if (!json_is_integer(r) || (s->plain >= 0 && !s->pidname))
		return;
	outname_host(host != NULL ? host : "", hdir, sizeof hdir);
	s->plain = split_claim(ls, hdir, (long)json_integer_value(r));
	for (k = 0; k < 2 && s->pidname; k++) {
		if (!s->made[k])
			continue;
		outname_file(-1, pid, 0, k ? "stderr" : "stdout", name,
		    sizeof name);
		snprintf(from, sizeof from, "%s/%s", hdir, name);
		outname_file((long)json_integer_value(r), pid, s->plain,
		    k ? "stderr" : "stdout", name, sizeof name);
		snprintf(to, sizeof to, "%s/%s", hdir, name);
		if (renameat(ls->dirfd, from, ls->dirfd, to) == -1) {
			fprintf(stderr, "meshlogctl logs: %s/%s: %s\n",
			    ls->path, to, strerror(errno));
			ls->failed = 1;
		}
	}
	s->pidname = 0;
}

/* Streams named in a source_open's list v: bit 0 stdout, bit 1 stderr. */
static int
split_streams(json_t *v)
{
	const char	*stream;
	size_t		 i;
	int		 bits = 0;

	for (i = 0; i < json_array_size(v); i++) {
		if ((stream = json_string_value(json_array_get(v, i))) != NULL)
			bits |= strcmp(stream, "stderr") == 0 ? 2 : 1;
	}
	return (bits);
}

void
logsplit_record(struct logsplit *ls, json_t *o)
{
	const char		*ev = json_string_value(json_object_get(o,
				    "event")), *stream;
	struct split_src	*s = NULL;
	json_t			*line, *v;
	int			 which, fd;

	if (ev != NULL && strcmp(ev, "source_open") == 0 &&
	    json_is_true(json_object_get(o, "from_keeper")))
		s = split_resume(ls, o);
	if (s == NULL)
		s = split_source(ls, o);
	if (ev != NULL) {
		if (strcmp(ev, "rank") == 0)
			split_rank(ls, s, o);
		if (strcmp(ev, "source_open") != 0)
			return;
		/*
		 * -j appends: a source opened again is the next collector's
		 * (ids start anew), whose files start anew, as --output-dir's
		 * do; but for a process taken back from the keeper.
		 */
		if (s->opened && (!json_is_true(json_object_get(o,
		    "from_keeper")) || !split_same(s, o))) {
			split_forget(ls);
			s = split_source(ls, o);
		}
		s->opened = 1;
		s->pid = (long)json_integer_value(json_object_get(o, "pid"));
		free(s->host);
		s->host = json_is_string(v = json_object_get(o, "host")) ?
		    strdup(json_string_value(v)) : NULL;
		if (json_is_array(v = json_object_get(o, "console_streams"))) {
			s->console = split_streams(v) |
			    split_streams(json_object_get(o,
			    "forwarded_streams"));
		}
		return;
	}
	if (!json_is_string(line = json_object_get(o, "line")) ||
	    (stream = json_string_value(json_object_get(o, "stream"))) ==
	    NULL)
		return;
	which = strcmp(stream, "stderr") == 0;
	if (!(s->console & (1 << which)) || (fd = split_file(ls, s, o,
	    which)) == -1)
		return;
	if (fd_write_all(fd, json_string_value(line), json_string_length(line)) ==
	    -1 || (!json_is_true(json_object_get(o, "truncated")) &&
	    !json_is_true(json_object_get(o, "partial")) &&
	    fd_write_all(fd, "\n", 1) == -1)) {
		fprintf(stderr, "meshlogctl logs: writing under %s: %s\n",
		    ls->path, strerror(errno));
		ls->failed = 1;
		close(fd);
		s->fd[which] = -1;
		s->console &= ~(1 << which);
	}
}

int
logsplit_close(struct logsplit *ls)
{
	int	failed = ls->failed;

	split_forget(ls);	/* the sources set aside */
	split_forget(ls);	/* and the last run's */
	close(ls->dirfd);
	free(ls);
	return (failed);
}
