/*
 * Interposed calls that keep the takeover invisible: isatty() and the
 * window size answer as the original destination would. Both are safe
 * before the constructor has run (shim_state is then all zero), call no
 * other interposed function, resolve nothing with dlsym, and keep errno on
 * success.
 */

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <termios.h>
#include <unistd.h>

#include "shim.h"

int
shim_raw_isatty(int fd)
{
	/* Room for any kernel termios layout. */
	unsigned char	buf[128];

	return (syscall(SYS_ioctl, fd, TCGETS, buf) == 0);
}

int
shim_managed_stream(int fd)
{
	struct stat	sb;
	int		i;

	if (!shim_state.active || fstat(fd, &sb) != 0 || !S_ISFIFO(sb.st_mode))
		return (-1);
	for (i = 0; i < 2; i++) {
		if (shim_state.managed[i] &&
		    (unsigned long long)sb.st_dev == shim_state.dev[i] &&
		    (unsigned long long)sb.st_ino == shim_state.ino[i])
			return (i);
	}
	return (-1);
}

/* isatty(3): a managed pipe answers as the original destination did. */
__attribute__((visibility("default"))) int
isatty(int fd)
{
	int	saved = errno, i;

	if ((i = shim_managed_stream(fd)) != -1) {
		if (shim_state.tty[i]) {
			errno = saved;
			return (1);
		}
		errno = ENOTTY;
		return (0);
	}
	errno = saved;
	if (shim_raw_isatty(fd)) {
		errno = saved;
		return (1);
	}
	return (0);	/* errno from TCGETS, as glibc's isatty leaves it */
}

/*
 * ioctl(2): TIOCGWINSZ on a managed pipe whose original was a terminal asks
 * the controlling terminal, so programs size their output as before.
 * Everything else goes straight to the kernel.
 */
__attribute__((visibility("default"))) int
ioctl(int fd, unsigned long request, ...)
{
	va_list	 ap;
	void	*arg;
	int	 saved = errno, tty, i, rc;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (request == TIOCGWINSZ && (i = shim_managed_stream(fd)) != -1 &&
	    shim_state.tty[i]) {
		tty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
		if (tty != -1) {
			rc = (int)syscall(SYS_ioctl, tty, request, arg);
			close(tty);
			if (rc == 0) {
				errno = saved;
				return (0);
			}
		}
		errno = saved;
	}
	return ((int)syscall(SYS_ioctl, fd, request, arg));
}
