"""Count forkwriters.py's lines read from stdin (or a typescript, whose
carriage returns and "Script ..." lines are left out) and those that
are not whole: "lines N cut K" for every writer tag."""
import re
import sys

WHOLE = re.compile(rb"^(parent|child) (\d{7}) (x+)$")
count = {}
cut = 0
for raw in sys.stdin.buffer:
    line = raw.rstrip(b"\n").rstrip(b"\r")
    if line.startswith(b"Script ") or not line:
        continue
    m = WHOLE.match(line)
    if m is None or len(m.group(3)) != 50 + int(m.group(2)) % 37:
        cut += 1
        continue
    count[m.group(1)] = count.get(m.group(1), 0) + 1
print(" ".join("%s %d" % (k.decode(), v) for k, v in sorted(count.items())),
      "cut", cut)
