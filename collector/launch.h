/*
 * Launch mode (launch.c): the command the collector runs, started as if
 * the collector were not there, and its end passed on. Included by
 * launch.c and main.c.
 */
#ifndef MESHLOG_LAUNCH_H
#define MESHLOG_LAUNCH_H

/* Note what the job inherits (signals, mask, limit, closed 0-2); first. */
void	launch_note_inherited(void);
/* Whether we are in our terminal's foreground (^C reaches the command). */
int	launch_foreground(void);
/* Whether sig was ignored when the collector started (nohup). */
int	launch_ignored(int sig);
/* Path of the preload library this collector should use. */
const char *launch_shim_path(void);
/* Start the command with the shim; exits on error. */
void	launch_start(char *const *argv, const char *socket_path);
/* Whether the command has exited; *status gets the exit code to use. */
int	launch_done(int *status);
/* Die of the signal that killed the command, if one did; last thing. */
void	launch_end_as_child(void);
/* The command's pid; *raw (if not NULL) its wait status once launch_done
 * said so. */
long	launch_child(int *raw);
/* Forward a termination signal to the command. */
void	launch_signal(int sig);
/* Whether the command runs in the collector's process group. */
int	launch_in_our_group(void);
/* The signals passed on, which the keeper holds (keeper_start). */
void	launch_hold(sigset_t *set);
/*
 * Whether signal sig, which the collector got, was sent to the whole
 * process group rather than to the collector alone: the keeper, in that
 * group, has it pending too (and is told to let it go). 1 yes, 0 no, -1
 * cannot tell (no keeper).
 */
int	launch_group_signal(int sig);
/*
 * A signal that tells the job to end (SIGINT, SIGTERM, SIGHUP, SIGQUIT)
 * sent to the command's process group and not yet taken (the keeper has
 * it pending), or 0 (summary_interrupt_probe).
 */
int	launch_group_ending(void);

#endif
