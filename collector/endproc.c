/*
 * How a process died, as /proc and its memory cgroup tell (ending.c's):
 * the wait status of a zombie the collector cannot reap (not its child),
 * and whether the kernel's OOM killer killed it.
 */

#include <sys/syscall.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source.h"

/* A small file of /proc or the cgroup tree into buf, NUL-terminated;
 * 0, or -1. */
static int
ending_read(const char *path, char *buf, size_t len)
{
	ssize_t	n;
	int	f;

	if (path == NULL || (f = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	n = read(f, buf, len - 1);
	close(f);
	if (n <= 0)
		return (-1);
	buf[n] = '\0';
	return (0);
}

/*
 * The kernel's count of OOM kills in the memory cgroup at path (cgroup v2
 * memory.events or v1 memory.oom_control: "oom_kill N"), or -1.
 */
static long long
ending_oom_count(const char *path)
{
	char	buf[1024], *p;

	if (ending_read(path, buf, sizeof buf) != 0)
		return (-1);
	if ((p = strstr(buf, "oom_kill ")) == NULL)
		return (-1);
	return (strtoll(p + 9, NULL, 10));
}

/*
 * Where the kernel counts OOM kills for src's memory cgroup, from
 * /proc/PID/cgroup: cgroup v2 ("0::/path") or v1 ("N:memory:/path").
 * Allocated, or NULL.
 */
static char *
ending_oom_path(struct source *src)
{
	static const char *const v2[] = { "/sys/fs/cgroup",
	    "/sys/fs/cgroup/unified" };
	char		 path[64], buf[4096], *line, *save, *cg = NULL, *m;
	char		*file = NULL;
	int		 v1 = 0;
	size_t		 i;

	snprintf(path, sizeof path, "/proc/%ld/cgroup", src->pid);
	if (ending_read(path, buf, sizeof buf) != 0)
		return (NULL);
	/* A v1 memory line wins over the v2 one ("0::"), wherever each is. */
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((m = strstr(line, ":memory:")) != NULL) {
			cg = m + 8;
			v1 = 1;
			break;
		}
		if (strncmp(line, "0::", 3) == 0)
			cg = line + 3;
	}
	if (cg == NULL || strstr(cg, "..") != NULL)
		return (NULL);
	if (v1)
		xasprintf(&file, "/sys/fs/cgroup/memory%s/memory.oom_control",
		    strcmp(cg, "/") == 0 ? "" : cg);
	else {
		for (i = 0; i < sizeof v2 / sizeof v2[0]; i++) {
			free(file);
			xasprintf(&file, "%s%s/memory.events", v2[i],
			    strcmp(cg, "/") == 0 ? "" : cg);
			if (access(file, R_OK) == 0)
				break;
		}
	}
	return (file);
}

/* Note src's memory cgroup and its OOM kills so far; at registration. */
void
ending_oom_watch(struct source *src)
{
	char	*file = ending_oom_path(src);

	if ((src->oom_base = ending_oom_count(file)) < 0) {
		free(file);
		return;
	}
	src->oom_path = file;
}

/*
 * Whether the kernel's OOM killer killed src (dead by SIGKILL): the memory
 * cgroup it registered in counted a kill since. Inferred: another process
 * of the same cgroup killed at the same time counts too. (A zombie's
 * /proc/PID/cgroup names the root, so the cgroup is the one it started
 * in.)
 */
int
ending_oom_killed(struct source *src)
{
	return (src->oom_path != NULL &&
	    ending_oom_count(src->oom_path) > src->oom_base);
}

/* A zombie's wait status from /proc/PID/stat; 0, or -1 when not one. */
int
ending_zombie_status(struct source *src, int *status)
{
	char		 path[64], buf[1024], *p, *save;
	int		 i;

	snprintf(path, sizeof path, "/proc/%ld/stat", src->pid);
	if (ending_read(path, buf, sizeof buf) != 0)
		return (-1);
	/* After the name, in parentheses that it may contain itself. */
	if ((p = strrchr(buf, ')')) == NULL)
		return (-1);
	p = strtok_r(p + 1, " ", &save);
	if (p == NULL || (*p != 'Z' && *p != 'X'))
		return (-1);
	/* exit_code is field 52; the state was field 3. */
	for (i = 3; i < 52 && p != NULL; i++)
		p = strtok_r(NULL, " \n", &save);
	if (p == NULL)
		return (-1);
	*status = atoi(p);
	/* Still our zombie (not reaped, the pid not reused) after the read. */
	if (syscall(SYS_pidfd_send_signal, src->pidfd, 0, NULL, 0) != 0)
		return (-1);
	return (0);
}
