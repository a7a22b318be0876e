/*
 * The job's account (summary.c): each process's end, the first failure,
 * and the summary record made of them. Included by collector.h
 * at its layer.
 */
#ifndef MESHLOG_SUMMARY_H
#define MESHLOG_SUMMARY_H

/* One process, as it ended or as it runs. */
struct summary_proc {
	long		 rank;		/* -1: none */
	char		 host[256];
	long		 pid;
	char		 program[64];	/* argv[0]'s last part; "" unknown */
	int		 forked;	/* a worker its rank's process forked */
	int		 helper;	/* a program its rank's process ran */
	long		 world_size;	/* -1: not known */
	uint64_t	 lines;
	uint64_t	 warnings;
	uint64_t	 errors;
	int		 have_status;
	int		 status;	/* wait status */
	int		 oom_killed;
	int		 running;
	int		 first_failure;
	int		 relay_lost;	/* its relay was lost: status unknown */
	char		 ended[TS_LEN];	/* "" when not known */
};
/*
 * The last lines of a process (borrowed), and the first of its runtime's
 * last words that came before them, between lines before the last.
 */
struct ending_lines {
	size_t		 n;
	const char	*line[8];
	size_t		 len[8];
	size_t		 nfirst;
	const char	*first[3];
	size_t		 first_len[3];
	uint64_t	 between;
};
/* A process ended; tail: its last lines, for the first failure. */
void	 summary_add(const struct summary_proc *, const struct ending_lines *);
/*
 * The account so far, with the processes still running, as a summary
 * record (new reference); log is the JSON log's path, or NULL.
 */
json_t	*summary_build(const struct summary_proc *live, size_t nlive,
	    const char *log);
/* Whether a process's end failed the job so far (summary_failure). */
int	 summary_any_failure(void);
/*
 * The job was told to end (launch mode): sig (SIGINT, SIGTERM, SIGHUP or
 * SIGQUIT; others are no interrupt) reached its process group (a
 * terminal's ^C, timeout(1), a scheduler) or the collector, which passed
 * it on. The first is kept, with the time; the summary says so, and no
 * end that followed it is announced as the first failure.
 */
void	 summary_interrupt(int sig);
/*
 * Asked when no interrupt is known yet (the signal may be on its way to
 * the collector while a rank it killed is seen dying): a signal to the
 * job that is pending, or 0; its time is then when it was found.
 */
void	 summary_interrupt_probe(int (*probe)(void));
/*
 * Whether a failure at *at (its traceback's beginning, or its death) of a
 * process dead of signal sig (0: of an exit code) was the doing of an
 * interrupt of the job.
 */
int	 summary_interrupted(const struct timespec *at, int sig);
/* Forget every account (tests). */
void	 summary_reset(void);
/*
 * Whether p's end fails the job: any rank's or the command's nonzero end
 * (a rank's: its own process's, not a program it ran); another's crash or
 * OOM kill, or its nonzero code after output.
 */
int	 summary_failure(const struct summary_proc *p);
/*
 * Launch mode's command, started (status NULL) with argv, then ended with
 * *status (argv NULL).
 */
void	 summary_command(const char *host, long pid, char *const *argv,
	    const int *status);
/*
 * The program of a process whose argv begins a0 a1 a2 (NULL where it
 * ends), as a person names it, into buf: the last part of a0, and of
 * the script an interpreter runs ("python3 train.py", "python3 -m
 * torch.distributed.run"); printable ASCII.
 */
void	 summary_program(char *buf, size_t len, const char *a0,
	    const char *a1, const char *a2);

#endif
