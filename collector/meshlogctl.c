/*
 * meshlogctl: drives a running collector over its socket. One request,
 * one JSON reply; the exit status says how it went:
 *   0 done; 1 the collector refused, or a flush did not complete in time;
 *   2 usage error; 3 no collector answered.
 */

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "runtime/runtime.h"
#include "summarytext.h"

extern char **environ;

static const char usage_text[] =
"usage: meshlogctl [-s PATH] flush [--timeout SEC]\n"
"       meshlogctl [-s PATH] set-mode [--stream on|off] [--aggregate SECONDS|off]\n"
"                                     [--level LEVEL] [--ranks LIST]\n"
"       meshlogctl [-s PATH] status\n"
"       meshlogctl [-s PATH] summary [--json] [FILE]\n"
"\n"
"  -s, --socket PATH  the collector's socket (default: $MESHLOG_SOCKET, else\n"
"                     $XDG_RUNTIME_DIR/meshlog/collector.sock, else\n"
"                     /tmp/meshlog-$UID/collector.sock)\n"
"\n"
"flush     drain every process's output written so far into the JSON log and\n"
"          console, print pending aggregates, and report the barrier version;\n"
"          --timeout (default 3) bounds the wait and lists who did not finish\n"
"set-mode  change the console view: --stream on|off, --aggregate SECONDS|off,\n"
"          --level LEVEL (DEBUG..CRITICAL or 10-50; also pushed to Python\n"
"          processes' root logger), --ranks 0,2-5 to limit --level to ranks\n"
"status    the collector and every source, as JSON\n"
"summary   per rank: lines, warnings, errors, how and when its process ended;\n"
"          the first failure and its last lines; ranks that never registered.\n"
"          From the running collector, or with FILE the record a launch-mode\n"
"          collector wrote at the end of its JSON log; --json as it is\n"
"\n"
"Exit status: 0 done, 1 refused or incomplete, 2 usage, 3 no collector.\n";

/* Say what is wrong with the command line and exit 2. */
static void __attribute__((noreturn))
usage(const char *msg, const char *arg)
{
	fprintf(stderr, "meshlogctl: %s%s%s\nTry 'meshlogctl --help'.\n",
	    msg, arg != NULL ? ": " : "", arg != NULL ? arg : "");
	exit(2);
}

/* Parse "0,2-5" into a JSON array of ranks. */
static json_t *
parse_ranks(const char *s)
{
	json_t	*a = json_array();
	char	*copy = strdup(s), *tok, *save = NULL, *dash;
	long	 lo, hi, r;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		dash = strchr(tok, '-');
		if (dash != NULL)
			*dash = '\0';
		if (ident_parse_uint(tok, &lo) != 0 || (dash != NULL &&
		    (ident_parse_uint(dash + 1, &hi) != 0 || hi < lo)))
			usage("--ranks takes a list like 0,2-5", s);
		if (dash == NULL)
			hi = lo;
		if (hi - lo > 1000000)
			usage("--ranks range too large", s);
		for (r = lo; r <= hi; r++)
			json_array_append_new(a, json_integer(r));
	}
	free(copy);
	if (json_array_size(a) == 0)
		usage("--ranks takes a list like 0,2-5", s);
	return (a);
}

/* Send req to the collector at path and return its reply, or exit 3. */
static json_t *
request(const char *path, json_t *req, int wait_ms)
{
	struct sockaddr_un	 sun;
	char			*line, *buf;
	size_t			 have = 0, n, cap = 65536;
	struct pollfd		 pfd;
	ssize_t			 r;
	json_t			*reply;
	json_error_t		 err;
	int			 fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path)
		usage("socket path too long", path);
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		fprintf(stderr, "meshlogctl: no collector at %s: %s\n", path,
		    strerror(errno));
		exit(3);
	}
	line = json_dumps(req, JSON_COMPACT);
	n = strlen(line);
	line[n] = '\n';
	if (send(fd, line, n + 1, MSG_NOSIGNAL) != (ssize_t)(n + 1)) {
		fprintf(stderr, "meshlogctl: %s: %s\n", path, strerror(errno));
		exit(3);
	}
	free(line);
	if ((buf = malloc(cap)) == NULL) {
		fprintf(stderr, "meshlogctl: out of memory\n");
		exit(3);
	}
	while (memchr(buf, '\n', have) == NULL) {
		/* Replies grow with the number of sources: so does the buffer. */
		if (have == cap && (cap > (1UL << 30) ||
		    (buf = realloc(buf, cap *= 2)) == NULL)) {
			fprintf(stderr, "meshlogctl: reply too large\n");
			exit(3);
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, wait_ms) != 1) {
			fprintf(stderr, "meshlogctl: %s did not answer in "
			    "%d ms\n", path, wait_ms);
			exit(3);
		}
		r = read(fd, buf + have, cap - have);
		if (r <= 0) {
			fprintf(stderr, "meshlogctl: %s closed the "
			    "connection\n", path);
			exit(3);
		}
		have += (size_t)r;
	}
	close(fd);
	if ((reply = json_loadb(buf, have, 0, &err)) == NULL) {
		fprintf(stderr, "meshlogctl: bad reply: %s\n", err.text);
		exit(3);
	}
	free(buf);
	return (reply);
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

	if (f == NULL) {
		fprintf(stderr, "meshlogctl: %s: %s\n", path, strerror(errno));
		return (1);
	}
	while (getline(&line, &cap, f) != -1) {
		if (strstr(line, "\"event\":\"summary\"") == NULL ||
		    (o = json_loads(line, 0, NULL)) == NULL)
			continue;
		json_decref(last);
		last = o;
	}
	free(line);
	fclose(f);
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

int
main(int argc, char **argv)
{
	static const struct option top[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct option sub[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "stream", required_argument, NULL, 'S' },
		{ "aggregate", required_argument, NULL, 'A' },
		{ "level", required_argument, NULL, 'l' },
		{ "ranks", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	char		 path[256], *end;
	const char	*cmd;
	json_t		*req, *reply, *v;
	double		 secs = 3;
	int		 c, rc = 0, wait_ms, as_json = 0;

	if (ident_socket_path(environ, path, sizeof path) != 0)
		path[0] = '\0';
	while ((c = getopt_long(argc, argv, "+s:hV", top, NULL)) != -1) {
		switch (c) {
		case 's':
			if (strlen(optarg) >= sizeof path)
				usage("socket path too long", optarg);
			strcpy(path, optarg);
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
		usage("no command (flush, set-mode or status)", NULL);
	cmd = argv[optind];
	argv += optind;
	argc -= optind;
	optind = 1;
	if (strcmp(cmd, "flush") == 0)
		req = json_pack("{s:s}", "type", "flush");
	else if (strcmp(cmd, "set-mode") == 0)
		req = json_pack("{s:s}", "type", "set_mode");
	else if (strcmp(cmd, "status") == 0)
		req = json_pack("{s:s}", "type", "status");
	else if (strcmp(cmd, "summary") == 0)
		req = json_pack("{s:s}", "type", "summary");
	else
		usage("unknown command", cmd);
	while ((c = getopt_long(argc, argv, "", sub, NULL)) != -1) {
		if (strcmp(cmd, "flush") == 0 ? c != 't' :
		    strcmp(cmd, "set-mode") == 0 ? c == 't' || c == 'j' :
		    strcmp(cmd, "summary") == 0 ? c != 'j' : 1)
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
			v = json_string(optarg);
			if (ident_parse_uint(optarg, &(long){0}) == 0)
				v = (json_decref(v), json_integer(atol(optarg)));
			json_object_set_new(req, "level", v);
			break;
		case 'r':
			json_object_set_new(req, "ranks", parse_ranks(optarg));
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
		usage("set-mode needs --stream, --aggregate or --level", NULL);
	if (json_object_get(req, "ranks") != NULL &&
	    json_object_get(req, "level") == NULL)
		usage("--ranks goes with --level", NULL);
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
	} else if (strcmp(cmd, "status") == 0) {
		json_dumpf(reply, stdout, JSON_INDENT(2));
		printf("\n");
	} else if (strcmp(cmd, "summary") == 0) {
		json_object_del(reply, "type");
		summary_print(reply, as_json);
	} else {
		json_dumpf(json_object_get(reply, "mode"), stdout, JSON_COMPACT);
		printf("\n");
	}
	json_decref(reply);
	json_decref(req);
	return (rc);
}
