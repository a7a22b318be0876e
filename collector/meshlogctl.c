/*
 * meshlogctl: drives a running collector over its socket. One request,
 * one JSON reply; the exit status says how it went:
 *   0 done; 1 the collector refused, or a flush did not complete in time;
 *   2 usage error; 3 no collector answered.
 */

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "runtime/runtime.h"
#include "logs.h"
#include "rankset.h"
#include "summarytext.h"

extern char **environ;

static const char usage_text[] =
"usage: meshlogctl [-s PATH] flush [--timeout SEC]\n"
"       meshlogctl [-s PATH] set-mode [--stream on|off] [--aggregate SECONDS|off]\n"
"                  [--console-level LEVEL] [--console-ranks LIST|all] [--json]\n"
"       meshlogctl [-s PATH] set-level LEVEL [--ranks LIST] [--json]\n"
"       meshlogctl [-s PATH] status [--json]\n"
"       meshlogctl [-s PATH] summary [--json] [FILE]\n"
"       meshlogctl ls [--json]\n"
"       meshlogctl [-s PATH] logs [-b [N]] [-r LIST] [-p LEVEL] [-S TIME]\n"
"                  [-U TIME] [-g REGEX] [-n N] [-f] [-o FORMAT] [options]\n"
"                  [FILE...]\n"
"\n"
"  -s, --socket PATH  the collector's socket (default: $MESHLOG_SOCKET, else\n"
"                     $XDG_RUNTIME_DIR/meshlog/collector.sock if it answers,\n"
"                     else the only collector of yours that answers)\n"
"  -p, --pid PID      the collector with this pid (see ls)\n"
"\n"
"flush     drain every process's output written so far into the JSON log and\n"
"          console, print pending aggregates, and report the barrier version;\n"
"          --timeout (default 3) bounds the wait and lists who did not finish\n"
"set-mode  change what the console view shows, never what programs write:\n"
"          --stream on|off, --aggregate SECONDS|off, --console-level LEVEL\n"
"          (DEBUG..CRITICAL or 0-50; 0 shows all), --console-ranks 0,2-5 (or\n"
"          all); answers with the new mode in words (--json: as JSON)\n"
"set-level change the level programs log at (Python's root logger, syslog's\n"
"          mask) on every rank, or on --ranks 0,2-5: lines below it are no\n"
"          longer written, and the JSON log records a set_level event\n"
"status    the collector, its mode, every source (rank, host, pid, lines,\n"
"          last activity, idle time), relays and upstream; --json: all of it\n"
"summary   per rank: lines, warnings, errors, how and when its process ended;\n"
"          the first failure and its last lines; ranks that never registered.\n"
"          From the running collector, or with FILE the record a launch-mode\n"
"          collector wrote at the end of its JSON log; --json as it is\n"
"ls        your collectors that answer: pid, start, sources, command, socket\n"
"logs      the lines of a JSON log (default: the running collector's) by\n"
"          rank, host, pid, stream, level, time and text, the last N, and\n"
"          followed as they come; meshlogctl logs --help says how\n"
"\n"
"Exit status: 0 done, 1 refused or incomplete, 2 usage (or several\n"
"collectors and none chosen), 3 no collector.\n";

/* Say what is wrong with the command line and exit 2. */
static void __attribute__((noreturn))
usage(const char *msg, const char *arg)
{
	fprintf(stderr, "meshlogctl: %s%s%s\nTry 'meshlogctl --help'.\n",
	    msg, arg != NULL ? ": " : "", arg != NULL ? arg : "");
	exit(2);
}

/* Parse "0,2-5" (option opt) into a JSON array of ranks. */
static json_t *
parse_ranks(const char *opt, const char *s)
{
	json_t	*a;
	long	*v;
	size_t	 n, i;
	char	 msg[80];

	if (rankset_parse(s, &v, &n) != 0) {
		snprintf(msg, sizeof msg, "%s takes a list like 0,2-5", opt);
		usage(msg, s);
	}
	a = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(a, json_integer(v[i]));
	free(v);
	return (a);
}

/* A level name or number as the collector takes it. */
static json_t *
parse_level(const char *s)
{
	long	n;

	if (ident_parse_uint(s, &n) == 0)
		return (json_integer(n));
	return (json_string(s));
}

/* Ranks of a JSON array, "0,2-5", into buf. */
static const char *
ranks_text(json_t *r, char *buf, size_t size)
{
	long	*v = calloc(json_array_size(r) + 1, sizeof *v);
	size_t	 i, j, n = json_array_size(r), len = 0;

	buf[0] = '\0';
	if (v == NULL)
		return (buf);
	for (i = 0; i < n; i++)
		v[i] = (long)json_integer_value(json_array_get(r, i));
	for (i = 0; i < n && len + 48 < size; i = j + 1) {
		for (j = i; j + 1 < n && v[j + 1] == v[j] + 1; j++)
			;
		len += (size_t)snprintf(buf + len, size - len, "%s%ld", i > 0 ?
		    "," : "", v[i]);
		if (j > i)
			len += (size_t)snprintf(buf + len, size - len, "-%ld",
			    v[j]);
	}
	if (i < n)
		snprintf(buf + len, size - len, ",...");
	free(v);
	return (buf);
}

/*
 * Send req to the collector at path and return its reply, or NULL with
 * the reason in why.
 */
static json_t *
request_try(const char *path, json_t *req, int wait_ms, char *why,
    size_t whylen)
{
	struct sockaddr_un	 sun;
	char			*line, *buf = NULL;
	size_t			 have = 0, n, cap = 65536;
	struct pollfd		 pfd;
	ssize_t			 r;
	json_t			*reply = NULL;
	json_error_t		 err;
	int			 fd = -1;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(why, whylen, "socket path too long: %s", path);
		return (NULL);
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		snprintf(why, whylen, "no collector at %s: %s", path,
		    strerror(errno));
		goto out;
	}
	line = json_dumps(req, JSON_COMPACT);
	n = strlen(line);
	line[n] = '\n';
	r = send(fd, line, n + 1, MSG_NOSIGNAL);
	free(line);
	if (r != (ssize_t)(n + 1)) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((buf = malloc(cap)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	while (memchr(buf, '\n', have) == NULL) {
		/* Replies grow with the number of sources: so does the buffer. */
		if (have == cap) {
			char	*bigger = cap > (1UL << 30) ? NULL :
			    realloc(buf, cap * 2);

			if (bigger == NULL) {
				snprintf(why, whylen, "reply too large");
				goto out;
			}
			buf = bigger;
			cap *= 2;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, wait_ms) != 1) {
			snprintf(why, whylen, "%s did not answer in %d ms", path,
			    wait_ms);
			goto out;
		}
		r = read(fd, buf + have, cap - have);
		if (r <= 0) {
			snprintf(why, whylen, "%s closed the connection", path);
			goto out;
		}
		have += (size_t)r;
	}
	if ((reply = json_loadb(buf, have, 0, &err)) == NULL)
		snprintf(why, whylen, "bad reply: %s", err.text);
out:
	if (fd != -1)
		close(fd);
	free(buf);
	return (reply);
}

/* Send req to the collector at path and return its reply, or exit 3. */
static json_t *
request(const char *path, json_t *req, int wait_ms)
{
	char	 why[512];
	json_t	*reply;

	if ((reply = request_try(path, req, wait_ms, why, sizeof why)) ==
	    NULL) {
		fprintf(stderr, "meshlogctl: %s\n", why);
		exit(3);
	}
	return (reply);
}

/* A collector found in this user's socket directory. */
struct found {
	char	 path[256];
	json_t	*status;
};

/* The directory this user's collectors put their sockets in. */
static void
socket_dir(char *buf, size_t len)
{
	const char	*xdg = getenv("XDG_RUNTIME_DIR");

	if (xdg != NULL && *xdg == '/')
		snprintf(buf, len, "%s/meshlog", xdg);
	else
		snprintf(buf, len, "/tmp/meshlog-%lu", (unsigned long)getuid());
}

/* The collectors in dir that answer req, added to *f (*n of them). */
static void
scan_dir(const char *dir, json_t *req, struct found **f, size_t *n)
{
	char		 why[512];
	struct found	*g;
	size_t		 len;
	struct dirent	*e;
	json_t		*st;
	DIR		*d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".sock") != 0 ||
		    strlen(dir) + len + 2 > sizeof g->path)
			continue;
		if ((g = realloc(*f, (*n + 1) * sizeof *g)) == NULL)
			break;
		*f = g;
		snprintf(g[*n].path, sizeof g[*n].path, "%s/%s", dir,
		    e->d_name);
		/* A socket left by a collector that died answers not. */
		if ((st = request_try(g[*n].path, req, 2000, why,
		    sizeof why)) == NULL)
			continue;
		g[(*n)++].status = st;
	}
	closedir(d);
}

/*
 * Every collector of this user that answers (status asked); how many.
 * Beside the socket directory, the ones a launch made when another user
 * had taken its name (DIR.XXXXXX): this user's, writable by no one else.
 */
static size_t
scan(struct found **out)
{
	char		 dir[200], sub[512], *slash;
	struct found	*f = NULL;
	size_t		 n = 0, blen;
	struct dirent	*e;
	struct stat	 sb;
	json_t		*req = json_pack("{s:s}", "type", "status");
	DIR		*d;

	socket_dir(dir, sizeof dir);
	scan_dir(dir, req, &f, &n);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		blen = strlen(slash + 1);
		if ((d = opendir(slash == dir ? "/" : dir)) != NULL) {
			while ((e = readdir(d)) != NULL) {
				if (strncmp(e->d_name, slash + 1, blen) != 0 ||
				    e->d_name[blen] != '.' ||
				    strlen(e->d_name) != blen + 7)
					continue;
				snprintf(sub, sizeof sub, "%s/%s", dir,
				    e->d_name);
				if (lstat(sub, &sb) == 0 && dir_is_mine(&sb))
					scan_dir(sub, req, &f, &n);
			}
			closedir(d);
		}
	}
	json_decref(req);
	*out = f;
	return (n);
}

/* The collector's pid, command and start from a status reply. */
static long long
found_pid(const struct found *f)
{
	return (json_integer_value(json_object_get(json_object_get(f->status,
	    "collector"), "pid")));
}

/* The command line a collector runs, or "(serving)". */
static void
found_command(const struct found *f, char *buf, size_t len)
{
	json_t	*cmd = json_object_get(json_object_get(f->status, "collector"),
		    "command"), *v;
	size_t	 i, at = 0;

	snprintf(buf, len, "(serving)");
	json_array_foreach(cmd, i, v) {
		at += (size_t)snprintf(buf + at, at < len ? len - at : 0,
		    "%s%s", i > 0 ? " " : "", json_string_value(v));
		if (at >= len)
			break;
	}
}

/* meshlogctl ls: this user's collectors, one per line. */
static int
list_collectors(int as_json)
{
	struct found	*f;
	size_t		 n = scan(&f), i;
	char		 cmd[120];
	json_t		*c, *all = json_array();

	if (!as_json)
		printf("%8s  %-20s  %7s  %-40s  %s\n", "PID", "STARTED",
		    "SOURCES", "COMMAND", "SOCKET");
	for (i = 0; i < n; i++) {
		c = json_object_get(f[i].status, "collector");
		found_command(&f[i], cmd, sizeof cmd);
		if (as_json)
			json_array_append_new(all, json_pack("{s:I, s:O, s:O, "
			    "s:O, s:s}", "pid", (json_int_t)found_pid(&f[i]),
			    "started", json_object_get(c, "started"), "command",
			    json_object_get(c, "command"), "sources_open",
			    json_object_get(c, "sources_open"), "socket",
			    f[i].path));
		else
			printf("%8lld  %-20.19s  %7lld  %-40.40s  %s\n",
			    found_pid(&f[i]), json_string_value(json_object_get(
			    c, "started")) != NULL ? json_string_value(
			    json_object_get(c, "started")) : "?",
			    (long long)json_integer_value(json_object_get(c,
			    "sources_open")), cmd, f[i].path);
		json_decref(f[i].status);
	}
	if (as_json) {
		json_dumpf(all, stdout, JSON_INDENT(2));
		printf("\n");
	}
	json_decref(all);
	free(f);
	return (0);
}

/*
 * The socket when none was named: the collector with pid (when > 0), the
 * default serve-mode collector if it answers, else the one collector of
 * this user; several, or none with that pid, is an error.
 */
static void
choose(char *path, size_t len, long pid)
{
	struct found	*f;
	size_t		 n = scan(&f), i, pick = n;
	char		 cmd[120];

	for (i = 0; i < n; i++) {
		if (pid > 0 ? found_pid(&f[i]) == pid :
		    strcmp(f[i].path, path) == 0)
			pick = i;
	}
	if (pick == n && pid <= 0 && n == 1)
		pick = 0;
	if (pick == n && (pid > 0 || n > 1)) {
		if (pid > 0)
			fprintf(stderr, "meshlogctl: no collector of yours with "
			    "pid %ld is answering", pid);
		else
			fprintf(stderr, "meshlogctl: %zu collectors are "
			    "running; choose one with -p PID or -s PATH",
			    n);
		fprintf(stderr, "%s\n", n > 0 ? ":" : "");
		for (i = 0; i < n; i++) {
			found_command(&f[i], cmd, sizeof cmd);
			fprintf(stderr, "  pid %lld  %s  (%s)\n",
			    found_pid(&f[i]), cmd, f[i].path);
		}
		exit(pid > 0 ? 3 : 2);
	}
	if (pick < n)
		snprintf(path, len, "%s", f[pick].path);
	for (i = 0; i < n; i++)
		json_decref(f[i].status);
	free(f);
}

/* The socket logs_log asks, as main found it. */
static char	logs_sock[256];
static int	logs_named;
static long	logs_pid;

/* The running collector's JSON log, for "logs" without FILE. */
static char *
logs_log(void)
{
	json_t		*req, *reply;
	const char	*p;
	char		*out;

	if (!logs_named && (logs_pid > 0 || getenv("MESHLOG_SOCKET") ==
	    NULL || *getenv("MESHLOG_SOCKET") == '\0'))
		choose(logs_sock, sizeof logs_sock, logs_pid);
	req = json_pack("{s:s}", "type", "status");
	reply = request(logs_sock, req, 10000);
	json_decref(req);
	if ((p = json_string_value(json_object_get(json_object_get(reply,
	    "collector"), "json"))) == NULL) {
		fprintf(stderr, "meshlogctl: the collector at %s keeps no JSON "
		    "log (it was started without -j); name a FILE\n",
		    logs_sock);
		exit(1);
	}
	if ((out = strdup(p)) == NULL) {
		perror("meshlogctl");
		exit(1);
	}
	json_decref(reply);
	return (out);
}

/* A level in words: "WARNING", or the number. */
static void
level_print(json_int_t level)
{
	static const char *const names[] = { "DEBUG", "INFO", "WARNING",
	    "ERROR", "CRITICAL" };

	if (level % 10 == 0 && level >= 10 && level <= 50)
		printf("%s", names[level / 10 - 1]);
	else
		printf("%lld", (long long)level);
}

/*
 * The collector's mode in words: what the console shows (on or off,
 * aggregation, level, ranks), then the level programs were given.
 */
static void
mode_print(json_t *m)
{
	json_t		*w = json_object_get(m, "aggregate_window_sec"), *r, *l;
	json_int_t	 level = json_integer_value(json_object_get(m,
			    "console_level"));
	char		 buf[256];

	printf("console %s, aggregation ", json_is_true(json_object_get(m,
	    "stream_to_client")) ? "on" : "off");
	if (json_is_number(w))
		printf("%g s", json_number_value(w));
	else
		printf("off");
	if (level == 0)
		printf(", every level shown");
	else {
		printf(", ");
		level_print(level);
		printf(" and above shown");
	}
	if (json_array_size(r = json_object_get(m, "console_ranks")) > 0)
		printf(", only rank%s %s (and processes without a rank)",
		    json_array_size(r) > 1 ? "s" : "", ranks_text(r, buf,
		    sizeof buf));
	if (json_is_integer(l = json_object_get(m, "level"))) {
		printf("; programs log at ");
		level_print(json_integer_value(l));
		printf(" and above");
		if (json_array_size(r = json_object_get(m, "ranks")) > 0)
			printf(" on rank%s %s", json_array_size(r) > 1 ? "s" :
			    "", ranks_text(r, buf, sizeof buf));
	}
	printf("\n");
}

/* The collector's status as a table: sources, then relays and upstream. */
static void
status_print(json_t *st)
{
	json_t		*c = json_object_get(st, "collector"), *s, *v, *r;
	json_t		*up = json_object_get(st, "upstream");
	const char	*key, *last, *t;
	long long	 lines;
	size_t		 i;
	int		 open;

	printf("collector pid %lld on %s since %s: %lld sources, flush version "
	    "%lld, log %s\n", (long long)json_integer_value(json_object_get(c,
	    "pid")), json_string_value(json_object_get(c, "host")),
	    json_string_value(json_object_get(c, "started")), (long long)
	    json_integer_value(json_object_get(c, "sources_open")), (long long)
	    json_integer_value(json_object_get(c, "flush_version")),
	    json_string_value(json_object_get(c, "json")) != NULL ?
	    json_string_value(json_object_get(c, "json")) : "(none)");
	mode_print(json_object_get(c, "mode"));
	if (json_array_size(json_object_get(st, "sources")) > 0)
		printf("  %5s  %-12s %8s  %-7s %9s  %-27s %9s\n", "rank", "host",
		    "pid", "state", "lines", "last activity", "idle");
	json_array_foreach(json_object_get(st, "sources"), i, s) {
		lines = 0;
		last = NULL;
		open = 0;
		json_object_foreach(json_object_get(s, "streams"), key, v) {
			lines += json_integer_value(json_object_get(v, "lines"));
			open |= json_is_true(json_object_get(v, "open"));
			t = json_string_value(json_object_get(v,
			    "last_activity"));
			if (t != NULL && (last == NULL || strcmp(t, last) > 0))
				last = t;
		}
		/* A launcher's copies of its ranks' lines are theirs. */
		lines -= json_integer_value(json_object_get(s, "copies"));
		if (json_is_integer(json_object_get(s, "rank")))
			printf("  %5lld", (long long)json_integer_value(
			    json_object_get(s, "rank")));
		else
			printf("  %5s", "-");
		printf("  %-12.12s %8lld  %-7s %9lld  %-27s %7.1f s\n",
		    json_string_value(json_object_get(s, "host")), (long long)
		    json_integer_value(json_object_get(s, "pid")), open ?
		    "open" : "closing", lines, last != NULL ? last : "-",
		    json_number_value(json_object_get(s, "idle_s")));
	}
	json_array_foreach(json_object_get(st, "relays"), i, r)
		printf("relay %.12s (host %s, pid %lld, %s): %s since %s, %lld "
		    "records, %lld sources open\n", json_string_value(
		    json_object_get(r, "relay")), json_string_value(
		    json_object_get(r, "host")), (long long)json_integer_value(
		    json_object_get(r, "pid")), json_string_value(
		    json_object_get(r, "address")), json_string_value(
		    json_object_get(r, "state")), json_string_value(
		    json_object_get(r, "since")), (long long)json_integer_value(
		    json_object_get(r, "records")), (long long)
		    json_integer_value(json_object_get(r, "sources_open")));
	if (json_is_object(up))
		printf("upstream %s: %s since %s, %lld records sent, spool %lld "
		    "bytes in memory and %lld on disk, %lld dropped\n",
		    json_string_value(json_object_get(up, "url")),
		    json_string_value(json_object_get(up, "state")),
		    json_string_value(json_object_get(up, "since")), (long long)
		    json_integer_value(json_object_get(up, "records_sent")),
		    (long long)json_integer_value(json_object_get(up,
		    "spool_memory_bytes")), (long long)json_integer_value(
		    json_object_get(up, "spool_disk_bytes")), (long long)
		    json_integer_value(json_object_get(up, "dropped_records")));
}

/* Print a summary as text (colour on a terminal) or as JSON. */
static void
summary_print(json_t *s, int as_json)
{
	char	*text;

	if (as_json) {
		json_dumpf(s, stdout, JSON_INDENT(2));
		printf("\n");
	} else if ((text = summary_text(s, isatty(1))) != NULL) {
		fputs(text, stdout);
		free(text);
	}
}

/* The last summary record of a JSON log; 0, or 1 when it has none. */
static int
summary_file(const char *path, int as_json)
{
	FILE	*f = fopen(path, "r");
	char	*line = NULL;
	size_t	 cap = 0;
	json_t	*last = NULL, *o;
	int	 records = 0;

	if (f == NULL) {
		fprintf(stderr, "meshlogctl: %s: %s\n", path, strerror(errno));
		return (1);
	}
	while (getline(&line, &cap, f) != -1) {
		records |= strncmp(line, "{\"ts\":\"", 7) == 0;
		if (strstr(line, "\"event\":\"summary\"") == NULL ||
		    (o = json_loads(line, 0, NULL)) == NULL)
			continue;
		json_decref(last);
		last = o;
	}
	free(line);
	fclose(f);
	if (last == NULL && !records) {
		fprintf(stderr, "meshlogctl: %s is no meshlog JSON log (-j): "
		    "none of its lines is a record\n", path);
		return (1);
	}
	if (last == NULL) {
		fprintf(stderr, "meshlogctl: %s has no summary (the job is "
		    "still running, or its collector was not in launch mode "
		    "or did not exit); ask the collector: meshlogctl "
		    "summary\n", path);
		return (1);
	}
	summary_print(last, as_json);
	json_decref(last);
	return (0);
}

/*
 * Descriptors 0-2 left closed would be the next files opened (the
 * collector's socket) and take our output: /dev/null holds them, opened
 * the other way, so that using them fails as a closed one does (EBADF).
 */
static void
hold_closed_std(void)
{
	int	fd;

	for (fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		if (open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY) != fd)
			_exit(1);
	}
}

/* At exit: output that could not be written fails the command. */
static void
check_stdout(void)
{
	int	failed = fflush(stdout) != 0, err = errno;

	if (!failed && !ferror(stdout))
		return;
	fprintf(stderr, "meshlogctl: write error%s%s\n", failed ? ": " : "",
	    failed ? strerror(err) : "");
	_exit(1);
}

int
main(int argc, char **argv)
{
	static const struct option top[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "pid", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct option sub[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "stream", required_argument, NULL, 'S' },
		{ "aggregate", required_argument, NULL, 'A' },
		{ "console-level", required_argument, NULL, 'l' },
		{ "console-ranks", required_argument, NULL, 'c' },
		{ "level", required_argument, NULL, 'L' },
		{ "ranks", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	char		 path[256], *end;
	const char	*cmd;
	json_t		*req, *reply, *v;
	double		 secs = 3;
	int		 c, rc = 0, wait_ms, as_json = 0, named = 0;
	long		 pid = 0;

	hold_closed_std();
	if (atexit(check_stdout) != 0)
		return (1);
	if (ident_socket_path(environ, path, sizeof path) != 0)
		path[0] = '\0';
	while ((c = getopt_long(argc, argv, "+s:p:hV", top, NULL)) != -1) {
		switch (c) {
		case 's':
			if (strlen(optarg) >= sizeof path)
				usage("socket path too long", optarg);
			strcpy(path, optarg);
			named = 1;
			break;
		case 'p':
			if (ident_parse_uint(optarg, &pid) != 0 || pid == 0)
				usage("-p takes a collector's pid", optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return (0);
		case 'V':
			printf("meshlogctl %s\n", PACKAGE_VERSION);
			return (0);
		default:
			usage("unknown option", NULL);
		}
	}
	if (optind >= argc)
		usage("no command (flush, set-mode, set-level, status, summary, "
		    "ls or logs)", NULL);
	cmd = argv[optind];
	if (strcmp(cmd, "ls") == 0) {
		if (argc - optind > 2 || (argc - optind == 2 &&
		    strcmp(argv[optind + 1], "--json") != 0))
			usage("ls takes only --json", NULL);
		return (list_collectors(argc - optind == 2));
	}
	argv += optind;
	argc -= optind;
	/*
	 * 0, not 1: glibc starts over, or it keeps the "+" above (options
	 * end at the first FILE) and "logs run.jsonl -r 3" reads "-r" as a
	 * file. A command's options go anywhere, as journalctl's do.
	 */
	optind = 0;
	if (strcmp(cmd, "logs") == 0) {
		memcpy(logs_sock, path, sizeof logs_sock);
		logs_named = named;
		logs_pid = pid;
		return (logs_main(argc, argv, logs_log));
	}
	if (strcmp(cmd, "flush") == 0)
		req = json_pack("{s:s}", "type", "flush");
	else if (strcmp(cmd, "set-mode") == 0)
		req = json_pack("{s:s}", "type", "set_mode");
	else if (strcmp(cmd, "set-level") == 0) {
		if (argc < 2 || argv[1][0] == '-')
			usage("set-level needs a level (DEBUG..CRITICAL or "
			    "0-50)", NULL);
		req = json_pack("{s:s, s:o}", "type", "set_level", "level",
		    parse_level(argv[1]));
		argv++;
		argc--;
	}
	else if (strcmp(cmd, "status") == 0)
		req = json_pack("{s:s}", "type", "status");
	else if (strcmp(cmd, "summary") == 0)
		req = json_pack("{s:s}", "type", "summary");
	else
		usage("unknown command", cmd);
	while ((c = getopt_long(argc, argv, "", sub, NULL)) != -1) {
		if (strcmp(cmd, "set-mode") == 0 && (c == 'L' || c == 'r'))
			usage("set-mode no longer takes --level or --ranks: "
			    "--console-level and --console-ranks filter the "
			    "console; set-level LEVEL [--ranks LIST] changes "
			    "the level programs log at", NULL);
		if (strcmp(cmd, "flush") == 0 ? c != 't' :
		    strcmp(cmd, "set-mode") == 0 ? strchr("SAlcj", c) == NULL :
		    strcmp(cmd, "set-level") == 0 ? c != 'r' && c != 'j' :
		    strcmp(cmd, "summary") == 0 || strcmp(cmd, "status") == 0 ?
		    c != 'j' : 1)
			usage("option does not go with this command", cmd);
		switch (c) {
		case 'j':
			as_json = 1;
			break;
		case 't':
			secs = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || !(secs >= 0) ||
			    secs > 3600)
				usage("--timeout takes seconds", optarg);
			json_object_set_new(req, "timeout_ms",
			    json_integer((json_int_t)(secs * 1000)));
			break;
		case 'S':
			if (strcmp(optarg, "on") != 0 &&
			    strcmp(optarg, "off") != 0)
				usage("--stream takes on or off", optarg);
			json_object_set_new(req, "stream_to_client",
			    json_boolean(strcmp(optarg, "on") == 0));
			break;
		case 'A':
			if (strcmp(optarg, "off") == 0) {
				json_object_set_new(req, "aggregate_window_sec",
				    json_string("off"));
				break;
			}
			secs = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || !(secs > 0) ||
			    secs > 3600)
				usage("--aggregate takes seconds or off",
				    optarg);
			json_object_set_new(req, "aggregate_window_sec",
			    json_real(secs));
			break;
		case 'l':
			json_object_set_new(req, "console_level",
			    parse_level(optarg));
			break;
		case 'c':
			json_object_set_new(req, "console_ranks",
			    strcmp(optarg, "all") == 0 ? json_null() :
			    parse_ranks("--console-ranks", optarg));
			break;
		case 'r':
			json_object_set_new(req, "ranks",
			    parse_ranks("--ranks", optarg));
			break;
		default:
			usage("unknown option", NULL);
		}
	}
	if (strcmp(cmd, "summary") == 0 && optind == argc - 1) {
		rc = summary_file(argv[optind], as_json);
		json_decref(req);
		return (rc);
	}
	if (optind < argc)
		usage("unexpected argument", argv[optind]);
	if (strcmp(cmd, "set-mode") == 0 && json_object_size(req) == 1)
		usage("set-mode needs --stream, --aggregate, --console-level "
		    "or --console-ranks", NULL);
	/* Neither -s nor MESHLOG_SOCKET: find the collector. */
	if (!named && (pid > 0 || getenv("MESHLOG_SOCKET") == NULL ||
	    *getenv("MESHLOG_SOCKET") == '\0'))
		choose(path, sizeof path, pid);
	wait_ms = 10000;
	if ((v = json_object_get(req, "timeout_ms")) != NULL)
		wait_ms += (int)json_integer_value(v);
	reply = request(path, req, wait_ms);
	v = json_object_get(reply, "type");
	if (strcmp(json_string_value(v) != NULL ? json_string_value(v) : "",
	    "error") == 0) {
		fprintf(stderr, "meshlogctl: %s\n", json_string_value(
		    json_object_get(reply, "message")));
		rc = 1;
	} else if (strcmp(cmd, "flush") == 0) {
		v = json_object_get(reply, "incomplete");
		printf("flushed version %lld: %lld sources",
		    (long long)json_integer_value(json_object_get(reply,
		    "version")), (long long)json_integer_value(
		    json_object_get(reply, "sources")));
		if (json_integer_value(json_object_get(reply, "relays")) > 0)
			printf(" here and %lld relays", (long long)
			    json_integer_value(json_object_get(reply,
			    "relays")));
		printf(" in %lld ms", (long long)json_integer_value(
		    json_object_get(reply, "elapsed_ms")));
		if (json_array_size(v) > 0) {
			char *s = json_dumps(v, JSON_COMPACT);

			printf("; did not complete: %s", s);
			free(s);
			rc = 1;
		}
		printf("\n");
	} else if (strcmp(cmd, "status") == 0 && as_json) {
		json_dumpf(reply, stdout, JSON_INDENT(2));
		printf("\n");
	} else if (strcmp(cmd, "status") == 0) {
		status_print(reply);
	} else if (strcmp(cmd, "summary") == 0) {
		json_object_del(reply, "type");
		summary_print(reply, as_json);
	} else if (as_json) {
		json_dumpf(json_object_get(reply, "mode"), stdout, JSON_COMPACT);
		printf("\n");
	} else
		mode_print(json_object_get(reply, "mode"));
	json_decref(reply);
	json_decref(req);
	return (rc);
}
