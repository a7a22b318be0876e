"""A program that runs a child on a pseudo-terminal it made and reads it."""
import os
import pty
import subprocess

master, slave = pty.openpty()
p = subprocess.Popen(["sh", "-c", "echo inside-openpty; seq 1 3"],
                     stdout=slave, stderr=slave)
os.close(slave)
out = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
p.wait()
print(repr(out))
