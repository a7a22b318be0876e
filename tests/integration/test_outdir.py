"""Per-process text files: meshlog-collector --output-dir writes exactly
what each process wrote to the job's stdout and stderr, one file per
process, and meshlogctl logs --split makes the same files from the log."""
import json
import os
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, PYTHON, TELL_RANK, MeshTest,  # noqa: E402
                     clean_env)

MESHLOGCTL = os.path.join(BUILD, "collector", "meshlogctl")
HOST = os.uname().nodename

# Each rank writes text lines, a line past --line-max, a last line
# without its newline, and its own stderr.
RANK_CODE = r"""
import os, sys
r = int(os.environ["RANK"])
for i in range(300):
    print("rank %d line %d" % (r, i) + " pad" * (i % 7))
print("long " + "x" * 9000)
sys.stderr.write("rank %d warning\nrank %d error\n" % (r, r))
sys.stdout.write("rank %d ends without a newline" % r)
"""


def files_under(d):
    out = {}
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, d)] = f.read()
    return out


class OutputDir(MeshTest):
    def alone(self, code, rank):
        """What the program writes to a file of its own, without meshlog."""
        out = os.path.join(self.tmp, "alone.out")
        err = os.path.join(self.tmp, "alone.err")
        with open(out, "wb") as o, open(err, "wb") as e:
            subprocess.run([PYTHON, "-c", code], stdout=o, stderr=e,
                           env=clean_env(RANK=str(rank)), check=True)
        with open(out, "rb") as o, open(err, "rb") as e:
            return o.read(), e.read()

    def rank_files(self, n):
        """What ranks 0 to n-1 of RANK_CODE write alone, by file name."""
        want = {}
        for r in range(n):
            out, err = self.alone(RANK_CODE, r)
            want[os.path.join(HOST, "rank-%d.stdout.log" % r)] = out
            want[os.path.join(HOST, "rank-%d.stderr.log" % r)] = err
        return want

    def test_each_rank_file_holds_exactly_its_bytes(self):
        d = os.path.join(self.tmp, "out")
        script = ("for r in 0 1 2; do RANK=$r %s -c \"$0\" & done; wait"
                  % PYTHON)
        p = self.launch(["bash", "-c", script, RANK_CODE],
                        args=("-q", "--output-dir", d))
        self.assertEqual(p.returncode, 0, p.stderr)
        got = files_under(d)
        want = self.rank_files(3)
        self.assertEqual(sorted(got), sorted(want))
        for k in want:
            self.assertEqual(got[k], want[k], k)
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(
            d, HOST, "rank-0.stdout.log")).st_mode), 0o600)
        # The same files from the log, after the fact.
        s = os.path.join(self.tmp, "split")
        q = subprocess.run([MESHLOGCTL, "logs", "--split", s, self.json],
                           capture_output=True, env=clean_env())
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(q.stdout, b"")
        self.assertEqual(files_under(s), got)
        # Filters choose what is split.
        s2 = os.path.join(self.tmp, "split2")
        q = subprocess.run([MESHLOGCTL, "logs", "--split", s2, "-r", "1",
                            "--stream", "stderr", self.json],
                           capture_output=True, env=clean_env())
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(files_under(s2), {
            os.path.join(HOST, "rank-1.stderr.log"): want[os.path.join(
                HOST, "rank-1.stderr.log")]})

    def test_any_bytes_and_bars_pass_as_written(self):
        code = (r"import sys, os; o = sys.stdout.buffer" "\n"
                r"o.write(b'\xff\xfe not utf-8\n\x00nul\n')" "\n"
                r"for i in range(5): o.write(b'\r%d%%' % (i * 25)); o.flush()"
                "\n"
                r"o.write(b'\n\x1b[31mred\x1b[0m\r\n')" "\n")
        d = os.path.join(self.tmp, "out")
        p = self.launch([PYTHON, "-c", code], args=("-q", "--output-dir", d),
                        env=clean_env(RANK="4"))
        self.assertEqual(p.returncode, 0, p.stderr)
        out, _ = self.alone(code, 4)
        self.assertEqual(files_under(d), {
            os.path.join(HOST, "rank-4.stdout.log"): out})

    def test_two_processes_of_a_rank_never_share_a_file(self):
        # A wrapper shell that writes nothing, the rank's program, and a
        # worker it forks: the program has the rank's name, the worker a
        # file of its own; a rankless process goes by its pid.
        code = ("import os\n"
                "print('main before')\n"
                "import sys; sys.stdout.flush()\n"
                "pid = os.fork()\n"
                "if pid == 0:\n"
                "    print('worker line')\n"
                "    os._exit(0)\n"
                "os.waitpid(pid, 0)\n"
                "print('main after')\n")
        d = os.path.join(self.tmp, "out")
        script = ("RANK=7 bash -c '%s -c \"$0\"; true' \"$0\"; "
                  "echo rankless" % PYTHON)
        p = self.launch(["bash", "-c", script, code],
                        args=("-q", "--output-dir", d))
        self.assertEqual(p.returncode, 0, p.stderr)
        got = files_under(d)
        worker = [k for k in got if k.startswith(
            os.path.join(HOST, "rank-7.pid-"))]
        self.assertEqual(len(worker), 1, sorted(got))
        self.assertTrue(worker[0].endswith(".stdout.log"))
        self.assertEqual(got[worker[0]], b"worker line\n")
        self.assertEqual(got[os.path.join(HOST, "rank-7.stdout.log")],
                         b"main before\nmain after\n")
        rankless = [k for k in got if os.path.basename(k).startswith("pid-")]
        self.assertEqual([got[k] for k in rankless], [b"rankless\n"])
        pid = int(os.path.basename(rankless[0]).split(".")[0][4:])
        opened = [r for r in self.records if r.get("event") == "source_open"
                  and r["pid"] == pid]
        self.assertEqual(len(opened), 1)

    def test_ranks_behind_a_forwarding_launcher_have_their_files(self):
        # mpirun reads its ranks' output from pipes and writes it again:
        # each rank's file has what it wrote (there were none: its
        # output went to a pipe of the job's own), the launcher's what it
        # wrote. A launcher of our own, passing lines on as they come.
        launcher = (
            "import os, subprocess, sys\n"
            "code = sys.argv[1]\n"
            "kids = [subprocess.Popen([sys.executable, '-c', code],"
            " env=dict(os.environ, RANK=str(r)), stdout=subprocess.PIPE,"
            " stderr=subprocess.PIPE) for r in range(2)]\n"
            "for k in kids:\n"
            "    out, err = k.communicate()\n"
            "    os.write(1, out); os.write(2, err)\n"
            "print('launcher done')\n")
        d = os.path.join(self.tmp, "out")
        p = self.launch([PYTHON, "-c", launcher, RANK_CODE],
                        args=("-q", "--output-dir", d))
        self.assertEqual(p.returncode, 0, p.stderr)
        got = files_under(d)
        mine = {k: v for k, v in got.items()
                if os.path.basename(k).startswith("rank-")}
        want = self.rank_files(2)
        self.assertEqual(sorted(mine), sorted(want))
        for k in want:
            self.assertEqual(mine[k], want[k], k)
        rest = [v for k, v in got.items() if k not in mine]
        self.assertEqual(sorted(rest), sorted([
            want[os.path.join(HOST, "rank-0.stdout.log")] +
            want[os.path.join(HOST, "rank-1.stdout.log")] +
            b"launcher done\n",
            want[os.path.join(HOST, "rank-0.stderr.log")] +
            want[os.path.join(HOST, "rank-1.stderr.log")]]))
        # The log says which streams a launcher passes on, and the
        # split has the ranks' files too (the launcher's copies with
        # --copies).
        s = os.path.join(self.tmp, "split")
        q = subprocess.run([MESHLOGCTL, "logs", "--copies", "--split", s,
                            self.json], capture_output=True, env=clean_env())
        self.assertEqual(q.returncode, 0, q.stderr)
        split = files_under(s)
        for k in want:
            self.assertEqual(split.get(k), want[k], k)

    def test_a_rank_told_late_names_the_files_it_began(self):
        # The workers of torch.multiprocessing.spawn have no rank in
        # their environment and tell it when they join the process group
        # (meshlog's Python hook sends this message): what they wrote
        # before is in their rank's file, not in a pid-P file beside it.
        # A rank already taken gives rank-N.pid-P, as for any second
        # process of a rank.
        code = TELL_RANK + (
            "import sys\n"
            "i = int(sys.argv[1]); r = 2 - i\n"
            "print('worker %d before' % i, flush=True)\n"
            "sys.stderr.write('worker %d warming\\n' % i)\n"
            "sys.stderr.flush()\n"
            "tell_rank(r, 3)\n"
            "print('rank %d after' % r, flush=True)\n"
            "sys.stderr.write('rank %d err\\n' % r)\n")
        d = os.path.join(self.tmp, "out")
        script = ("RANK=0 %s -c 'print(\"env rank 0\")'; "
                  "for i in 0 1 2; do %s -c \"$0\" $i & done; wait"
                  % (PYTHON, PYTHON))
        p = self.launch(["bash", "-c", script, code],
                        args=("-q", "--output-dir", d))
        self.assertEqual(p.returncode, 0, p.stderr)
        got = files_under(d)
        told = {r["rank"]: r["pid"] for r in self.records
                if r.get("event") == "rank"}
        self.assertEqual(sorted(told), [0, 1, 2])
        want = {os.path.join(HOST, "rank-0.stdout.log"): b"env rank 0\n"}
        for r in (0, 1, 2):
            name = "rank-%d" % r if r else "rank-0.pid-%d" % told[0]
            want[os.path.join(HOST, name + ".stdout.log")] = (
                b"worker %d before\nrank %d after\n" % (2 - r, r))
            want[os.path.join(HOST, name + ".stderr.log")] = (
                b"worker %d warming\nrank %d err\n" % (2 - r, r))
        self.assertEqual(got, want)
        # The same files from the log.
        s = os.path.join(self.tmp, "split")
        q = subprocess.run([MESHLOGCTL, "logs", "--split", s, self.json],
                           capture_output=True, env=clean_env())
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(files_under(s), got)
        # A rank asked for has all of its lines, those before it told
        # its rank among them; the -n tail and a split of it too.
        q = subprocess.run([MESHLOGCTL, "logs", "-o", "cat", "-r", "1",
                            self.json], capture_output=True,
                           env=clean_env())
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(sorted(q.stdout.splitlines()), sorted([
            b"worker 1 before", b"worker 1 warming", b"rank 1 after",
            b"rank 1 err"]))
        q = subprocess.run([MESHLOGCTL, "logs", "-o", "cat", "-r", "2,7",
                            "-n", "4", "--stream", "stdout", self.json],
                           capture_output=True, env=clean_env())
        self.assertEqual(q.stdout.splitlines(), [b"worker 0 before",
                                                 b"rank 2 after"])
        s2 = os.path.join(self.tmp, "split2")
        q = subprocess.run([MESHLOGCTL, "logs", "--split", s2, "-r", "1",
                            self.json], capture_output=True, env=clean_env())
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(files_under(s2), {
            k: v for k, v in want.items() if "rank-1." in k})

    def test_a_log_of_two_runs_splits_as_two(self):
        # -j appends, and the next collector's source ids start anew:
        # the split mixed the runs' processes (the second's lines in the
        # first's file of the same id).
        both, pids = b"", []
        for word in ("one", "two"):
            self.json = os.path.join(self.tmp, word + ".jsonl")
            p = self.launch(["sh", "-c", "echo %s; echo %s-err >&2" %
                             (word, word)], args=("-q",))
            self.assertEqual(p.returncode, 0, p.stderr)
            pids += [r["pid"] for r in self.records
                     if r.get("event") == "source_open"]
            with open(self.json, "rb") as f:
                both += f.read()
        self.json = os.path.join(self.tmp, "both.jsonl")
        with open(self.json, "wb") as f:
            f.write(both)
        s = os.path.join(self.tmp, "split")
        q = subprocess.run([MESHLOGCTL, "logs", "--split", s, self.json],
                           capture_output=True, env=clean_env())
        self.assertEqual(q.returncode, 0, q.stderr)
        got = files_under(s)
        self.assertEqual(len(pids), 2, self.records)
        self.assertEqual(got, {
            os.path.join(HOST, "pid-%d.stdout.log" % pids[0]): b"one\n",
            os.path.join(HOST, "pid-%d.stderr.log" % pids[0]): b"one-err\n",
            os.path.join(HOST, "pid-%d.stdout.log" % pids[1]): b"two\n",
            os.path.join(HOST, "pid-%d.stderr.log" % pids[1]): b"two-err\n",
        })

    def test_a_process_taken_back_splits_into_the_file_it_had(self):
        # A collector restarted under running processes gives the ones it
        # takes back from the keeper new ids ("resumes" the old one): the
        # split wrote the new id's lines into the file of whichever
        # process had that id before, or began the file anew.
        def rec(src, pid, rank, line=None, **kw):
            r = {"ts": "2026-11-30T10:00:00.000000Z", "host": "h",
                 "pid": pid, "rank": rank, "source": src}
            if line is None:
                r.update(event="source_open", console_streams=["stdout"],
                         **kw)
            else:
                r.update(ts_ns=1796032800000000000, stream="stdout",
                         seq=0, line=line)
            return json.dumps(r, separators=(",", ":")) + "\n"
        first = (rec(1, 50, 3) + rec(1, 50, 3, "a1") +
                 rec(2, 60, 4) + rec(2, 60, 4, "x1"))
        back = (rec(2, 50, 3, resumes=1, from_keeper=True) +
                rec(2, 50, 3, "a2") +
                rec(3, 60, 4, resumes=2, from_keeper=True) +
                rec(3, 60, 4, "x2"))
        want = {"rank-3.stdout.log": b"a1\na2\n",
                "rank-4.stdout.log": b"x1\nx2\n"}
        # The new collector's first record takes a process back, or opens
        # a new one with an id of the run before (which then ends); a new
        # process of a taken-back rank is not that rank's file.
        for name, second, more in (
                ("back-first", back + rec(4, 80, 3) + rec(4, 80, 3, "r3"),
                 {"rank-3.pid-80.stdout.log": b"r3\n"}),
                ("new-first", rec(1, 70, 5) + rec(1, 70, 5, "n1") + back,
                 {"rank-5.stdout.log": b"n1\n"})):
            log = os.path.join(self.tmp, name + ".jsonl")
            with open(log, "w") as f:
                f.write(first + second)
            d = os.path.join(self.tmp, name)
            q = subprocess.run([MESHLOGCTL, "logs", "--split", d, log],
                               capture_output=True, env=clean_env())
            self.assertEqual(q.returncode, 0, q.stderr)
            self.assertEqual(files_under(d), {
                os.path.join("h", k): v for k, v in {**want, **more}.items()},
                name)
        # One taken back from a run the files do not hold: its own file,
        # not that of the process its new id had in the run before.
        log = os.path.join(self.tmp, "gap.jsonl")
        with open(log, "w") as f:
            f.write(first + rec(2, 90, 7, resumes=9, from_keeper=True) +
                    rec(2, 90, 7, "z"))
        d = os.path.join(self.tmp, "gap")
        q = subprocess.run([MESHLOGCTL, "logs", "--split", d, log],
                           capture_output=True, env=clean_env())
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(files_under(d), {
            os.path.join("h", "rank-3.stdout.log"): b"a1\n",
            os.path.join("h", "rank-4.stdout.log"): b"x1\n",
            os.path.join("h", "rank-7.stdout.log"): b"z\n"})

    def test_unsafe_directories_are_refused(self):
        open_dir = os.path.join(self.tmp, "open")
        os.mkdir(open_dir)
        os.chmod(open_dir, 0o777)
        link = os.path.join(self.tmp, "link")
        os.symlink(self.tmp, link)
        for d in (open_dir, link):
            p = self.launch_raw(["--output-dir", d, "--", "true"])
            self.assertNotEqual(p.returncode, 0, d)
            self.assertIn(b"--output-dir", p.stderr)
            q = subprocess.run([MESHLOGCTL, "logs", "--split", d,
                                os.devnull], capture_output=True)
            self.assertEqual(q.returncode, 1, d)
        p = subprocess.run([MESHLOGCTL, "logs", "--split", open_dir, "-n",
                            "3", os.devnull], capture_output=True)
        self.assertEqual(p.returncode, 2)

    def test_a_host_name_from_the_log_stays_inside(self):
        log = os.path.join(self.tmp, "crafted.jsonl")
        with open(log, "w") as f:
            for host in ("../../escape", "..", "a/b", ""):
                f.write(json.dumps({
                    "ts": "2026-11-30T10:00:00.000000Z",
                    "ts_ns": 1796032800000000000, "host": host, "pid": 5,
                    "rank": 0, "source": 1 + len(host), "stream": "stdout",
                    "seq": 0, "line": "from %r" % host},
                    separators=(",", ":")) + "\n")
        d = os.path.join(self.tmp, "split")
        q = subprocess.run([MESHLOGCTL, "logs", "--split", d, log],
                           capture_output=True)
        self.assertEqual(q.returncode, 0, q.stderr)
        got = files_under(d)
        # The first of rank 0 on each host has the rank's name.
        self.assertEqual(sorted(got), sorted([
            os.path.join("_", "rank-0.stdout.log"),
            os.path.join("_.", "rank-0.stdout.log"),
            os.path.join(".._.._escape", "rank-0.stdout.log"),
            os.path.join("a_b", "rank-0.stdout.log")]))
        self.assertEqual(os.listdir(self.tmp).count("escape"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
