/* meshlog-collector: options, start-up, the event loop and the final drain. */

#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "collector.h"
#include "keeper.h"
#include "launch.h"

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
"and ends as it did (its exit status, or its signal) once its output is\n"
"drained; without one, serves until SIGINT or SIGTERM; SIGHUP reopens the\n"
"JSON log.\n"
"\n"
"  -s, --socket PATH     control socket (default: $XDG_RUNTIME_DIR/meshlog/\n"
"                        collector.sock, else /tmp/meshlog-$UID/collector.sock;\n"
"                        with a command, a private socket in that directory)\n"
"  -j, --json PATH       append one JSON record per line to PATH\n"
"  -q, --quiet           no console view (with a command, the job's raw\n"
"                        output then passes through to this one's stdout\n"
"                        and stderr)\n"
"      --tee             copy raw output bound for this collector's own\n"
"                        stdout/stderr there (default without a command,\n"
"                        and with -q)\n"
"      --no-tee          do not (default with a command: the console view\n"
"                        stands in for it). Output bound anywhere else\n"
"                        (files, pipes, terminals the job makes) always\n"
"                        passes through, with back-pressure, never dropped\n"
"      --line-max BYTES  cut records longer than this (default 4096)\n"
"      --json-max-size SIZE\n"
"                        rotate the JSON log once it holds SIZE (bytes, or\n"
"                        with K, M, G): run.jsonl becomes run.1.jsonl.zst\n"
"                        (compressed with zstd by a child process), older\n"
"                        segments move up, a new run.jsonl starts\n"
"      --json-keep N     rotated segments kept (default 10); the oldest\n"
"                        past N is removed\n"
"      --output-dir DIR  also write each process's output as it wrote it\n"
"                        to DIR/HOST/rank-N.stdout.log and .stderr.log\n"
"                        (rank-N.pid-P.* for a rank's other processes,\n"
"                        pid-P.* without a rank)\n"
"      --aggregate SECONDS|off\n"
"                        let a line wait this long for similar lines of other\n"
"                        processes, printed once with their ranks and each\n"
"                        rank's values (default 0.25; at most 0.5 is used, so\n"
"                        a line shows within half a second); off prints\n"
"                        every line as it comes\n"
"      --console-level LEVEL\n"
"                        console shows lines of this severity and above\n"
"                        (DEBUG, INFO, WARNING, ERROR, CRITICAL or 0-50);\n"
"                        lines with no recognisable severity always show\n"
"                        (--level is its old name)\n"
"      --timestamps[=wall|elapsed]\n"
"                        begin console lines with the time they were read:\n"
"                        local time (wall, the default) or seconds since\n"
"                        the collector started (elapsed)\n"
"      --color=auto|always|never\n"
"                        colour ranks' prefixes and alerts (auto: on a\n"
"                        terminal, unless NO_COLOR is set)\n"
"      --console-ranks LIST\n"
"                        console shows only these ranks (0,3-5) and the\n"
"                        processes that have no rank. Neither option changes\n"
"                        what programs write: the JSON log keeps every line\n"
"                        (meshlogctl set-level changes the programs' level)\n"
"      --stall SECONDS   say when a rank has written nothing for this long\n"
"                        while other ranks write, and when it writes again\n"
"                        (default off: ranks that are silent by design,\n"
"                        such as all but rank 0, would be named)\n"
"      --hello-timeout SECONDS\n"
"                        close a connection that sends no complete message\n"
"                        in this time, or sends nothing more for this long\n"
"                        after its last answer (default 10)\n"
"\n"
"Across hosts (see meshlog-collector(1), MULTI-HOST):\n"
"      --listen-tcp ADDR:PORT\n"
"                        accept relay collectors here ([::]:PORT for IPv6,\n"
"                        *:PORT for every address); this one shows the\n"
"                        console view and writes the log of the whole mesh\n"
"      --upstream tcp://HOST:PORT\n"
"                        relay this host's records to that collector (no\n"
"                        console view here; -j still writes a local log)\n"
"      --token-file PATH shared token proving both ends (mode 0600; default\n"
"                        $MESHLOG_TOKEN_FILE); needed with the two above\n"
"      --spool-memory SIZE  records kept in memory while the upstream is\n"
"                        unreachable (default 64M)\n"
"      --spool-disk SIZE then in a file, up to this (default 1G; 0: none)\n"
"      --spool-dir DIR   where that file goes (default: the socket's dir)\n"
"      --link-timeout SECONDS\n"
"                        a link with nothing heard for this long is lost\n"
"                        (default 15)\n"
"      --reconnect-max SECONDS\n"
"                        longest wait between reconnects (default 5)\n"
"      --idle-exit SECONDS\n"
"                        exit once nothing is connected and the spool is\n"
"                        delivered for this long (default: never)\n"
"      --ready-fd FD     write \"ready\" to FD once serving, then close it\n"
"                        (how the preload library waits for a relay)\n"
"  -v, --verbose         more diagnostics on stderr\n"
"  -V, --version         print the version\n"
"  -h, --help            this text\n"
"\n"
"Environment for the processes: MESHLOG_SOCKET, MESHLOG_RANK,\n"
"MESHLOG_BUFFERING=keep, MESHLOG_QUIET=1, MESHLOG_DISABLE=1,\n"
"MESHLOG_TIMEOUT_MS, MESHLOG_UPSTREAM, MESHLOG_TOKEN_FILE;\n"
"see meshlog-collector(1).\n";

/* Say what is wrong with an argument and exit with status 2. */
static void __attribute__((noreturn))
usage_error(const char *what, const char *arg)
{
	if (arg != NULL)
		fprintf(stderr, "meshlog-collector: %s, not '%s'\n", what, arg);
	else
		fprintf(stderr, "meshlog-collector: %s\n", what);
	fputs("Try 'meshlog-collector --help'.\n", stderr);
	exit(2);
}

/* A launch's own socket directory, made when the default was taken. */
static char	*launch_dir;

/*
 * The default socket path, or a private one for launch mode; its
 * directory is made and checked by server_open(). Anyone may make
 * /tmp/meshlog-UID first, which the check refuses: a launch then makes
 * a directory of its own beside it (meshlogctl finds it there) rather
 * than let another user keep it from starting.
 */
static char *
default_socket(int launch)
{
	const char	*xdg = getenv("XDG_RUNTIME_DIR");
	struct stat	 sb;
	char		*dir, *path, *own;

	if (xdg != NULL && *xdg == '/')
		xasprintf(&dir, "%s/meshlog", xdg);
	else
		xasprintf(&dir, "/tmp/meshlog-%lu", (unsigned long)getuid());
	if (launch && lstat(dir, &sb) == 0 && !dir_is_mine(&sb)) {
		xasprintf(&own, "%s.XXXXXX", dir);
		if (mkdtemp(own) != NULL) {
			log_warn("%s is not a directory of this user's alone "
			    "(owner %lu, mode %03o): the control socket goes "
			    "in %s", dir, (unsigned long)sb.st_uid,
			    (unsigned)(sb.st_mode & 0777), own);
			free(dir);
			dir = launch_dir = own;
		} else
			free(own);
	}
	if (launch)
		xasprintf(&path, "%s/launch-%ld.sock", dir, (long)getpid());
	else
		xasprintf(&path, "%s/collector.sock", dir);
	if (dir != launch_dir)
		free(dir);
	return (path);
}

/*
 * How long a signal sent to the collector alone waits before it is passed
 * on, for one sent to the process group that may follow it: timeout(1)
 * signals the collector, then the group. And how long after one sent to
 * the group the same signal is taken for the other half of it.
 */
#define FORWARD_WAIT_MS	50

static struct event	*forward_ev[NSIG];
static long long	 group_seen_ms[NSIG];	/* last one sent to the group */

/* Say once what became of the first of each signal. */
static void
signal_said(int sig, int group)
{
	static char	said[NSIG];
	char		text[128], name[32];

	/* Who ended the job, when it was not its own doing: said once. */
	summary_interrupt(sig);
	if (said[sig]++)
		return;
	summary_signame(sig, name, sizeof name);
	snprintf(text, sizeof text, group ? "%s received by the process "
	    "group of the command (pid %ld)\n" : "%s received: passed on "
	    "to the command (pid %ld)\n", name, (long)launch_child(NULL));
	console_text("meshlog: ");
	console_text(text);
	log_debug("%s", text);
}

/* A signal sent to the collector alone, FORWARD_WAIT_MS ago. */
static void
forward_cb(int fd, short what, void *arg)
{
	int	sig = (int)(intptr_t)arg;

	if (launch_group_signal(sig) == 1 && launch_in_our_group()) {
		group_seen_ms[sig] = clock_now_ms();
		signal_said(sig, 1);
		return;
	}
	signal_said(sig, 0);
	launch_signal(sig);
}

/*
 * Stop as SIGTSTP's default would (not at all in an orphaned process
 * group), with libevent's handler put back once continued.
 */
static void
stop_self(void)
{
	struct sigaction	sa, old;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTSTP, &sa, &old) != 0)
		return;
	(void)raise(SIGTSTP);
	(void)sigaction(SIGTSTP, &old, NULL);
}

/* Serving, SIGINT, SIGTERM and SIGHUP; with a command, those it passes on. */
static void
signal_cb(int sig, short what, void *arg)
{
	struct timeval	wait = { 0, FORWARD_WAIT_MS * 1000 };
	char		name[32];
	int		group, seen;

	/* Serving, SIGHUP reopens the JSON log (after logrotate's mv). */
	if (!launching && sig == SIGHUP) {
		if (cfg.json_path != NULL &&
		    jsonlog_reopen(cfg.json_path) != 0)
			log_warn("cannot reopen %s: %s; writing on to the "
			    "old file", cfg.json_path, jsonlog_error(errno));
		else
			log_debug("SIGHUP: JSON log reopened");
		return;
	}
	if (!launching) {
		log_debug("signal %d: draining and exiting", sig);
		quit = 1;
		return;
	}
	if (sig <= 0 || sig >= NSIG)
		return;
	/*
	 * A signal sent to the whole process group (timeout(1), kill --
	 * -PGID, a script's kill 0, a terminal's ^C or ^\) reached the
	 * keeper too, and the command if it is still in that group: passed
	 * on, the command would get it twice. A terminal's ^C or ^\ is not
	 * even said. Without a keeper to ask, ^C and ^\ are told by the
	 * collector being in its terminal's foreground. Anything else, a
	 * kill -INT of the collector alone too, is passed on, once no such
	 * signal to the group followed it.
	 */
	seen = launch_group_signal(sig);
	group = seen == 1 && launch_in_our_group();
	/* Sent to the job's group, whether or not its command still runs. */
	if (seen == 1)
		summary_interrupt(sig);
	if (group) {
		group_seen_ms[sig] = clock_now_ms();
		if (forward_ev[sig] != NULL)
			evtimer_del(forward_ev[sig]);
	}
	if ((sig == SIGINT || sig == SIGQUIT) && (seen == -1 || group) &&
	    launch_foreground()) {
		summary_interrupt(sig);
		return;
	}
	/*
	 * A stop or a continue waits for no pair: passed on at once when
	 * sent to the collector alone. Stopped, the collector stops too, as
	 * the command would have, so that the shell sees its job stopped.
	 */
	if (sig == SIGTSTP || sig == SIGCONT) {
		if (!group && !(seen == -1 && launch_foreground())) {
			summary_signame(sig, name, sizeof name);
			log_debug("%s received: passed on to pid %ld", name,
			    launch_child(NULL));
			launch_signal(sig);
		}
		if (sig == SIGTSTP)
			stop_self();
		return;
	}
	if (group) {
		signal_said(sig, 1);
		return;
	}
	/* The collector's own half of timeout's two (it and the group). */
	if (seen == 0 && group_seen_ms[sig] != 0 &&
	    clock_now_ms() - group_seen_ms[sig] < FORWARD_WAIT_MS)
		return;
	/* With no keeper to ask, nothing to wait for: passed on now. */
	if (seen == -1 || (forward_ev[sig] == NULL && (forward_ev[sig] =
	    evtimer_new(base, forward_cb, (void *)(intptr_t)sig)) == NULL)) {
		forward_cb(-1, 0, (void *)(intptr_t)sig);
		return;
	}
	if (!evtimer_pending(forward_ev[sig], NULL))
		evtimer_add(forward_ev[sig], &wait);
}

/* SIGCHLD: the loop checks the command after every pass. */
static void
sigchld_cb(int sig, short what, void *arg)
{
}

/*
 * The job is over: its summary, a record in the JSON log and, on the
 * console, one line when all went well, a table when not.
 */
static void
summarize(void)
{
	struct timespec	 now;
	char		 ts[TS_LEN], *text;
	json_t		*s = source_summary();

	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	json_object_set_new(s, "ts", json_string(ts));
	jsonlog_event(s);
	if ((text = summary_text(s, console_colour())) != NULL) {
		console_text("meshlog: ");
		console_text(text);
		free(text);
	}
	json_decref(s);
}

/* Parse a size: bytes, or with K, M or G. -1 when invalid. */
static long long
parse_size(const char *s)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || v < 0 || errno != 0 || v > (LLONG_MAX >> 30))
		return (-1);
	switch (*end) {
	case 'k': case 'K':
		v <<= 10;
		end++;
		break;
	case 'm': case 'M':
		v <<= 20;
		end++;
		break;
	case 'g': case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end == 'B' || *end == 'i')
		end += end[0] == 'i' && end[1] == 'B' ? 2 : 1;
	return (*end == '\0' ? v : -1);
}

/* Whole seconds in [min, max] as milliseconds, or exit with usage. */
static int
parse_ms(const char *opt, const char *arg, double min, double max)
{
	char	*end;
	double	 secs = strtod(arg, &end);
	char	 what[128];

	if (*arg == '\0' || *end != '\0' || !(secs >= min) || secs > max) {
		snprintf(what, sizeof what, "%s takes %g to %g seconds", opt,
		    min, max);
		usage_error(what, arg);
	}
	return ((int)(secs * 1000));
}

/* Exit once nothing is connected and the spool is delivered. */
static void
idle_cb(int fd, short what, void *arg)
{
	static int	idle;

	if (source_count() + source_remote_count() > 0 || link_count() > 0 ||
	    !upstream_idle() || server_peer_count() > 0) {
		idle = 0;
		return;
	}
	if (++idle >= cfg.idle_exit) {
		log_info("idle for %d s: exiting", cfg.idle_exit);
		quit = 1;
	}
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
		{ "stall", required_argument, NULL, 'W' },
		{ "console-level", required_argument, NULL, 'l' },
		{ "level", required_argument, NULL, 'E' },
		{ "console-ranks", required_argument, NULL, 'C' },
		{ "timestamps", optional_argument, NULL, 'Z' },
		{ "color", required_argument, NULL, 'X' },
		{ "colour", required_argument, NULL, 'X' },
		{ "hello-timeout", required_argument, NULL, 'H' },
		{ "listen-tcp", required_argument, NULL, 'P' },
		{ "upstream", required_argument, NULL, 'U' },
		{ "token-file", required_argument, NULL, 'K' },
		{ "spool-memory", required_argument, NULL, 'M' },
		{ "spool-disk", required_argument, NULL, 'D' },
		{ "spool-dir", required_argument, NULL, 'S' },
		{ "json-max-size", required_argument, NULL, 1001 },
		{ "json-keep", required_argument, NULL, 1002 },
		{ "output-dir", required_argument, NULL, 1003 },
		{ "link-timeout", required_argument, NULL, 'O' },
		{ "reconnect-max", required_argument, NULL, 'R' },
		{ "idle-exit", required_argument, NULL, 'I' },
		{ "ready-fd", required_argument, NULL, 'F' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct event	*ev[NSIG] = { NULL }, *idle = NULL;
	struct timeval	 second = { 1, 0 };
	sigset_t	 hold;
	char		*path = NULL, *end, *cause = NULL, *copy, *cwd, *abs;
	long long	 size, json_max = 0;
	int		 json_keep = 0;
	const char	*output_dir = NULL;
	int		 c, tee = -1, status = 0, i, raw, swept, sep;
	long		 v, pid;
	double		 secs;

	launch_note_inherited();
	cfg.console = 1;
	cfg.line_max = LINE_MAX_DEFAULT;
	cfg.hello_timeout = 10;
	cfg.aggregate = 0.25;
	cfg.level = 0;
	cfg.spool_memory = 64 << 20;
	cfg.spool_disk = 1 << 30;
	cfg.link_timeout_ms = 15000;
	cfg.reconnect_max_ms = 5000;
	cfg.token_file = getenv("MESHLOG_TOKEN_FILE");
	cfg.ready_fd = -1;
	for (;;) {
		sep = optind;	/* where a "--" that ends the options is */
		if ((c = getopt_long(argc, argv, "+s:j:qvVh", longopts,
		    NULL)) == -1)
			break;
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
		case 'W':
			secs = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || !(secs > 0) ||
			    secs > 86400)
				usage_error("--stall takes seconds (more than 0, "
				    "at most 86400)", optarg);
			cfg.stall = secs;
			break;
		case 'E':
			fprintf(stderr, "meshlog-collector: --level is now "
			    "--console-level (it filters the console only)\n");
			/* FALLTHROUGH */
		case 'l':
			if ((cfg.level = (int)level_by_name(optarg)) == -1)
				usage_error("--console-level takes DEBUG, INFO, "
				    "WARNING, ERROR, CRITICAL or 0-50", optarg);
			break;
		case 'Z':
			if (optarg == NULL || strcmp(optarg, "wall") == 0)
				cfg.timestamps = CONSOLE_TS_WALL;
			else if (strcmp(optarg, "elapsed") == 0)
				cfg.timestamps = CONSOLE_TS_ELAPSED;
			else
				usage_error("--timestamps takes wall or elapsed",
				    optarg);
			break;
		case 'X':
			if (strcmp(optarg, "auto") == 0)
				cfg.colour = 0;
			else if (strcmp(optarg, "always") == 0)
				cfg.colour = 1;
			else if (strcmp(optarg, "never") == 0)
				cfg.colour = -1;
			else
				usage_error("--color takes auto, always or never",
				    optarg);
			break;
		case 'C':
			free(cfg.ranks);
			if (rankset_parse(optarg, &cfg.ranks, &cfg.nranks) != 0)
				usage_error("--console-ranks takes a list of "
				    "ranks like 0,2-5", optarg);
			break;
		case 'H':
			if (ident_parse_uint(optarg, &v) != 0 || v < 1 ||
			    v > 3600)
				usage_error("--hello-timeout takes 1 to 3600 "
				    "seconds", optarg);
			cfg.hello_timeout = (int)v;
			break;
		case 'P':
			if (wire_split_hostport(optarg, &copy, &end) != 0)
				usage_error("--listen-tcp takes ADDR:PORT, "
				    "[IPV6]:PORT or *:PORT", optarg);
			free(copy);
			free(end);
			cfg.listen_tcp = optarg;
			break;
		case 'U':
			cfg.upstream = optarg;
			break;
		case 'K':
			cfg.token_file = optarg;
			break;
		case 'M':
			if ((size = parse_size(optarg)) < (1 << 20))
				usage_error("--spool-memory takes a size of at "
				    "least 1M (bytes, or with K, M, G)", optarg);
			cfg.spool_memory = (size_t)size;
			break;
		case 'D':
			if ((size = parse_size(optarg)) < 0)
				usage_error("--spool-disk takes a size (bytes, "
				    "or with K, M, G; 0 for none)", optarg);
			cfg.spool_disk = (size_t)size;
			break;
		case 1001:
			if ((size = parse_size(optarg)) < (1 << 20) && size != 0)
				usage_error("--json-max-size takes a size of at "
				    "least 1M (bytes, or with K, M, G; 0 for no "
				    "rotation)", optarg);
			json_max = size;
			break;
		case 1002:
			if (ident_parse_uint(optarg, &v) != 0 || v < 1 ||
			    v > 1000)
				usage_error("--json-keep takes 1 to 1000 "
				    "segments", optarg);
			json_keep = (int)v;
			break;
		case 1003:
			if (*optarg == '\0')
				usage_error("--output-dir takes a directory",
				    optarg);
			output_dir = optarg;
			break;
		case 'S':
			cfg.spool_dir = optarg;
			break;
		case 'O':
			cfg.link_timeout_ms = parse_ms("--link-timeout",
			    optarg, 0.3, 3600);
			break;
		case 'R':
			cfg.reconnect_max_ms = parse_ms("--reconnect-max",
			    optarg, 0.1, 3600);
			break;
		case 'I':
			cfg.idle_exit = parse_ms("--idle-exit", optarg, 1,
			    86400) / 1000;
			break;
		case 'F':
			if (ident_parse_uint(optarg, &v) != 0 || v < 3 ||
			    v > 65535 || fcntl((int)v, F_GETFD) == -1)
				usage_error("--ready-fd takes an open descriptor "
				    "above 2", optarg);
			cfg.ready_fd = (int)v;
			(void)fcntl(cfg.ready_fd, F_SETFD, FD_CLOEXEC);
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
	/* "meshlog-collector -- $CMD" with $CMD empty: no server instead. */
	if (optind == argc && optind == sep + 1 && strcmp(argv[sep], "--") == 0)
		usage_error("-- is to be followed by a command", NULL);
	if (optind < argc)
		cfg.command = argv + optind;
	launching = cfg.command != NULL;
	/*
	 * Launch mode: the console view stands in for the raw output; with
	 * -q there is no view, so the raw output passes through instead.
	 */
	cfg.tee = tee != -1 ? tee : !launching || !cfg.console;
	log_open("meshlog-collector", cfg.verbose);
	if (gethostname(cfg.host, sizeof cfg.host - 1) != 0)
		strlcpy(cfg.host, "unknown", sizeof cfg.host);
	if (cfg.listen_tcp != NULL || cfg.upstream != NULL) {
		if (cfg.token_file == NULL || *cfg.token_file == '\0') {
			fprintf(stderr, "meshlog-collector: --listen-tcp and "
			    "--upstream need a shared token: --token-file PATH "
			    "or MESHLOG_TOKEN_FILE\n");
			return (2);
		}
		if (auth_load(cfg.token_file, &cause) != 0) {
			fprintf(stderr, "meshlog-collector: %s\n", cause);
			free(cause);
			return (2);
		}
	}
	if (cfg.upstream != NULL) {
		if (upstream_parse(cfg.upstream, &cause) != 0) {
			fprintf(stderr, "meshlog-collector: %s\n", cause);
			free(cause);
			return (2);
		}
	}

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	launch_hold(&hold);
	keeper_start(&hold);
	if ((base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	swept = launching && cfg.socket_path == NULL;
	path = cfg.socket_path != NULL ? xstrdup(cfg.socket_path) :
	    default_socket(launching);
	cfg.socket_path = path;
	control_init();
	server_open(path, control_dispatch);
	/* Launches killed before they could remove theirs leave sockets. */
	if (swept && (swept = sockdir_sweep()) > 0)
		log_debug("removed %d socket%s of launches that were killed",
		    swept, swept == 1 ? "" : "s");
	/* A collector restarted here takes the processes back from it. */
	if (!launching)
		keeper_handover_path(path);
	source_on_pending_forks(server_read_families);
	/* Named whole, for meshlogctl logs and SIGHUP from elsewhere. */
	if (cfg.json_path != NULL && cfg.json_path[0] != '/' &&
	    (cwd = getcwd(NULL, 0)) != NULL) {
		xasprintf(&abs, "%s/%s", cwd, cfg.json_path);
		cfg.json_path = abs;
		free(cwd);
	}
	if (output_dir != NULL && outdir_open(output_dir, &cause) != 0)
		fatalx("--output-dir: %s", cause);
	if ((json_max > 0 || json_keep > 0) && cfg.json_path == NULL)
		usage_error("--json-max-size and --json-keep need -j", NULL);
	rotate_config((off_t)json_max, json_keep > 0 ? json_keep :
	    ROTATE_KEEP_DEFAULT);
	if (cfg.json_path != NULL && jsonlog_open(cfg.json_path) != 0)
		fatalx("cannot open JSON log %s: %s", cfg.json_path,
		    jsonlog_error(errno));
	console_open();
	/* A relay's console view of the mesh is its upstream's. */
	console_set_mode(&(struct console_mode){ .on = cfg.console &&
	    cfg.upstream == NULL, .window = cfg.aggregate, .level =
	    cfg.level, .ranks = cfg.ranks, .nranks = cfg.nranks });
	for (i = 1; i < NSIG; i++) {
		/*
		 * With a command, the signals it passes on (launch_hold: a
		 * scheduler warns a job with SIGUSR1, whose default would
		 * end the collector); serving, SIGINT, SIGTERM and SIGHUP,
		 * and SIGQUIT (^\) and the rest keep their default. Ignored
		 * when we started (nohup): stay ignored, pass nothing.
		 */
		if (i != SIGCHLD && !(launching ? sigismember(&hold, i) == 1 :
		    i == SIGINT || i == SIGTERM || i == SIGHUP))
			continue;
		if (launch_ignored(i))
			continue;
		ev[i] = evsignal_new(base, i, i == SIGCHLD ? sigchld_cb :
		    signal_cb, NULL);
		if (ev[i] == NULL || event_add(ev[i], NULL) != 0)
			fatalx("cannot watch signals");
	}
	if (cfg.listen_tcp != NULL)
		link_listen(cfg.listen_tcp);
	source_remote_stall_start();
	if (cfg.upstream != NULL) {
		if (cfg.spool_dir == NULL) {
			copy = xstrdup(path);
			cfg.spool_dir = xstrdup(dirname(copy));
			free(copy);
		}
		upstream_start(control_dispatch);
	}
	if (cfg.idle_exit > 0) {
		idle = event_new(base, -1, EV_PERSIST, idle_cb, NULL);
		if (idle == NULL || event_add(idle, &second) != 0)
			fatalx("cannot arm the idle timer");
	}
	if (launching) {
		/* Once, so that the job can be found: meshlogctl -p PID. */
		if (cfg.console)
			fprintf(stderr, "meshlog: control socket %s "
			    "(meshlogctl -p %ld status)\n", path, (long)getpid());
		launch_start(cfg.command, path);
		summary_interrupt_probe(launch_group_ending);
		summary_command(cfg.host, launch_child(NULL), cfg.command,
		    NULL);
	}
	else
		log_info("listening on %s", path);
	if (cfg.ready_fd != -1) {
		/* Whoever started us may go on: the socket answers. */
		(void)write(cfg.ready_fd, "ready\n", 6);
		close(cfg.ready_fd);
		cfg.ready_fd = -1;
	}

	while (!quit) {
		event_base_loop(base, EVLOOP_ONCE);
		jsonlog_flush();
		dest_flush_pending();
		upstream_flush_pending();
		if (launching && launch_done(&status))
			break;
	}

	/* The command's own end, as its parent (this collector) saw it. */
	if (launching && launch_done(&status)) {
		pid = launch_child(&raw);
		source_reaped(0, pid, raw);
		summary_command(cfg.host, (long)pid, NULL, &raw);
	}
	/* Final drain: pending hellos, a barrier, then every byte left. */
	server_poll_pending();
	event_base_loop(base, EVLOOP_NONBLOCK);
	json_decref(flush_run(2000));
	source_drain_all();
	source_remote_close_all(CLOSE_COLLECTOR_EXIT);
	source_close_all(CLOSE_COLLECTOR_EXIT);
	ending_close_all();
	stall_stop_all();
	aggregate_flush();
	console_live_stop();
	if (launching && cfg.upstream == NULL)
		summarize();
	/* What this host wrote reaches the upstream before we go. */
	upstream_finish(10000);
	/*
	 * Drops are recorded in the JSON log, so it closes last. Synced when
	 * the job failed, as journald syncs after a critical message: the
	 * account of a failure outlives the reboot that often follows one.
	 * A job that succeeded leaves its log to the kernel's writeback, as
	 * tee or a launcher's log files do, and ends without waiting for the
	 * disk (0.1 s for 200 MB on a virtual machine).
	 */
	dest_drain_all(2000);
	jsonlog_close(summary_any_failure() || (launching && status != 0));
	link_close_all();
	server_close();
	runtime_cleanup();
	if (launch_dir != NULL) {
		(void)rmdir(launch_dir);
		free(launch_dir);
		launch_dir = NULL;
	}
	for (i = 0; i < NSIG; i++) {
		if (ev[i] != NULL)
			event_free(ev[i]);
		if (forward_ev[i] != NULL)
			event_free(forward_ev[i]);
	}
	free(path);
	cfg.socket_path = NULL;
	keeper_bye();
	if (launching)
		launch_end_as_child();
	return (status);
}
