#!/bin/sh
# The preload library must export exactly what it interposes (isatty, ioctl,
# fsync and fdatasync, fstat and its old names,
# the termios calls and ttyname, fork and the wait family,
# the syslog family, read, poll and select):
# anything more can shadow a symbol of the host program or its libraries.
lib="${MESHLOG_BUILDDIR:-.}/shim/.libs/libmeshlog_preload.so"
[ -f "$lib" ] || { echo "not built: $lib"; exit 99; }
got=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TtWwDdBbVvi]$/ {print $3}' | sort | tr '\n' ' ')
want="__fxstat __fxstat64 __poll_chk __read_chk __syslog_chk __vsyslog_chk fdatasync fork fstat fstat64 fsync ioctl isatty poll read select syslog tcdrain tcflow tcflush tcgetattr tcgetpgrp tcgetsid tcsendbreak tcsetattr tcsetpgrp ttyname ttyname_r vsyslog wait wait3 wait4 waitid waitpid "
if [ "$got" != "$want" ]; then
	echo "exports differ: want '$want', got '$got'"
	exit 1
fi
# Nothing beyond libc: no libbsd, jansson or libevent in host processes.
deps=$(objdump -p "$lib" | awk '/NEEDED/ {print $2}' | sort | tr '\n' ' ')
if [ "$deps" != "libc.so.6 " ]; then
	echo "unexpected dependencies: $deps"
	exit 1
fi
echo "exports: $got; needs: $deps"
