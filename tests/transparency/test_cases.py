"""The pass-through contract, case by case: every line of `cases` runs
plainly, under a launch-mode collector (-q, so the job's output passes
through) and under the preload library with a serve-mode collector that
has served every earlier case. Output bytes, exit status and timing class
must be the same. A new case is one line in `cases`."""
import fcntl
import os
import pty
import struct
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from harness import (COLLECTOR, CWRITER, SHIM, clean_env, read_records,  # noqa
                     read_until_eof, wait_serving)

TIMEOUT = 120
# The window of the terminals the pty cases run on (rows, columns).
WINDOW = (30, 101)


def parse_cases(path):
    """(name, options, command) for each case line."""
    cases = []
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, flags, cmd = line.split(None, 2)
            opts = {}
            for flag in ([] if flags == "-" else flags.split(",")):
                key, _, val = flag.partition("=")
                opts[key] = val or True
            cases.append((name, opts, cmd))
    return cases


def finish(p, timeout=TIMEOUT):
    """Wait for p; on a timeout kill its whole process group, so that a
    hung pipeline (a writer that never got EPIPE) does not live on."""
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise


def run(argv, env, opts, outdir):
    """Run argv with the case's destinations; (stdout, stderr, rc, secs)."""
    os.makedirs(outdir, exist_ok=True)
    t0 = time.monotonic()
    if "pty" in opts:
        master, slave = pty.openpty()
        fcntl.ioctl(master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", WINDOW[0], WINDOW[1], 0, 0))
        got = []
        reader = threading.Thread(target=read_until_eof, args=(master, got))
        reader.start()
        # ctty: the terminal is also stdin and the controlling terminal,
        # as for a program started from an interactive shell.
        ctty = "ctty" in opts
        p = subprocess.Popen(
            argv, stdin=slave if ctty else subprocess.DEVNULL, stdout=slave,
            stderr=slave, env=env, start_new_session=True,
            preexec_fn=(lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
            if ctty else None)
        os.close(slave)
        rc = finish(p)
        secs = time.monotonic() - t0
        reader.join(timeout=TIMEOUT)
        os.close(master)
        return b"".join(got), b"", rc, secs
    if "file" in opts:
        out_path = os.path.join(outdir, "stdout.f")
        err_path = os.path.join(outdir, "stderr.f")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            rc = finish(subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out,
                stderr=out if "merged" in opts else err, env=env,
                start_new_session=True))
        secs = time.monotonic() - t0
        with open(out_path, "rb") as out, open(err_path, "rb") as err:
            return out.read(), err.read(), rc, secs
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE,
                         stderr=(subprocess.STDOUT if "merged" in opts
                                 else subprocess.PIPE),
                         env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise
    return out, err or b"", p.returncode, time.monotonic() - t0


class Cases(unittest.TestCase):
    """Filled with one test per case and mode below."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="meshlog-transparency-")
        cls.data = os.path.join(cls.tmp, "data")
        os.mkdir(cls.data)
        with open(os.path.join(cls.data, "big.bin"), "wb") as f:
            for _ in range(300):
                f.write(os.urandom(1 << 20))
        with open(os.path.join(cls.data, "big.txt"), "wb") as f:
            for _ in range(20):
                f.write(os.urandom(1 << 19).hex().encode())
        # A repository for the pager cases.
        repo = os.path.join(cls.data, "repo")
        os.mkdir(repo)
        git = ["git", "-C", repo, "-c", "user.name=t", "-c",
               "user.email=t@example.invalid"]
        subprocess.run(git + ["init", "-q"], check=True)
        for i in range(3):
            subprocess.run(git + ["commit", "-q", "--allow-empty", "-m",
                                  "change %d" % i], check=True)
        # Console view and aggregation on, as a user's would be; no JSON
        # log, whose size for the 300 MB cases is not the question here.
        cls.sock = os.path.join(cls.tmp, "serve.sock")
        cls.serve_err = open(os.path.join(cls.tmp, "serve.err"), "wb+")
        cls.serve = subprocess.Popen(
            [COLLECTOR, "-s", cls.sock], stdout=subprocess.DEVNULL,
            stderr=cls.serve_err, env=clean_env())
        wait_serving(cls.sock, cls.serve)
        cls.runs = 0

    @classmethod
    def tearDownClass(cls):
        cls.serve.terminate()
        rc = cls.serve.wait(timeout=30)
        cls.serve_err.seek(0)
        err = cls.serve_err.read().decode(errors="replace")
        cls.serve_err.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "serve collector exited with %d: %s" % (rc, err)
        # Its console shows the jobs' stderr; no warning may be among it.
        assert "warning" not in err, "serve collector said: " + err


    def env(self, outdir, **extra):
        return clean_env(HERE=HERE, DATA=self.data, OUT=outdir,
                         PROGS=os.path.dirname(CWRITER), **extra)

    def outdir(self):
        Cases.runs += 1
        return os.path.join(self.tmp, "run%d" % Cases.runs)

    def run_pair(self, opts, cmd, mode):
        """One plain run and one with meshlog; their results and log."""
        d = self.outdir()
        plain = run(["bash", "-c", cmd], self.env(d), opts, d)
        d = self.outdir()
        log = os.path.join(d, "log.jsonl")
        if mode == "launch":
            argv = [COLLECTOR, "-q", "-s", os.path.join(d, "l.sock")]
            if "json" in opts:
                argv += ["-j", log]
            got = run(argv + ["--", "bash", "-c", cmd], self.env(d), opts,
                      d)
        else:
            got = run(["bash", "-c", cmd], self.env(
                d, LD_PRELOAD=SHIM, MESHLOG_SOCKET=self.sock), opts, d)
        return plain, got, log

    def check_case(self, name, opts, cmd, mode):
        for i in range(int(opts.get("repeat", 1))):
            what = "%s (%s, run %d)" % (name, mode, i + 1)
            # Timing on a shared machine is noisy (and a terminal's
            # session leader can take seconds to exit, with or without
            # meshlog): a pair out of class is run again, twice at most.
            for attempt in range(3):
                plain, got, log = self.run_pair(opts, cmd, mode)
                self.assertEqual(got[2], plain[2], "exit status of " + what)
                self.assertEqual(got[0], plain[0], "stdout of " + what)
                self.assertEqual(got[1], plain[1], "stderr of " + what)
                if got[3] <= 2 * plain[3] + 1.0:
                    break
            self.assertLessEqual(got[3], 2 * plain[3] + 1.0,
                                 "%s took %.2f s, plainly %.2f s"
                                 % (what, got[3], plain[3]))
            if mode == "launch" and "json" in opts:
                read_records(log)
                if "maxlog" in opts:
                    self.assertLessEqual(os.path.getsize(log),
                                         int(opts["maxlog"]), what)


def add_tests():
    for name, opts, cmd in parse_cases(os.path.join(HERE, "cases")):
        for mode in ("launch", "preload"):
            if mode not in opts and ("launch" in opts or "preload" in opts):
                continue

            def test(self, name=name, opts=opts, cmd=cmd, mode=mode):
                self.check_case(name, opts, cmd, mode)
            test.__doc__ = "%s, %s: %s" % (name, mode, cmd)
            setattr(Cases, "test_%s_%s" % (name.replace("-", "_"), mode),
                    test)


add_tests()

if __name__ == "__main__":
    unittest.main(verbosity=2)
