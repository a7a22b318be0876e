#!/usr/bin/env python3
"""Forked children (no exec) get pipes of their own: their lines never glue
to their siblings' or their parent's, each record names the process that
wrote it, and the original destination still gets every byte in causal
order (what the parent wrote before a fork before the child's, what it
writes after reaping the child after)."""
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import time
import unittest

SRCDIR = os.environ.get("MESHLOG_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MeshTest, PYTHON, CWRITER, clean_env, events,  # noqa: E402
                     file_bytes, line_records, run_on_pty)

WORKERS = """\
import os
kids = []
for w in range(8):
    pid = os.fork()
    if pid == 0:
        for k in range(300): print("worker %d line %d" % (w, k), flush=True)
        os._exit(0)
    kids.append(pid)
for p in kids: os.waitpid(p, 0)
print("parent done", flush=True)
"""

CAUSAL_PY = """\
import os
for i in range(60):
    print("a%d" % i, flush=True)
    pid = os.fork()
    if pid == 0:
        print("b%d" % i, flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    print("c%d" % i, flush=True)
"""

CAUSAL_SH = "for i in $(seq 60); do echo a$i; (echo b$i); echo c$i; done"
CAUSAL_SH_ERR = ("for i in $(seq 60); do echo a$i; (echo b$i >&2); "
                 "echo c$i >&2; done")

WORKER_RE = re.compile(r"worker (\d) line \d+")


def expected_causal():
    return "".join("a%d\nb%d\nc%d\n" % (i, i, i) for i in range(60))


def expected_causal_sh():
    return "".join("a%d\nb%d\nc%d\n" % (i, i, i) for i in range(1, 61))


class Fork(MeshTest):
    def workers_check(self, records, parent_argv0):
        """Every worker line whole, each worker one forked source of the
        parent's, and the parent's last line after all of theirs."""
        opens = {r["source"]: r for r in events(records, "source_open")}
        by_worker = {}
        lines = line_records(records)
        for r in lines:
            if r["line"] == "parent done" or r["line"] == "done":
                continue
            m = WORKER_RE.fullmatch(r["line"])
            self.assertIsNotNone(m, "glued or cut line: %r" % r["line"])
            by_worker.setdefault(m.group(1), set()).add(r["source"])
        self.assertEqual(len(by_worker), 8)
        self.assertEqual(sum(1 for r in lines if WORKER_RE.fullmatch(
            r["line"])), 2400)
        parents = set()
        for w, sources in by_worker.items():
            self.assertEqual(len(sources), 1, "worker %s in %s" % (w, sources))
            o = opens[next(iter(sources))]
            self.assertTrue(o.get("forked"), o)
            parents.add(o["parent_source"])
            self.assertEqual(os.path.basename(o["argv"][0]), parent_argv0)
            self.assertEqual(o["ppid"], opens[o["parent_source"]]["pid"])
        self.assertEqual(len(parents), 1)
        pids = {opens[next(iter(s))]["pid"] for s in by_worker.values()}
        self.assertEqual(len(pids), 8)
        self.assertIn(lines[-1]["line"], ("parent done", "done"))
        self.assertEqual(lines[-1]["source"], parents.pop())

    def test_python_workers_under_u_never_glue(self):
        script = os.path.join(self.tmp, "fk.py")
        with open(script, "w") as f:
            f.write(WORKERS)
        for run in range(20):
            os.unlink(self.json) if os.path.exists(self.json) else None
            p = self.launch([PYTHON, "-u", script], args=("-q",))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.workers_check(self.records, os.path.basename(PYTHON))

    def test_threads_that_fork_at_once(self):
        # Four threads fork 25 children each, concurrently: every child's
        # line whole and its own, none lost, the parent's line last.
        code = ("import os, threading\n"
                "def run(t):\n"
                "    for k in range(25):\n"
                "        pid = os.fork()\n"
                "        if pid == 0:\n"
                "            print('thread %d child %d' % (t, k), flush=True)\n"
                "            os._exit(0)\n"
                "        os.waitpid(pid, 0)\n"
                "ts = [threading.Thread(target=run, args=(t,)) "
                "for t in range(4)]\n"
                "[t.start() for t in ts]; [t.join() for t in ts]\n"
                "print('parent done', flush=True)\n")
        p = self.launch([PYTHON, "-W", "ignore", "-u", "-c", code],
                        args=("-q",))
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = line_records(self.records)
        self.assertEqual(sorted(r["line"] for r in lines[:-1]), sorted(
            "thread %d child %d" % (t, k) for t in range(4)
            for k in range(25)))
        self.assertEqual(lines[-1]["line"], "parent done")
        opens = {r["source"]: r for r in events(self.records, "source_open")}
        self.assertEqual(len({r["source"] for r in lines[:-1]}), 100)
        self.assertTrue(all(opens[r["source"]].get("forked")
                            for r in lines[:-1]))

    def test_c_stdio_workers_never_glue(self):
        for run in range(5):
            os.unlink(self.json) if os.path.exists(self.json) else None
            p = self.launch([CWRITER, "fork", "8", "300"], args=("-q",))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.workers_check(self.records, "cwriter")

    def causal_runs(self, cmd):
        """cmd without meshlog and under the shim, to a pipe, a file and a
        terminal: the same bytes each time."""
        want_pipe = subprocess.run(cmd, capture_output=True,
                                   env=clean_env()).stdout
        want_tty = run_on_pty(cmd, clean_env())[1]
        self.serve()
        got = subprocess.run(cmd, capture_output=True, env=self.shim_env(),
                             timeout=60)
        self.assertEqual(got.stdout.decode(), want_pipe.decode())
        path = os.path.join(self.tmp, "out")
        with open(path, "wb") as f:
            subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT,
                           env=self.shim_env(), timeout=60)
        with open(path) as f:
            got_file = f.read()
        rc, got_tty = run_on_pty(cmd, self.shim_env())
        self.assertEqual(rc, 0)
        self.assertEqual(got_tty, want_tty)
        self.stop()
        return want_pipe.decode(), got_file

    def test_python_parent_child_order_is_kept(self):
        cmd = [PYTHON, "-c", CAUSAL_PY]
        want, got_file = self.causal_runs(cmd)
        self.assertEqual(want, expected_causal())
        self.assertEqual(got_file, expected_causal())
        forked = [r for r in events(self.records, "source_open")
                  if r.get("forked")]
        self.assertEqual(len(forked), 3 * 60)

    def test_shell_subshell_order_is_kept(self):
        want, got_file = self.causal_runs(["bash", "-c", CAUSAL_SH])
        self.assertEqual(want, expected_causal_sh())
        self.assertEqual(got_file, expected_causal_sh())

    def test_shell_subshell_order_is_kept_with_2_to_1(self):
        # `> file 2>&1`: one pipe in the parent, one in each child.
        self.serve()
        path = os.path.join(self.tmp, "out")
        with open(path, "wb") as f:
            subprocess.run(["bash", "-c", CAUSAL_SH_ERR], stdout=f,
                           stderr=subprocess.STDOUT, env=self.shim_env(),
                           timeout=60)
        with open(path) as f:
            self.assertEqual(f.read(), expected_causal_sh())
        self.stop()

    def test_exec_in_a_subshell_still_sees_its_terminal(self):
        # The subshell's pipe is not in MESHLOG_STREAM (bash passes its own
        # copy of the environment); the collector says whose it is.
        code = ("import os, sys; print(os.isatty(1), os.isatty(2), "
                "sys.stdout.line_buffering)")
        cmd = ["bash", "-c", "(%s -c '%s'); x=$(echo y); (exec %s -c '%s')"
               % (PYTHON, code, PYTHON, code)]
        want = run_on_pty(cmd, clean_env())[1]
        self.assertEqual(want, "True True True\n" * 2)
        self.serve()
        self.assertEqual(run_on_pty(cmd, self.shim_env())[1], want)
        self.stop()

    def test_order_is_kept_behind_a_slow_reader(self):
        # The reader starts late: the destination is full when the parent
        # reaps each child, so the child's line is still in its own pipe
        # then. It must still come after the parent's earlier lines and
        # before its later ones.
        code = ("import os\n"
                "for r in range(3):\n"
                "    for i in range(1500):\n"
                "        print('a%d-%d ' % (r, i) + 'x' * 60, flush=True)\n"
                "    pid = os.fork()\n"
                "    if pid == 0:\n"
                "        print('b%d' % r, flush=True)\n"
                "        os._exit(0)\n"
                "    os.waitpid(pid, 0)\n"
                "    print('c%d' % r, flush=True)\n")
        cmd = ["bash", "-c", "%s -c \"$0\" | (sleep 1; cat)" % PYTHON, code]
        want = subprocess.run(cmd, capture_output=True, env=clean_env(),
                              timeout=60).stdout
        self.assertEqual(len(want.splitlines()), 3 * 1502)
        self.serve()
        for run in range(2):
            got = subprocess.run(cmd, capture_output=True,
                                 env=self.shim_env(), timeout=60).stdout
            self.assertEqual([x for x in got.splitlines()
                              if not x.startswith(b"a")],
                             [x for x in want.splitlines()
                              if not x.startswith(b"a")])
            self.assertEqual(got, want)
        self.stop()

    def test_a_child_forked_as_its_parent_exits_keeps_its_output(self):
        # sh -c '(sleep; echo late) & exit 0': the shell's first fork
        # opens its family connection, which may still wait in the
        # collector's listen queue when the shell's pipe ends. The
        # child's pipes were then refused ("fork names a pipe that is not
        # an open capture pipe") and closed: its late line was lost, and
        # it died of SIGPIPE (1 run in 20-60 as it came; every run here,
        # with the collector stopped across the fork).
        import signal
        import time
        self.serve(args=("-q",))
        for run in range(5):
            p = subprocess.Popen(
                ["sh", "-c", "echo up; read go; (sleep 0.3; echo late "
                 "$?) & exit 0"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, env=self.shim_env())
            self.assertEqual(p.stdout.readline(), b"up\n")
            os.kill(self.collector.pid, signal.SIGSTOP)
            try:
                p.stdin.write(b"go\n")
                p.stdin.flush()
                time.sleep(0.2)
            finally:
                os.kill(self.collector.pid, signal.SIGCONT)
            self.assertEqual(p.stdout.read(), b"late 0\n", "run %d" % run)
            p.wait(timeout=30)
        self.assertEqual(self.stop(), 0)
        self.assertNotIn("refused", self.collector_stderr())
        self.assertEqual([r["line"] for r in line_records(self.records)
                          if r["line"].startswith("late")], ["late 0"] * 5)

    def test_child_comes_after_what_its_parent_wrote_before_the_fork(self):
        # The reader starts late and the parent's bytes wait in its pipe;
        # the last child, still running when the reader starts, wrote
        # while they waited. Its line must still come after all its
        # parent wrote before the fork (it came first: the child's pipe
        # was read as soon as there was room).
        code = ("import os, time\n"
                "for i in range(3000):\n"
                "    print('a-%d ' % i + 'x' * 60, flush=True)\n"
                "for r in range(4):\n"
                "    pid = os.fork()\n"
                "    if pid == 0:\n"
                "        print('b%d' % r, flush=True)\n"
                "        os._exit(0)\n"
                "    os.waitpid(pid, 0)\n"
                "    print('c%d' % r, flush=True)\n"
                "pid = os.fork()\n"
                "if pid == 0:\n"
                "    print('d', flush=True)\n"
                "    os._exit(0)\n"
                "time.sleep(2)\n"
                "os.waitpid(pid, 0)\n"
                "print('e', flush=True)\n")
        cmd = ["bash", "-c", "%s -c \"$0\" | (sleep 1; cat)" % PYTHON, code]
        want = subprocess.run(cmd, capture_output=True, env=clean_env(),
                              timeout=60).stdout
        self.assertEqual(want.splitlines()[3000:],
                         b"b0 c0 b1 c1 b2 c2 b3 c3 d e".split())
        self.serve(args=("-q",))
        for run in range(3):
            got = subprocess.run(cmd, capture_output=True,
                                 env=self.shim_env(), timeout=60).stdout
            self.assertEqual([x for x in got.splitlines()
                              if not x.startswith(b"a")],
                             want.splitlines()[3000:])
            self.assertEqual(got, want)
        self.stop()

    def test_console_shows_workers_as_their_rank(self):
        code = ("import os\n"
                "kids = []\n"
                "for w in range(3):\n"
                "    p = os.fork()\n"
                "    if p == 0:\n"
                "        print('worker %d pid %d' % (w, os.getpid()))\n"
                "        os._exit(0)\n"
                "    kids.append(p)\n"
                "for p in kids: os.waitpid(p, 0)\n"
                "print('parent done')\n")
        p = self.launch([PYTHON, "-c", code], env=clean_env(MESHLOG_RANK=3))
        self.assertEqual(p.returncode, 0, p.stderr)
        shown = p.stdout.decode().splitlines()
        self.assertEqual(sorted(l.split(" pid ")[0] for l in shown),
                         ["[rank 3] parent done"] +
                         ["[rank 3] worker %d" % w for w in range(3)])
        self.assertEqual(shown[-1], "[rank 3] parent done")
        # The log names each worker: its own pid, the rank it inherited.
        for r in line_records(self.records):
            if r["line"].startswith("worker"):
                self.assertEqual(r["pid"], int(r["line"].split()[-1]))
                self.assertEqual(r["rank"], 3)

    def test_aggregation_counts_workers_as_their_rank(self):
        # Three ranks, two forked workers each, the same lines: the view
        # folds them by rank, as it would the ranks' own lines.
        code = ("import os, time\n"
                "kids = []\n"
                "for w in range(2):\n"
                "    p = os.fork()\n"
                "    if p == 0:\n"
                "        time.sleep(0.1 * w)\n"
                "        print('worker loading shard %d' % w, flush=True)\n"
                "        os._exit(0)\n"
                "    kids.append(p)\n"
                "for p in kids: os.waitpid(p, 0)\n")
        script = ("for r in 0 1 2; do RANK=$r %s -c \"$0\" & done; wait"
                  % PYTHON)
        p = self.launch(["bash", "-c", script, code])
        self.assertEqual(p.returncode, 0, p.stderr)
        shown = p.stdout.decode()
        for w in range(2):
            self.assertIn("[ranks 0-2] worker loading shard %d\n" % w, shown)
        self.assertNotIn("pid", shown)

    def test_forked_writer_sees_its_reader_go(self):
        # A child writing forever into `| head`: EPIPE ends it, as without
        # meshlog; nothing hangs.
        code = ("import os, sys\n"
                "pid = os.fork()\n"
                "if pid == 0:\n"
                "    try:\n"
                "        while True: print('child', flush=True)\n"
                "    except BrokenPipeError:\n"
                "        os._exit(7)\n"
                "_, st = os.waitpid(pid, 0)\n"
                "sys.stderr.write('child %d\\n' % os.waitstatus_to_exitcode(st))\n")
        cmd = ["bash", "-c", "%s -c \"$0\" | head -n 3" % PYTHON, code]
        want = subprocess.run(cmd, capture_output=True, env=clean_env(),
                              timeout=60)
        self.assertEqual(want.stderr, b"child 7\n")
        self.serve()
        got = subprocess.run(cmd, capture_output=True, env=self.shim_env(),
                             timeout=60)
        self.assertEqual((got.stdout, got.stderr, got.returncode),
                         (want.stdout, want.stderr, want.returncode))
        self.stop()

    def test_a_scripts_reader_sees_eof_when_it_ends(self):
        # `bash script | wc`: the script's subshells ended before it, and
        # their pipes (polled every 40 ms until they show life) held the
        # reader's pipe open after the script's end until the next poll.
        self.serve()
        took = []
        for _ in range(15):
            r, w = os.pipe()
            p = subprocess.Popen(["bash", "-c", "(true); echo x"], stdout=w,
                                 env=self.shim_env(MESHLOG_QUIET="1"))
            os.close(w)
            pidfd = os.pidfd_open(p.pid)
            got, ended = b"", None
            while True:
                ready = select.select([r, pidfd], [], [], 20)[0]
                self.assertTrue(ready, "no end of file")
                if pidfd in ready and ended is None:
                    ended = time.monotonic()
                if r in ready:
                    chunk = os.read(r, 4096)
                    if not chunk:
                        break
                    got += chunk
            eof = time.monotonic()
            if ended is None:   # both at once
                ended = eof
            os.close(pidfd)
            os.close(r)
            self.assertEqual(p.wait(timeout=20), 0)
            self.assertEqual(got, b"x\n")
            took.append(eof - ended)
        # Before: half of the poll's 40 ms on average.
        self.assertLess(statistics.median(took), 0.012, took)
        self.assertEqual(self.stop(), 0)

    def test_a_helpers_line_comes_before_its_callers_next(self):
        # `sh -c "echo helper >&2"; echo rank`: the helper's pipe ended
        # with its caller's line already written, and closing the empty
        # pipe of the helper's fork first moved the caller's bytes, before
        # the helper's line still unread (7 runs in 10 had one of 100
        # out of place). Statistical: the order depends on when the
        # collector runs.
        script = ("i=0; while [ $i -lt 200 ]; do i=$((i+1)); "
                  "x=$(sh -c 'echo inner'); sh -c \"echo helper $i >&2\"; "
                  "echo caller $i; done")
        p = self.launch(["sh", "-c", script], args=("-q",))
        self.assertEqual(p.returncode, 0, p.stderr)
        seen, late = set(), []
        for r in line_records(self.records):
            if r["line"] == "inner":    # through $(...)
                continue
            who, i = r["line"].split()
            if who == "helper":
                seen.add(i)
            elif who == "caller" and i not in seen:
                late.append(i)
        self.assertEqual(len(seen), 200)
        self.assertEqual(late, [])

    def test_a_pools_workers_lines_come_before_its_result(self):
        # multiprocessing.Pool: each worker prints, then returns; the
        # parent prints the sum map returned. Its young workers' pipes
        # were only polled (40 ms), and a worker's pipe read first moved
        # its parent's unread bytes: the sum came before workers' lines in
        # every run (6 of 6). Statistical: the order depends on when the
        # collector runs; a new pool each round keeps the workers young.
        script = os.path.join(self.tmp, "pool.py")
        with open(script, "w") as f:
            f.write("import multiprocessing as mp, os, sys\n"
                    "def work(a):\n"
                    "    print('worker', a[0], a[1], os.getpid())\n"
                    "    sys.stdout.flush()\n"
                    "    return a[1]\n"
                    "if __name__ == '__main__':\n"
                    "    for r in range(10):\n"
                    "        with mp.Pool(4) as pool:\n"
                    "            n = sum(pool.map(work, [(r, i) for i in "
                    "range(8)]))\n"
                    "            print('sum', r, n, flush=True)\n")
        p = self.launch([PYTHON, script], args=("-q",))
        self.assertEqual(p.returncode, 0, p.stderr)

        def late(lines):
            done, out = set(), []
            for line in lines:
                words = line.split()
                if words[0] == "sum":
                    done.add(words[1])
                elif words[1] in done:
                    out.append(line)
            return out
        logged = [r["line"] for r in line_records(self.records)]
        shown = p.stdout.decode().splitlines()
        self.assertEqual(sorted(logged), sorted(shown))
        self.assertEqual(len(shown), 90)
        self.assertEqual(late(logged), [])
        self.assertEqual(late(shown), [])

    def test_a_subshell_whose_stdout_moved_does_not_wait_at_exit(self):
        # `x=$(echo hi)` in a script whose output goes to a file: the
        # subshell's stdout is the $(...) pipe, not its capture pipe, yet
        # it asked the collector at exit to put its output in the file (a
        # round trip, most of what such a loop cost). Timed while the
        # collector is stopped: a wait lasts until MESHLOG_TIMEOUT_MS.
        self.serve()
        out = os.path.join(self.tmp, "out")
        times = os.path.join(self.tmp, "times")
        script = ("echo ready >&2; read go; exec 3>%s; a=$EPOCHREALTIME; "
                  "x=$(echo hi); b=$EPOCHREALTIME; echo \"$a $b\" >&3; "
                  "exec 3>&-; echo \"$x\"" % times)
        with open(out, "wb") as f:
            p = subprocess.Popen(["bash", "-c", script], stdin=subprocess.PIPE,
                                 stdout=f, stderr=subprocess.PIPE,
                                 env=self.shim_env(MESHLOG_TIMEOUT_MS="1500"))
        self.children.append(p)
        self.assertEqual(p.stderr.readline(), b"ready\n")
        os.kill(self.collector.pid, signal.SIGSTOP)
        try:
            p.stdin.write(b"go\n")
            p.stdin.flush()
            self.wait_for(lambda: len(file_bytes(times).split()) == 2,
                          what="the subshell's times")
        finally:
            os.kill(self.collector.pid, signal.SIGCONT)
        self.assertEqual(p.wait(timeout=20), 0)
        a, b = map(float, file_bytes(times).split())
        self.assertLess(b - a, 0.5)
        # The shell's own line still waits until it is in the file.
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"hi\n")
        self.assertEqual(self.stop(), 0)

    def test_dataloader_workers_under_torchrun(self):
        script = os.path.join(self.tmp, "dl.py")
        with open(script, "w") as f:
            f.write(
                "import os, torch\n"
                "from torch.utils.data import DataLoader\n"
                "rank = int(os.environ['RANK'])\n"
                "def init(i):\n"
                "    print('worker %d of rank %d ready' % (i, rank))\n"
                "dl = DataLoader(list(range(32)), batch_size=4, "
                "num_workers=4, worker_init_fn=init)\n"
                "print('rank %d sum %d' % (rank, sum(int(b.sum()) "
                "for b in dl)))\n")
        env = clean_env(OMP_NUM_THREADS=1)
        # Debian's torch 1.13 torchrun cannot parse its own default
        # --redirects on Python 3.11: the benchmarks' corrected wrapper.
        torchrun = os.path.join(SRCDIR, "tests", "bench", "torchrun_fixed.py")
        p = self.launch(["/usr/bin/python3", torchrun, "--standalone", "--nproc_per_node", "2", script],
                        args=("-q",), env=env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        opens = {r["source"]: r for r in events(self.records, "source_open")}
        ready = [r for r in line_records(self.records)
                 if "ready" in r["line"]]
        self.assertEqual(sorted(r["line"] for r in ready), sorted(
            "worker %d of rank %d ready" % (i, k)
            for i in range(4) for k in range(2)))
        for r in ready:
            rank = int(r["line"].split()[-2])
            self.assertEqual(r["rank"], rank)
            o = opens[r["source"]]
            self.assertTrue(o.get("forked"), o)
            self.assertEqual(opens[o["parent_source"]]["rank"], rank)
        sums = [r for r in line_records(self.records)
                if r["line"].startswith("rank ")]
        self.assertEqual(sorted(r["line"] for r in sums),
                         ["rank 0 sum 496", "rank 1 sum 496"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
