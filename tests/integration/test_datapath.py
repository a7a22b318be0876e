"""The data path's promises that need a collector in a particular state:
a stopped collector strands no descriptor, a hello that would make the
collector feed itself is refused, a new process registers quickly while
another floods, and output bound for a terminal is there before the
process exits. (Byte-for-byte comparisons of pipelines with and without
meshlog are in tests/transparency.)"""
import bisect
import json
import os
import pty
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ASAN, CWRITER, SHIM, MeshTest, clean_env,
                     read_until_eof)


def hello(streams):
    return {"type": "hello", "proto": 2, "pid": os.getpid(), "ppid": 1,
            "uid": os.getuid(), "host": "h", "start_us": 0,
            "argv": ["x"], "rank": None, "local_rank": None,
            "world_size": None,
            "streams": [{"name": s, "tty": False} for s in streams]}


class DataPath(MeshTest):

    def register(self, fds, streams=("stdout",)):
        """A hand-made registration; the answer to its streams message."""
        s = self.connect()
        s.sendall(json.dumps(hello(streams)).encode() + b"\n")
        self.assertEqual(self.reply(s)["type"], "accept")
        socket.send_fds(s, [b'{"type":"streams"}\n'], fds)
        return self.reply(s)

    def test_stopped_collector_holds_no_reader_hostage(self):
        # A collector that stopped before accepting never receives the
        # process's original descriptors, so `$(cmd)` sees EOF as soon as
        # cmd exits (after the fail-open wait), not never.
        self.serve()
        os.kill(self.collector.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            p = subprocess.run([CWRITER, "lines", "2", "stranded"],
                               capture_output=True, timeout=20,
                               env=self.shim_env(MESHLOG_TIMEOUT_MS=500,
                                                 MESHLOG_QUIET=1))
            took = time.monotonic() - t0
        finally:
            os.kill(self.collector.pid, signal.SIGCONT)
        self.assertEqual(p.stdout, b"stranded 0\nstranded 1\n")
        self.assertLess(took, 3.0)
        self.assertEqual(self.stop(), 0)

    def test_a_collector_short_of_descriptors_loses_no_output(self):
        # Under a low hard descriptor limit the collector runs out while
        # forty subshells fork and exec. A forked child's pipes, sent to
        # the collector, used to be dropped by the kernel when they did not
        # fit (its output lost), and new processes waited out their
        # registration timeout. Now every line arrives, and a newcomer the
        # collector cannot take is refused at once and runs uncaptured.
        import resource

        def low():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

        job = ("for i in $(seq 60); do (sleep 0.5; echo $i; /bin/echo x$i) "
               "& done; wait")
        want = sorted([b"%d" % i for i in range(1, 61)] +
                      [b"x%d" % i for i in range(1, 61)])
        # The build before lost 4 to 8 of the 120 lines in each of 6 runs.
        p = subprocess.run(
            [self.collector_path(), "-q", "-j",
             os.path.join(self.tmp, "low.jsonl"), "--", "sh", "-c", job],
            preexec_fn=low, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=clean_env(), timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertEqual(sorted(p.stdout.splitlines()), want,
                         p.stderr[-2000:])

    def test_a_readers_eof_waits_for_no_exit_status(self):
        # `seq | wc` and `x=$(cmd)`: the reader sees EOF once the writer
        # is gone, as without meshlog. The collector used to hold the
        # pipe until it knew how the writer ended; a parent that reaped
        # it first (a shell) says so in a message read in batches, and
        # one without the shim (this test) never does: EOF came a
        # second late, when the collector stopped waiting.
        self.serve()
        r, w = os.pipe()
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; print('one', flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=w,
            env=self.shim_env(MESHLOG_QUIET=1))
        self.children.append(child)
        os.close(w)
        self.assertEqual(os.read(r, 100), b"one\n")
        # Reaped before the collector can read its status in /proc.
        os.kill(self.collector.pid, signal.SIGSTOP)
        try:
            child.stdin.close()
            self.assertEqual(child.wait(timeout=20), 0)
        finally:
            os.kill(self.collector.pid, signal.SIGCONT)
        t0 = time.monotonic()
        self.assertEqual(read_until_eof(r), b"")
        took = time.monotonic() - t0
        os.close(r)
        self.assertLess(took, 0.5)
        self.assertEqual(self.stop(), 0)

    def test_each_open_of_a_file_writes_at_its_own_offset(self):
        # A process holds out open at offset 5; out is opened again,
        # truncated, for another (`cmd > out` in a loop). Without meshlog
        # the second writes at the start of its own description. The
        # collector took the first process's description for every
        # process writing that file: NULs, then its bytes, at offset 5.
        def scenario(env):
            out = os.path.join(self.tmp, "out")
            with open(out, "wb") as first:
                a = subprocess.Popen(
                    [sys.executable, "-c", "import sys\n"
                     "sys.stdout.write('aaaa\\n')\nsys.stdout.flush()\n"
                     "sys.stdin.read()"],
                    stdin=subprocess.PIPE, stdout=first, env=env)
            self.children.append(a)
            self.wait_for(lambda: os.path.getsize(out) >= 5,
                          what="the first writer's line")
            with open(out, "wb") as second:
                subprocess.run(["/bin/echo", "bb"], stdout=second,
                               env=env, check=True, timeout=20)
            a.stdin.close()
            self.assertEqual(a.wait(timeout=20), 0)
            with open(out, "rb") as f:
                return f.read()

        self.serve()
        self.assertEqual(scenario(clean_env()), b"bb\n")
        self.assertEqual(scenario(self.shim_env(MESHLOG_QUIET=1)), b"bb\n")
        self.assertEqual(self.stop(), 0)

    def test_hello_that_feeds_itself_is_refused(self):
        self.serve()
        # The original destination is the write end of the pipe captured.
        r, w = os.pipe()
        ans = self.register([r, w])
        self.assertEqual(ans["type"], "error")
        self.assertIn("being captured", ans["message"])
        os.close(r)
        os.close(w)
        # A pipe the collector already reads cannot be captured again.
        r, w = os.pipe()
        devnull = os.open(os.devnull, os.O_WRONLY)
        self.assertEqual(self.register([r, devnull])["type"], "welcome")
        again = os.dup(r)
        devnull = os.open(os.devnull, os.O_WRONLY)
        ans = self.register([again, devnull])
        self.assertEqual(ans["type"], "error")
        self.assertIn("already reads", ans["message"])
        # Nothing looped: one line in, one record out.
        os.write(w, b"once\n")
        os.close(w)
        os.close(r)
        self.assertEqual(self.stop(), 0)
        self.assertEqual(self.texts(), ["once"])

    def test_a_forks_unread_count_out_of_range_is_ignored(self):
        # A fork message's third number of each pipe says what the
        # parent's pipe held at the fork. One out of range or not an
        # integer is not trusted (the pipe's count stands) and refuses
        # nothing: each child's line still reaches the destination.
        self.serve()
        r, w = os.pipe()
        out = os.path.join(self.tmp, "out")
        dest = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
        self.assertEqual(self.register([r, dest])["type"], "welcome")
        os.write(w, b"parent\n")
        fam = self.connect()
        fam.sendall(b'{"type":"family"}\n')
        st = os.fstat(r)
        bad = (-1000, '"x"', 2 ** 40, 1.5, "null", 7)
        for i, n in enumerate(bad):
            pid = os.fork()
            if pid == 0:
                cr, cw = os.pipe()
                msg = '{"type":"fork","of":[[%d,%d,%s]]}\n' % (
                    st.st_dev, st.st_ino, n)
                socket.send_fds(fam, [msg.encode()], [cr])
                os.write(cw, b"child %d\n" % i)
                os._exit(0)
            self.assertEqual(os.waitpid(pid, 0)[1], 0)
        self.wait_for(lambda: self.log_bytes().count(b'"line":"child') ==
                      len(bad), what="every child's line")
        os.close(w)
        os.close(r)
        fam.close()
        self.assertEqual(self.stop(), 0)
        with open(out, "rb") as f:
            got = f.read().splitlines()
        self.assertEqual(got[0], b"parent")
        self.assertEqual(sorted(got[1:]),
                         [b"child %d" % i for i in range(len(bad))])
        self.assertNotIn("refus", self.collector_stderr())

    def test_new_process_registers_fast_while_another_floods(self):
        # A writer floods a serve-mode collector, console view on, with
        # output that has no newline (4 KiB cut pieces) after an earlier
        # job left pieces of the same length in the aggregator. New
        # processes must still register within 50 ms.
        self.serve(args=["--aggregate", "30"])
        blob = os.path.join(self.tmp, "blob")
        with open(blob, "wb") as f:
            f.write(os.urandom(8 << 20).hex().encode())
        subprocess.run(["cat", blob], stdout=subprocess.DEVNULL,
                       env=self.shim_env(), check=True, timeout=120)
        with open(blob, "wb") as f:
            f.write(os.urandom(8 << 20).hex().encode())
        flood = subprocess.Popen(
            ["bash", "-c", "while :; do cat %s; done" % blob],
            stdout=subprocess.DEVNULL, env=self.shim_env())
        self.children.append(flood)
        time.sleep(0.5)
        took = []
        for _ in range(15):
            t0 = time.monotonic()
            p = subprocess.run([CWRITER, "lines", "1", "reg"],
                               capture_output=True, timeout=30,
                               env=self.shim_env(MESHLOG_QUIET=1))
            took.append(time.monotonic() - t0)
            self.assertEqual(p.stdout, b"reg 0\n")
            self.assertEqual(p.stderr, b"reg err 0\n")
        flood.kill()
        flood.wait()
        base = []
        for _ in range(15):
            t0 = time.monotonic()
            subprocess.run([CWRITER, "lines", "1", "reg"],
                           capture_output=True, timeout=30, env=clean_env())
            base.append(time.monotonic() - t0)
        self.assertEqual(self.stop(), 0)
        extra = statistics.median(took) - statistics.median(base)
        self.assertLess(extra, 0.100 if ASAN else 0.050,
                        "registration took %s" % took)
        self.assertEqual(self.texts(stream="stdout").count("reg 0"), 15)

    def test_output_without_newline_passes_at_the_speed_of_cat(self):
        # 20 MB without a newline, written by cat into a file inside a job
        # with a JSON log: cat's own wall time within 10x of the same cat
        # without meshlog (medians of runs side by side). It was 100x and
        # worse when every 4 KiB piece met the edit distance; that is what
        # this guards against, not a speed target (those are benchmarks):
        # about 2.5x here, 3x with the collector built with ASan, and more
        # when another test shares the two cores. A round out of bound is
        # measured again.
        big = os.path.join(self.tmp, "big")
        with open(big, "wb") as f:
            f.write(os.urandom(10 << 20).hex().encode())
        cmd = "TIMEFORMAT=%%R; time cat %s > %s/out" % (big, self.tmp)
        for attempt in range(2):
            plain, meshed = [], []
            for i in range(5):
                p = subprocess.run(["bash", "-c", cmd], capture_output=True,
                                   env=clean_env(), timeout=60)
                plain.append(float(p.stderr))
                if os.path.exists(self.json):
                    os.unlink(self.json)
                p = self.launch(["bash", "-c", cmd], args=["-q"],
                                timeout=60)
                meshed.append(float(p.stderr))
                with open(os.path.join(self.tmp, "out"), "rb") as f:
                    self.assertEqual(len(f.read()), 20 << 20)
                pieces = [r for r in self.records
                          if "line" in r and r["stream"] == "stdout"]
                self.assertEqual(sum(len(r["line"]) for r in pieces),
                                 20 << 20)
            ratio = (statistics.median(meshed) /
                     max(statistics.median(plain), 0.001))
            print("20 MB without newline: cat %s s, under meshlog %s s, "
                  "ratio %.2f" % (plain, meshed, ratio))
            if ratio < 10.0:
                break
        self.assertLess(ratio, 10.0)

    def test_a_writer_that_keeps_its_pipe_full_cannot_hold_the_loop(self):
        # Two writers flood with one line per write(2), as fast as the
        # collector reads, so their pipes never run dry; a third writes a
        # line every 3 ms. Each pass of the loop reads a pipe at most
        # twice, so between the ping's write and its read the collector
        # reads the floods at most a few times (two passes: 8 reads).
        # It used to read a flood until its 512 KiB budget was spent, one
        # line at a time: hundreds of reads while the ping waited. What
        # is counted is reads, not time, so a slow machine cannot fail it.
        self.serve()
        floods = [subprocess.Popen([CWRITER, "raw", "1000000000"],
                                   stdout=subprocess.DEVNULL,
                                   env=self.shim_env())
                  for _ in range(2)]
        self.children += floods
        times = os.path.join(self.tmp, "times")
        ping = ("import os, sys, time\n"
                "out = open(sys.argv[1], 'w')\n"
                "time.sleep(0.1)\n"
                "for i in range(50):\n"
                "    os.write(1, b'ping %d\\n' % i)\n"
                "    out.write('%d %d\\n' % (i, time.time_ns()))\n"
                "    time.sleep(0.003)\n")
        subprocess.run([sys.executable, "-c", ping, times], check=True,
                       stdout=subprocess.DEVNULL, env=self.shim_env(),
                       timeout=120)
        pids = set()
        for f in floods:
            pids.add(f.pid)
            f.kill()
            f.wait()
        self.assertEqual(self.stop(), 0)
        with open(times) as f:
            written = dict(tuple(map(int, l.split())) for l in f)
        reads = sorted(set(r["ts_ns"] for r in self.records
                           if "line" in r and r.get("pid") in pids))
        # Only when the floods keep up with the collector (not under
        # ASan, whose collector reads full pipes) could the old loop be
        # seen; they must at least have been read.
        self.assertGreater(len(reads), 1, "the floods were not read")
        between = []
        for r in self.records:
            if r.get("line", "").startswith("ping "):
                after = written[int(r["line"].split()[1])]
                between.append(bisect.bisect_right(reads, r["ts_ns"]) -
                               bisect.bisect_left(reads, after))
        self.assertEqual(len(between), 50)
        print("flood reads between a ping's write and its read: max %d, "
              "median %s, of %d flood reads" % (
                  max(between), statistics.median(between), len(reads)))
        self.assertLessEqual(max(between), 16)

    def test_terminal_output_is_there_before_the_shell_goes_on(self):
        # Serve mode tees to the terminal; each process's lines must
        # reach it before the shell's next echo.
        self.serve()
        script = ("for k in 1 2 3 4 5; do LD_PRELOAD=%s %s lines 100 t$k 2>/dev/null; "
                  "echo shell-$k; done" % (SHIM, CWRITER))
        pid, master = pty.fork()
        if pid == 0:
            env = clean_env(MESHLOG_SOCKET=self.sock)
            os.execvpe("bash", ["bash", "-c", script], env)
        out = []
        reader = threading.Thread(target=read_until_eof, args=(master, out))
        reader.start()
        _, status = os.waitpid(pid, 0)
        reader.join(timeout=30)
        os.close(master)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        lines = b"".join(out).decode().replace("\r", "").splitlines()
        want = []
        for k in range(1, 6):
            want += ["t%d %d" % (k, i) for i in range(100)]
            want.append("shell-%d" % k)
        self.assertEqual(lines, want)
        self.assertEqual(self.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
