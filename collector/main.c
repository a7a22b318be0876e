/* meshlog-collector: options, start-up, the event loop and the final drain. */

#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "collector.h"

struct config		 cfg;
struct event_base	*base;

static int		 quit;
static int		 launching;

static const char usage_text[] =
"usage: meshlog-collector [options] [-- command [args...]]\n"
"\n"
"Collects the stdout and stderr of every process that loads\n"
"libmeshlog_preload.so, prints one console view of them and writes a\n"
"lossless JSON Lines log. With a command, runs it with the preload library\n"
"and exits with its exit status once its output is drained; without one,\n"
"serves until SIGINT or SIGTERM.\n"
"\n"
"  -s, --socket PATH     control socket (default: $XDG_RUNTIME_DIR/meshlog/\n"
"                        collector.sock, else /tmp/meshlog-$UID/collector.sock;\n"
"                        with a command, a private socket in that directory)\n"
"  -j, --json PATH       append one JSON record per line to PATH\n"
"  -q, --quiet           no console view\n"
"      --tee             copy raw output to each process's original stdout/\n"
"                        stderr (default without a command)\n"
"      --no-tee          do not (default with a command: the console view\n"
"                        stands in for the raw output)\n"
"      --line-max BYTES  cut records longer than this (default 4096)\n"
"      --aggregate SECONDS|off\n"
"                        print similar lines of different processes once per\n"
"                        window, with their count and ranks (default 3);\n"
"                        off prints every line as it comes\n"
"      --level LEVEL     console shows lines of this severity and above\n"
"                        (DEBUG, INFO, WARNING, ERROR, CRITICAL or 10-50);\n"
"                        lines with no recognisable severity always show.\n"
"                        The JSON log keeps every line.\n"
"      --hello-timeout SECONDS\n"
"                        close a connection that sends no complete message\n"
"                        in this time (default 10)\n"
"  -v, --verbose         more diagnostics on stderr\n"
"  -V, --version         print the version\n"
"  -h, --help            this text\n"
"\n"
"Environment for the processes: MESHLOG_SOCKET, MESHLOG_RANK,\n"
"MESHLOG_BUFFERING=keep, MESHLOG_QUIET=1, MESHLOG_DISABLE=1,\n"
"MESHLOG_TIMEOUT_MS; see meshlog-collector(1).\n";

/* Say what is wrong with an argument and exit with status 2. */
static void __attribute__((noreturn))
usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "meshlog-collector: %s, not '%s'\n"
	    "Try 'meshlog-collector --help'.\n", what, arg);
	exit(2);
}

/* The default socket path, or a private one for launch mode. */
static char *
default_socket(int launch)
{
	const char	*xdg = getenv("XDG_RUNTIME_DIR");
	char		*dir, *path;
	struct stat	 sb;

	if (xdg != NULL && *xdg == '/')
		xasprintf(&dir, "%s/meshlog", xdg);
	else
		xasprintf(&dir, "/tmp/meshlog-%lu", (unsigned long)getuid());
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		fatal("cannot create %s", dir);
	if (lstat(dir, &sb) != 0)
		fatal("%s", dir);
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid())
		fatalx("%s is not a directory owned by this user; refusing "
		    "to put the socket there", dir);
	if ((sb.st_mode & 077) != 0 && chmod(dir, 0700) != 0)
		fatal("chmod 0700 %s", dir);
	if (launch)
		xasprintf(&path, "%s/launch-%ld.sock", dir, (long)getpid());
	else
		xasprintf(&path, "%s/collector.sock", dir);
	free(dir);
	return (path);
}

/* SIGINT, SIGTERM, SIGHUP. */
static void
signal_cb(int sig, short what, void *arg)
{
	pid_t	fg;

	if (!launching) {
		log_debug("signal %d: draining and exiting", sig);
		quit = 1;
		return;
	}
	/*
	 * A terminal's ^C already reached the command (same foreground
	 * process group); anything else is passed on.
	 */
	if (sig == SIGINT && (fg = tcgetpgrp(STDIN_FILENO)) != -1 &&
	    fg == getpgrp())
		return;
	launch_signal(sig);
}

/* SIGCHLD: the loop checks the command after every pass. */
static void
sigchld_cb(int sig, short what, void *arg)
{
}

/* Let the collector hold a descriptor set per source for many sources. */
static void
raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "tee", no_argument, NULL, 'T' },
		{ "no-tee", no_argument, NULL, 'N' },
		{ "line-max", required_argument, NULL, 'L' },
		{ "aggregate", required_argument, NULL, 'A' },
		{ "level", required_argument, NULL, 'l' },
		{ "hello-timeout", required_argument, NULL, 'H' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct event	*ev[4];
	char		*path = NULL, *end;
	int		 c, tee = -1, status = 0, i;
	long		 v;
	double		 secs;
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGCHLD };

	cfg.console = 1;
	cfg.line_max = LINE_MAX_DEFAULT;
	cfg.hello_timeout = 10;
	cfg.aggregate = 3;
	cfg.level = 0;
	while ((c = getopt_long(argc, argv, "+s:j:qvVh", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 's':
			cfg.socket_path = optarg;
			break;
		case 'j':
			cfg.json_path = optarg;
			break;
		case 'q':
			cfg.console = 0;
			break;
		case 'T':
			tee = 1;
			break;
		case 'N':
			tee = 0;
			break;
		case 'L':
			if (ident_parse_uint(optarg, &v) != 0 || v < 64 ||
			    v > 16 * 1024 * 1024)
				usage_error("--line-max takes 64 to 16777216 "
				    "bytes", optarg);
			cfg.line_max = (size_t)v;
			break;
		case 'A':
			if (strcmp(optarg, "off") == 0) {
				cfg.aggregate = 0;
				break;
			}
			secs = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || !(secs > 0) ||
			    secs > 3600)
				usage_error("--aggregate takes seconds (0 to "
				    "3600) or 'off'", optarg);
			cfg.aggregate = secs;
			break;
		case 'l':
			if ((cfg.level = (int)level_by_name(optarg)) == -1)
				usage_error("--level takes DEBUG, INFO, "
				    "WARNING, ERROR, CRITICAL or 0-50", optarg);
			break;
		case 'H':
			if (ident_parse_uint(optarg, &v) != 0 || v < 1 ||
			    v > 3600)
				usage_error("--hello-timeout takes 1 to 3600 "
				    "seconds", optarg);
			cfg.hello_timeout = (int)v;
			break;
		case 'v':
			cfg.verbose++;
			break;
		case 'V':
			printf("meshlog-collector %s\n", PACKAGE_VERSION);
			return (0);
		case 'h':
			fputs(usage_text, stdout);
			return (0);
		default:
			fprintf(stderr, "Try 'meshlog-collector --help'.\n");
			return (2);
		}
	}
	if (optind < argc)
		cfg.command = argv + optind;
	launching = cfg.command != NULL;
	cfg.tee = tee != -1 ? tee : !launching;
	log_open("meshlog-collector", cfg.verbose);

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	keeper_start();
	if ((base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	path = cfg.socket_path != NULL ? xstrdup(cfg.socket_path) :
	    default_socket(launching);
	cfg.socket_path = path;
	control_init();
	server_open(path);
	if (cfg.json_path != NULL && jsonlog_open(cfg.json_path) != 0)
		fatal("cannot open JSON log %s", cfg.json_path);
	console_open();
	aggregate_set_window(cfg.aggregate);
	for (i = 0; i < 4; i++) {
		ev[i] = evsignal_new(base, sigs[i], sigs[i] == SIGCHLD ?
		    sigchld_cb : signal_cb, NULL);
		if (ev[i] == NULL || event_add(ev[i], NULL) != 0)
			fatalx("cannot watch signals");
	}
	if (launching)
		launch_start(cfg.command, path);
	else
		log_info("listening on %s", path);

	while (!quit) {
		event_base_loop(base, EVLOOP_ONCE);
		jsonlog_flush();
		dest_flush_pending();
		if (launching && launch_done(&status))
			break;
	}

	/* Final drain: pending hellos, a barrier, then every byte left. */
	server_poll_pending();
	event_base_loop(base, EVLOOP_NONBLOCK);
	json_decref(control_flush(2000));
	source_drain_all();
	source_close_all("collector_exit");
	aggregate_flush();
	/* Drops are recorded in the JSON log, so it closes last. */
	dest_drain_all(2000);
	jsonlog_close();
	server_close();
	runtime_cleanup();
	for (i = 0; i < 4; i++)
		event_free(ev[i]);
	free(path);
	cfg.socket_path = NULL;
	return (status);
}
