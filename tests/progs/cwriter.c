/*
 * A C program that writes with stdio, as most native code does.
 *   cwriter lines N TAG     N lines "TAG i" on stdout, "TAG err i" every
 *                           10th on stderr
 *   cwriter nonl TEXT       TEXT without newline or fflush, then return
 *   cwriter crash KIND N    N lines, then die by KIND: segv, abort, kill
 *   cwriter raw N           N lines with write(2) on fd 1
 *   cwriter bench N TAG     N lines of about 100 bytes on stdout (benchmarks)
 *   cwriter syslog N FLAG   N rounds of syslog INFO and WARNING (echoed on
 *                           stderr by LOG_PERROR), 50 ms apart; FLAG is
 *                           created after round N/4
 *   cwriter fork K N        K forked children (no exec) write N lines
 *                           "worker w line i" each with stdio, every line
 *                           in two writes (text, then the rest); the
 *                           parent waits for them, then prints "done"
 *   cwriter urg FLAG        its own SIGURG handler (no SA_RESTART), FLAG
 *                           created, then one read(2) of stdin: prints
 *                           what read returned and how many SIGURG came
 *   cwriter dlerror         what dlerror(3) says before anything else:
 *                           nothing, unless a library left an error
 *   cwriter buffering       how stdio buffers stdout (after a first line)
 */
#include <sys/wait.h>

#include <dlfcn.h>
#include <errno.h>
#include <syslog.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t urgs;

static void
on_urg(int sig)
{
	(void)sig;
	urgs++;
}

int
main(int argc, char **argv)
{
	long		 i, n;
	char		 buf[64];
	int		 len;
	const char	*dlerr = dlerror();	/* first: nothing may come before */

	if (argc >= 4 && strcmp(argv[1], "lines") == 0) {
		n = atol(argv[2]);
		for (i = 0; i < n; i++) {
			printf("%s %ld\n", argv[3], i);
			if (i % 10 == 0)
				fprintf(stderr, "%s err %ld\n", argv[3], i);
		}
		return (0);
	}
	if (argc >= 3 && strcmp(argv[1], "nonl") == 0) {
		printf("%s", argv[2]);
		return (0);
	}
	if (argc >= 4 && strcmp(argv[1], "crash") == 0) {
		n = atol(argv[3]);
		for (i = 0; i < n; i++)
			printf("before crash %ld\n", i);
		if (strcmp(argv[2], "segv") == 0)
			raise(SIGSEGV);
		if (strcmp(argv[2], "abort") == 0)
			abort();
		raise(SIGKILL);
	}
	if (argc >= 3 && strcmp(argv[1], "raw") == 0) {
		n = atol(argv[2]);
		for (i = 0; i < n; i++) {
			len = snprintf(buf, sizeof buf, "raw %ld\n", i);
			if (write(1, buf, (size_t)len) != len)
				return (1);
		}
		return (0);
	}
	if (argc >= 4 && strcmp(argv[1], "bench") == 0) {
		n = atol(argv[2]);
		for (i = 0; i < n; i++)
			printf("%s %08ld step=%ld loss=%.4f lr=%.2e the quick "
			    "brown fox jumps over the lazy dog [train]\n", argv[3], i,
			    i * 8, 2.5 / (1.0 + (double)i / 1000), 3e-4);
		return (0);
	}
	if (argc >= 4 && strcmp(argv[1], "syslog") == 0) {
		struct timespec pause = { 0, 50 * 1000 * 1000 };
		FILE *f;

		n = atol(argv[2]);
		openlog("cwriter", LOG_PERROR, LOG_USER);
		for (i = 0; i < n; i++) {
			syslog(LOG_INFO, "info %ld", i);
			syslog(LOG_WARNING, "warn %ld", i);
			if (i == n / 4 && (f = fopen(argv[3], "w")) != NULL)
				fclose(f);
			nanosleep(&pause, NULL);
		}
		return (0);
	}
	if (argc >= 4 && strcmp(argv[1], "fork") == 0) {
		long	k = atol(argv[2]), w;

		n = atol(argv[3]);
		fflush(stdout);
		for (w = 0; w < k; w++) {
			if (fork() != 0)
				continue;
			for (i = 0; i < n; i++) {
				printf("worker %ld ", w);
				fflush(stdout);
				printf("line %ld\n", i);
				fflush(stdout);
			}
			_exit(0);
		}
		while (wait(NULL) > 0)
			;
		printf("done\n");
		return (0);
	}
	if (argc >= 3 && strcmp(argv[1], "urg") == 0) {
		struct sigaction sa;
		char in[16];
		ssize_t got;
		FILE *f;

		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_urg;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGURG, &sa, NULL);
		if ((f = fopen(argv[2], "w")) != NULL)
			fclose(f);
		got = read(0, in, sizeof in);
		printf("read %s, %d SIGURG\n", got >= 0 ? "data" :
		    strerror(errno), (int)urgs);
		return (0);
	}
	if (argc >= 2 && strcmp(argv[1], "dlerror") == 0) {
		printf("dlerror: %s\n", dlerr != NULL ? dlerr : "none");
		return (0);
	}
	if (argc >= 2 && strcmp(argv[1], "buffering") == 0) {
		/* glibc picks the buffering at the first write. */
		fputs("C stdio\n", stdout);
		printf("stdout %s\n", __fbufsize(stdout) <= 1 ? "unbuffered" :
		    __flbf(stdout) ? "line-buffered" : "fully buffered");
		return (0);
	}
	fprintf(stderr, "usage: cwriter lines|nonl|crash|raw|syslog|fork|urg|"
	    "dlerror|buffering ...\n");
	return (2);
}
