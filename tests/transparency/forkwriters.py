"""A process and its forked child each write lines to stdout, one
os.write(2) a line, at once: every line must reach the destination
whole, as it does without meshlog (a write of up to PIPE_BUF bytes is
atomic), though the two share it. Lines are 64-100 bytes."""
import os
import sys

n = int(sys.argv[1])
pid = os.fork()
tag = "child" if pid == 0 else "parent"
for i in range(n):
    os.write(1, ("%s %07d %s\n" % (tag, i, "x" * (50 + i % 37))).encode())
if pid:
    os.waitpid(pid, 0)
