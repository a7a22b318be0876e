/* meshlogctl logs: query and follow JSON logs, as journalctl does. */
#ifndef MESHLOG_LOGS_H
#define MESHLOG_LOGS_H

/*
 * Run "meshlogctl logs" with argv[0] "logs". default_log returns the
 * running collector's JSON log (allocated; it exits 3 when no collector
 * answers and 1 when it keeps no log). Returns the exit status: 0 done,
 * 1 a log could not be read, 2 usage.
 */
int	logs_main(int argc, char **argv, char *(*default_log)(void));

#endif
