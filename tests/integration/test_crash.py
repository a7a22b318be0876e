"""Crashes: a writer killed any way loses no byte that reached fd 1/2; a
collector killed with SIGKILL neither kills nor hangs its writers."""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CWRITER, PYTHON, MeshTest, events, line_records)


class WriterCrash(MeshTest):

    def crash(self, kind, sig):
        p = self.launch([CWRITER, "crash", kind, "500"])
        self.assertEqual(p.returncode, 128 + sig)
        self.assertEqual(self.texts(stream="stdout"),
                         ["before crash %d" % i for i in range(500)])
        self.assertEqual(events(self.records, "source_closed")[0]["lines"],
                         {"stdout": 500, "stderr": 0})

    def test_sigsegv(self):
        self.crash("segv", signal.SIGSEGV)

    def test_abort(self):
        self.crash("abort", signal.SIGABRT)

    def test_sigkill_by_itself(self):
        self.crash("kill", signal.SIGKILL)

    def test_python_os_exit_without_flush(self):
        p = self.launch([PYTHON, "-c",
                         "import os, sys\n"
                         "for i in range(300): print('py', i)\n"
                         "sys.stderr.write('err line\\n')\n"
                         "os._exit(3)\n"])
        self.assertEqual(p.returncode, 3)
        self.assertEqual(self.texts(stream="stdout"),
                         ["py %d" % i for i in range(300)])
        self.assertEqual(self.texts(stream="stderr"), ["err line"])

    def test_python_sigkilled_from_outside(self):
        flag = os.path.join(self.tmp, "ready")
        code = ("import time\n"
                "for i in range(1000): print('k', i)\n"
                "open(%r + '.tmp', 'w').write(str(os.getpid()))\n"
                "os.rename(%r + '.tmp', %r)\n"
                "time.sleep(60)\n" % (flag, flag, flag))
        cmd = [PYTHON, "-c", "import os\n" + code]
        killer = subprocess.Popen(
            ["bash", "-c", "while [ ! -e %s ]; do sleep 0.01; done; "
             "kill -KILL $(cat %s)" % (flag, flag)])
        self.children.append(killer)
        p = self.launch(cmd)
        self.assertEqual(p.returncode, 128 + signal.SIGKILL)
        self.assertEqual(self.texts(stream="stdout"),
                         ["k %d" % i for i in range(1000)])

    def test_without_line_buffering_stdio_loses_what_it_held(self):
        # MESHLOG_BUFFERING=keep restores stdio's block buffering: a killed
        # C writer then loses its buffer, as it would without meshlog.
        env = dict(os.environ, MESHLOG_BUFFERING="keep")
        env.pop("LD_PRELOAD", None)
        p = self.launch([CWRITER, "crash", "kill", "50"], env=env)
        self.assertEqual(p.returncode, 128 + signal.SIGKILL)
        self.assertEqual(self.texts(stream="stdout"), [])


class CollectorDeath(MeshTest):

    def test_writers_survive_a_sigkilled_collector(self):
        self.serve()
        out = os.path.join(self.tmp, "out.txt")
        go = os.path.join(self.tmp, "go")
        code = ("import os, sys, time\n"
                "for i in range(100): print('line', i)\n"
                "while not os.path.exists(%r): time.sleep(0.01)\n"
                "for i in range(100, 300): print('line', i)\n"
                "print('to stderr after', file=sys.stderr)\n"
                "sys.exit(5)\n" % go)
        with open(out, "wb") as f, open(out + ".err", "wb") as e:
            w = subprocess.Popen([PYTHON, "-c", code], stdout=f, stderr=e,
                                 env=self.shim_env())
        self.children.append(w)
        self.wait_for(lambda: b'"line":"line 99"' in self.log_bytes(),
                      what="line 99 in the log")
        self.collector.kill()
        self.collector.wait()
        open(go, "w").close()
        self.assertEqual(w.wait(timeout=30), 5)
        with open(out) as f:
            self.assertEqual(f.read(), "".join("line %d\n" % i
                                               for i in range(300)))
        with open(out + ".err") as f:
            self.assertEqual(f.read(), "to stderr after\n")

    def test_launched_command_survives_a_sigkilled_collector(self):
        sock = os.path.join(self.tmp, "l.sock")
        go = os.path.join(self.tmp, "go")
        done = os.path.join(self.tmp, "done")
        code = ("import os, time\n"
                "print('before', flush=True)\n"
                "while not os.path.exists(%r): time.sleep(0.01)\n"
                "for i in range(2000): print('after', i)\n"
                "open(%r, 'w').write('ok')\n" % (go, done))
        coll = subprocess.Popen(
            [os.path.join(os.path.dirname(CWRITER), "..", "..", "collector",
                          "meshlog-collector"), "-s", sock, "-j", self.json,
             "--aggregate", "off", "--", PYTHON, "-c", code],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.children.append(coll)
        self.wait_for(lambda: b'"line":"before"' in self.log_bytes(),
                      what="the first line")
        coll.kill()
        coll.wait()
        open(go, "w").close()
        self.wait_for(lambda: os.path.exists(done), what="the writer")
        rest = coll.stdout.read().decode()
        # The console view had the first line; the keeper sent the rest
        # raw to the original stdout, which this test holds.
        self.assertIn("before\n", rest[:200], rest[:200])
        want = "".join("after %d\n" % i for i in range(2000))
        self.assertTrue(rest.endswith(want), rest[-200:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
