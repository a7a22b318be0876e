"""How each process ended: exit statuses in source_closed, the first
failure marked once and announced on the console before what follows, for
real launchers (bash, Python multiprocessing with fork and spawn, torchrun)
and an OOM kill in a memory-limited cgroup where one can be made.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

SRCDIR = os.environ.get("MESHLOG_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MeshTest, PYTHON, clean_env, events,  # noqa: E402
                     mpi_problem, read_records, run_on_pty, COLLECTOR)

TORCH = "/usr/bin/python3"


def torch_problem():
    if not os.path.exists(TORCH):
        return "no /usr/bin/python3"
    r = subprocess.run([TORCH, "-c", "import torch.distributed.run"],
                       capture_output=True)
    return None if r.returncode == 0 else "python3-torch is not installed"


MPI_PROG = r"""
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int
main(int argc, char **argv)
{
	int	r;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &r);
	printf("rank %d pid %d\n", r, (int)getpid());
	fflush(stdout);
	if (r == 1 && strcmp(argv[1], "segv") == 0) {
		usleep(300000);
		raise(SIGSEGV);
	}
	if (r == 3 && strcmp(argv[1], "abort") == 0) {
		usleep(300000);
		MPI_Abort(MPI_COMM_WORLD, 3);
	}
	sleep(30);
	MPI_Finalize();
	return 0;
}
"""

# Notes the file each fsync(2) is on, into $FSYNC_NOTED, then syncs.
FSYNC_NOTED = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
int
fsync(int fd)
{
	const char	*noted = getenv("FSYNC_NOTED");
	char		 link[64], path[4096];
	ssize_t		 n;
	int		 o;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof path - 1);
	if (noted != NULL && n > 0 && (o = open(noted, O_WRONLY | O_APPEND |
	    O_CREAT | O_CLOEXEC, 0600)) != -1) {
		path[n++] = '\n';
		(void)write(o, path, (size_t)n);
		close(o);
	}
	return ((int)syscall(SYS_fsync, fd));
}
"""


def closed_by_pid(records):
    return {r["pid"]: r for r in events(records, "source_closed")}


class Endings(MeshTest):

    def script(self, name, code):
        """Write code to a file of the test's directory; its path."""
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(code)
        return path

    def first_failures(self):
        return [r for r in events(self.records, "source_closed")
                if r.get("first_failure")]

    def test_bash_exit_codes_signals_and_the_first_failure(self):
        script = ('sh -c \'echo "a $$"; exit 7\'; '
                  'sh -c \'echo "b $$"; sleep 0.2; kill -9 $$\'; '
                  'sh -c \'echo "c $$"; kill -SEGV $$\'; '
                  'echo done')
        p = self.launch(["bash", "-c", script], args=("-q",))
        self.assertEqual(p.returncode, 0, p.stderr)
        pids = {}
        for r in self.records:
            if "line" in r and r["line"][:2] in ("a ", "b ", "c "):
                pids[r["line"][0]] = int(r["line"].split()[1])
        closed = closed_by_pid(self.records)
        self.assertEqual(closed[pids["a"]]["exit"], {"code": 7})
        self.assertEqual(closed[pids["b"]]["exit"],
                         {"signal": "SIGKILL", "core": False})
        self.assertEqual(closed[pids["c"]]["exit"]["signal"], "SIGSEGV")
        bash = [r for r in events(self.records, "source_open")
                if r["argv"][:1] == ["bash"]][0]
        self.assertEqual(closed[bash["pid"]]["exit"], {"code": 0})
        # One first failure: the process that died first.
        self.assertEqual([r["pid"] for r in self.first_failures()],
                         [pids["a"]])
        for r in closed.values():
            self.assertIn("ended", r)
            self.assertLessEqual(r["ended"], r["ts"])

    def test_multiprocessing_fork_and_spawn(self):
        for method in ("fork", "spawn"):
            with self.subTest(method=method):
                self.run_multiprocessing(method)

    def run_multiprocessing(self, method):
        code = (
            "import multiprocessing as mp, os, signal, sys, time\n"
            "def exit3():\n"
            "    time.sleep(0.1); print('exit3', os.getpid(), flush=True)\n"
            "    sys.exit(3)\n"
            "def killed():\n"
            "    time.sleep(0.6); print('killed', os.getpid(), flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "def raises():\n"
            "    time.sleep(1.1); print('raises', os.getpid(), flush=True)\n"
            "    raise ValueError('boom')\n"
            "if __name__ == '__main__':\n"
            "    mp.set_start_method(%r)\n"
            "    ps = [mp.Process(target=f) for f in (exit3, killed, raises)]\n"
            "    for p in ps: p.start()\n"
            "    for p in ps: p.join()\n"
            "    print('codes', [p.exitcode for p in ps], flush=True)\n"
            % method)
        script = self.script("mp_%s.py" % method, code)
        self.json = os.path.join(self.tmp, "mp_%s.jsonl" % method)
        p = self.launch([PYTHON, script], args=("-q",))
        self.assertEqual(p.returncode, 0, p.stderr)
        pids = {}
        for r in self.records:
            if "line" in r and r["line"].split()[0] in ("exit3", "killed",
                                                        "raises"):
                pids[r["line"].split()[0]] = int(r["line"].split()[1])
        self.assertEqual(len(pids), 3, pids)
        closed = closed_by_pid(self.records)
        self.assertEqual(closed[pids["exit3"]]["exit"], {"code": 3})
        self.assertEqual(closed[pids["killed"]]["exit"],
                         {"signal": "SIGKILL", "core": False})
        self.assertEqual(closed[pids["raises"]]["exit"], {"code": 1})
        self.assertEqual([r["pid"] for r in self.first_failures()],
                         [pids["exit3"]])

    def two_ranks_on_a_terminal(self, code):
        """Python code as ranks 1 and 2, side by side under bash, in launch
        mode on a terminal; the screen without colours."""
        script = self.script("ranks.py", code)
        launcher = ("for r in 1 2; do RANK=$r %s %s & done; wait" %
                    (PYTHON, script))
        rc, out = run_on_pty([COLLECTOR, "-s", os.path.join(self.tmp,
                              "p.sock"), "-j", self.json, "--", "bash",
                              "-c", launcher], clean_env())
        self.assertEqual(rc, 0, out)
        return re.sub(r"\x1b\[[0-9;]*m", "", out)

    def rank1_announced(self, lines, out):
        """Where on the screen's lines rank 1's failure is announced,
        once."""
        ann = [i for i, l in enumerate(lines)
               if l.startswith("meshlog: first failure: rank 1")]
        self.assertEqual(len(ann), 1, out)
        return ann[0]

    def test_the_first_failure_is_announced_before_what_follows(self):
        # Rank 1 dies at once with a traceback; rank 2, its victim, writes
        # its own later. Both on stderr, with the 3 s window on.
        code = ("import os, sys, time\n"
                "r = int(os.environ['RANK'])\n"
                "print('rank %d starting' % r, flush=True)\n"
                "if r == 1:\n"
                "    time.sleep(0.3)\n"
                "    raise RuntimeError('NaN in the loss at step 35')\n"
                "time.sleep(0.8)\n"
                "raise RuntimeError('Connection closed by peer')\n")
        out = self.two_ranks_on_a_terminal(code)
        lines = out.splitlines()
        ann = [self.rank1_announced(lines, out)]
        self.assertIn("exited with code 1", lines[ann[0]])
        # Its last lines come with it: the traceback's last line included.
        self.assertIn("NaN in the loss", "\n".join(lines[ann[0]:ann[0] + 9]))
        victim = [i for i, l in enumerate(lines)
                  if "Connection closed by peer" in l]
        self.assertTrue(victim, out)
        self.assertLess(ann[0], victim[0], out)
        recs = read_records(self.json)
        first = [r for r in events(recs, "source_closed")
                 if r.get("first_failure")]
        self.assertEqual([r["rank"] for r in first], [1])

    def test_the_failed_ranks_own_lines_come_before_its_announcement(self):
        # The view held rank 1's last lines for its window and printed
        # them after the announcement that quotes them: the screen read
        # "first failure ... its last lines: X", then X as if new.
        code = ("import os, sys, time\n"
                "r = int(os.environ['RANK'])\n"
                "print('rank %d starting' % r, flush=True)\n"
                "if r == 1:\n"
                "    time.sleep(0.3)\n"
                "    print('loss is nan at step 35', flush=True)\n"
                "    sys.exit(3)\n"
                "time.sleep(0.8)\n"
                "print('rank 2 waits for rank 1', flush=True)\n")
        out = self.two_ranks_on_a_terminal(code)
        lines = out.splitlines()
        ann = [self.rank1_announced(lines, out)]
        own = [i for i, l in enumerate(lines)
               if l == "[rank 1] loss is nan at step 35"]
        self.assertEqual(len(own), 1, out)
        self.assertLess(own[0], ann[0], out)
        self.assertIn("  [rank 1] loss is nan at step 35",
                      lines[ann[0] + 1:ann[0] + 4], out)
        # What came later from others stays after it.
        later = [i for i, l in enumerate(lines)
                 if l == "[rank 2] rank 2 waits for rank 1"]
        self.assertEqual(len(later), 1, out)
        self.assertLess(ann[0], later[0], out)

    def rank1_first_though_rank2_died_first(self, code):
        """Run code as ranks 1 and 2: rank 1 is announced, once, as the
        first failure, though rank 2 died first."""
        out = self.two_ranks_on_a_terminal(code)
        ann = [l for l in out.splitlines()
               if l.startswith("meshlog: first failure: ")]
        self.assertEqual(len(ann), 1, out)
        self.assertTrue(ann[0].startswith("meshlog: first failure: rank 1 "),
                        out)
        recs = read_records(self.json)
        closed = {r["rank"]: r for r in events(recs, "source_closed")
                  if r["rank"] is not None}
        # Rank 2 did die first: this is not the order of deaths.
        self.assertLess(closed[2]["ended"], closed[1]["ended"])
        self.assertEqual([r for r in closed if closed[r].get("first_failure")],
                         [1])

    def test_the_rank_that_raised_first_is_named_not_one_dying_sooner(self):
        # Rank 1 raises first, then takes 0.8 s to die (its finalization:
        # a framework's teardown). Rank 2, its victim, raises later and
        # dies at once, before rank 1. The cause is rank 1.
        code = ("import atexit, os, time\n"
                "r = int(os.environ['RANK'])\n"
                "print('rank %d starting' % r, flush=True)\n"
                "if r == 1:\n"
                "    atexit.register(time.sleep, 0.8)\n"
                "    time.sleep(0.2)\n"
                "    raise RuntimeError('NaN in the loss at step 35')\n"
                "time.sleep(0.5)\n"
                "raise RuntimeError('Connection closed by peer')\n")
        self.rank1_first_though_rank2_died_first(code)

    def test_a_runtimes_last_words_time_its_failure(self):
        # Rank 1 says it is dying as a C++ program does (libstdc++'s
        # terminate handler), then takes 0.8 s to die (a core dump of a
        # large process). Rank 2 raises later and dies at once, before
        # rank 1. The cause is rank 1, timed by its last words.
        code = ("import os, sys, time\n"
                "r = int(os.environ['RANK'])\n"
                "print('rank %d starting' % r, flush=True)\n"
                "if r == 1:\n"
                "    time.sleep(0.2)\n"
                "    sys.stderr.write(\"terminate called after throwing an \"\n"
                "        \"instance of 'c10::DistBackendError'\\n\"\n"
                "        '  what():  Watchdog caught collective operation '\n"
                "        'timeout\\n')\n"
                "    sys.stderr.flush()\n"
                "    time.sleep(0.8)\n"
                "    os._exit(134)\n"
                "time.sleep(0.5)\n"
                "raise RuntimeError('Connection closed by peer')\n")
        self.rank1_first_though_rank2_died_first(code)

    @unittest.skipIf(torch_problem(), torch_problem())
    def test_torchrun_ranks(self):
        code = ("import os, signal, sys, time\n"
                "r = int(os.environ['RANK'])\n"
                "print('rank %d pid %d' % (r, os.getpid()), flush=True)\n"
                "if r == 1:\n"
                "    time.sleep(0.5); os.kill(os.getpid(), signal.SIGKILL)\n"
                "if r == 2:\n"
                "    time.sleep(1.0); sys.exit(3)\n"
                "if r == 3:\n"
                "    time.sleep(1.5); raise RuntimeError('rank 3 fails')\n"
                "time.sleep(60)\n")
        script = self.script("train.py", code)
        torchrun = os.path.join(SRCDIR, "tests", "bench", "torchrun_fixed.py")
        p = self.launch([TORCH, torchrun, "--standalone", "--nproc_per_node",
                         "4", "--monitor_interval", "3", script],
                        args=("-q",), env=clean_env(OMP_NUM_THREADS=1),
                        timeout=300)
        self.assertNotEqual(p.returncode, 0)
        ranks = {}
        for r in self.records:
            if "line" in r and r["line"].startswith("rank ") and \
                    " pid " in r["line"]:
                ranks[int(r["line"].split()[1])] = int(r["line"].split()[3])
        self.assertEqual(sorted(ranks), [0, 1, 2, 3])
        closed = closed_by_pid(self.records)
        self.assertEqual(closed[ranks[1]]["exit"],
                         {"signal": "SIGKILL", "core": False})
        self.assertEqual(closed[ranks[2]]["exit"], {"code": 3})
        self.assertEqual(closed[ranks[3]]["exit"], {"code": 1})
        # Rank 0 was stopped by the agent once the others failed.
        self.assertNotEqual(closed[ranks[0]]["exit"], {"code": 0})
        self.assertEqual([r["pid"] for r in self.first_failures()],
                         [ranks[1]])
        self.assertEqual(self.first_failures()[0]["rank"], 1)

    @unittest.skipIf(torch_problem(), torch_problem())
    def test_mp_spawn_workers_are_named_by_their_rank(self):
        # torch.multiprocessing.spawn passes each worker its rank as an
        # argument, not in the environment: the worker is a rank once it
        # joins the process group, and what it writes after is the
        # rank's, in the summary and the log.
        code = ("import os, socket, sys\n"
                "import torch.distributed as dist\n"
                "import torch.multiprocessing as mp\n"
                "def work(i, world, port):\n"
                "    print('before', flush=True)\n"
                "    dist.init_process_group('gloo', init_method="
                "'tcp://127.0.0.1:%d' % port, rank=world - 1 - i, "
                "world_size=world)\n"
                "    print('joined as', dist.get_rank(), flush=True)\n"
                "    import subprocess\n"
                "    subprocess.run([sys.executable, '-c', "
                "'print(\"its child\")'])\n"
                "    dist.barrier()\n"
                "    if dist.get_rank() == 1:\n"
                "        sys.exit(3)\n"
                "if __name__ == '__main__':\n"
                "    s = socket.socket(); s.bind(('127.0.0.1', 0))\n"
                "    port = s.getsockname()[1]; s.close()\n"
                "    mp.spawn(work, args=(3, port), nprocs=3)\n")
        script = self.script("spawn.py", code)
        p = self.launch([TORCH, script], env=clean_env(OMP_NUM_THREADS=1),
                        timeout=300)
        self.assertNotEqual(p.returncode, 0)
        joined = {r["line"]: r["rank"] for r in self.records
                  if r.get("line", "").startswith("joined as")}
        self.assertEqual(joined, {"joined as 0": 0, "joined as 1": 1,
                                  "joined as 2": 2})
        # What it started after is its rank's, as a program a rank from
        # the environment starts is (a DataLoader's spawned worker).
        self.assertEqual(sorted((r["rank"] for r in self.records
                                 if r.get("line") == "its child"), key=str),
                         [0, 1, 2])
        # Before it joined, a worker was its pid.
        self.assertEqual([r["rank"] for r in self.records
                          if r.get("line") == "before"], [None] * 3)
        told = events(self.records, "rank")
        self.assertEqual(sorted((r["rank"], r["world_size"]) for r in told),
                         [(0, 3), (1, 3), (2, 3)])
        s = events(self.records, "summary")[0]
        self.assertEqual([r["rank"] for r in s["ranks"]], [0, 1, 2])
        self.assertEqual([r["rank"] for r in self.first_failures()], [1])
        err = p.stderr.decode()
        self.assertIn(b"[ranks 0-2] joined as {0..2}\n", p.stdout)
        self.assertRegex(err, r"first failure: rank 1 \(pid \d+, host ")

    @unittest.skipIf(mpi_problem(), mpi_problem())
    def test_mpirun_abort_and_segfault(self):
        src = os.path.join(self.tmp, "ranks.c")
        prog = os.path.join(self.tmp, "ranks")
        with open(src, "w") as f:
            f.write(MPI_PROG)
        subprocess.run(["mpicc", "-o", prog, src], check=True)
        for how, want in (("abort", (3, {"code": 3})),
                          ("segv", (1, {"signal": "SIGSEGV"}))):
            with self.subTest(how=how):
                self.json = os.path.join(self.tmp, "%s.jsonl" % how)
                p = self.launch(["mpirun", "--allow-run-as-root",
                                 "--oversubscribe", "-np", "4", prog, how],
                                args=("-q",), timeout=120)
                self.assertNotEqual(p.returncode, 0)
                ranks = {}
                for r in self.records:
                    if "line" in r and r["rank"] is not None and \
                            r["line"].startswith("rank "):
                        ranks[r["rank"]] = int(r["line"].split()[3])
                self.assertEqual(sorted(ranks), [0, 1, 2, 3])
                closed = closed_by_pid(self.records)
                rank, exit_ = want
                got = closed[ranks[rank]]["exit"]
                self.assertEqual({k: got[k] for k in exit_}, exit_)
                first = self.first_failures()
                self.assertEqual([(r["rank"], r["pid"]) for r in first],
                                 [(rank, ranks[rank])])
                # The others were stopped by mpirun: not a clean exit.
                for k in set(ranks) - {rank}:
                    self.assertNotEqual(closed[ranks[k]]["exit"],
                                        {"code": 0})

    def test_the_summary_at_the_end(self):
        code = ("import logging, os, sys, time\n"
                "logging.basicConfig(format='%(levelname)s %(message)s')\n"
                "r = int(os.environ['RANK'])\n"
                "for i in range(10 + r): print('rank', r, 'step', i)\n"
                "logging.warning('lr is high')\n"
                "if r == 1:\n"
                "    logging.error('loss is NaN')\n"
                "    sys.exit(4)\n")
        script = self.script("job.py", code)
        launcher = ("for r in 0 1 2; do RANK=$r WORLD_SIZE=5 %s %s & "
                    "done; wait" % (PYTHON, script))
        p = self.launch(["bash", "-c", launcher], args=("--aggregate",
                                                        "off"))
        err = p.stderr.decode()
        recs = self.records
        summary = events(recs, "summary")
        self.assertEqual(len(summary), 1)
        s = summary[0]
        self.assertEqual(recs[-1], s, "the summary is the log's last record")
        by_rank = {r["rank"]: r for r in s["ranks"]}
        self.assertEqual(sorted(by_rank), [0, 1, 2])
        for k in (0, 1, 2):
            lines = [r for r in recs if "line" in r and r["rank"] == k]
            self.assertEqual(by_rank[k]["lines"], len(lines))
            self.assertEqual(by_rank[k]["warnings"], 1)
            self.assertEqual(by_rank[k]["errors"], 1 if k == 1 else 0)
        self.assertEqual(by_rank[1]["exit"], {"code": 4})
        self.assertEqual(by_rank[0]["exit"], {"code": 0})
        self.assertEqual(s["missing_ranks"], [3, 4])
        self.assertEqual(s["world_size"], 5)
        self.assertEqual(s["first_failure"]["rank"], 1)
        self.assertIn("ERROR loss is NaN", s["first_failure"]["last_lines"])
        self.assertEqual(s["log"], self.json)
        # On the console, a table; meshlogctl prints the same from the log.
        self.assertIn("meshlog: 1 of 3 ranks ended abnormally", err)
        self.assertIn("never registered: ranks 3-4 (world size 5)", err)
        ctl = subprocess.run([os.path.join(os.path.dirname(COLLECTOR),
                              "meshlogctl"), "summary", self.json],
                             capture_output=True, text=True)
        self.assertEqual(ctl.returncode, 0, ctl.stderr)
        table = err[err.index("meshlog: 1 of 3"):].split("\n")
        self.assertEqual(ctl.stdout.split("\n")[:len(table) - 1],
                         [table[0][len("meshlog: "):]] + table[1:-1])
        # An option after FILE, as before it (it was "unexpected").
        for args in (["--json", self.json], [self.json, "--json"]):
            ctl = subprocess.run([os.path.join(os.path.dirname(COLLECTOR),
                                  "meshlogctl"), "summary", *args],
                                 capture_output=True, text=True)
            self.assertEqual(ctl.returncode, 0, ctl.stderr)
            self.assertEqual(json.loads(ctl.stdout)["world_size"], 5)

    def test_a_runtimes_first_words_are_said_before_its_frames(self):
        # A segmentation fault 40 calls deep, under faulthandler: what it
        # was ("Fatal Python error: ...") comes first, then 41 frames
        # alike, so the last lines alone are frames. The account says the
        # first lines, how many lines came between, then the last ones;
        # the summary has both.
        code = ("import faulthandler\n"
                "faulthandler.enable()\n"
                "print('rank 0 step 1', flush=True)\n"
                "def deep(n):\n"
                "    return deep(n - 1) if n else faulthandler._sigsegv()\n"
                "deep(40)\n")
        script = self.script("deep.py", code)
        plain = subprocess.run([PYTHON, script], capture_output=True,
                               env=clean_env())
        self.assertEqual(plain.returncode, -11)
        err = plain.stderr.decode().splitlines()
        self.assertEqual(err[:2], ["Fatal Python error: Segmentation fault",
                                   ""])
        self.assertTrue(err[2].startswith("Current thread "), err)
        self.assertEqual(err.count(err[3]), 41, err)
        p = self.launch([PYTHON, script], args=("--aggregate", "off"),
                        env=clean_env(RANK="0", WORLD_SIZE="1"))
        con = p.stderr.decode().splitlines()
        s = events(self.records, "summary")[0]["first_failure"]
        self.assertEqual(s["rank"], 0)
        # The first lines, blank ones aside; the last eight; between them
        # every other line of stderr. (A thread's id differs by run.)
        def same(lines):
            return [re.sub("0x[0-9a-f]+", "0x", x).strip() for x in lines]
        self.assertEqual(same(s["first_lines"]), same(err[0:1] + err[2:4]))
        self.assertEqual(same(s["last_lines"]), same(err[-8:]))
        self.assertEqual(s["lines_between"], len(err) - 8 - 4)
        # The announcement, then the summary.
        want = same(err[0:1] + err[2:4]) + \
            ["... (%d lines)" % (len(err) - 12)] + same(err[-8:])
        for head in ("meshlog: first failure: rank 0 ",
                     "  * first failure; its last lines:"):
            i = [k for k, x in enumerate(con) if x.startswith(head)][0]
            said = same(re.sub(r"^ +(\[rank 0\] )?", "", x)
                        for x in con[i + 1:i + 13])
            self.assertEqual(said, want, con)

    def test_last_lines_are_the_last_in_order(self):
        # A thousand lines in few reads, then a line written in two reads
        # (put together in the splitter's buffer), one more, and a read
        # whose last line, a bar's, comes from the splitter's buffer.
        code = ("import sys, time\n"
                "for i in range(1000): print('line', i)\n"
                "sys.stdout.flush(); time.sleep(0.2)\n"
                "sys.stdout.write('joined-'); sys.stdout.flush()\n"
                "time.sleep(0.2)\n"
                "sys.stdout.write('line\\nlast\\n'); sys.stdout.flush()\n"
                "time.sleep(0.2)\n"
                "sys.stdout.write('a\\nb\\nbar 1\\rbar 2\\n')\n"
                "sys.exit(3)\n")
        script = self.script("tail.py", code)
        self.launch([PYTHON, script])
        s = events(self.records, "summary")[0]
        self.assertEqual(s["first_failure"]["last_lines"],
                         ["line 997", "line 998", "line 999",
                          "joined-line", "last", "a", "b", "bar 2"])

    def test_a_job_that_succeeds_gets_one_line(self):
        p = self.launch(["bash", "-c", "for r in 0 1; do RANK=$r %s -c "
                         "'print(1)' & done; wait" % PYTHON])
        self.assertEqual(p.returncode, 0)
        said = [l for l in p.stderr.decode().splitlines()
                if l.startswith("meshlog:")]
        # Its socket when it starts, and one line at the end.
        self.assertEqual(len(said), 2, said)
        self.assertTrue(said[0].startswith("meshlog: control socket "))
        self.assertEqual(said[1], "meshlog: 2 ranks, all exited 0; 2 lines, "
                         "0 warnings, 0 errors; log %s" % self.json)

    def test_a_job_without_ranks_counts_its_lines(self):
        # The totals are the job's: a job of processes without a rank
        # (a shell script) is not "0 lines".
        p = self.launch(["bash", "-c", "echo a; echo b; echo 'WARNING: "
                         "low disk' >&2; %s -c 'print(1)'; exit 0" % PYTHON])
        self.assertEqual(p.returncode, 0)
        said = [l for l in p.stderr.decode().splitlines()
                if l.startswith("meshlog:")]
        self.assertEqual(said[-1], "meshlog: 2 processes, all exited 0; 4 "
                         "lines, 1 warning, 0 errors; log %s" % self.json)
        s = events(self.records, "summary")[0]
        self.assertEqual((s["lines"], s["warnings"], s["errors"]), (4, 1, 0))
        self.assertEqual(s["other_processes"],
                         {"count": 2, "failed": 0, "not_failures": 0,
                          "failures": None,
                          "lines": 4, "warnings": 1, "errors": 0})

    def syncs_of_the_log(self, cmd):
        """Run cmd under a collector whose fsync(2) calls are noted (a
        library preloaded into it); how many were on the JSON log."""
        lib = os.path.join(self.tmp, "fsyncs.so")
        noted = os.path.join(self.tmp, "fsyncs")
        if not os.path.exists(lib):
            src = self.script("fsyncs.c", FSYNC_NOTED)
            subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", lib, src],
                           check=True)
        if os.path.exists(noted):
            os.unlink(noted)
        self.json = os.path.join(self.tmp, "log%d.jsonl" % len(os.listdir(
            self.tmp)))
        # An AddressSanitizer build's collector runs with a library
        # preloaded before its runtime only when told it may.
        asan = os.environ.get("ASAN_OPTIONS", "")
        p = self.launch(cmd, env=clean_env(
            LD_PRELOAD=lib, FSYNC_NOTED=noted, ASAN_OPTIONS=(
                asan + ":" if asan else "") + "verify_asan_link_order=0"))
        with open(noted, "a+") as f:
            f.seek(0)
            paths = f.read().splitlines()
        return p, paths.count(os.path.realpath(self.json))

    def test_the_log_is_synced_at_the_end_of_a_failed_job_only(self):
        # A failed job's account outlives the reboot that often follows
        # a hardware failure; a job that succeeded does not wait for the
        # disk (journald syncs after a critical message only, and tee
        # never). A crash fails the job even when the command ends 0.
        crash = ("%s -c 'import os; print(1, flush=True); os.abort()'; "
                 "exit 0" % PYTHON)
        for cmd, rc, synced in ((["true"], 0, 0),
                                (["sh", "-c", "echo hi"], 0, 0),
                                (["sh", "-c", "echo no; exit 3"], 3, 1),
                                (["sh", "-c", crash], 0, 1)):
            p, n = self.syncs_of_the_log(cmd)
            self.assertEqual((p.returncode, n), (rc, synced),
                             (cmd, p.stderr))

    def test_pipelines_and_tests_are_not_failures(self):
        # yes | head ends yes by SIGPIPE, and grep -q answers with its
        # exit code: the job went well, and the console said "first
        # failure: pid N killed by SIGPIPE" and "2 of 4 processes ended
        # abnormally". A crash, a rank's or the command's nonzero end,
        # or a nonzero code with output still is a failure.
        # A helper killed to end it (a monitor stopped at the end of a
        # script) is no failure either.
        p = self.launch(["sh", "-c", "yes | head -1; grep -q nothing "
                         "/etc/hostname; sleep 30 & sleep 0.3; kill $!; "
                         "wait; echo end"])
        self.assertEqual(p.returncode, 0, p.stderr)
        err = p.stderr.decode()
        self.assertNotIn("first failure", err)
        self.assertIn("meshlog: 6 processes, none failed (3 ended as "
                      "pipelines, tests and clean-ups do", err)
        s = events(self.records, "summary")[-1]
        self.assertEqual((s["other_processes"]["failed"],
                          s["other_processes"]["not_failures"]), (0, 3))
        # A forked subshell's pipes close as its parent reaps it, and
        # the parent's word on its status can come first: an end of
        # file not yet read is no line written (pyenv's helpers).
        self.json = os.path.join(self.tmp, "sub.jsonl")
        p = self.launch(["bash", "-c", "for i in 1 2 3 4; do "
                         "x=$(exit 3); done; echo end"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("first failure", p.stderr.decode())
        s = events(self.records, "summary")[-1]
        self.assertEqual(s["other_processes"]["failed"], 0)
        self.assertEqual(self.first_failures(), [])
        for i, (script, rank, who) in enumerate((
                ("exit 2", None, "sh"),
                ("RANK=0 sh -c 'exit 5'; echo end", None, "rank"),
                ("sh -c 'echo said; exit 5'; echo end", None, "said"),
                ("sh -c 'kill -SEGV $$'; echo end", None, "segv"))):
            self.json = os.path.join(self.tmp, "f%d.jsonl" % i)
            env = clean_env(RANK=rank) if rank else clean_env()
            p = self.launch(["sh", "-c", script], env=env)
            self.assertIn("meshlog: first failure: ", p.stderr.decode(),
                          who)
            self.assertEqual(len(self.first_failures()), 1, who)
            # A process without a rank is named by its program, not by
            # a pid alone: "pid 4 (sh, host h)".
            if who == "rank":
                self.assertIn("meshlog: first failure: rank 0 ",
                              p.stderr.decode())
            elif rank is None:
                self.assertRegex(p.stderr.decode(), r"meshlog: first "
                                 r"failure: pid \d+ \(sh, host [^)]+\) ")
                # Without ranks, "other processes" said the first
                # failure again; only failures past it are named.
                self.assertNotIn("other processes", p.stderr.decode())
                self.assertNotIn("also ended abnormally",
                                 p.stderr.decode())
        self.json = os.path.join(self.tmp, "two.jsonl")
        p = self.launch(["sh", "-c", "sh -c 'echo a; exit 4'; "
                         "sh -c 'echo b; exit 5'; echo end"])
        err = p.stderr.decode()
        self.assertIn("2 of 3 processes ended abnormally; first failure: "
                      "pid ", err)
        self.assertRegex(err, r"\n  also ended abnormally: pid \d+ \(sh, "
                         r"host [^)]+\) exit 5\n")

    def test_a_script_is_named_by_its_interpreter_and_itself(self):
        # "pid 23152 (python3, host vm)" was torchrun; an interpreter's
        # process is named with the script it runs, or its -m module.
        script = os.path.join(self.tmp, "prep_data.py")
        with open(script, "w") as f:
            f.write("print('preparing'); raise SystemExit(2)\n")
        for i, (cmd, name) in enumerate((
                ([PYTHON, script], "python3 prep_data.py"),
                ([PYTHON, "-m", "prep_data"], "python3 -m prep_data"))):
            self.json = os.path.join(self.tmp, "s%d.jsonl" % i)
            p = self.launch(["sh", "-c", '"$@"; echo end', "sh"] + cmd,
                            cwd=self.tmp)
            self.assertIn("meshlog: first failure: pid %d (%s, host "
                          % (self.first_failures()[0]["pid"], name),
                          p.stderr.decode())
            self.assertEqual(events(self.records, "summary")[-1][
                "first_failure"]["program"], name)

    def test_a_program_run_through_env_is_named_by_what_it_ran(self):
        # `#!/usr/bin/env python3` scripts, pyenv's shims and `env
        # python3 train.py` register as env, then exec in the same pid:
        # the failure read "pid 4 (env, host h)" and every rank's
        # program in the summary was "env". The process now says what it
        # runs after each exec, and the record says it.
        script = self.script("prep.py", "#!/usr/bin/env %s\n"
                             "print('preparing'); raise SystemExit(2)\n"
                             % PYTHON)
        os.chmod(script, 0o755)
        p = self.launch(["sh", "-c", '"$@"; echo end', "sh", script])
        pid = self.first_failures()[0]["pid"]
        self.assertIn("meshlog: first failure: pid %d (python3 prep.py, "
                      "host " % pid, p.stderr.decode())
        self.assertEqual([r["argv"] for r in events(self.records, "exec")
                          if r["pid"] == pid], [[PYTHON, script]])
        self.json = os.path.join(self.tmp, "rank.jsonl")
        p = self.launch(["sh", "-c", "RANK=0 WORLD_SIZE=1 env %s -c "
                         "'print(1)'; RANK=1 WORLD_SIZE=2 env %s" %
                         (PYTHON, script)])
        s = events(self.records, "summary")[-1]
        self.assertEqual([(r["rank"], r["program"]) for r in s["ranks"]],
                         [(0, "python3"), (1, "python3 prep.py")])
        self.assertIn("meshlog: first failure: rank 1 ", p.stderr.decode())

    def test_a_rank_its_launcher_reaped_fails_before_the_launcher(self):
        # A shell runs a rank that fails, reaps it and exits with its
        # code. When the collector heard of the shell's end before the
        # shell's word of how its child ended (the rank reaped before the
        # collector read its status), the shell was named the first
        # failure. A stopped collector, woken after both ended, hears of
        # them in one pass: that order, every time.
        script = self.script("prep.py", "import time\n"
                             "print('preparing', flush=True)\n"
                             "time.sleep(1)\n"
                             "raise SystemExit(2)\n")
        p = subprocess.Popen(
            [COLLECTOR, "-s", os.path.join(self.tmp, "l.sock"), "-j",
             self.json, "--", "sh", "-c",
             "RANK=1 WORLD_SIZE=2 %s %s; exit $?" % (PYTHON, script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=clean_env())
        self.children.append(p)
        self.wait_for(lambda: b"preparing" in self.log_bytes(),
                      what="the rank's line")
        p.send_signal(signal.SIGSTOP)
        time.sleep(1.6)
        p.send_signal(signal.SIGCONT)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 2, err)
        self.assertIn(b"meshlog: first failure: rank 1 ", err)
        self.records = read_records(self.json)
        self.assertEqual([r["rank"] for r in self.first_failures()], [1])

    def test_a_program_a_rank_ran_is_not_the_rank(self):
        # A rank's process runs programs that inherit its RANK: pyenv's
        # shims run helpers that exit 1 as answers, a script runs grep
        # -q or git. One of them was named the job's first failure
        # ("rank 1 (pid N) exit 1": pyenv's readlink) while the rank ran
        # on. They are judged as processes without a rank are; the
        # rank's own process, and a crash of any, still fail the job.
        p = self.launch(["sh", "-c", "RANK=0 WORLD_SIZE=1 sh -c 'grep -q "
                         "nothing /etc/hostname; sh -c \"exit 3\"; echo "
                         "rank 0 is fine'"])
        self.assertEqual(p.returncode, 0, p.stderr)
        err = p.stderr.decode()
        self.assertNotIn("first failure", err)
        s = events(self.records, "summary")[-1]
        self.assertEqual(s["ranks_failed"], 0)
        self.assertEqual([(r["rank"], r["exit"]) for r in s["ranks"]],
                         [(0, {"code": 0})])
        # What such a program answers through a pipe ($(...), a rank
        # reading nvidia-smi) is no line of the rank's: pyenv's helpers
        # made a rank of 9 lines count 23. What it writes where the
        # rank's output goes is.
        self.json = os.path.join(self.tmp, "lines.jsonl")
        p = self.launch(["sh", "-c", "RANK=0 WORLD_SIZE=1 sh -c 'x=$(sh -c "
                         "\"echo inner; echo ERROR: in a pipe\"); sh -c "
                         "\"echo helper says >&2\"; echo rank 0 is fine'"])
        self.assertEqual(p.returncode, 0, p.stderr)
        s = events(self.records, "summary")[-1]
        self.assertEqual([(r["rank"], r["lines"], r["errors"])
                          for r in s["ranks"]], [(0, 2, 0)])
        # meshlogctl logs shows the rank's lines; the answers only when
        # asked (--piped), or with the helper's own --pid.
        ctl = os.path.join(os.path.dirname(COLLECTOR), "meshlogctl")

        def shown(*args):
            return subprocess.run([ctl, "logs", "-o", "cat", "-r", "0",
                                   *args, self.json], capture_output=True,
                                  env=clean_env(), check=True).stdout

        self.assertEqual(shown(), b"helper says\nrank 0 is fine\n")
        self.assertEqual(sorted(shown("--piped").splitlines()),
                         [b"ERROR: in a pipe", b"helper says", b"inner",
                          b"rank 0 is fine"])
        inner = [r["pid"] for r in self.records
                 if r.get("line") == "inner"][0]
        self.assertEqual(shown("--pid", str(inner)),
                         b"inner\nERROR: in a pipe\n")
        self.json = os.path.join(self.tmp, "crash.jsonl")
        p = self.launch(["sh", "-c", "RANK=0 WORLD_SIZE=1 sh -c 'sh -c "
                         "\"kill -SEGV \\$\\$\"; echo rank 0 goes on'"])
        self.assertIn("meshlog: first failure: rank 0 ", p.stderr.decode())

    def test_a_large_job_ends_with_its_failures_not_every_rank(self):
        # 40 ranks, one failed and one wrote an error: the table had a
        # row for each of the 40. Past 16 ranks it has the rows that
        # matter and a line for the rest of each way of ending.
        code = ("import os, subprocess, sys\n"
                "ks = [subprocess.Popen(['sh', '-c', 'echo rank $RANK; "
                "[ $RANK = 30 ] && echo ERROR: disk full; "
                "[ $RANK = 17 ] && exit 3; exit 0'], "
                "env=dict(os.environ, RANK=str(r), WORLD_SIZE='40')) "
                "for r in range(40)]\n"
                "sys.exit(max(k.wait() for k in ks))\n")
        p = self.launch([PYTHON, "-c", code])
        self.assertEqual(p.returncode, 3, p.stderr)
        err = p.stderr.decode()
        table = err[err.index("meshlog: 1 of 40 ranks ended abnormally"):]
        rows = [x for x in table.split("\n")
                if re.match(r"\s+\d+\s+\S+\s+\d+\s", x)]
        self.assertEqual([int(x.split()[0]) for x in rows], [17, 30], table)
        self.assertIn("exit 3 *", rows[0])
        self.assertIn("\n  ranks 0-16,18-29,31-39: exit 0, 38 ranks; "
                      "38 lines, 0 warnings, 0 errors\n", table)
        s = events(self.records, "summary")[-1]
        self.assertEqual(len(s["ranks"]), 40)
        ctl = subprocess.run([os.path.join(os.path.dirname(COLLECTOR),
                              "meshlogctl"), "summary", self.json],
                             capture_output=True, text=True)
        self.assertEqual(ctl.returncode, 0, ctl.stderr)
        self.assertIn("\n  ranks 0-16,18-29,31-39: exit 0, 38 ranks; ",
                      ctl.stdout)

    def test_a_command_that_never_registered_is_still_counted(self):
        # A static program (a Go binary), a setuid one or a command that
        # could not start never registers: the summary said "0
        # processes, all exited 0" whatever its exit status.
        src = os.path.join(self.tmp, "st.c")
        with open(src, "w") as f:
            f.write("#include <stdio.h>\nint main(void) { "
                    "puts(\"static hi\"); return 3; }\n")
        prog = os.path.join(self.tmp, "st")
        subprocess.run(["cc", "-static", "-o", prog, src], check=True)
        for cmd, rc, head in (
                ([prog], 3, "1 of 1 process ended abnormally"),
                ([os.path.join(self.tmp, "none")], 127,
                 "1 of 1 process ended abnormally")):
            p = self.launch(cmd)
            self.assertEqual(p.returncode, rc, p.stderr)
            err = p.stderr.decode()
            self.assertIn("meshlog: " + head, err)
            self.assertIn("exit %d" % rc, err)
            self.assertIn("was not captured", err)
            # No failure was named before it: not "also".
            self.assertRegex(err, r"\n  ended abnormally: pid \d+ "
                             r"\((st|none), host [^)]+\) exit %d\n" % rc)
            s = events(self.records, "summary")[-1]
            self.assertEqual(s["command"]["exit"], {"code": rc})
            self.assertIs(s["command"]["captured"], False)
            self.assertEqual((s["other_processes"]["count"],
                              s["other_processes"]["failed"]), (1, 1))
        self.assertEqual(p.stdout, b"")
        # A command that registered is counted once, as before.
        p = self.launch(["bash", "-c", "echo a"])
        self.assertEqual(p.returncode, 0)
        self.assertNotIn("not captured", p.stderr.decode())
        s = events(self.records, "summary")[-1]
        self.assertIs(s["command"]["captured"], True)
        self.assertEqual(s["other_processes"]["count"], 1)
        # The command's end has its time (it said null) and its program.
        self.assertEqual(s["command"]["program"], "bash")
        self.assertIsNotNone(s["command"]["ended"])
        self.assertRegex(s["command"]["ended"], r"^\d{4}-\d\d-\d\dT")

    def test_a_signal_from_outside_is_said(self):
        # timeout(1), a scheduler's preemption, kill: the job's first
        # failure was "killed by SIGTERM" with nothing saying where that
        # came from. The collector says it passed one on, once.
        p = subprocess.Popen([COLLECTOR, "-s", os.path.join(self.tmp,
                                                            "t.sock"),
                              "--", "sh", "-c", "echo up; exec sleep 30"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=clean_env())
        self.assertIn(b"up", p.stdout.readline())
        p.send_signal(signal.SIGTERM)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, -signal.SIGTERM)
        self.assertEqual(err.decode().count(
            "meshlog: SIGTERM received: passed on to the command (pid "),
            1, err)

    def test_a_job_told_to_end_is_interrupted_not_failed(self):
        # ^C (SIGINT to the job's process group): every rank died of it,
        # as asked, and the first to go was announced as the job's
        # "first failure" with its KeyboardInterrupt traceback, the
        # others' same traceback printed apart. A rank that failed
        # before the interrupt is still the first failure.
        rank = self.script("rank.py", "import os, sys, time\n"
                           "r = int(os.environ['RANK'])\n"
                           "print('rank', r, 'up', flush=True)\n"
                           "if r == 1 and len(sys.argv) > 1: sys.exit(3)\n"
                           "time.sleep(60)\n")
        launcher = ("import os, subprocess, sys\n"
                    "ks = [subprocess.Popen([sys.executable, %r] + "
                    "sys.argv[1:], env=dict(os.environ, RANK=str(r), "
                    "WORLD_SIZE='2')) for r in range(2)]\n"
                    "try:\n"
                    "    sys.exit(max(k.wait() for k in ks))\n"
                    "except KeyboardInterrupt:\n"
                    "    sys.exit(130)\n" % rank)
        for args, first in (([], None), (["fail"], 1)):
            self.json = os.path.join(self.tmp, "i%d.jsonl" % len(args))
            p = subprocess.Popen([COLLECTOR, "-s", os.path.join(
                self.tmp, "i.sock"), "-j", self.json, "--", PYTHON, "-c",
                launcher, *args], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=clean_env(),
                start_new_session=True)
            self.children.append(p)
            self.wait_for(lambda: b'"line":"rank 0 up"' in self.log_bytes()
                          and b'"line":"rank 1 up"' in self.log_bytes(),
                          what="both ranks up")
            if first is not None:
                self.wait_for(lambda: b'"exit":{"code":3}' in
                              self.log_bytes(), what="rank 1's end")
            time.sleep(0.3)
            os.killpg(p.pid, signal.SIGINT)
            _, err = p.communicate(timeout=60)
            err = re.sub(r"\x1b\[[0-9;]*m", "", err.decode())
            self.assertEqual(p.returncode, 130, err)
            self.records = read_records(self.json)
            s = events(self.records, "summary")[-1]
            self.assertEqual(s["interrupted"]["signal"], "SIGINT", s)
            self.assertIn("ranks ended abnormally", err)
            self.assertRegex(err, r"; interrupted: SIGINT to the job at "
                             r"\d\d:\d\d:\d\d\.\d\d UTC\n")
            if first is None:
                self.assertNotIn("first_failure", s)
                self.assertEqual(self.first_failures(), [])
                self.assertNotIn("first failure", err)
                self.assertIn("\n[ranks 0-1] KeyboardInterrupt\n", err)
            else:
                self.assertEqual(s["first_failure"]["rank"], 1)
                self.assertIn("meshlog: first failure: rank 1", err)

    def test_a_failure_that_makes_its_launcher_end_the_job_stays_one(self):
        # A launcher script that ends the job when a rank fails ("wait
        # -n; kill 0") interrupts it right after the failure: the rank
        # that raised is still the first failure, the rank the kill ended
        # is not. (The job has a session of its own: kill 0 ends its
        # process group.)
        rank = self.script("rank.py", "import os, time\n"
                           "if os.environ['RANK'] == '1':\n"
                           "    raise RuntimeError('CUDA error')\n"
                           "time.sleep(60)\n")
        p = self.launch(["bash", "-c", "for r in 0 1; do RANK=$r "
                         "WORLD_SIZE=2 %s %s & done; wait -n; kill 0"
                         % (PYTHON, rank)], start_new_session=True)
        err = p.stderr.decode()
        s = events(self.records, "summary")[-1]
        self.assertEqual(s["interrupted"]["signal"], "SIGTERM", err)
        self.assertEqual(s["first_failure"]["rank"], 1, err)
        self.assertEqual([r["rank"] for r in self.first_failures()], [1])

    def test_an_uncaught_exception_counts_as_an_error(self):
        # Its traceback is the error the rank died of: the summary's
        # table does not say "0 errors" beside it.
        p = self.launch(["bash", "-c", "RANK=0 %s -c 'print(1)'; RANK=1 %s "
                         "-c 'raise RuntimeError(\"CUDA error\")'; exit 0"
                         % (PYTHON, PYTHON)])
        self.assertEqual(p.returncode, 0)
        s = events(self.records, "summary")[0]
        self.assertEqual([(r["rank"], r["errors"]) for r in s["ranks"]],
                         [(0, 0), (1, 1)])
        # logging.exception writes its ERROR line and the traceback:
        # one error, not two; an error line after it is another, and an
        # exception raised while handling another is one. Python's
        # warnings ("<string>:13: UserWarning: ...") are warnings.
        code = ("import logging\n"
                "try:\n"
                "    1 / 0\n"
                "except ZeroDivisionError:\n"
                "    logging.exception('step failed')\n"
                "logging.error('then this')\n"
                "logging.warning('going on')\n"
                "import warnings\n"
                "warnings.warn('cuda not available')\n"
                "warnings.warn('renamed', FutureWarning)\n"
                "try:\n"
                "    {}['k']\n"
                "except KeyError:\n"
                "    raise RuntimeError('while handling')\n")
        self.json = os.path.join(self.tmp, "logged.jsonl")
        p = self.launch(["bash", "-c", "RANK=0 %s -c \"$0\"; exit 0"
                         % PYTHON, code])
        s = events(self.records, "summary")[0]
        self.assertEqual([(r["rank"], r["warnings"], r["errors"])
                          for r in s["ranks"]], [(0, 3, 3)], p.stderr)

    def test_ranks_left_running_by_their_launcher_are_running(self):
        # A script that starts its ranks in the background and ends
        # first (^C reaches the shell, and background ranks ignore
        # SIGINT) leaves them writing: they did not end, abnormally or
        # otherwise, and what they write after still reaches the
        # destination.
        code = ("import os, sys, time\n"
                "r = os.environ['RANK']\n"
                "print('rank', r, 'up', flush=True)\n"
                "time.sleep(2)\n"
                "print('rank', r, 'still here', flush=True)\n")
        script = self.script("on.py", code)
        p = self.launch(["bash", "-c", "for r in 0 1; do RANK=$r %s %s & "
                         "done; sleep 1; exit 0" % (PYTHON, script)])
        self.assertEqual(p.returncode, 0, p.stderr)
        s = events(self.records, "summary")[0]
        self.assertEqual([(r["rank"], r["exit"], r.get("running"))
                          for r in s["ranks"]],
                         [(0, None, True), (1, None, True)])
        err = p.stderr.decode()
        self.assertIn("meshlog: 2 ranks, all still running;", err)
        self.assertNotIn("abnormally", err)
        closed = [r for r in events(self.records, "source_closed")
                  if r["rank"] is not None]
        self.assertEqual([r["exit_unknown"] for r in closed],
                         ["still running when the collector exited"] * 2)
        self.assertIn(b"rank 0 still here", p.stdout)
        self.assertIn(b"rank 1 still here", p.stdout)

    def test_a_silent_rank_is_named_while_others_write(self):
        code = ("import os, sys, time\n"
                "r = int(os.environ['RANK'])\n"
                "for i in range(40):\n"
                "    print('rank', r, 'step', i, flush=True)\n"
                "    if r == 1 and i == 5: time.sleep(5)\n"
                "    time.sleep(0.2)\n")
        script = self.script("stall.py", code)
        p = self.launch(["bash", "-c", "for r in 0 1 2; do RANK=$r %s %s & "
                         "done; wait" % (PYTHON, script)],
                        args=("--stall", "2", "--aggregate", "off"))
        self.assertEqual(p.returncode, 0, p.stderr)
        stalls = events(self.records, "stall")
        self.assertEqual([(r["rank"], r["state"]) for r in stalls],
                         [(1, "stalled"), (1, "resumed")])
        self.assertEqual(stalls[0]["last_line"], "rank 1 step 5")
        self.assertGreaterEqual(stalls[0]["idle_s"], 2)
        self.assertEqual(stalls[0]["others_active"], 2)
        self.assertGreaterEqual(stalls[1]["idle_s"], 4.5)
        err = p.stderr.decode()
        self.assertRegex(err, r"meshlog: rank 1 \(pid \d+, host [^)]+\) has "
                         r"written nothing for \d+ s while 2 other ranks "
                         r"write; its last line: rank 1 step 5")
        self.assertRegex(err, r"meshlog: rank 1 .* writes again after \d+ s")

    def test_summary_of_a_running_job(self):
        self.serve()
        w = subprocess.Popen([PYTHON, "-c", "import time; print('up', "
                              "flush=True); time.sleep(30)"],
                             env=self.shim_env(RANK="0"),
                             stdout=subprocess.DEVNULL)
        self.wait_for(lambda: b'"line":"up"' in self.log_bytes())
        ctl = subprocess.run([os.path.join(os.path.dirname(COLLECTOR),
                              "meshlogctl"), "-s", self.sock, "summary",
                              "--json"], capture_output=True, text=True)
        self.assertEqual(ctl.returncode, 0, ctl.stderr)
        import json
        s = json.loads(ctl.stdout)
        self.assertEqual([(r["rank"], r["pid"], r.get("running"))
                          for r in s["ranks"]], [(0, w.pid, True)])
        # Its text does not say it exited.
        ctl = subprocess.run([os.path.join(os.path.dirname(COLLECTOR),
                              "meshlogctl"), "-s", self.sock, "summary"],
                             capture_output=True, text=True)
        self.assertTrue(ctl.stdout.startswith("1 rank, still running;"),
                        ctl.stdout)
        # status says how long each source has been silent.
        time.sleep(0.5)
        ctl = subprocess.run([os.path.join(os.path.dirname(COLLECTOR),
                              "meshlogctl"), "-s", self.sock, "status",
                              "--json"],
                             capture_output=True, text=True)
        idle = [x["idle_s"] for x in json.loads(ctl.stdout)["sources"]]
        self.assertEqual(len(idle), 1)
        self.assertGreaterEqual(idle[0], 0.5)
        w.kill()
        w.wait()
        self.stop()

    def test_oom_kill_in_a_memory_limited_cgroup(self):
        cg = "/sys/fs/cgroup/memory/meshlog-test-%d" % os.getpid()
        try:
            os.mkdir(cg)
        except OSError as e:
            self.skipTest("cannot make a cgroup v1 memory cgroup: %s" % e)
        self.addCleanup(os.rmdir, cg)
        with open(os.path.join(cg, "memory.limit_in_bytes"), "w") as f:
            f.write(str(64 << 20))
        try:
            with open(os.path.join(cg, "memory.memsw.limit_in_bytes"),
                      "w") as f:
                f.write(str(64 << 20))
        except OSError:
            pass
        self.serve()
        # Not under the shim until it is in the cgroup; the test is its
        # parent and reaps it only after the collector has seen it die.
        code = ("x = []\nprint('eating', flush=True)\n"
                "while True: x.append(bytearray(10 ** 7))\n")
        env = self.shim_env(RANK="0")
        pre = env.pop("LD_PRELOAD")
        w = subprocess.Popen(
            ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec env '
             'LD_PRELOAD="$1" "$2" -c "$3"', cg, pre, TORCH
             if os.path.exists(TORCH) else PYTHON, code],
            env=env, stdout=subprocess.DEVNULL)
        self.wait_for(lambda: b'"event":"source_closed"' in
                      self.log_bytes(), timeout=60, what="the OOM kill")
        self.assertEqual(w.wait(), -signal.SIGKILL)
        self.stop()
        closed = events(read_records(self.json), "source_closed")
        self.assertEqual(len(closed), 1)
        self.assertEqual(closed[0]["exit"], {"signal": "SIGKILL",
                                             "core": False})
        self.assertTrue(closed[0].get("oom_killed"), closed[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
