"""
The collector's modules call down, never up: every call between two
modules goes from one declared later in collector/collector.h to one
declared earlier (the header is ordered by layer: utilities, codecs and
state machines, sinks, the flush barrier, sources, transports, control,
the program). That rules out cycles. Calls are read from the object
files' symbols (nm), so a call the header does not declare counts too.

Prints the module graph; fails on a call that goes up, naming the symbols.
"""

import os
import re
import subprocess
import sys

BUILD = os.environ.get("MESHLOG_BUILDDIR", ".")
SRC = os.environ.get("MESHLOG_SRCDIR", ".")

# Files that are one module: forked.c (processes forked without exec),
# ending.c and endproc.c (how processes ended), stall.c (silent ranks),
# sourcelog.c (events and status), forward.c (launchers' copies of ranks'
# lines) and handover.c (processes taken back from a dead collector's
# keeper) are parts of source.c split off for size; they share the state
# of collector/source.h and call each other. aggtext.c (how a group
# reads), aggtok.c (its lines cut into words), aggmatch.c (close groups
# by edit distance), aggranks.c (ranks that ended, and the last group
# each joined), aggsort.c (a word's values sorted) and aggchunk.c
# (groups' and members' memory) are aggregate.c's, sharing
# collector/aggregate.h. destq.c (destination queues the keeper writes if
# the collector dies) and keepmem.c (the memory the collector shares with
# the keeper) are keeper.c's, sharing collector/keeper.h.
GROUPS = {"aggtext": "aggregate", "aggtok": "aggregate",
          "aggmatch": "aggregate", "aggranks": "aggregate",
          "aggsort": "aggregate", "aggchunk": "aggregate",
          "destq": "keeper", "keepmem": "keeper",
          "forked": "source", "ending": "source", "endproc": "source",
          "stall": "source", "sourcelog": "source", "forward": "source",
          "handover": "source", "emit": "source"}


def module(stem):
    return GROUPS.get(stem, stem)


def layers():
    """Modules in the order of their banners in collector.h, then main."""
    order = []
    with open(os.path.join(SRC, "collector", "collector.h")) as f:
        for line in f:
            m = re.match(r"/\* ([a-z_]+)\.c", line)
            if m and module(m.group(1)) not in order:
                order.append(module(m.group(1)))
    order.append("main")
    return order


def symbols():
    """(defined, used) per module, from the library and main's object."""
    lib = os.path.join(BUILD, "collector", ".libs",
                       "libmeshlog_collector.a")
    main = os.path.join(BUILD, "collector", "meshlog_collector-main.o")
    for path in (lib, main):
        if not os.path.exists(path):
            print("not built:", path)
            sys.exit(99)
    defined, used = {}, {}
    out = subprocess.run(["nm", "-A", lib, main], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r"^.*?(?:_la-|collector-)(\w+)\.o:\s*(.*)$", line)
        if m is None:
            continue
        mod = module(m.group(1))
        f = m.group(2).split()
        if len(f) == 3 and f[1] == "T":
            defined[f[2]] = mod
        elif len(f) == 2 and f[0] == "U":
            used.setdefault(mod, set()).add(f[1])
    return defined, used


def main():
    order = layers()
    rank = {m: i for i, m in enumerate(order)}
    defined, used = symbols()
    edges = {}
    for mod, syms in used.items():
        for s in syms:
            to = defined.get(s)
            if to is not None and to != mod:
                edges.setdefault((mod, to), set()).add(s)
    bad = 0
    for mod in order:
        calls = sorted(to for (m, to) in edges if m == mod)
        print("%-10s -> %s" % (mod, " ".join(calls) or "(nothing)"))
    for (mod, to), syms in sorted(edges.items()):
        if mod not in rank or to not in rank:
            print("not in collector.h's layers: %s" %
                  (mod if mod not in rank else to))
            bad += 1
        elif rank[to] >= rank[mod]:
            print("UP: %s calls %s, declared later: %s" %
                  (mod, to, " ".join(sorted(syms))))
            bad += 1
    if bad:
        print("%d calls go up: move the code, or pass a callback down" %
              bad)
        sys.exit(1)
    print("no call goes up: %d modules, %d edges" % (len(order), len(edges)))


if __name__ == "__main__":
    main()
