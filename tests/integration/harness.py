"""Shared helpers for the integration tests: real programs under the real
shim and a real collector, with assertions on the JSON log's exact content.
"""
import calendar
import datetime
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("MESHLOG_BUILDDIR") or os.path.dirname(os.path.dirname(HERE))
COLLECTOR = os.path.join(BUILD, "collector", "meshlog-collector")
SHIM = os.path.join(BUILD, "shim", ".libs", "libmeshlog_preload.so")
CWRITER = os.path.join(BUILD, "tests", "progs", "cwriter")
CXXWRITER = os.path.join(BUILD, "tests", "progs", "cxxwriter")
PYTHON = sys.executable
# An AddressSanitizer build (./configure --enable-asan): slower, and its
# allocator keeps freed memory in quarantine, so RSS says nothing of leaks
# there (LeakSanitizer checks them instead).
ASAN = os.environ.get("MESHLOG_ASAN") == "yes"
# Python code defining tell_rank(rank, world): the message meshlog's
# Python hook sends when a worker of torch.multiprocessing.spawn, which has
# no rank in its environment, joins its process group.
TELL_RANK = ("def tell_rank(rank, world):\n"
             "    import os, socket\n"
             "    s = socket.socket(socket.AF_UNIX)\n"
             "    s.connect(os.environ['MESHLOG_SOCKET'])\n"
             "    s.sendall(b'{\"type\":\"rank\",\"rank\":%d,'\n"
             "              b'\"world_size\":%d}\\n' % (rank, world))\n"
             "    s.recv(64)\n"
             "    s.close()\n")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

# Environment variables a test must not inherit from whoever runs it.
_SCRUB = ("LD_PRELOAD", "MESHLOG_SOCKET", "MESHLOG_STREAM", "MESHLOG_OWNER",
          "MESHLOG_PYTHONPATH", "MESHLOG_RUNTIME", "PYTHONDONTWRITEBYTECODE",
          "MESHLOG_QUIET", "MESHLOG_BUFFERING", "MESHLOG_DISABLE",
          "MESHLOG_RANK", "PYTHONUNBUFFERED", "RANK", "LOCAL_RANK",
          "WORLD_SIZE")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def ts_ns(ts):
    """An RFC 3339 UTC time with microseconds, in ns since the epoch."""
    d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    return (calendar.timegm(d.timetuple()) * 1000000 + d.microsecond) * 1000


def read_records(path):
    """Every JSON record of the log; each line must parse on its own."""
    out = []
    with open(path, "rb") as f:
        for raw in f:
            assert raw.endswith(b"\n"), "record without newline: %r" % raw[:80]
            out.append(json.loads(raw))
    return out


def mpi_problem():
    """Why mpirun tests cannot run here, or None."""
    for tool in ("mpicc", "mpirun"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "").split(":")):
            return "%s not found (Debian's openmpi-bin, libopenmpi-dev)" % tool
    return None


def run_on_pty(cmd, env, cols=97, rows=31, raw=False):
    """Run cmd with a new pty as stdin/stdout/stderr; return its exit code
    and output (with its carriage returns when raw)."""
    pid, master = pty.fork()
    if pid == 0:
        os.execvpe(cmd[0], cmd, env)
    fcntl.ioctl(master, termios.TIOCSWINSZ,
                struct.pack("HHHH", rows, cols, 0, 0))
    out = read_until_eof(master)
    _, status = os.waitpid(pid, 0)
    os.close(master)
    out = out.decode(errors="replace")
    return os.waitstatus_to_exitcode(status), out if raw else out.replace(
        "\r", "")


def type_on_pty(cmd, env, wait_for, key, delay=0.0, stdin_null=False,
                cols=80, rows=24, timeout=60):
    """Run cmd on a new pty (stdin too, unless stdin_null), type key once
    its output holds wait_for (delay seconds later); its exit code and its
    output, raw bytes. A program still waiting after timeout seconds (for
    a prompt it never saw) is killed and the test fails."""
    pid, master = pty.fork()
    if pid == 0:
        if stdin_null:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.execvpe(cmd[0], cmd, env)
    fcntl.ioctl(master, termios.TIOCSWINSZ,
                struct.pack("HHHH", rows, cols, 0, 0))
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([master], [], [], left)[0]:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(master)
            raise AssertionError("%r: no end after %d s, output %r"
                                 % (cmd, timeout, out))
        try:
            chunk = os.read(master, 65536)
        except OSError:     # EIO once the slave closes
            break
        if not chunk:
            break
        out += chunk
        if not sent and wait_for in out:
            time.sleep(delay)
            os.write(master, key)
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(master)
    return os.waitstatus_to_exitcode(status), out


def read_until_eof(fd, sink=None):
    """Read fd (a pipe, or a terminal's master side) until every writer
    is gone; the bytes, also appended to the list sink when given."""
    got = [] if sink is None else sink
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:     # a terminal's master: EIO once the slave closes
            break
        if not chunk:
            break
        got.append(chunk)
    return b"".join(got)


def wait_serving(sock, proc, timeout=10):
    """Wait until the collector proc answers on sock: its event loop runs
    and its signal handlers are in place, not merely its socket exists.
    Raises AssertionError if it exits or does not answer in time."""
    deadline = time.time() + timeout
    while True:
        assert proc.poll() is None, "collector exited at start"
        assert time.time() < deadline, "socket never answered"
        s = socket.socket(socket.AF_UNIX)
        try:
            s.settimeout(5)
            s.connect(sock)
            s.sendall(b'{"type":"status"}\n')
            if s.recv(1):
                return
        except OSError:
            time.sleep(0.01)
        finally:
            s.close()


def line_records(records, **match):
    return [r for r in records if "line" in r
            and all(r.get(k) == v for k, v in match.items())]


def file_bytes(path):
    """What path holds so far; nothing when it does not exist yet."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def events(records, name):
    return [r for r in records if r.get("event") == name]


class MeshTest(unittest.TestCase):
    """A test with a private directory, and helpers to run the collector."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="meshlog-test-")
        self.json = os.path.join(self.tmp, "log.jsonl")
        self.children = []

    def tearDown(self):
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        if not os.environ.get("MESHLOG_TEST_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    # Launch mode: the collector runs the command.
    def launch(self, cmd, args=(), timeout=120, env=None, **kw):
        full = [COLLECTOR, "-s", os.path.join(self.tmp, "l.sock"),
                "-j", self.json, *args, "--", *cmd]
        p = subprocess.run(full, capture_output=True, timeout=timeout,
                           env=env or clean_env(), **kw)
        self.records = read_records(self.json)
        self.check_contract(self.records)
        return p

    # The collector with exactly these arguments, no log parsing.
    def launch_raw(self, args, timeout=60):
        return subprocess.run([COLLECTOR, *args], capture_output=True,
                              timeout=timeout, env=clean_env())

    # Serve mode: a collector that runs until stopped.
    def serve(self, args=(), sock=None):
        self.sock = sock or os.path.join(self.tmp, "c.sock")
        self.serve_err = open(os.path.join(self.tmp, "collector.err"), "wb+")
        self.serve_out = open(os.path.join(self.tmp, "collector.out"), "wb+")
        p = subprocess.Popen([COLLECTOR, "-s", self.sock, "-j", self.json,
                              *args], stdout=self.serve_out,
                             stderr=self.serve_err, env=clean_env())
        self.children.append(p)
        wait_serving(self.sock, p)
        self.collector = p
        return p

    def collector_path(self):
        return COLLECTOR

    def connect(self):
        """A connection to the serve-mode collector's socket."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(self.sock)
        self.addCleanup(s.close)
        return s

    def reply(self, s):
        """The next JSON line the collector sends on s, or None."""
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return json.loads(data.splitlines()[0]) if data else None

    def shim_env(self, **extra):
        return clean_env(LD_PRELOAD=SHIM, MESHLOG_SOCKET=self.sock, **extra)

    def stop(self, sig=signal.SIGTERM):
        self.collector.send_signal(sig)
        rc = self.collector.wait(timeout=30)
        self.records = read_records(self.json)
        self.check_contract(self.records)
        return rc

    def collector_stderr(self):
        self.serve_err.seek(0)
        return self.serve_err.read().decode(errors="replace")

    def wait_for(self, pred, timeout=20, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.02)
        self.fail("timed out waiting for " + what)

    def log_bytes(self):
        return file_bytes(self.json)

    def check_contract(self, records):
        """The JSON log's contract: fields, types, seq without gaps."""
        seqs = {}
        for r in records:
            self.assertTrue(TS_RE.match(r.get("ts", "")), r)
            if "event" in r:
                continue
            for k in ("host", "pid", "rank", "stream", "seq", "line",
                      "source"):
                self.assertIn(k, r)
            self.assertIn(r["stream"], ("stdout", "stderr"))
            # ts_ns is ts, as a number tools read without parsing.
            self.assertEqual(r["ts_ns"], ts_ns(r["ts"]), r)
            self.assertIn(r.get("level", "INFO"), ("DEBUG", "INFO",
                                                    "WARNING", "ERROR",
                                                    "CRITICAL"), r)
            self.assertTrue(r["rank"] is None or isinstance(r["rank"], int))
            key = (r["source"], r["stream"])
            self.assertEqual(r["seq"], seqs.get(key, 0),
                             "seq gap in %s" % (key,))
            seqs[key] = r["seq"] + 1
        for r in events(records, "source_closed"):
            for stream, n in r["lines"].items():
                self.assertEqual(n, seqs.get((r["source"], stream), 0),
                                 "source_closed count for %s" % stream)

    def texts(self, **match):
        return [r["line"] for r in line_records(self.records, **match)]
