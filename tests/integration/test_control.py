"""Console view control: aggregation across ranks, the level filter, and
(from the control socket) flush barriers and live mode changes."""
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, COLLECTOR, CWRITER, PYTHON, MeshTest, clean_env,
                     events, file_bytes, line_records, read_records)

MESHLOGCTL = os.path.join(BUILD, "collector", "meshlogctl")

RANKS8 = ("for r in 0 1 2 3 4 5 6 7; do RANK=$r %s -c \"$1\" & done; wait"
          % PYTHON)

# The ranks meet before they print, as ranks of a real job do at a
# collective: the console's grouping waits a quarter of a second, longer
# than eight interpreters on two busy cores take to start one by one.
MEET = ("import os, time\n"
        "d = os.environ['MEET_DIR']\n"
        "open(os.path.join(d, os.environ['RANK']), 'w').close()\n"
        "while len(os.listdir(d)) < 8: time.sleep(0.005)\n")


class Aggregation(MeshTest):

    def run8(self, code, args=()):
        meet = os.path.join(self.tmp, "meet")
        os.mkdir(meet)
        return self.launch(["bash", "-c", RANKS8, "ranks8", MEET + code],
                           args=args, env=dict(clean_env(), MEET_DIR=meet))

    def test_one_template_from_eight_ranks_prints_once(self):
        p = self.run8("import os\nr = int(os.environ['RANK'])\n"
                      "print('step 100 loss=%.3f' % (2.3 + r * 0.011))")
        self.assertEqual(p.returncode, 0)
        out = p.stdout.decode()
        # Once, with every rank's value, in rank order.
        self.assertEqual(len(re.findall(
            r"^\[ranks 0-7\] step 100 loss=\{2\.300,2\.311,2\.322,2\.333,"
            r"2\.344,2\.355,2\.366,2\.377\}$", out, re.M)), 1, out)
        self.assertNotIn("[rank 3] step", out)
        # The JSON log is lossless: eight records.
        self.assertEqual(len([t for t in self.texts()
                              if t.startswith("step 100")]), 8)

    def test_tracebacks_stay_together_and_severities_do_not_merge(self):
        code = ("import os, sys, logging\n"
                "logging.basicConfig(format='%(levelname)s %(message)s')\n"
                "r = int(os.environ['RANK'])\n"
                "logging.warning('disk slow')\n"
                "logging.error('disk slow')\n"
                "if r in (2, 5, 6):\n"
                "    print('Traceback (most recent call last):',"
                " file=sys.stderr)\n"
                "    print('  File \"train.py\", line %d, in step' % (10 + r),"
                " file=sys.stderr)\n"
                "    print('ValueError: rank %d diverged' % r if r != 6 else"
                " \"KeyError: 'loss'\", file=sys.stderr)\n")
        p = self.run8(code)
        self.assertEqual(p.returncode, 0)
        err = p.stderr.decode().splitlines()
        # Ranks 2 and 5 raised one error, with their own numbers: one
        # traceback, its lines together, each with both ranks' values.
        i = err.index("[ranks 2,5] Traceback (most recent call last):")
        self.assertEqual(err[i + 1:i + 3], [
            '[ranks 2,5]   File "train.py", line {12,15}, in step',
            "[ranks 2,5] ValueError: rank {2,5} diverged"], err)
        # Rank 6's is another error: whole, under its own rank.
        i = err.index("[rank 6] Traceback (most recent call last):")
        self.assertEqual(err[i + 1:i + 3], [
            '[rank 6]   File "train.py", line 16, in step',
            "[rank 6] KeyError: 'loss'"], err)
        self.assertEqual(len([l for l in err if "WARNING disk slow" in l]), 1)
        self.assertEqual(len([l for l in err if "ERROR disk slow" in l]), 1)
        self.assertIn("[ranks 0-7] WARNING disk slow", err)
        self.assertIn("[ranks 0-7] ERROR disk slow", err)

    def test_off_prints_every_line(self):
        p = self.run8("print('same line')", args=["--aggregate", "off"])
        out = p.stdout.decode()
        self.assertEqual(out.count("same line"), 8)
        self.assertEqual(len(re.findall(r"^\[rank \d\] same line$", out,
                                        re.M)), 8)

    def test_one_source_repeating_itself_is_not_collapsed(self):
        p = self.launch([CWRITER, "lines", "5", "again"])
        out = p.stdout.decode()
        self.assertEqual(len(re.findall(r"\] again \d$", out, re.M)), 5, out)
        self.assertNotIn("similar", out)


class LevelFilter(MeshTest):

    def test_console_level_keeps_json_lossless(self):
        code = ("import logging, sys\n"
                "logging.basicConfig(level=logging.DEBUG,"
                " format='%(levelname)s:%(name)s:%(message)s')\n"
                "logging.debug('d'); logging.info('i')\n"
                "logging.warning('w'); logging.error('e')\n"
                "print('plain stdout line')\n"
                "print('no level here', file=sys.stderr)\n")
        p = self.launch([PYTHON, "-c", code], args=["--console-level",
                                                    "WARNING", "--aggregate",
                                                    "off"])
        err = p.stderr.decode()
        self.assertNotIn("DEBUG:root:d", err)
        self.assertNotIn("INFO:root:i", err)
        self.assertIn("WARNING:root:w", err)
        self.assertIn("ERROR:root:e", err)
        self.assertIn("no level here", err)
        self.assertIn("plain stdout line", p.stdout.decode())
        self.assertEqual(self.texts(stream="stderr"),
                         ["DEBUG:root:d", "INFO:root:i", "WARNING:root:w",
                          "ERROR:root:e", "no level here"])

    def test_bad_level_is_a_usage_error(self):
        p = self.launch_raw(["--console-level", "LOUD", "--", "true"])
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--console-level takes", p.stderr)
        p = self.launch_raw(["--console-ranks", "1-", "--", "true"])
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--console-ranks takes", p.stderr)

    def test_a_separator_with_no_command_is_a_usage_error(self):
        # "meshlog-collector -j x -- $CMD" with $CMD empty (a script's
        # unset variable) started a server that never ended, instead of
        # a job. "--" as an option's value is still a value.
        p = self.launch_raw(["-q", "-s", os.path.join(self.tmp, "s"),
                             "--"], timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"-- is to be followed by a command", p.stderr)
        p = subprocess.run([COLLECTOR, "-q", "-s", "s", "-j", "--", "--",
                            "true"], capture_output=True, timeout=30,
                           env=clean_env(), cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "--")))

    def test_old_level_spelling_still_filters_and_says_its_new_name(self):
        p = self.launch([PYTHON, "-c", "import logging; logging.info('i');"
                         " logging.error('e')"],
                        args=["--level", "ERROR", "--aggregate", "off"])
        err = p.stderr.decode()
        self.assertIn("--level is now --console-level", err)
        self.assertIn("ERROR:root:e", err)
        self.assertNotIn("INFO:root:i", err)

    def test_console_ranks_show_those_ranks_and_the_log_keeps_all(self):
        script = ("for r in 0 1 2 3; do RANK=$r WORLD_SIZE=4 %s -c "
                  "\"print('hello from', $r)\" & done; wait; "
                  "echo launcher done" % PYTHON)
        p = self.launch(["bash", "-c", script],
                        args=["--console-ranks", "0,3", "--aggregate",
                              "off"])
        out = p.stdout.decode().splitlines()
        shown = sorted(l for l in out if "hello from" in l)
        self.assertEqual(shown, ["[rank 0] hello from 0",
                                 "[rank 3] hello from 3"], out)
        # The launcher has no rank: shown.
        self.assertTrue(any(l.endswith("] launcher done") for l in out), out)
        self.assertEqual(sorted(t for t in self.texts()
                                if t.startswith("hello")),
                         ["hello from %d" % r for r in range(4)])

class ControlPlane(MeshTest):

    def ctl(self, *args, sock=None):
        p = subprocess.run([MESHLOGCTL, "-s", sock or self.sock, *args],
                           capture_output=True, timeout=60)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_console_ranks_change_live_never_the_programs(self):
        self.serve(args=["--aggregate", "off"])
        rc, out, err = self.ctl("set-mode", "--console-ranks", "1",
                                "--console-level", "WARNING")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "console on, aggregation off, WARNING and "
                         "above shown, only rank 1 (and processes without "
                         "a rank)\n")
        env = self.shim_env()
        for r in (0, 1):
            subprocess.run([PYTHON, "-c", "import logging; "
                            "logging.basicConfig(level=logging.INFO); "
                            "logging.info('i%d'); logging.warning('w%d')"
                            % (r, r)], env=dict(env, RANK=str(r)),
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
        rc, out, err = self.ctl("set-mode", "--console-ranks", "all",
                                "--console-level", "0")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.stop(), 0)
        shown = [l for l in self.collector_stderr().splitlines()
                 if ":root:" in l]
        self.assertEqual(shown, ["[rank 1] WARNING:root:w1"])
        # The programs wrote every line: the log has them all.
        self.assertEqual(sorted(t for t in self.texts()
                                if ":root:" in t),
                         ["INFO:root:i0", "INFO:root:i1",
                          "WARNING:root:w0", "WARNING:root:w1"])


    def test_barrier_sees_every_line_of_sixteen_writers_one_stopped(self):
        self.serve(args=["-q"])
        flags = [os.path.join(self.tmp, "w%d" % i) for i in range(16)]
        code = ("import sys, time\n"
                "for i in range(500): print(sys.argv[1], i)\n"
                "open(sys.argv[2], 'w').close()\n"
                "time.sleep(60)\n")
        ws = [subprocess.Popen([PYTHON, "-c", code, "w%d" % i, flags[i]],
                               stdout=subprocess.DEVNULL,
                               env=self.shim_env()) for i in range(16)]
        self.children.extend(ws)
        self.wait_for(lambda: all(os.path.exists(f) for f in flags),
                      what="16 writers")
        os.kill(ws[3].pid, signal.SIGSTOP)
        rc, out, err = self.ctl("flush", "--timeout", "5")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^flushed version 1: 16 sources in \d+ ms$")
        # Read the log right after the barrier answered.
        recs = read_records(self.json)
        for i in range(16):
            got = [r["line"] for r in line_records(recs)
                   if r["line"].startswith("w%d " % i)]
            self.assertEqual(got, ["w%d %d" % (i, k) for k in range(500)])
        self.assertEqual(events(recs, "flush")[0]["version"], 1)
        rc, out, _ = self.ctl("flush")
        self.assertIn("flushed version 2", out)
        os.kill(ws[3].pid, signal.SIGCONT)
        self.assertEqual(self.stop(), 0)

    def test_python_level_change_reaches_a_running_process(self):
        # Every distinct Python on the machine: Debian's and the one
        # running the tests.
        pythons = {os.path.realpath(p): p for p in
                   (PYTHON, "/usr/bin/python3") if os.path.exists(p)}
        for python in pythons.values():
            with self.subTest(python=python):
                self.level_change(python)
                self.tearDown()
                self.setUp()

    def test_level_change_reaches_python_started_by_exec(self):
        # A wrapper script that execs Python (pyenv shims, launch
        # scripts): the same process, registered before it was Python.
        self.level_change(PYTHON, wrap=["bash", "-c", 'exec "$0" "$@"'])

    def logging_writer(self, python, rank, rounds, pause, wrap=()):
        """A Python process logging INFO and WARNING each round; returns
        once it is past round 5, so a level change lands mid-run."""
        go = os.path.join(self.tmp, "go")
        code = ("import logging, os, time\n"
                "logging.basicConfig(level=logging.INFO,"
                " format='%%(levelname)s %%(message)s')\n"
                "for i in range(%d):\n"
                "    logging.info('info %%d', i)\n"
                "    logging.warning('warn %%d', i)\n"
                "    if i == 5: open(%r, 'w').close()\n"
                "    time.sleep(%r)\n" % (rounds, go, pause))
        w = subprocess.Popen([*wrap, python, "-c", code],
                             stderr=subprocess.DEVNULL,
                             env=self.shim_env(RANK=rank))
        self.children.append(w)
        self.wait_for(lambda: os.path.exists(go), what="the writer")
        return w

    def level_change(self, python, wrap=()):
        self.serve(args=["-q"])
        w = self.logging_writer(python, 0, 60, 0.05, wrap)
        rc, out, err = self.ctl("set-level", "WARNING", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["level"], 30)
        self.assertEqual(w.wait(timeout=60), 0)
        self.assertEqual(self.stop(), 0)
        infos = [int(t.split()[2]) for t in self.texts()
                 if t.startswith("INFO")]
        warns = [t for t in self.texts() if t.startswith("WARNING")]
        self.assertEqual(len(warns), 60)
        self.assertGreaterEqual(max(infos), 5)
        self.assertLess(max(infos), 20, "INFO went on after the change")
        self.assertEqual(infos, list(range(len(infos))))

    def test_level_for_other_ranks_leaves_this_one_alone(self):
        self.serve(args=["-q"])
        w = self.logging_writer(PYTHON, 1, 40, 0.03)
        rc, out, err = self.ctl("set-level", "ERROR", "--ranks", "0,2-3")
        self.assertEqual(rc, 0, err)
        # The answer in words (-q: the console is off).
        self.assertEqual(out, "console off, aggregation 0.25 s, every level "
                         "shown; programs log at ERROR and above on ranks "
                         "0,2-3\n")
        self.assertEqual(w.wait(timeout=60), 0)
        self.assertEqual(self.stop(), 0)
        self.assertEqual(len([t for t in self.texts()
                              if t.startswith("INFO")]), 40)

    def test_level_for_a_rank_told_after_start(self):
        # A worker of mp.spawn has no rank in its environment; once it
        # told its rank, a level change for that rank is its.
        torch_py = "/usr/bin/python3"   # Debian's, with python3-torch
        if subprocess.run([torch_py, "-c", "import torch.distributed"],
                          capture_output=True).returncode != 0:
            self.skipTest("python3-torch is not installed")
        self.serve(args=["-q"])
        go = os.path.join(self.tmp, "go")
        code = ("import logging, socket, sys, time\n"
                "import torch.distributed as dist\n"
                "s = socket.socket(); s.bind(('127.0.0.1', 0))\n"
                "port = s.getsockname()[1]; s.close()\n"
                "dist.init_process_group('gloo', init_method="
                "'tcp://127.0.0.1:%d' % port, rank=0, world_size=1)\n"
                "logging.basicConfig(level=logging.INFO,"
                " format='%(levelname)s %(message)s')\n"
                "open(sys.argv[1], 'w').close()\n"
                "for i in range(100):\n"
                "    logging.info('info %d', i)\n"
                "    time.sleep(0.05)\n")
        w = subprocess.Popen([torch_py, "-c", code, go],
                             stderr=subprocess.DEVNULL,
                             env=self.shim_env(OMP_NUM_THREADS="1"))
        self.children.append(w)
        self.wait_for(lambda: os.path.exists(go), timeout=120,
                      what="the writer")
        rc, _, err = self.ctl("set-level", "WARNING", "--ranks", "0")
        self.assertEqual(rc, 0, err)
        self.assertEqual(w.wait(timeout=60), 0)
        first = w.pid
        # A level set for its rank before it told it applies once told.
        rc, _, err = self.ctl("set-level", "ERROR", "--ranks", "0")
        self.assertEqual(rc, 0, err)
        code = code.replace("logging.info(", "logging.warning(")
        code = code.replace("logging.basicConfig(", "#")
        code = code.replace("dist.init_process_group(",
                            "logging.basicConfig(level=logging.INFO, "
                            "format='%(levelname)s %(message)s')\n"
                            "dist.init_process_group(")
        w = subprocess.Popen([torch_py, "-c", code, go + "2"],
                             stderr=subprocess.DEVNULL,
                             env=self.shim_env(OMP_NUM_THREADS="1"))
        self.children.append(w)
        self.assertEqual(w.wait(timeout=120), 0)
        self.assertEqual(self.stop(), 0)
        infos = [t for t in self.texts(pid=first) if t.startswith("INFO")]
        self.assertLess(len(infos), 60, "INFO went on after the change")
        self.assertEqual([t for t in self.texts(pid=w.pid)
                          if t.startswith("WARNING")], [])

    def test_syslog_level_change(self):
        self.serve(args=["-q"])
        go = os.path.join(self.tmp, "go")
        w = subprocess.Popen([CWRITER, "syslog", "40", go],
                             stderr=subprocess.DEVNULL, env=self.shim_env())
        self.children.append(w)
        self.wait_for(lambda: os.path.exists(go), what="the writer")
        rc, _, err = self.ctl("set-level", "WARNING")
        self.assertEqual(rc, 0, err)
        self.assertEqual(w.wait(timeout=60), 0)
        self.assertEqual(self.stop(), 0)
        infos = [t for t in self.texts() if ": info " in t]
        warns = [t for t in self.texts() if ": warn " in t]
        self.assertEqual(len(warns), 40)
        self.assertGreaterEqual(len(infos), 10)
        self.assertLess(len(infos), 20)

    def test_level_change_never_signals_a_program_of_its_own(self):
        # A C program with its own SIGURG handler, blocked in read(2):
        # its read must not fail with EINTR, as without meshlog.
        self.serve(args=["-q"])
        go = os.path.join(self.tmp, "go")
        w = subprocess.Popen([CWRITER, "urg", go], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=self.shim_env())
        self.children.append(w)
        self.wait_for(lambda: os.path.exists(go), what="the program")
        rc, _, err = self.ctl("set-level", "WARNING")
        self.assertEqual(rc, 0, err)
        time.sleep(0.5)
        out, _ = w.communicate(b"x\n", timeout=60)
        self.assertEqual(out, b"read data, 0 SIGURG\n")
        self.assertEqual(self.stop(), 0)

    def test_stream_off_and_on_keeps_the_json_log(self):
        self.serve(args=["--aggregate", "off"])
        env = self.shim_env()
        run = lambda tag: subprocess.run([CWRITER, "lines", "3", tag],
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, env=env)
        run("before")
        self.wait_for(lambda: b"before 2" in self.log_bytes())
        self.assertEqual(self.ctl("set-mode", "--stream", "off")[0], 0)
        run("quiet")
        self.wait_for(lambda: b"quiet 2" in self.log_bytes())
        self.assertEqual(self.ctl("set-mode", "--stream", "on")[0], 0)
        run("after")
        self.wait_for(lambda: b"after 2" in self.log_bytes())
        self.assertEqual(self.stop(), 0)
        self.serve_out.seek(0)
        console = self.serve_out.read().decode()
        self.assertIn("before 2", console)
        self.assertNotIn("quiet", console)
        self.assertIn("after 2", console)
        self.assertEqual(len([t for t in self.texts(stream="stdout")
                              if "quiet" in t]), 3)
        modes = events(self.records, "set_mode")
        self.assertEqual([m["mode"]["stream_to_client"] for m in modes],
                         [False, True])

    def test_aggregate_off_prints_pending_groups_at_once(self):
        self.serve(args=["--aggregate", "600"])
        subprocess.run([CWRITER, "lines", "2", "held"],
                       stdout=subprocess.DEVNULL, env=self.shim_env())
        self.wait_for(lambda: b"held 1" in self.log_bytes())
        self.serve_out.seek(0)
        self.assertNotIn(b"held", self.serve_out.read())
        self.assertEqual(self.ctl("set-mode", "--aggregate", "off")[0], 0)
        self.serve_out.seek(0)
        self.wait_for(lambda: (self.serve_out.seek(0) or True) and
                      b"held 1" in self.serve_out.read(),
                      what="pending lines on the console")
        self.assertEqual(self.stop(), 0)

    def test_status_lists_sources(self):
        self.serve(args=["-q"])
        go = os.path.join(self.tmp, "go")
        w = subprocess.Popen([PYTHON, "-c", "import time\nprint('x')\n"
                              "open(%r, 'w').close()\ntime.sleep(30)" % go],
                             stdout=subprocess.DEVNULL,
                             env=self.shim_env(RANK=4))
        self.children.append(w)
        self.wait_for(lambda: os.path.exists(go))
        self.wait_for(lambda: b'"line":"x"' in self.log_bytes())
        rc, out, _ = self.ctl("status", "--json")
        self.assertEqual(rc, 0)
        st = json.loads(out)
        self.assertEqual(st["collector"]["sources_open"], 1)
        src = st["sources"][0]
        self.assertEqual((src["pid"], src["rank"]), (w.pid, 4))
        self.assertEqual(src["streams"]["stdout"]["lines"], 1)
        self.assertEqual(src["streams"]["stdout"]["bytes"], 2)
        self.assertIn("last_activity", src["streams"]["stdout"])
        self.assertEqual(os.path.basename(src["argv"][0]),
                         os.path.basename(PYTHON))
        w.kill()
        self.assertEqual(self.stop(), 0)

    def test_status_counts_a_launchers_own_lines(self):
        # A launcher passes on its ranks' lines (mpirun does): status
        # counted each of them as its line too.
        self.serve(args=["-q"])
        go = os.path.join(self.tmp, "go")
        code = (
            "import os, subprocess, sys, time\n"
            "kids = [subprocess.Popen([sys.executable, '-c', 'for i in "
            "range(5): print(\"line\", i)'], env=dict(os.environ, "
            "RANK=str(r)), stdout=subprocess.PIPE) for r in range(2)]\n"
            "for k in kids: os.write(1, k.communicate()[0])\n"
            "print('launcher done', flush=True)\n"
            "open(%r, 'w').close()\ntime.sleep(30)\n" % go)
        w = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.DEVNULL,
                             env=self.shim_env())
        self.children.append(w)
        self.wait_for(lambda: os.path.exists(go))
        self.wait_for(lambda: b'"line":"launcher done"' in self.log_bytes())
        rc, out, _ = self.ctl("status", "--json")
        self.assertEqual(rc, 0)
        src = [s for s in json.loads(out)["sources"] if s["pid"] == w.pid]
        self.assertEqual(len(src), 1, out)
        # A stream's lines are its records (the log's seq), copies too.
        self.assertEqual((src[0]["streams"]["stdout"]["lines"],
                          src[0]["copies"]), (11, 10), out)
        rc, out, _ = self.ctl("status")
        self.assertEqual(rc, 0)
        row = [x for x in out.splitlines() if " %d " % w.pid in x]
        self.assertEqual(len(row), 1, out)
        self.assertEqual(row[0].split()[4], "1", out)
        w.kill()
        self.assertEqual(self.stop(), 0)

    def test_status_counts_remembered_line_shapes(self):
        # 200 lines of one format whose numbers keep their width: the
        # console shapes the first in full and remembers it for the rest.
        self.serve()
        code = ("for i in range(200):\n"
                "    print('step %03d loss=%.4f' % (i, 1 / (i + 1)))\n")
        w = subprocess.run([PYTHON, "-c", code], env=self.shim_env(),
                           stdout=subprocess.DEVNULL)
        self.assertEqual(w.returncode, 0)
        self.wait_for(lambda: self.log_bytes().count(b'"line":"step ') ==
                      200, what="200 lines")
        rc, out, _ = self.ctl("status", "--json")
        self.assertEqual(rc, 0)
        agg = json.loads(out)["collector"]["aggregated"]
        self.assertEqual(agg["lines"], 200)
        self.assertEqual(agg["shapes_computed"], 1)
        self.assertEqual(agg["shapes_remembered"], 199)
        self.assertEqual(self.stop(), 0)

    def test_status_larger_than_the_socket_buffer_arrives_whole(self):
        # 64 sources with ~4 KB of argv each: a reply of several hundred KB,
        # more than one send() can take; it must arrive whole.
        self.serve(args=["-q"])
        pad = "x" * 3900
        # A process that execs says its new argv: this one does not.
        ws = [subprocess.Popen([PYTHON, "-c", "import time; print('up', "
                                "flush=True); time.sleep(30)", pad],
                               stdout=subprocess.DEVNULL, env=self.shim_env())
              for _ in range(64)]
        self.children.extend(ws)
        self.wait_for(lambda: self.log_bytes().count(b'"line":"up"') >= 64,
                      what="64 sources")
        rc, out, err = self.ctl("status", "--json")
        self.assertEqual(rc, 0, err)
        self.assertGreater(len(out), 256 * 1024)
        st = json.loads(out)
        self.assertEqual(len(st["sources"]), 64)
        self.assertTrue(all(s["argv"][-1] == pad for s in st["sources"]))
        for w in ws:
            w.kill()
        self.assertEqual(self.stop(), 0)

    def test_meshlogctl_errors_and_exit_codes(self):
        rc, _, err = self.ctl("status", sock=os.path.join(self.tmp, "none"))
        self.assertEqual(rc, 3)
        self.assertIn("no collector at", err)
        self.serve()
        self.assertEqual(self.ctl("set-mode")[0], 2)
        self.assertEqual(self.ctl("frobnicate")[0], 2)
        self.assertEqual(self.ctl("set-mode", "--ranks", "1")[0], 2)
        rc, _, err = self.ctl("set-level", "LOUD")
        self.assertEqual(rc, 1)
        self.assertIn("level must be", err)
        self.assertEqual(self.ctl("set-level")[0], 2)
        # The old spelling that did two things is gone, and says where.
        rc, _, err = self.ctl("set-mode", "--level", "WARNING")
        self.assertEqual(rc, 2)
        self.assertIn("set-level LEVEL", err)
        self.assertEqual(self.stop(), 0)

    def test_meshlogctl_with_its_output_closed_or_full(self):
        # Started with stdout closed, meshlogctl's socket took descriptor
        # 1 and its output went to the collector, and it said nothing
        # and exited 0; a full disk went unnoticed too. Like ls or cat,
        # it says "write error" and fails; the collector hears no text.
        self.serve()
        subprocess.run(["echo", "a line"], env=self.shim_env(), check=True,
                       stdout=subprocess.DEVNULL, timeout=30)
        self.wait_for(lambda: b"a line" in self.log_bytes(), what="the line")
        full = open("/dev/full", "wb")
        self.addCleanup(full.close)
        for cmd in (["status"], ["logs", self.json],
                    ["logs", "-o", "json", self.json],
                    ["logs", "--follow", self.json]):
            for name, how in (("closed", {"stdout": None,
                                          "preexec_fn": lambda: os.close(1)}),
                              ("full", {"stdout": full})):
                p = subprocess.run([MESHLOGCTL, "-s", self.sock, *cmd],
                                   stderr=subprocess.PIPE, env=clean_env(),
                                   timeout=30, **how)
                self.assertEqual(p.returncode, 1, (cmd, name, p.stderr))
                self.assertIn(b"meshlogctl: write error", p.stderr,
                              (cmd, name))
        self.assertEqual(self.stop(), 0)
        self.assertEqual(self.collector_stderr().splitlines()[1:], [])

    def test_drain_request(self):
        # What the preload library sends at exit for output bound for a
        # file: malformed requests get an error and the connection stays
        # usable; a real pipe is drained into its file before the answer.
        import socket
        self.serve(args=["-q"])
        out = os.path.join(self.tmp, "out.txt")
        with open(out, "wb") as f:
            w = subprocess.Popen(["sh", "-c", "echo held; exec sleep 30"],
                                 stdout=f, env=self.shim_env())
        self.children.append(w)
        self.wait_for(lambda: b'"line":"held"' in self.log_bytes(),
                      what="the line")
        st = os.stat("/proc/%d/fd/1" % w.pid)
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.sock)
        f = s.makefile("rwb")

        def ask(req):
            f.write(req + b"\n")
            f.flush()
            return json.loads(f.readline())
        for bad in (b'{"type":"drain"}', b'{"type":"drain","pipes":[["a"]]}',
                    b'{"type":"drain","pipes":7}'):
            got = ask(bad)
            self.assertEqual(got["type"], "error", bad)
            self.assertIn("drain needs pipes", got["message"])
        self.assertEqual(ask(b'{"type":"drain","pipes":[[1,2]]}'),
                         {"type": "drained", "found": 0})
        got = ask(json.dumps({"type": "drain", "pipes": [
            [st.st_dev, st.st_ino]]}).encode())
        self.assertEqual(got, {"type": "drained", "found": 1})
        with open(out, "rb") as g:
            self.assertEqual(g.read(), b"held\n")
        # A sync (fsync(2) or fdatasync(2) on a stream whose original is
        # a file): one pipe, "data" or "all"; the answer has the errno of
        # the file's sync, or EIO for a pipe it does not know.
        pipe = [st.st_dev, st.st_ino]
        for bad in ({"sync": "yes", "pipes": [pipe]},
                    {"sync": 1, "pipes": [pipe]},
                    {"sync": "all", "pipes": [pipe, pipe]}):
            got = ask(json.dumps(dict(bad, type="drain")).encode())
            self.assertEqual(got["type"], "error", bad)
            self.assertIn("sync is", got["message"])
        for how in ("data", "all"):
            got = ask(json.dumps({"type": "drain", "pipes": [pipe],
                                  "sync": how}).encode())
            self.assertEqual(got, {"type": "drained", "found": 1,
                                   "sync_errno": 0})
        got = ask(b'{"type":"drain","pipes":[[1,2]],"sync":"all"}')
        self.assertEqual(got, {"type": "drained", "found": 0,
                               "sync_errno": errno.EIO})
        f.close()
        s.close()
        w.kill()
        w.wait()
        self.assertEqual(self.stop(), 0)

    def test_launch_mode_ends_with_a_barrier(self):
        p = self.launch([CWRITER, "lines", "3", "b"])
        self.assertEqual(p.returncode, 0)
        flushes = events(self.records, "flush")
        self.assertEqual(len(flushes), 1)
        self.assertEqual(flushes[0]["incomplete"], [])


class Finding(MeshTest):
    """meshlogctl finds collectors started the README's main way."""

    def setUp(self):
        super().setUp()
        # A directory of our own: other tests' collectors are not ours.
        self.xdg = os.path.join(self.tmp, "xdg")
        os.mkdir(self.xdg, 0o700)
        self.env = clean_env(XDG_RUNTIME_DIR=self.xdg)

    def start(self, *cmd):
        err = os.path.join(self.tmp, "err%d" % len(self.children))
        with open(err, "wb") as f:
            p = subprocess.Popen([COLLECTOR, "-j", os.path.join(
                self.tmp, "j%d" % len(self.children)), "--", *cmd],
                stdout=subprocess.DEVNULL, stderr=f, env=self.env)
        self.children.append(p)
        self.wait_for(lambda: b"control socket" in file_bytes(err),
                      what="the collector's first line")
        return p, file_bytes(err).decode()

    def ctl(self, *args):
        return subprocess.run([MESHLOGCTL, *args], capture_output=True,
                              text=True, env=self.env, timeout=60)

    def test_launch_mode_says_its_socket_and_meshlogctl_finds_it(self):
        a, said = self.start("sleep", "30")
        sock = os.path.join(self.xdg, "meshlog", "launch-%d.sock" % a.pid)
        self.assertEqual(said, "meshlog: control socket %s (meshlogctl -p "
                         "%d status)\n" % (sock, a.pid))
        # The only collector: the default. Its status, a table by default.
        r = self.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^collector pid %d on \S+ since "
                         r"\d{4}-\d\d-\d\dT[0-9:.]+Z: [01] sources, flush "
                         r"version 0, log " % a.pid)
        self.assertEqual(lines[1], "console on, aggregation 0.25 s, every "
                         "level shown")
        r = self.ctl("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["collector"]["pid"], a.pid)
        self.assertEqual(json.loads(r.stdout)["collector"]["command"],
                         ["sleep", "30"])
        # Two: meshlogctl says so instead of guessing, and -p picks.
        b, _ = self.start("sleep", "31")
        r = self.ctl("status", "--json")
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("2 collectors are running", r.stderr)
        self.assertIn("pid %d  sleep 30" % a.pid, r.stderr)
        self.assertIn("pid %d  sleep 31" % b.pid, r.stderr)
        r = self.ctl("-p", str(b.pid), "status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["collector"]["pid"], b.pid)
        r = self.ctl("-p", "1", "status")
        self.assertEqual(r.returncode, 3)
        r = self.ctl("ls")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = r.stdout.splitlines()
        self.assertEqual(rows[0].split(), ["PID", "STARTED", "SOURCES",
                                           "COMMAND", "SOCKET"])
        self.assertEqual(sorted(int(x.split()[0]) for x in rows[1:]),
                         sorted([a.pid, b.pid]))
        r = self.ctl("ls", "--json")
        self.assertEqual(sorted((c["pid"], c["command"][1]) for c in
                                json.loads(r.stdout)),
                         sorted([(a.pid, "30"), (b.pid, "31")]))
        # One gone: the other is the default again.
        a.send_signal(signal.SIGTERM)
        a.wait(timeout=30)
        r = self.ctl("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["collector"]["pid"], b.pid)
        b.send_signal(signal.SIGTERM)
        b.wait(timeout=30)

    def test_sockets_of_killed_launches_are_swept(self):
        # A launch killed before it removed its socket (SIGKILL, the
        # OOM killer) left launch-PID.sock and its lock for good: one
        # machine had 195 of them. The next launch removes those whose
        # pid is gone, whose lock is free and on which nobody listens;
        # a running launch's socket, and anything else, stays.
        run = os.path.join(self.xdg, "meshlog")
        for _ in range(2):
            # Each removes the one killed before it.
            p = subprocess.Popen([COLLECTOR, "-q", "--", "sh", "-c",
                                  "kill -KILL $PPID"], env=self.env,
                                 stderr=subprocess.DEVNULL)
            self.assertEqual(p.wait(timeout=60), -signal.SIGKILL)
            killed = "launch-%d.sock" % p.pid
            self.assertEqual(sorted(os.listdir(run)),
                             [killed, killed + ".lock"])
        with open(os.path.join(run, "launch-1.sock"), "w"):
            pass                        # not a socket: not ours to remove
        live, _ = self.start("sleep", "30")
        mine = "launch-%d.sock" % live.pid
        self.assertEqual(sorted(os.listdir(run)), sorted(
            ["launch-1.sock", mine, mine + ".lock"]))
        live.send_signal(signal.SIGTERM)
        live.wait(timeout=30)
        self.assertEqual(os.listdir(run), ["launch-1.sock"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
