/* Identity a process reports: rank variables and the managed-stream marker. */

#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

/* Where launchers put the global rank, in order of precedence. */
static const char *const rank_vars[] = {
	"MESHLOG_RANK",			/* explicit override */
	"RANK",				/* torchrun */
	"OMPI_COMM_WORLD_RANK",		/* Open MPI */
	"PMIX_RANK",			/* PMIx (Open MPI 5, Slurm) */
	"PMI_RANK",			/* MPICH, Intel MPI */
	"SLURM_PROCID",			/* srun */
	NULL
};

/* Where launchers put the node-local rank. */
static const char *const local_rank_vars[] = {
	"LOCAL_RANK",
	"OMPI_COMM_WORLD_LOCAL_RANK",
	"MPI_LOCALRANKID",
	"SLURM_LOCALID",
	NULL
};

/* Where launchers put the number of ranks. */
static const char *const world_size_vars[] = {
	"WORLD_SIZE",
	"OMPI_COMM_WORLD_SIZE",
	"PMI_SIZE",
	"SLURM_NTASKS",
	NULL
};

const char *
ident_env(char *const *envp, const char *name)
{
	size_t	n = strlen(name);

	if (envp == NULL)
		return (NULL);
	for (; *envp != NULL; envp++) {
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return (*envp + n + 1);
	}
	return (NULL);
}

int
ident_parse_uint(const char *s, long *out)
{
	long	v = 0;

	if (s == NULL || *s == '\0')
		return (-1);
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return (-1);
		v = v * 10 + (*s - '0');
		if (v > INT_MAX)
			return (-1);
	}
	*out = v;
	return (0);
}

/* First valid value among vars, with the name it came from. */
static long
ident_first(char *const *envp, const char *const *vars, const char **from)
{
	long	v;

	for (; *vars != NULL; vars++) {
		if (ident_parse_uint(ident_env(envp, *vars), &v) == 0) {
			if (from != NULL)
				*from = *vars;
			return (v);
		}
	}
	return (-1);
}

void
ident_ranks(char *const *envp, struct ident_rank *r)
{
	r->rank_var = NULL;
	r->rank = ident_first(envp, rank_vars, &r->rank_var);
	r->local_rank = ident_first(envp, local_rank_vars, NULL);
	r->world_size = ident_first(envp, world_size_vars, NULL);
}

/* Parse one unsigned decimal ending at stop (or NUL); advance *sp. */
static int
ident_ull(const char **sp, char stop, unsigned long long *out)
{
	const char		*s = *sp;
	unsigned long long	 v = 0;

	if (*s < '0' || *s > '9')
		return (-1);
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (ULLONG_MAX - 9) / 10)
			return (-1);
		v = v * 10 + (unsigned long long)(*s - '0');
	}
	if (*s != stop && !(stop == ',' && *s == '\0'))
		return (-1);
	*out = v;
	*sp = s;
	return (0);
}

int
ident_parse_streams(const char *s, struct ident_streams *st)
{
	int	i;

	memset(st, 0, sizeof *st);
	if (s == NULL)
		return (-1);
	for (i = 0; i < 2; i++) {
		if (*s != ',' && *s != '\0') {
			if (ident_ull(&s, ':', &st->dev[i]) != 0)
				return (-1);
			s++;
			if (ident_ull(&s, ',', &st->ino[i]) != 0)
				return (-1);
			st->present[i] = 1;
		}
		if (i == 0) {
			if (*s != ',')
				return (-1);
			s++;
		}
	}
	if (*s != '\0' || (!st->present[0] && !st->present[1]))
		return (-1);
	return (0);
}

int
ident_format_streams(const struct ident_streams *st, char *buf, size_t len)
{
	struct jw	w;
	int		i;

	jw_init(&w, buf, len);
	for (i = 0; i < 2; i++) {
		if (i == 1)
			jw_lit(&w, ",");
		if (!st->present[i])
			continue;
		jw_int(&w, (long long)st->dev[i]);
		jw_lit(&w, ":");
		jw_int(&w, (long long)st->ino[i]);
	}
	return (w.overflow ? -1 : 0);
}

int
ident_socket_path(char *const *envp, char *buf, size_t len)
{
	const char	*s, *xdg;
	struct jw	 w;

	jw_init(&w, buf, len);
	if ((s = ident_env(envp, "MESHLOG_SOCKET")) != NULL && *s != '\0')
		jw_lit(&w, s);
	else if ((xdg = ident_env(envp, "XDG_RUNTIME_DIR")) != NULL &&
	    *xdg == '/') {
		jw_lit(&w, xdg);
		jw_lit(&w, "/meshlog/collector.sock");
	} else {
		jw_lit(&w, "/tmp/meshlog-");
		jw_int(&w, (long long)getuid());
		jw_lit(&w, "/collector.sock");
	}
	return (w.overflow ? -1 : 0);
}

int
ident_parse_owner(const char *s, long *pid, long *bits, long tty[2])
{
	char	 tmp[64];
	char	*field[4], *p;
	long	 v[4];
	int	 n = 0, i;

	if (s == NULL || strlen(s) >= sizeof tmp)
		return (-1);
	strcpy(tmp, s);
	for (p = tmp; n < 4; n++) {
		field[n] = p;
		if ((p = strchr(p, ':')) == NULL) {
			n++;
			break;
		}
		*p++ = '\0';
	}
	if ((n != 2 && n != 4) || p != NULL)
		return (-1);
	for (i = 0; i < n; i++)
		if (ident_parse_uint(field[i], &v[i]) != 0)
			return (-1);
	if (v[0] == 0 || v[1] > 63)
		return (-1);
	*pid = v[0];
	*bits = v[1];
	if (tty != NULL) {
		tty[0] = n == 4 ? v[2] : 0;
		tty[1] = n == 4 ? v[3] : 0;
	}
	return (0);
}
