# fsync and fdatasync on stdout and stderr, whatever they are: each call's
# result; with a path (stdout's file), whether the line written before a
# sync is in the file when the call returns.
import errno
import os
import sys

path = sys.argv[1] if len(sys.argv) > 1 else None
for fd in (1, 2):
    for fn in (os.fsync, os.fdatasync):
        mark = "before %s(%d)" % (fn.__name__, fd)
        os.write(fd, (mark + "\n").encode())
        try:
            fn(fd)
            how = "ok"
        except OSError as e:
            how = errno.errorcode[e.errno]
        there = ""
        if path is not None and fd == 1:
            with open(path) as f:
                there = ", in the file: %s" % (mark in f.read())
        print("%s(%d): %s%s" % (fn.__name__, fd, how, there), flush=True)
