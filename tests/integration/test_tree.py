"""Process tree: exec keeps the source, a new program in a new pid is its own
source, fork shares; every line is recorded exactly once."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CWRITER, PYTHON, MeshTest, events, line_records)


class Tree(MeshTest):

    def test_bash_exec_python_subprocess_c(self):
        code = ("import subprocess, sys\n"
                "print('from python')\n"
                "subprocess.run([%r, 'lines', '3', 'C'], check=True)\n"
                "print('python again')\n" % CWRITER)
        p = self.launch(["bash", "-c", "echo from bash; exec %s -c %s"
                         % (PYTHON, repr(code).replace("\\n", "\n"))])
        self.assertEqual(p.returncode, 0, p.stderr)
        opens = events(self.records, "source_open")
        by_pid = {}
        for r in line_records(self.records):
            by_pid.setdefault(r["pid"], []).append((r["stream"], r["line"]))
        bash = opens[0]
        self.assertEqual(bash["argv"][0], "bash")
        # exec kept bash's source: python's lines carry bash's pid/source.
        self.assertEqual(by_pid[bash["pid"]],
                         [("stdout", "from bash"), ("stdout", "from python"),
                          ("stdout", "python again")])
        c = [o for o in opens if o["argv"][0] == CWRITER]
        self.assertEqual(len(c), 1)
        self.assertEqual(c[0]["parent_source"], bash["source"])
        # Order holds per stream, not across streams.
        self.assertEqual(self.texts(pid=c[0]["pid"], stream="stdout"),
                         ["C 0", "C 1", "C 2"])
        self.assertEqual(self.texts(pid=c[0]["pid"], stream="stderr"),
                         ["C err 0"])
        # Every line once, in the log and in the console view.
        all_lines = [r["line"] for r in line_records(self.records)]
        self.assertEqual(len(all_lines), len(set(all_lines)))
        self.assertEqual(p.stdout.decode().count("C 1\n"), 1)

    def test_multiprocessing_fork_workers_are_sources_of_the_parent(self):
        code = ("import multiprocessing as mp, os\n"
                "def work(i):\n"
                "    print('worker', i, flush=True)\n"
                "if __name__ == '__main__':\n"
                "    ctx = mp.get_context('fork')\n"
                "    ps = [ctx.Process(target=work, args=(i,)) "
                "for i in range(4)]\n"
                "    [p.start() for p in ps]; [p.join() for p in ps]\n"
                "    print('parent done')\n")
        p = self.launch([PYTHON, "-c", code])
        self.assertEqual(p.returncode, 0, p.stderr)
        opens = events(self.records, "source_open")
        # The parent registers; each worker that wrote is a forked source.
        self.assertEqual(len(opens), 5)
        self.assertNotIn("forked", opens[0])
        for o in opens[1:]:
            self.assertTrue(o["forked"])
            self.assertEqual(o["parent_source"], opens[0]["source"])
            self.assertEqual(o["ppid"], opens[0]["pid"])
        lines = self.texts(stream="stdout")
        self.assertEqual(sorted(lines), sorted(
            ["worker %d" % i for i in range(4)] + ["parent done"]))
        self.assertEqual(lines[-1], "parent done")

    def test_multiprocessing_spawn_registers_each_worker(self):
        script = os.path.join(self.tmp, "spawn.py")
        with open(script, "w") as f:
            f.write("import multiprocessing as mp, os\n"
                    "def work(i):\n"
                    "    print('spawned', i, os.getpid())\n"
                    "if __name__ == '__main__':\n"
                    "    ctx = mp.get_context('spawn')\n"
                    "    ps = [ctx.Process(target=work, args=(i,)) "
                    "for i in range(3)]\n"
                    "    [p.start() for p in ps]; [p.join() for p in ps]\n"
                    "    print('parent done')\n")
        p = self.launch([PYTHON, script])
        self.assertEqual(p.returncode, 0, p.stderr)
        recs = [r for r in line_records(self.records, stream="stdout")
                if r["line"].startswith("spawned")]
        self.assertEqual(len(recs), 3)
        for r in recs:
            # attributed to the worker itself
            self.assertEqual(int(r["line"].split()[2]), r["pid"])
        self.assertEqual(len({r["source"] for r in recs}), 3)
        self.assertEqual(self.texts(stream="stdout").count("parent done"), 1)

    def test_command_substitution_and_pipes_still_work(self):
        script = ("x=$(%s lines 2 Q | tail -1); echo \"got $x\"; "
                  "%s lines 3 P | wc -l > %s/count; cat %s/count"
                  % (CWRITER, CWRITER, self.tmp, self.tmp))
        p = self.launch(["bash", "-c", script])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn("got Q 1\n", out)
        self.assertIn("] 3\n", out)
        # The data that went through pipes is in the log, not the console.
        self.assertIn("Q 0", self.texts())
        self.assertNotIn("Q 0", out)
        # Each write once in the log: cwriter wrote "Q 1" into the pipe and
        # tail wrote it again into the $(...); one record each.
        argv0 = {o["source"]: os.path.basename(o["argv"][0])
                 for o in events(self.records, "source_open")}
        q1 = sorted(argv0[r["source"]] for r in
                    line_records(self.records, line="Q 1"))
        self.assertEqual(q1, ["cwriter", "tail"])
        self.assertEqual(self.texts(stream="stdout").count("got Q 1"), 1)

    def test_child_with_redirected_stdout_writes_the_file(self):
        out = os.path.join(self.tmp, "child.txt")
        p = self.launch(["bash", "-c", "%s lines 4 F > %s; echo done"
                         % (CWRITER, out)])
        self.assertEqual(p.returncode, 0)
        with open(out) as f:
            self.assertEqual(f.read(), "F 0\nF 1\nF 2\nF 3\n")
        self.assertEqual(self.texts(stream="stdout"),
                         ["F 0", "F 1", "F 2", "F 3", "done"])
        self.assertNotIn("F 0", p.stdout.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
