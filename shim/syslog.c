/*
 * The syslog applier: level changes reach a process that logs through
 * syslog(3) without a thread. On its first syslog call the process gets a
 * SIGURG handler (SA_RESTART, and only where SIGURG is still at its
 * default) that does nothing but set a flag, and tells the collector it
 * may now signal it; the next syslog call reads the collector's level
 * file and applies it with setlogmask(3), in normal context. Processes
 * that never call syslog are never signalled.
 * The real functions are resolved with dlsym(RTLD_NEXT) at the first call,
 * never in the constructor.
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "shim.h"

extern char **environ;

typedef void (*vsyslog_fn)(int, const char *, va_list);
typedef void (*vsyslog_chk_fn)(int, int, const char *, va_list);

static vsyslog_fn		 real_vsyslog;
static vsyslog_chk_fn		 real_vsyslog_chk;
static volatile sig_atomic_t	 level_pending = 1;	/* read once at start */
static int			 handler_state;	/* 0 not tried, 1 ours, 2 not */
static unsigned long		 level_version;

/* SIGURG: the collector changed the level. */
static void
shim_level_signal(int sig)
{
	(void)sig;
	level_pending = 1;
}

/* Install the SIGURG handler if the program left SIGURG alone. */
static void
shim_level_arm(void)
{
	struct sigaction	sa, old;

	if (handler_state != 0)
		return;
	handler_state = 2;
	if (sigaction(SIGURG, NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
	    (old.sa_flags & SA_SIGINFO))
		return;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = shim_level_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGURG, &sa, NULL) == 0)
		handler_state = 1;
	/* Only now may the collector signal this process. */
	if (handler_state == 1 && shim_state.active)
		(void)shim_runtime_say("syslog");
}

/* Apply a pending level change; in normal context, keeps errno. */
static void
shim_level_apply(void)
{
	char		 path[160], text[512];
	struct ident_rank rk;
	unsigned long	 version = 0;
	long		 level;
	int		 saved = errno;

	if (!level_pending)
		return;
	level_pending = 0;
	if (ident_socket_path(environ, path, sizeof path - 8) != 0)
		goto out;
	strcat(path, ".level");
	if (shim_read_small(path, text, sizeof text) == -1)
		goto out;
	ident_ranks(environ, &rk);
	level = level_parse(text, rk.rank, &version);
	if (level >= 0 && version > level_version) {
		level_version = version;
		setlogmask(level_syslog_mask(level));
	}
out:
	errno = saved;
}

/* Resolve the real functions once; 0 when they are there. */
static int
shim_syslog_resolve(void)
{
	if (real_vsyslog == NULL)
		real_vsyslog = (vsyslog_fn)dlsym(RTLD_NEXT, "vsyslog");
	if (real_vsyslog_chk == NULL)
		real_vsyslog_chk = (vsyslog_chk_fn)dlsym(RTLD_NEXT,
		    "__vsyslog_chk");
	shim_level_arm();
	shim_level_apply();
	return (real_vsyslog != NULL ? 0 : -1);
}

__attribute__((visibility("default"))) void
vsyslog(int pri, const char *fmt, va_list ap)
{
	if (shim_syslog_resolve() == 0)
		real_vsyslog(pri, fmt, ap);
}

__attribute__((visibility("default"))) void
syslog(int pri, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	if (shim_syslog_resolve() == 0)
		real_vsyslog(pri, fmt, ap);
	va_end(ap);
}

__attribute__((visibility("default"))) void
__vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
	shim_syslog_resolve();
	if (real_vsyslog_chk != NULL)
		real_vsyslog_chk(pri, flag, fmt, ap);
	else if (real_vsyslog != NULL)
		real_vsyslog(pri, fmt, ap);
}

__attribute__((visibility("default"))) void
__syslog_chk(int pri, int flag, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	__vsyslog_chk(pri, flag, fmt, ap);
	va_end(ap);
}
