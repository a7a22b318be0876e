"""The Python levers (contrib/python/meshlog.py) against a real collector,
run with Debian's python3 where it is installed."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MeshTest, events, clean_env

SRC = os.environ.get("MESHLOG_SRCDIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
DEBIAN_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable

SCRIPT = r'''
import logging, sys
import meshlog

class FakeEvents:
    def __init__(self): self.hooks = []
    def register(self, name, fn): self.hooks.append((name, fn))
class FakeIPython:
    events = FakeEvents()

mode = meshlog.logging_option(stream_to_client=False,
                              aggregate_window_sec=None,
                              level=logging.WARNING)
assert mode == {"stream_to_client": False, "aggregate_window_sec": None,
                "console_level": 0, "console_ranks": None,
                "level": 30, "ranks": None}, mode
mode = meshlog.logging_option(level="error", ranks=[1, 0, 1])
assert mode["level"] == 40 and mode["ranks"] == [0, 1], mode
# What it was not given stays as it was.
assert mode["aggregate_window_sec"] is None, mode
assert mode["stream_to_client"] is False, mode
mode = meshlog.logging_option(aggregate_window_sec=5)
assert mode["aggregate_window_sec"] == 5.0 and mode["level"] == 40, mode
mode = meshlog.logging_option(aggregate_window_sec=0)
assert mode["aggregate_window_sec"] is None, mode
# The console's filters never touch the programs' level.
mode = meshlog.logging_option(console_level="warning", console_ranks=[3, 0])
assert mode["console_level"] == 30 and mode["console_ranks"] == [0, 3], mode
assert mode["level"] == 40 and mode["ranks"] == [0, 1], mode
mode = meshlog.logging_option(console_ranks=None)
assert mode["console_ranks"] is None and mode["console_level"] == 30, mode
r = meshlog.flush(timeout=2.0)
assert r["type"] == "flushed" and r["version"] == 1 and r["incomplete"] == []
st = meshlog.status()
assert st["collector"]["flush_version"] == 1, st
try:
    meshlog.logging_option(level=99)
    raise SystemExit("level 99 accepted")
except ValueError:
    pass
ip = FakeIPython()
assert meshlog.register_cell_flush(ip) is True
assert meshlog.register_cell_flush(ip) is False      # once per shell
name, hook = ip.events.hooks[0]
assert name == "post_run_cell"
hook(None)                                             # a cell ended
assert meshlog.status()["collector"]["flush_version"] == 2
try:
    meshlog.flush(socket="/nonexistent/meshlog.sock")
    raise SystemExit("no error without a collector")
except meshlog.MeshlogError as e:
    assert "no collector at /nonexistent/meshlog.sock" in str(e)
print("python levers ok", sys.version_info[:2])
'''


class PythonLevers(MeshTest):

    def test_levers_against_a_real_collector(self):
        self.serve(args=["-q"])
        env = clean_env(MESHLOG_SOCKET=self.sock, PYTHONPATH=os.path.join(
            SRC, "contrib", "python"))
        p = subprocess.run([DEBIAN_PYTHON, "-c", SCRIPT], env=env,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        self.assertIn(b"python levers ok", p.stdout)
        self.assertEqual(self.stop(), 0)
        # Two from the script, the third is the collector's at shutdown.
        self.assertEqual([e["version"] for e in events(self.records,
                                                       "flush")], [1, 2, 3])
        # Each change of the programs' level is in the log, to explain
        # the lines that stop.
        levels = [(e["level"], e["level_name"], e["ranks"])
                  for e in events(self.records, "set_level")]
        self.assertEqual(levels, [(30, "WARNING", None),
                                  (40, "ERROR", [0, 1])])
        modes = [e["mode"] for e in events(self.records, "set_mode")]
        self.assertEqual(modes[-2]["console_ranks"], [0, 3])


if __name__ == "__main__":
    unittest.main(verbosity=2)
