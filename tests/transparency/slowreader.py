"""A parent that reads a child's PIPE slowly: every line must arrive."""
import subprocess
import sys
import time

p = subprocess.Popen(["seq", "1", "200000"], stdout=subprocess.PIPE)
n = 0
for line in p.stdout:
    n += 1
    if n % 10000 == 0:
        time.sleep(0.02)
print("read", n, "lines, child exit", p.wait())
