/*
 * The files meshlogctl logs reads: the logs named and their rotated
 * segments, each once, oldest first. A file is known by its device and
 * inode, so that "run.jsonl run.*" or "./run.jsonl run.jsonl" read each
 * record once.
 */

#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logfiles.h"
#include "outname.h"

/* A file read, or to be read: the name it was given and what it is. */
struct logfile {
	char		*path;
	dev_t		 dev;
	ino_t		 ino;
	int		 known;		/* stat() answered */
	int		 k;		/* segment k of head, or 0 */
	char		 head[PATH_MAX];
};

/* The files gathered so far, and the inodes already among them. */
struct logfiles {
	struct logfile	*v;
	size_t		 n;
	size_t		 cap;
};

int
logfiles_segment(const char *path, int k, char *buf, size_t len)
{
	int	zst;

	for (zst = 0; zst < 2; zst++) {
		outname_segment(path, k, zst, buf, len);
		if (access(buf, F_OK) == 0)
			return (0);
	}
	return (-1);
}

void *
logfiles_alloc(void *p, size_t n, size_t size)
{
	if ((p = reallocarray(p, n, size)) == NULL) {
		perror("meshlogctl logs");
		exit(1);
	}
	return (p);
}

/*
 * The log path is segment k of, as outname_segment names segments
 * (run.2.jsonl.zst is run.jsonl's second) into f->head and f->k; k 0
 * when path names no segment.
 */
static void
logfiles_head(struct logfile *f)
{
	const char	*slash = strrchr(f->path, '/');
	const char	*p = slash != NULL ? slash + 1 : f->path, *d;
	char		 again[PATH_MAX];
	size_t		 zst, len = strlen(f->path);
	long		 k;

	f->k = 0;
	zst = len > 4 && strcmp(f->path + len - 4, ".zst") == 0 ? 4 : 0;
	/* Each ".<digits>" ending the name or before a dot: is it k? */
	while ((p = strchr(p, '.')) != NULL) {
		for (d = ++p; *d >= '0' && *d <= '9'; d++)
			;
		if (d == p || d - p > 4 || (*d != '.' && *d != '\0'))
			continue;
		k = strtol(p, NULL, 10);
		if (k < 1 || k > LOGFILES_SEGMENTS)
			continue;
		/* The name without ".<digits>" and ".zst" ... */
		if (snprintf(f->head, sizeof f->head, "%.*s%.*s",
		    (int)(p - 1 - f->path), f->path,
		    (int)(f->path + len - zst - d), d) >=
		    (int)sizeof f->head)
			continue;
		/* ... is the log, when its segment k has this very name. */
		outname_segment(f->head, (int)k, zst != 0, again,
		    sizeof again);
		if (strcmp(again, f->path) == 0) {
			f->k = (int)k;
			return;
		}
	}
}

static void
logfiles_stat(struct logfile *f)
{
	struct stat	sb;

	f->known = stat(f->path, &sb) == 0;
	f->dev = f->known ? sb.st_dev : 0;
	f->ino = f->known ? sb.st_ino : 0;
}

/* Whether a file like f (by inode) is among l's already. */
static int
logfiles_has(const struct logfiles *l, const struct logfile *f)
{
	size_t	i;

	for (i = 0; f->known && i < l->n; i++) {
		if (l->v[i].known && l->v[i].dev == f->dev &&
		    l->v[i].ino == f->ino)
			return (1);
	}
	return (0);
}

/* Add path to l unless it is there already (the copy is l's). */
static void
logfiles_add(struct logfiles *l, const char *path)
{
	struct logfile	f;

	memset(&f, 0, sizeof f);
	f.path = (char *)path;
	logfiles_stat(&f);
	if (logfiles_has(l, &f))
		return;
	if (l->n == l->cap) {
		l->cap = l->cap != 0 ? l->cap * 2 : 16;
		l->v = logfiles_alloc(l->v, l->cap, sizeof *l->v);
	}
	if ((f.path = strdup(path)) == NULL) {
		perror("meshlogctl logs");
		exit(1);
	}
	l->v[l->n++] = f;
}

/* Add the rotated segments of path to l, oldest first. */
static void
logfiles_add_segments(struct logfiles *l, const char *path)
{
	char	seg[PATH_MAX];
	int	top, k;

	for (top = 0; top < LOGFILES_SEGMENTS && logfiles_segment(path,
	    top + 1, seg, sizeof seg) == 0; top++)
		;
	for (k = top; k >= 1; k--) {
		if (logfiles_segment(path, k, seg, sizeof seg) == 0)
			logfiles_add(l, seg);
	}
}

char **
logfiles_expand(char **files, size_t n, size_t *out)
{
	struct logfiles	 covered = { NULL, 0, 0 }, all = { NULL, 0, 0 };
	struct logfile	*named, t;
	char		**v;
	size_t		 i, j;

	named = logfiles_alloc(NULL, n > 0 ? n : 1, sizeof *named);
	/* What the logs named hold in segments already. */
	for (i = 0; i < n; i++)
		logfiles_add_segments(&covered, files[i]);
	for (i = 0; i < n; i++) {
		named[i].path = files[i];
		logfiles_stat(&named[i]);
		logfiles_head(&named[i]);
		/* Segments of one log side by side: oldest (largest k) first. */
		for (j = i; j > 0 && named[j - 1].k > 0 &&
		    named[j].k > named[j - 1].k &&
		    strcmp(named[j - 1].head, named[j].head) == 0; j--) {
			t = named[j];
			named[j] = named[j - 1];
			named[j - 1] = t;
		}
	}
	for (i = 0; i < n; i++) {
		if (logfiles_has(&covered, &named[i]))
			continue;	/* read with its log */
		logfiles_add_segments(&all, named[i].path);
		logfiles_add(&all, named[i].path);
	}
	v = logfiles_alloc(NULL, all.n > 0 ? all.n : 1, sizeof *v);
	for (i = 0; i < all.n; i++)
		v[i] = all.v[i].path;
	for (i = 0; i < covered.n; i++)
		free(covered.v[i].path);
	free(covered.v);
	free(all.v);
	free(named);
	*out = all.n;
	return (v);
}
