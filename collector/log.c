/* The collector's own diagnostics, on its stderr, one escaped line each. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define LIBBSD_NETBSD_VIS
#include <vis.h>

#include "collector.h"

static const char	*log_name = "meshlog";
static int		 log_verbose;

/* Set the program name that prefixes messages, and the verbosity. */
void
log_open(const char *name, int verbose)
{
	log_name = name;
	log_verbose = verbose;
}

/* Write one message line with the prefix, control characters made visible. */
static void
log_vwrite(const char *level, const char *fmt, va_list ap, const char *suffix)
{
	char	 msg[1024], out[4 * sizeof msg + 256];
	int	 n;

	vsnprintf(msg, sizeof msg, fmt, ap);
	strnvis(out, sizeof out - 256, msg, VIS_SAFE | VIS_OCTAL | VIS_NL);
	n = snprintf(out + strlen(out), 256, "%s%s\n", suffix != NULL ?
	    ": " : "", suffix != NULL ? suffix : "");
	(void)n;
	fprintf(stderr, "%s: %s%s", log_name, level, out);
}

/* Debug message, shown with -v. */
void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	log_vwrite("", fmt, ap, NULL);
	va_end(ap);
}

/* Informational message. */
void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite("", fmt, ap, NULL);
	va_end(ap);
}

/* Warning: something was refused or lost, and the collector goes on. */
void
log_warn(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite("warning: ", fmt, ap, NULL);
	va_end(ap);
}

/*
 * A warning that a peer can provoke at will (a refused connection, a
 * broken link): at most LOG_LIMIT_BURST of a kind per LOG_LIMIT_MS, the
 * rest counted and summed up with the first one of the next window, so no
 * stranger can grow the collector's stderr without bound.
 */
void
log_warn_limit(struct log_limit *l, const char *fmt, ...)
{
	long long	now = clock_now_ms();
	va_list		ap;

	if (now - l->start >= LOG_LIMIT_MS) {
		if (l->suppressed > 0)
			log_warn("%llu more %s in %d s were not shown",
			    l->suppressed, l->what, LOG_LIMIT_MS / 1000);
		l->start = now;
		l->shown = 0;
		l->suppressed = 0;
	}
	if (l->shown >= LOG_LIMIT_BURST) {
		l->suppressed++;
		return;
	}
	l->shown++;
	va_start(ap, fmt);
	log_vwrite("warning: ", fmt, ap, NULL);
	va_end(ap);
}

/* Fatal error with errno's text; exits. */
void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_vwrite("", fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

/* Fatal error without errno; exits. */
void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite("", fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
