/*
 * A log file read whole for meshlogctl logs: mapped, or a rotated
 * segment compressed with zstd decompressed onto the heap.
 */

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "logfiles.h"
#include "logmap.h"
#include "outname.h"

/* Decompress the zstd file m->fd into m->p; 0, or -1 said on stderr. */
static int
logmap_unzstd(struct mapped *m)
{
	static char	 in[1 << 17];
	ZSTD_DCtx	*dc;
	ZSTD_inBuffer	 ib;
	ZSTD_outBuffer	 ob;
	size_t		 cap = 1 << 20, rc = 0;
	ssize_t		 r;

	if ((dc = ZSTD_createDCtx()) == NULL || (m->p = malloc(cap)) == NULL)
		goto fail;
	m->heap = 1;
	while ((r = read(m->fd, in, sizeof in)) > 0) {
		ib = (ZSTD_inBuffer){ in, (size_t)r, 0 };
		while (ib.pos < ib.size) {
			if (cap - m->n < (1 << 16)) {
				cap *= 2;
				if ((m->p = realloc(m->p, cap)) == NULL)
					goto fail;
			}
			ob = (ZSTD_outBuffer){ m->p + m->n, cap - m->n, 0 };
			rc = ZSTD_decompressStream(dc, &ob, &ib);
			if (ZSTD_isError(rc)) {
				fprintf(stderr, "meshlogctl logs: %s: %s\n",
				    m->path, ZSTD_getErrorName(rc));
				ZSTD_freeDCtx(dc);
				return (-1);
			}
			m->n += ob.pos;
		}
	}
	ZSTD_freeDCtx(dc);
	if (r == -1 || rc != 0) {
		fprintf(stderr, "meshlogctl logs: %s: %s\n", m->path, r == -1 ?
		    strerror(errno) : "cut short (a compressed segment being "
		    "written?)");
		return (-1);
	}
	return (0);
fail:
	ZSTD_freeDCtx(dc);
	perror("meshlogctl logs");
	return (-1);
}

/* Map path whole (a .zst file: decompressed); 0, or -1 said on stderr. */
int
logmap_open(const char *path, struct mapped *m)
{
	struct stat	sb;
	size_t		len = strlen(path);

	m->path = strdup(path);
	m->p = NULL;
	m->n = 0;
	m->heap = 0;
	if (m->path == NULL) {
		perror("meshlogctl logs");
		exit(1);
	}
	if ((m->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(m->fd, &sb) == -1) {
		fprintf(stderr, "meshlogctl logs: %s: %s\n", path,
		    strerror(errno));
		if (m->fd != -1)
			close(m->fd);
		m->fd = -1;
		return (-1);
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr, "meshlogctl logs: %s: not a regular file\n",
		    path);
		close(m->fd);
		m->fd = -1;
		return (-1);
	}
	if (len > 4 && strcmp(path + len - 4, ".zst") == 0)
		return (logmap_unzstd(m));
	if (sb.st_size == 0)
		return (0);
	m->n = (size_t)sb.st_size;
	m->p = mmap(NULL, m->n, PROT_READ, MAP_PRIVATE, m->fd, 0);
	if (m->p == MAP_FAILED) {
		fprintf(stderr, "meshlogctl logs: %s: %s\n", path,
		    strerror(errno));
		close(m->fd);
		m->fd = -1;
		m->p = NULL;
		return (-1);
	}
	return (0);
}

void
logmap_close(struct mapped *m)
{
	if (m->heap)
		free(m->p);
	else if (m->p != NULL)
		munmap(m->p, m->n);
	if (m->fd != -1)
		close(m->fd);
	free(m->path);
	memset(m, 0, sizeof *m);
	m->fd = -1;
}

long long
logmap_segment_head(const char *path, int k)
{
	struct mapped	 m;
	char		 seg[PATH_MAX];
	long long	 h = -1;

	if (logfiles_segment(path, k, seg, sizeof seg) != 0)
		return (-1);
	if (logmap_open(seg, &m) == 0 && m.n > 0)
		h = outname_segment_head(m.p, m.n);
	logmap_close(&m);
	return (h);
}
