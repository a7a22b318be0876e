"""Capture: Python, C stdio, C++ iostreams and shells under the real shim,
each line once in the JSON log with the right process, rank and stream."""
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CWRITER, CXXWRITER, PYTHON, SHIM, MeshTest, clean_env,
                     events, line_records)


class Capture(MeshTest):

    def test_python_print_and_logging(self):
        code = ("import logging, sys\n"
                "logging.basicConfig(level=logging.INFO,"
                " format='%(levelname)s:%(name)s:%(message)s')\n"
                "print('plain print')\n"
                "logging.info('info record')\n"
                "logging.warning('warning record')\n"
                "print('to stderr', file=sys.stderr)\n"
                "sys.stdout.write('no newline at exit')\n")
        p = self.launch([PYTHON, "-c", code])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.texts(stream="stdout"),
                         ["plain print", "no newline at exit"])
        self.assertEqual(self.texts(stream="stderr"),
                         ["INFO:root:info record",
                          "WARNING:root:warning record", "to stderr"])
        # The severity the console filters on is in the log too.
        self.assertEqual([r.get("level") for r in line_records(
            self.records, stream="stderr")], ["INFO", "WARNING", None])
        last = line_records(self.records, stream="stdout")[-1]
        self.assertTrue(last.get("partial"))
        pid = events(self.records, "source_open")[0]["pid"]
        self.assertEqual({r["pid"] for r in line_records(self.records)},
                         {pid})
        # The console view shows each line once, prefixed, on its stream.
        out = p.stdout.decode()
        self.assertEqual(out.count("plain print"), 1)
        self.assertIn("[pid %d] plain print\n" % pid, out)
        self.assertIn("[pid %d] WARNING:root:warning record\n" % pid,
                      p.stderr.decode())

    def test_c_printf_without_final_newline_or_fflush(self):
        p = self.launch([CWRITER, "nonl", "tail-without-newline"])
        self.assertEqual(p.returncode, 0)
        recs = line_records(self.records)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["line"], "tail-without-newline")
        self.assertTrue(recs[0]["partial"])
        self.assertEqual(recs[0]["stream"], "stdout")

    def test_cxx_cout_and_cerr(self):
        p = self.launch([CXXWRITER, "3"])
        self.assertEqual(p.returncode, 0)
        self.assertEqual(self.texts(stream="stdout"),
                         ["cxx line 0", "cxx line 1", "cxx line 2",
                          "cxx last without flush"])
        self.assertEqual(self.texts(stream="stderr"), ["cxx to cerr"])

    def test_bash_echo_and_exit_status(self):
        p = self.launch(["bash", "-c", "echo out1; echo err1 >&2; "
                         "printf 'a\\r\\nb\\n'; exit 7"])
        self.assertEqual(p.returncode, 7)
        self.assertEqual(self.texts(stream="stdout"), ["out1", "a", "b"])
        self.assertEqual(self.texts(stream="stderr"), ["err1"])
        closed = events(self.records, "source_closed")
        self.assertEqual(len(closed), 1)
        self.assertEqual(closed[0]["lines"], {"stdout": 3, "stderr": 1})
        self.assertEqual(closed[0]["reason"], "eof")

    def test_ranks_from_launcher_variables(self):
        script = ("for r in 0 1 2 3; do RANK=$r LOCAL_RANK=$r WORLD_SIZE=4 "
                  "%s lines 5 rank$r & done; wait" % CWRITER)
        # Each line as it comes, to see each rank's prefix.
        p = self.launch(["bash", "-c", script], args=["--aggregate", "off"])
        self.assertEqual(p.returncode, 0)
        for r in range(4):
            recs = line_records(self.records, rank=r, stream="stdout")
            self.assertEqual([x["line"] for x in recs],
                             ["rank%d %d" % (r, i) for i in range(5)])
            self.assertEqual(len(line_records(self.records, rank=r,
                                              stream="stderr")), 1)
            self.assertIn("[rank %d] rank%d 4\n" % (r, r), p.stdout.decode())
        opens = [e for e in events(self.records, "source_open")
                 if e["rank"] is not None]
        self.assertEqual(sorted(e["world_size"] for e in opens), [4] * 4)

    def test_meshlog_rank_overrides_and_slurm(self):
        p = self.launch(["bash", "-c",
                         "SLURM_PROCID=6 %s lines 1 s; "
                         "RANK=1 MESHLOG_RANK=9 %s lines 1 m; true"
                         % (CWRITER, CWRITER)])
        self.assertEqual(p.returncode, 0)
        self.assertEqual(self.texts(rank=6, stream="stdout"), ["s 0"])
        self.assertEqual(self.texts(rank=9, stream="stdout"), ["m 0"])

    def test_eight_writers_hundred_thousand_lines_each(self):
        n = 100000
        script = " ".join("%s lines %d w%d &" % (CWRITER, n, i)
                          for i in range(8)) + " wait"
        p = self.launch(["bash", "-c", script], args=["-q"], timeout=600)
        self.assertEqual(p.returncode, 0)
        # -q: no console view; the job's own output passes through to the
        # collector's stdout as it would have without meshlog: every line
        # once, each writer's in order.
        out = {}
        for line in p.stdout.decode().splitlines():
            out.setdefault(line.split()[0], []).append(line)
        self.assertEqual(sorted(out), ["w%d" % i for i in range(8)])
        for tag, lines in out.items():
            self.assertEqual(lines, ["%s %d" % (tag, k) for k in range(n)])
        by_source = {}
        for r in line_records(self.records, stream="stdout"):
            by_source.setdefault(r["source"], []).append(r["line"])
        writers = [v for v in by_source.values() if v]
        self.assertEqual(len(writers), 8)
        for lines in writers:
            tag = lines[0].split()[0]
            self.assertEqual(lines, ["%s %d" % (tag, k) for k in range(n)])
        errs = line_records(self.records, stream="stderr")
        self.assertEqual(len(errs), 8 * n // 10)

    def test_the_console_view_changes_nothing_in_the_log(self):
        # Whole lines take a loop of their own (test_emit compares it with
        # the splitter's way), for the log alone or the log and the view.
        # The same bytes, written in pieces cut anywhere, with and without
        # the view: their records, counts and last lines must agree.
        prog = r"""
import os, random, sys
rnd = random.Random(7)
kinds = [b"rank 3 step=%d loss=0.25 lr=3.00e-04", b'say "hi" \\ %d',
         "h\u00e9llo \u2713 %d".encode(), b"bad \xff\xfe %d",
         b"tab\there \x1b[31mred\x1b[0m %d", b"", b"crlf %d\r",
         b"\r 10%%\r 20%%\r done %d", b"x" * 5000 + b" %d",
         b"ERROR: failed %d", b"WARNING - slow %d", b"level=info %d",
         b"I1201 12:00:00.000000 1 x.cc:1] glog %d",
         b"Traceback (most recent call last):"]
out = bytearray()
for i in range(6000):
    k = kinds[rnd.randrange(len(kinds))]
    out += (k % i if b"%d" in k else k) + b"\n"
out += b"unfinished"
i = 0
while i < len(out):
    n = rnd.choice([1, 7, 100, 4096, 65536, 200000])
    os.write(1, out[i:i + n])
    i += n
sys.exit(3)
"""
        def records(args):
            self.json = os.path.join(self.tmp, "log%d.jsonl" % len(args))
            self.launch([PYTHON, "-c", prog], args=args,
                        env=clean_env(MESHLOG_RANK="0"))
            lines = [{k: v for k, v in r.items()
                      if k not in ("ts", "ts_ns", "pid")}
                     for r in line_records(self.records)]
            summary = events(self.records, "summary")[0]
            return lines, timeless(summary["ranks"]), \
                timeless(summary["first_failure"])

        def timeless(v):
            if isinstance(v, list):
                return [timeless(x) for x in v]
            if isinstance(v, dict):
                return {k: timeless(x) for k, x in v.items()
                        if k not in ("pid", "ended", "ts")}
            return v

        quiet = records(["-q"])
        shown = records([])
        self.assertGreater(len(quiet[0]), 6000)
        self.assertEqual(quiet[0], shown[0])
        self.assertEqual(quiet[1:], shown[1:])

    def test_serve_mode_tees_raw_output_to_a_file(self):
        self.serve()
        out = os.path.join(self.tmp, "out.txt")
        with open(out, "wb") as f:
            rc = subprocess.run([CWRITER, "lines", "20", "T"], stdout=f,
                                env=self.shim_env()).returncode
        self.assertEqual(rc, 0)
        want = "".join("T %d\n" % i for i in range(20))
        self.wait_for(lambda: os.path.getsize(out) >= len(want),
                      what="tee to the file")
        self.assertEqual(self.stop(), 0)
        with open(out) as f:
            self.assertEqual(f.read(), want)
        self.assertEqual(self.texts(stream="stdout"),
                         ["T %d" % i for i in range(20)])

    def test_default_socket_in_a_private_directory(self):
        run = os.path.join(self.tmp, "run")
        os.mkdir(run)
        env = clean_env(XDG_RUNTIME_DIR=run)
        coll = subprocess.Popen([self.collector_path(), "-j", self.json],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env)
        self.children.append(coll)
        sock = os.path.join(run, "meshlog", "collector.sock")
        self.wait_for(lambda: os.path.exists(sock), what="default socket")
        self.assertEqual(os.stat(os.path.dirname(sock)).st_mode & 0o777,
                         0o700)
        # A process finds it with no MESHLOG_SOCKET at all.
        p = subprocess.run([CWRITER, "lines", "2", "dflt"],
                           capture_output=True,
                           env=dict(env, LD_PRELOAD=SHIM))
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"dflt 0\ndflt 1\n")  # tee in serve mode
        coll.terminate()
        self.assertEqual(coll.wait(timeout=30), 0)
        self.assertIn(b"listening on " + sock.encode(), coll.stderr.read())
        self.records = __import__("harness").read_records(self.json)
        self.assertEqual(self.texts(stream="stdout"), ["dflt 0", "dflt 1"])

    def test_serve_mode_sigint_drains_and_exits(self):
        self.serve()
        out = os.path.join(self.tmp, "out.txt")
        go = os.path.join(self.tmp, "go")
        code = ("import os, time\nprint('early')\n"
                "while not os.path.exists(%r): time.sleep(0.01)\n"
                "for i in range(1000): print('late', i)\n" % go)
        with open(out, "wb") as f:
            p = subprocess.Popen([PYTHON, "-c", code], stdout=f,
                                 env=self.shim_env())
        self.children.append(p)
        self.wait_for(lambda: b'"line":"early"' in self.log_bytes(),
                      what="the early line")
        self.assertEqual(self.stop(signal.SIGINT), 0)
        self.assertEqual(self.texts(), ["early"])
        closed = events(self.records, "source_closed")
        self.assertEqual(closed[0]["reason"], "collector_exit")
        # The writer lives on; the keeper forwards what it writes next.
        self.assertIsNone(p.poll())
        open(go, "w").close()
        self.assertEqual(p.wait(timeout=30), 0)
        with open(out) as f:
            self.assertEqual(f.read(), "early\n" + "".join(
                "late %d\n" % i for i in range(1000)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
