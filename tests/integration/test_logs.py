"""meshlogctl logs: every filter and format on a known log, exactly; a real
job's log read back by rank; following a log as it grows, across a
rotation, and the running collector's own log without naming it."""
import datetime
import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, CXXWRITER, PYTHON, MeshTest,  # noqa: E402
                     clean_env, events, line_records, run_on_pty)

MESHLOGCTL = os.path.join(BUILD, "collector", "meshlogctl")
# Debian's python3-torch is /usr/bin/python3's (PYTHON may be another).
TORCH = "/usr/bin/python3"


# Preloaded into meshlogctl: the first stat(2) of $HOLD_PATH once $HOLD_ARM
# exists creates $HOLD_HELD and waits for $HOLD_RELEASE, as a reader held
# up by its own slow reader would, between two looks at the log.
HOLD_STAT = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
int
stat(const char *path, struct stat *sb)
{
	static int	 held;
	const char	*hold = getenv("HOLD_PATH");
	int		 rc, fd;

	rc = (int)syscall(SYS_newfstatat, AT_FDCWD, path, sb, 0);
	if (rc == 0 && !held && hold != NULL && strcmp(path, hold) == 0 &&
	    access(getenv("HOLD_ARM"), F_OK) == 0) {
		held = 1;
		if ((fd = open(getenv("HOLD_HELD"), O_WRONLY | O_CREAT |
		    O_CLOEXEC, 0600)) != -1)
			close(fd);
		while (access(getenv("HOLD_RELEASE"), F_OK) != 0)
			usleep(10000);
		rc = (int)syscall(SYS_newfstatat, AT_FDCWD, path, sb, 0);
	}
	return (rc);
}
"""


def torch_problem():
    r = subprocess.run([TORCH, "-c", "import torch"], capture_output=True)
    return None if r.returncode == 0 else "python3-torch is not installed"
T0 = 1796032800  # 2026-11-30T10:00:00Z


def rec(sec, us, host, pid, rank, source, stream, seq, line, level=None,
        **extra):
    """A line record as the collector writes it, keys in its order."""
    ts = "2026-11-30T10:%02d:%02d.%06dZ" % (sec // 60, sec % 60, us)
    r = ('{"ts":"%s","ts_ns":%d,"host":%s,"pid":%d,"rank":%s,"source":%d,'
         '"stream":"%s","seq":%d,"line":%s' % (
             ts, ((T0 + sec) * 1000000 + us) * 1000, json.dumps(host), pid,
             "null" if rank is None else rank, source, stream, seq,
             json.dumps(line)))
    for k, v in extra.items():
        if k != "copy_of":
            r += ',"%s":%s' % (k, json.dumps(v))
    if level:
        r += ',"level":"%s"' % level
    if "copy_of" in extra:
        r += ',"copy_of":%s' % json.dumps(extra["copy_of"],
                                          separators=(",", ":"))
    return r + "}\n"


def event(sec, host, pid, rank, source, name, **extra):
    r = {"ts": "2026-11-30T10:%02d:%02d.000000Z" % (sec // 60, sec % 60),
         "host": host, "pid": pid, "rank": rank, "source": source,
         "event": name}
    r.update(extra)
    return json.dumps(r, separators=(",", ":")) + "\n"


# Two hosts, ranks 0-3, a launcher (no rank) with a copy of rank 3's line.
SEGMENT_1 = (
    event(0, "a", 100, 0, 1, "source_open", argv=["python3", "train.py"]) +
    rec(1, 5, "a", 100, 0, 1, "stdout", 0, "step 1 loss=2.0") +
    rec(1, 9, "b", 200, 2, 3, "stdout", 0, "step 1 loss=2.2") +
    rec(2, 0, "a", 101, 1, 2, "stderr", 0, "WARNING lr is high",
        level="WARNING") +
    rec(3, 123456, "b", 201, 3, 4, "stderr", 0, "ERROR rank 3 NaN",
        level="ERROR"))
SEGMENT_2 = (
    rec(3, 200000, "a", 99, None, 9, "stderr", 0, "[1,3]<stderr>:ERROR rank "
        "3 NaN", level="ERROR", copy=True, copy_of={"source": 4, "seq": 0}) +
    rec(4, 0, "a", 99, None, 9, "stdout", 1, "launcher: rank 3 failed") +
    rec(5, 0, "b", 200, 2, 3, "stderr", 1, "Traceback (most recent call "
        "last):", level="ERROR") +
    event(6, "b", 201, 3, 4, "source_closed", reason="eof",
          exit={"code": 1}) +
    rec(7, 0, "a", 100, 0, 1, "stdout", 1, "done \u00e9 \"quoted\"",
        level="INFO"))


class Logs(MeshTest):
    def setUp(self):
        super().setUp()
        self.seg1 = os.path.join(self.tmp, "a.jsonl")
        self.seg2 = os.path.join(self.tmp, "b.jsonl")
        with open(self.seg1, "w") as f:
            f.write(SEGMENT_1)
        with open(self.seg2, "w") as f:
            f.write(SEGMENT_2)

    def watchdog(self, p, secs=120):
        """Kill p after secs: a line that never comes fails, not hangs."""
        w = threading.Timer(secs, p.kill)
        w.start()
        return w

    def logs(self, *args, files=None, rc=0, env=None):
        p = subprocess.run([MESHLOGCTL, "logs", *args,
                            *(files if files is not None else
                              [self.seg1, self.seg2])],
                           capture_output=True, timeout=60,
                           env=env or clean_env(TZ="UTC"))
        self.assertEqual(p.returncode, rc, p.stderr)
        return p.stdout.decode()

    def test_default_short_format_in_order_across_files(self):
        self.assertEqual(self.logs(), (
            "Nov 30 10:00:01 [rank 0] step 1 loss=2.0\n"
            "Nov 30 10:00:01 [rank 2] step 1 loss=2.2\n"
            "Nov 30 10:00:02 [rank 1] WARNING lr is high\n"
            "Nov 30 10:00:03 [rank 3] ERROR rank 3 NaN\n"
            "Nov 30 10:00:04 [pid 99] launcher: rank 3 failed\n"
            "Nov 30 10:00:05 [rank 2] Traceback (most recent call last):\n"
            "Nov 30 10:00:07 [rank 0] done \u00e9 \"quoted\"\n"))

    def test_formats(self):
        self.assertEqual(self.logs("-o", "cat", "-r", "0"),
                         "step 1 loss=2.0\ndone \u00e9 \"quoted\"\n")
        self.assertEqual(self.logs("-o", "short-precise", "-r", "3"),
                         "Nov 30 10:00:03.123456 [rank 3] ERROR rank 3 NaN\n")
        self.assertEqual(self.logs("-o", "json", "-r", "2"),
                         SEGMENT_1.splitlines(True)[2] +
                         SEGMENT_2.splitlines(True)[2])
        # Local time, as journalctl shows it.
        self.assertEqual(self.logs("-o", "short", "-r", "3",
                                   env=clean_env(TZ="Asia/Kolkata")),
                         "Nov 30 15:30:03 [rank 3] ERROR rank 3 NaN\n")
        # journalctl's other formats.
        self.assertEqual(self.logs("-o", "short-iso", "-r", "3",
                                   env=clean_env(TZ="Asia/Kolkata")),
                         "2026-11-30T15:30:03+05:30 [rank 3] ERROR rank 3 "
                         "NaN\n")
        self.assertEqual(self.logs("-o", "short-iso-precise", "-r", "3"),
                         "2026-11-30T10:00:03.123456+00:00 [rank 3] ERROR "
                         "rank 3 NaN\n")
        self.assertEqual(self.logs("-o", "short-unix", "-r", "3"),
                         "1796032803.123456 [rank 3] ERROR rank 3 NaN\n")
        pretty = self.logs("-o", "json-pretty", "-r", "2")
        self.assertTrue(pretty.startswith('{\n        "ts": '), pretty)
        self.assertEqual(
            [json.loads(x) for x in re.split(r"(?m)^(?=\{)", pretty) if x],
            [json.loads(x) for x in (SEGMENT_1.splitlines()[2],
                                     SEGMENT_2.splitlines()[2])])
        self.logs("-o", "verbose", rc=2)

    def test_filters(self):
        cat = ("-o", "cat")
        self.assertEqual(self.logs(*cat, "--rank", "1-2"),
                         "step 1 loss=2.2\nWARNING lr is high\n"
                         "Traceback (most recent call last):\n")
        self.assertEqual(self.logs(*cat, "--host", "b"),
                         "step 1 loss=2.2\nERROR rank 3 NaN\n"
                         "Traceback (most recent call last):\n")
        self.assertEqual(self.logs(*cat, "--pid", "99"),
                         "launcher: rank 3 failed\n")
        self.assertEqual(self.logs(*cat, "--source", "3"),
                         "step 1 loss=2.2\nTraceback (most recent call "
                         "last):\n")
        self.assertEqual(self.logs(*cat, "--stream", "stderr", "-r", "0-3"),
                         "WARNING lr is high\nERROR rank 3 NaN\n"
                         "Traceback (most recent call last):\n")
        self.assertEqual(self.logs(*cat, "-p", "warning"),
                         "WARNING lr is high\nERROR rank 3 NaN\n"
                         "Traceback (most recent call last):\n")
        self.assertEqual(self.logs(*cat, "-p", "ERROR", "-r", "3"),
                         "ERROR rank 3 NaN\n")
        self.assertEqual(self.logs(*cat, "-p", "INFO"),
                         "WARNING lr is high\nERROR rank 3 NaN\n"
                         "Traceback (most recent call last):\n"
                         "done \u00e9 \"quoted\"\n")
        self.assertEqual(self.logs(*cat, "-g", "nan"),
                         "ERROR rank 3 NaN\n")
        # A capital letter: case counts.
        self.assertEqual(self.logs(*cat, "-g", "nan|Trace"),
                         "Traceback (most recent call last):\n")
        self.assertEqual(self.logs(*cat, "-g", "NaN|Trace"),
                         "ERROR rank 3 NaN\n"
                         "Traceback (most recent call last):\n")
        self.assertEqual(self.logs(*cat, "-g", '"quoted"$'),
                         "done \u00e9 \"quoted\"\n")

    def test_times(self):
        cat = ("-o", "cat")
        self.assertEqual(self.logs(*cat, "-S", "2026-11-30T10:00:03.123456Z",
                                   "-U", "2026-11-30 10:00:05"),
                         "ERROR rank 3 NaN\nlauncher: rank 3 failed\n"
                         "Traceback (most recent call last):\n")
        # Local times: the same instant in Kolkata.
        self.assertEqual(self.logs(*cat, "--since", "2026-11-30 15:30:05",
                                   env=clean_env(TZ="Asia/Kolkata")),
                         "Traceback (most recent call last):\n"
                         "done \u00e9 \"quoted\"\n")
        self.assertEqual(self.logs(*cat, "-S", "2026-11-30T10:00:06+00:00"),
                         "done \u00e9 \"quoted\"\n")
        # Relative: the log is from 2026-11-30, long before "-5m" or now.
        self.assertEqual(self.logs(*cat, "--since", "-5m"), "")
        self.assertEqual(self.logs(*cat, "--since", "tomorrow"), "")
        # "yesterday" is the start of the day before today (UTC here):
        # what it shows depends on today's date, so it is compared with
        # that instant written out.
        day = (datetime.datetime.now(datetime.timezone.utc).date() -
               datetime.timedelta(days=1))
        self.assertEqual(self.logs(*cat, "--until", "yesterday"),
                         self.logs(*cat, "--until",
                                   day.strftime("%Y-%m-%d 00:00:00")))

    def test_last_lines_and_events_and_copies(self):
        cat = ("-o", "cat")
        self.assertEqual(self.logs(*cat, "-n", "2"),
                         "Traceback (most recent call last):\n"
                         "done \u00e9 \"quoted\"\n")
        self.assertEqual(self.logs(*cat, "-n", "2", "-r", "3"),
                         "ERROR rank 3 NaN\n")
        self.assertEqual(self.logs(*cat, "-n", "0"), "")
        self.assertEqual(self.logs("--events", "-r", "3"),
                         "Nov 30 10:00:03 [rank 3] ERROR rank 3 NaN\n"
                         "Nov 30 10:00:06 [rank 3] -- source_closed: exit "
                         "code 1\n")
        self.assertEqual(self.logs("--events", "-r", "0", "-n", "2"),
                         "Nov 30 10:00:01 [rank 0] step 1 loss=2.0\n"
                         "Nov 30 10:00:07 [rank 0] done \u00e9 \"quoted\"\n")
        self.assertEqual(self.logs("--events", "-r", "0", "-n", "3"),
                         "Nov 30 10:00:00 [rank 0] -- source_open: python3 "
                         "train.py\n"
                         "Nov 30 10:00:01 [rank 0] step 1 loss=2.0\n"
                         "Nov 30 10:00:07 [rank 0] done \u00e9 \"quoted\"\n")
        self.assertEqual(self.logs(*cat, "--copies", "-p", "ERROR"),
                         "ERROR rank 3 NaN\n[1,3]<stderr>:ERROR rank 3 NaN\n"
                         "Traceback (most recent call last):\n")

    def test_a_rank_told_late_answers_for_its_earlier_lines(self):
        # A spawned worker tells its rank when it joins the process group
        # (a "rank" event): its lines before carry rank null and are its
        # rank's too, found as well by a tail that reads its blocks from
        # the end (4 MiB each: the worker's early line is blocks and a
        # segment before its event), and not another host's of the same
        # pid and source.
        filler = "".join(rec(10, i, "a", 100, 0, 1, "stdout", i,
                             "filler %06d" % i + "." * 80)
                         for i in range(60000))
        with open(self.seg1, "w") as f:
            f.write(rec(8, 0, "a", 300, None, 5, "stdout", 0, "worker early") +
                    rec(8, 1, "b", 300, None, 5, "stdout", 0, "other host") +
                    filler)
        with open(self.seg2, "w") as f:
            f.write(event(20, "a", 300, 2, 5, "rank", world_size=4) +
                    rec(21, 0, "a", 300, 2, 5, "stdout", 1, "worker late") +
                    rec(22, 0, "b", 300, None, 5, "stdout", 1, "b later"))
        want = "worker early\nworker late\n"
        self.assertGreater(os.path.getsize(self.seg1), 5 << 20)
        self.assertEqual(self.logs("-o", "cat", "-r", "2"), want)
        self.assertEqual(self.logs("-o", "cat", "-r", "2", "-n", "5"), want)
        self.assertEqual(self.logs("-o", "cat", "-r", "1-3", "-n", "1"),
                         "worker late\n")
        # Without the event (its segment not read), it is no rank's.
        self.assertEqual(self.logs("-o", "cat", "-r", "2",
                                   files=[self.seg1]), "")

    def test_a_torn_last_line_is_not_a_record_yet(self):
        with open(self.seg2, "a") as f:
            f.write(rec(8, 0, "a", 100, 0, 1, "stdout", 2, "half")[:60])
        self.assertEqual(self.logs("-o", "cat", "-r", "0"),
                         "step 1 loss=2.0\ndone \u00e9 \"quoted\"\n")
        self.assertEqual(self.logs("-o", "cat", "-r", "0", "-n", "1"),
                         "done \u00e9 \"quoted\"\n")
        # Lines that are not records (a foreign line) are passed over.
        with open(self.seg1, "a") as f:
            f.write("not json\n")
        self.assertEqual(self.logs("-o", "cat", "-r", "0"),
                         "step 1 loss=2.0\ndone \u00e9 \"quoted\"\n")

    def test_colour_on_request(self):
        out = self.logs("--color=always", "-p", "WARNING", "-r", "1,3")
        self.assertEqual(out, "Nov 30 10:00:02 [rank 1] \033[1;33mWARNING lr "
                         "is high\033[0m\nNov 30 10:00:03 [rank 3] "
                         "\033[1;31mERROR rank 3 NaN\033[0m\n")

    def test_bad_input_is_refused_with_nothing_shown(self):
        for args in (["-p", "LOUD"], ["-S", "half past ten"], ["-r", "x"],
                     ["-n", "-3"], ["-o", "yaml"], ["-g", "("],
                     ["--stream", "stdin"], ["-S", "10:00", "-U", "09:00"],
                     ["--color=sometimes"], ["--bogus"]):
            p = subprocess.run([MESHLOGCTL, "logs", *args, self.seg2],
                               capture_output=True, env=clean_env())
            self.assertEqual(p.returncode, 2, args)
            self.assertEqual(p.stdout, b"")
            self.assertIn(b"meshlogctl logs: ", p.stderr)
        p = subprocess.run([MESHLOGCTL, "logs", os.path.join(self.tmp, "no")],
                           capture_output=True, env=clean_env())
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"No such file", p.stderr)
        p = subprocess.run([MESHLOGCTL, "logs", "--help"], capture_output=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"--follow", p.stdout)

    def test_a_file_that_is_no_log_is_said_to_be_none(self):
        # The job's console output named instead of its log: nothing
        # shown, exit 0, as if no line had answered; summary blamed a
        # job still running.
        text = os.path.join(self.tmp, "console.txt")
        with open(text, "w") as f:
            f.write("[rank 0] step 1 loss=2.0\n" * 100)
        for cmd in (["logs"], ["logs", "-n", "5"], ["logs", "-r", "0"],
                    ["logs", "-g", "loss"], ["summary"]):
            p = subprocess.run([MESHLOGCTL, *cmd, text], capture_output=True,
                               env=clean_env())
            self.assertEqual(p.returncode, 1, cmd)
            self.assertEqual(p.stdout, b"", cmd)
            self.assertIn(text.encode() + b" is no meshlog JSON log (-j)",
                          p.stderr)
        # A log just opened, still empty, is one.
        empty = os.path.join(self.tmp, "empty.jsonl")
        open(empty, "w").close()
        p = subprocess.run([MESHLOGCTL, "logs", empty], capture_output=True,
                           env=clean_env())
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, b"", b""))

    def test_a_real_jobs_log_by_rank(self):
        code = ("import os, sys\n"
                "r = int(os.environ['RANK'])\n"
                "for i in range(200):\n"
                "    print('rank %d line %d' % (r, i))\n"
                "    if i % 50 == 0:\n"
                "        print('ERROR rank %d at %d' % (r, i), "
                "file=sys.stderr)\n")
        script = ("for r in 0 1 2 3; do RANK=$r %s -c \"$0\" & done; wait"
                  % PYTHON)
        p = self.launch(["bash", "-c", script, code], args=("-q",))
        self.assertEqual(p.returncode, 0, p.stderr)
        for r in range(4):
            self.assertEqual(
                self.logs("-o", "cat", "-r", str(r), "--stream", "stdout",
                          files=[self.json]),
                "".join("rank %d line %d\n" % (r, i) for i in range(200)))
        self.assertEqual(
            self.logs("-o", "cat", "-r", "2", "-n", "3", files=[self.json]),
            "".join(r["line"] + "\n" for r in
                    line_records(self.records, rank=2)[-3:]))
        self.assertEqual(
            self.logs("-o", "cat", "-r", "2", "-n", "3", "--stream",
                      "stdout", files=[self.json]),
            "rank 2 line 197\nrank 2 line 198\nrank 2 line 199\n")
        want = [r for r in line_records(self.records)
                if r["line"].startswith("ERROR")]
        got = self.logs("-o", "json", "-p", "ERROR", files=[self.json])
        self.assertEqual([json.loads(x) for x in got.splitlines()], want)
        self.assertEqual(len(want), 16)

    def test_a_traceback_is_shown_whole_by_level(self):
        # Only a traceback's first line names a level; its frames, its
        # exception's line and a chained traceback are ERROR records
        # too, so that -p shows what went wrong. A caught one printed
        # with traceback.print_exc() ends at its exception: the plain
        # lines after it keep no level. The summary still counts an
        # error for each "Traceback" line only (three here: the chained
        # one has two).
        code = ("import sys, traceback, logging\n"
                "print('starting')\n"
                "logging.warning('about to fail')\n"
                "try:\n"
                "    {}['k']\n"
                "except KeyError:\n"
                "    traceback.print_exc()\n"
                "print('after it, plain', file=sys.stderr)\n"
                "print('    indented, plain', file=sys.stderr)\n"
                "def f():\n"
                "    raise KeyError('missing')\n"
                "try:\n"
                "    f()\n"
                "except KeyError:\n"
                "    raise RuntimeError('CUDA error: out of memory')\n")
        plain = subprocess.run([PYTHON, "-c", code], capture_output=True,
                               env=clean_env())
        self.assertEqual(plain.returncode, 1)
        err = plain.stderr.decode().splitlines()
        self.assertIn("During handling of the above exception, another "
                      "exception occurred:", err)
        p = self.launch([PYTHON, "-c", code], args=("-q",))
        self.assertEqual(p.returncode, 1, p.stderr)
        want = [x for x in err if x and "plain" not in x and
                not x.startswith("WARNING")]
        self.assertEqual(want[-1], "RuntimeError: CUDA error: out of "
                         "memory")
        self.assertEqual(
            self.logs("-o", "cat", "-p", "ERROR", files=[self.json]),
            "".join(x + "\n" for x in want))
        self.assertEqual(
            self.logs("-o", "cat", "-p", "WARNING", "-n", str(len(want) + 1),
                      files=[self.json]).splitlines()[0],
            "WARNING:root:about to fail")
        for r in line_records(self.records):
            if "plain" in r["line"] or r["line"] == "starting":
                self.assertNotIn("level", r)
        # Two errors: the printed traceback, and the exception raised
        # while handling another (one block, its second traceback too).
        summary = events(self.records, "summary")[0]
        self.assertEqual(summary["errors"], 2)

    def last_words(self, cmd, env=None):
        """cmd's stderr lines run plainly, its returncode, and its lines
        of CRITICAL and above in the log when run under the collector."""
        plain = subprocess.run(cmd, capture_output=True, env=env or
                               clean_env())
        self.json = os.path.join(self.tmp, "%d.jsonl" % len(os.listdir(
            self.tmp)))
        p = self.launch(cmd, args=("-q",), env=env)
        self.assertEqual(p.returncode, plain.returncode, p.stderr)
        got = self.logs("-o", "cat", "-p", "CRITICAL", files=[self.json])
        return plain.stderr.decode().splitlines(), got.splitlines()

    def test_a_runtimes_last_words_are_shown_whole_by_level(self):
        # What a runtime writes as it dies names no level, nor do the
        # lines after it: each is CRITICAL, so that -p shows how a rank
        # died. A C++ program dies of an uncaught exception (libstdc++'s
        # terminate handler, then SIGABRT).
        err, got = self.last_words([CXXWRITER, "throw"])
        self.assertEqual(err, ["terminate called after throwing an "
                               "instance of 'std::runtime_error'",
                               "  what():  cxx boom"])
        self.assertEqual(got, err)
        self.assertNotIn("level", line_records(self.records)[0])
        # CPython's faulthandler on a segmentation fault: the thread's
        # frames under it, blank lines between (no level of their own).
        code = ("import ctypes, faulthandler; faulthandler.enable(); "
                "print('before', flush=True); ctypes.string_at(0)")
        err, got = self.last_words([PYTHON, "-c", code])
        self.assertEqual(err[0], "Fatal Python error: Segmentation fault")
        self.assertTrue(any(x.startswith("  File ") for x in err), err)
        self.assertEqual(len(got), len([x for x in err if x]), (got, err))
        self.assertEqual(got[0], err[0])
        self.assertEqual(got[-1].split(" line ")[0],
                         [x for x in err if x][-1].split(" line ")[0])

    @unittest.skipIf(torch_problem(), torch_problem())
    def test_a_python_exceptions_cxx_frames_are_its_traceback(self):
        # PyTorch raises C++ errors as Python exceptions whose message
        # ends with the C++ frames (TORCH_SHOW_CPP_STACKTRACES=1): they
        # are the traceback's, ERROR like its first line.
        code = "import torch\ntorch.ones(2) @ torch.ones(3)\n"
        env = clean_env(TORCH_SHOW_CPP_STACKTRACES="1")
        plain = subprocess.run([TORCH, "-c", code], capture_output=True,
                               env=env)
        # The message ends with a newline: a blank line, no level.
        err = plain.stderr.decode().splitlines()
        self.assertEqual(err.pop(), "")
        self.assertEqual(plain.returncode, 1, err)
        self.assertTrue(err[3].startswith("Exception raised from "), err)
        self.assertTrue(err[-1].startswith("frame #"), err)
        p = self.launch([TORCH, "-c", code], args=("-q",), env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        got = self.logs("-o", "cat", "-p", "ERROR", files=[self.json])
        # The same lines; the libraries' addresses differ (ASLR).
        self.assertEqual(re.sub("0x[0-9a-f]+", "0x", got).splitlines(),
                         [re.sub("0x[0-9a-f]+", "0x", x) for x in err])

    def test_runs_of_an_appended_log(self):
        # -j appends: three runs of a two-rank job into one log. Each
        # collector numbers its sources from 1, so --source 1 and -r 0
        # matched a line of every run; -b picks one, as journalctl's
        # -b picks a boot.
        code = ("import os, subprocess, sys\n"
                "run = sys.argv[1]\n"
                "ks = [subprocess.Popen([sys.executable, '-c', "
                "'print(\"rank\", %d, \"of run\", %s)' % (r, run)], "
                "env=dict(os.environ, RANK=str(r))) for r in range(2)]\n"
                "for k in ks: k.wait()\n"
                "print('launcher of run', run)\n")
        for run in (1, 2, 3):
            p = self.launch_raw(["-s", os.path.join(self.tmp, "r.sock"),
                                 "-j", self.json, "-q", "--", PYTHON, "-c",
                                 code, str(run)])
            self.assertEqual(p.returncode, 0, p.stderr)

        def cat(*args):
            return sorted(self.logs("-o", "cat", *args,
                                    files=[self.json]).splitlines())

        def run(n):
            return sorted(["rank 0 of run %d" % n, "rank 1 of run %d" % n,
                           "launcher of run %d" % n])

        self.assertEqual(cat("-r", "0"), ["rank 0 of run %d" % n
                                          for n in (1, 2, 3)])
        # Options after FILE, as journalctl takes them ("-o" and "cat"
        # were read as files).
        p = subprocess.run([MESHLOGCTL, "logs", self.json, "-o", "cat",
                            "-b", "-1", "-r", "1"], capture_output=True,
                           env=clean_env())
        self.assertEqual((p.returncode, p.stdout), (0, b"rank 1 of run 2\n"),
                         p.stderr)
        # "-b FILE": an argument that is no number is a FILE.
        self.assertEqual(cat("-b"), run(3))
        self.assertEqual(cat("-b", "0"), run(3))
        self.assertEqual(cat("-b", "-1"), run(2))
        self.assertEqual(cat("--run=-2"), run(1))
        self.assertEqual(cat("-b", "1"), run(1))
        self.assertEqual(cat("-b2"), run(2))
        self.assertEqual(cat("-b", "-1", "-r", "1"), ["rank 1 of run 2"])
        self.assertEqual(cat("-b", "1", "--source", "1"),
                         ["launcher of run 1"])
        # A source's id names one in its run: the last, unless -b says.
        self.assertEqual(cat("--source", "1"), ["launcher of run 3"])
        # -n looks for the last answers inside the run only.
        self.assertEqual(cat("-b", "-1", "-n", "1", "-r", "0"),
                         ["rank 0 of run 2"])
        listed = self.logs("--list-runs", files=[self.json]).splitlines()
        self.assertEqual(len(listed), 4, listed)
        self.assertEqual(listed[0].split()[:5], ["IDX", "FIRST", "RECORD",
                                                 "LAST", "RECORD"])
        for idx, row in zip((-2, -1, 0), listed[1:]):
            self.assertEqual(row.split()[0], str(idx), listed)
            self.assertRegex(row, r"\s3\s+%s -c " % re.escape(PYTHON))
        out = self.logs("-b", "4", files=[self.json], rc=1)
        self.assertEqual(out, "")
        self.logs("-b", "-1", "-f", files=[self.json], rc=2)

    def test_a_run_that_began_in_one_segment_and_ended_in_the_next(self):
        # Run 2 begins in run.1.jsonl and goes on in the log; a taken
        # back process (from_keeper) begins none.
        head = ('{"ts":"2026-11-30T10:00:05.000000Z","event":"log_rotated",'
                '"segment":1,"previous":"log.1.jsonl"}\n')
        with open(os.path.join(self.tmp, "log.1.jsonl"), "w") as f:
            f.write(event(0, "h", 10, 0, 1, "source_open", argv=["one"]) +
                    rec(1, 0, "h", 10, 0, 1, "stdout", 0, "run 1 a") +
                    event(2, "h", 10, 0, 1, "source_open", argv=["one"],
                          from_keeper=True) +
                    rec(3, 0, "h", 10, 0, 1, "stdout", 1, "run 1 b") +
                    event(4, "h", 20, 0, 1, "source_open", argv=["two"]) +
                    rec(4, 0, "h", 20, 0, 1, "stdout", 0, "run 2 a"))
        with open(self.json, "w") as f:
            f.write(head + rec(6, 0, "h", 20, 0, 1, "stdout", 1, "run 2 b") +
                    event(7, "h", 21, 1, 2, "source_open", argv=["two"]) +
                    rec(8, 0, "h", 21, 1, 2, "stdout", 0, "run 2 c"))

        def cat(*args):
            return self.logs("-o", "cat", *args, files=[self.json])

        self.assertEqual(cat("-b", "1"), "run 1 a\nrun 1 b\n")
        self.assertEqual(cat("-b"), "run 2 a\nrun 2 b\nrun 2 c\n")
        self.assertEqual(cat("-b", "-n", "2"), "run 2 b\nrun 2 c\n")
        self.assertEqual(cat("-b", "-1", "-n", "1"), "run 1 b\n")
        listed = self.logs("--list-runs", files=[self.json]).splitlines()
        self.assertEqual([r.split()[0] for r in listed[1:]], ["-1", "0"])
        self.assertEqual([r.split()[-2:] for r in listed[1:]],
                         [["1", "one"], ["2", "two"]])
        self.assertIn("10:00:00 UTC  Mon 2026-11-30 10:00:03 UTC",
                      listed[1])

    def test_a_programs_escape_sequences_never_reach_the_readers_terminal(
            self):
        # A line that retitles the terminal, clears the screen and hides
        # the cursor went to the terminal of whoever read the log (root,
        # reading a user's job). There it now reads as the console view
        # shows it; colours stay; -a, a pipe or a file get the bytes.
        line = ("\x1b]0;pwned\x07title \x1b[31mred\x1b[0m \x1b[2Jclear"
                "\x1b[?25l bell\x07")
        with open(self.json, "w") as f:
            f.write(rec(1, 0, "h", 7, 0, 1, "stdout", 0, line))
        shown = ("\\x1b]0;pwned\\x07title \x1b[31mred\x1b[0m "
                 "\\x1b[2Jclear bell\\x07")
        for fmt in ("cat", "short"):
            rc, out = run_on_pty([MESHLOGCTL, "logs", "-o", fmt,
                                  "--color=never", self.json],
                                 clean_env(TZ="UTC"))
            self.assertEqual(rc, 0, out)
            self.assertTrue(out.endswith(shown + "\n"), repr(out))
            self.assertNotIn("\x1b]", out)
            rc, out = run_on_pty([MESHLOGCTL, "logs", "-o", fmt, "-a",
                                  self.json], clean_env(TZ="UTC"))
            self.assertTrue(out.endswith(line + "\n"), repr(out))
        self.assertEqual(self.logs("-o", "cat", files=[self.json]),
                         line + "\n")

    def test_follow_across_a_rotation(self):
        path = os.path.join(self.tmp, "live.jsonl")
        with open(path, "w") as f:
            f.write(rec(0, 0, "a", 1, 0, 1, "stdout", 0, "before"))
        p = subprocess.Popen([MESHLOGCTL, "logs", "-f", "-o", "cat", path],
                             stdout=subprocess.PIPE, env=clean_env())
        watchdog = self.watchdog(p)
        try:
            self.assertEqual(p.stdout.readline(), b"before\n")
            with open(path, "a") as f:
                f.write(rec(1, 0, "a", 1, 0, 1, "stdout", 1, "grown"))
                f.write(rec(1, 0, "a", 1, 1, 2, "stdout", 0, "rank 1's"))
            self.assertEqual(p.stdout.readline(), b"grown\n")
            self.assertEqual(p.stdout.readline(), b"rank 1's\n")
            # logrotate: the file moves, the writer ends it, a new one starts.
            with open(path, "a") as f:
                os.rename(path, path + ".1")
                with open(path, "w") as g:
                    g.write(rec(4, 0, "a", 1, 0, 1, "stdout", 4, "new file"))
                time.sleep(0.1)
                f.write(rec(3, 0, "a", 1, 0, 1, "stdout", 3, "last of old"))
            # Both, whatever the order: they are in two files now.
            self.assertEqual(sorted([p.stdout.readline(),
                                     p.stdout.readline()]),
                             [b"last of old\n", b"new file\n"])
            with open(path, "a") as g:
                g.write(rec(5, 0, "a", 1, 0, 1, "stdout", 5, "newer"))
            self.assertEqual(p.stdout.readline(), b"newer\n")
        finally:
            watchdog.cancel()
            p.kill()
            p.wait()

    def test_follow_a_record_written_in_pieces(self):
        path = os.path.join(self.tmp, "live.jsonl")
        open(path, "w").close()
        p = subprocess.Popen([MESHLOGCTL, "logs", "-f", "-o", "cat", path],
                             stdout=subprocess.PIPE, env=clean_env())
        watchdog = self.watchdog(p)
        try:
            whole = rec(0, 0, "a", 1, 0, 1, "stdout", 0, "in two pieces")
            with open(path, "a") as f:
                f.write(whole[:50])
                f.flush()
                time.sleep(0.5)
                f.write(whole[50:])
            self.assertEqual(p.stdout.readline(), b"in two pieces\n")
        finally:
            watchdog.cancel()
            p.kill()
            p.wait()

    def test_the_running_collectors_log_followed(self):
        self.serve()
        p = subprocess.Popen([MESHLOGCTL, "-s", self.sock, "logs", "-f", "-o",
                              "cat", "-r", "5"], stdout=subprocess.PIPE,
                             env=clean_env())
        watchdog = self.watchdog(p)
        try:
            time.sleep(0.5)
            subprocess.run([PYTHON, "-c", "print('from rank 5')"],
                           env=self.shim_env(RANK="5"), check=True,
                           capture_output=True)
            subprocess.run([PYTHON, "-c", "print('from rank 6')"],
                           env=self.shim_env(RANK="6"), check=True,
                           capture_output=True)
            subprocess.run([PYTHON, "-c", "print('again rank 5')"],
                           env=self.shim_env(RANK="5"), check=True,
                           capture_output=True)
            self.assertEqual(p.stdout.readline(), b"from rank 5\n")
            self.assertEqual(p.stdout.readline(), b"again rank 5\n")
        finally:
            watchdog.cancel()
            p.kill()
            p.wait()
        # Without FILE, -s names the collector whose log is read.
        out = subprocess.run([MESHLOGCTL, "-s", self.sock, "logs", "-o",
                              "cat"], capture_output=True, env=clean_env())
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, b"from rank 5\nfrom rank 6\n"
                         b"again rank 5\n")
        self.stop()

    def rotated_job(self, n, keep=None, follow=False):
        """A job writing n numbered lines into a log rotated at 1 MiB."""
        code = ("import sys\n"
                "for i in range(%d):\n"
                "    print('line %%07d' %% i + ' padding' * 8)\n" % n)
        args = ["-s", os.path.join(self.tmp, "l.sock"), "-j", self.json,
                "-q", "--json-max-size", "1M"]
        if keep:
            args += ["--json-keep", str(keep)]
        # Not launch(): the harness's checks read one file, not segments.
        return self.launch_raw(args + ["--", PYTHON, "-c", code])

    def segments(self):
        return sorted(f for f in os.listdir(self.tmp)
                      if f.startswith("log.") and f != "log.jsonl")

    def test_rotation_loses_and_repeats_nothing(self):
        n = 40000
        p = self.rotated_job(n, keep=1000)
        self.assertEqual(p.returncode, 0, p.stderr)
        segs = self.segments()
        self.assertGreaterEqual(len(segs), 3, segs)
        for s in segs:
            self.assertRegex(s, r"^log\.\d+\.jsonl\.zst$")
            z = subprocess.run(["zstd", "-q", "-t", os.path.join(self.tmp, s)],
                               capture_output=True)
            self.assertEqual(z.returncode, 0, z.stderr)
        # Read in order, transparently: every line once, in order.
        got = self.logs("-o", "cat", files=[self.json]).splitlines()
        self.assertEqual(got, ["line %07d" % i + " padding" * 8
                               for i in range(n)])
        # Each segment holds whole records, numbered on from the last.
        seqs = []
        for s in reversed(segs):
            raw = subprocess.run(["zstd", "-q", "-d", "-c",
                                  os.path.join(self.tmp, s)],
                                 capture_output=True, check=True).stdout
            self.assertTrue(raw.endswith(b"\n"))
            seqs += [json.loads(x).get("seq") for x in raw.splitlines()]
        seqs = [s for s in seqs if s is not None]
        self.assertEqual(seqs, list(range(len(seqs))))
        self.assertEqual(self.logs("-o", "cat", "-n", "1", files=[self.json]),
                         "line %07d" % (n - 1) + " padding" * 8 + "\n")

    def test_a_log_named_with_its_segments_is_read_once(self):
        n = 30000
        p = self.rotated_job(n, keep=1000)
        self.assertEqual(p.returncode, 0, p.stderr)
        segs = [os.path.join(self.tmp, s) for s in self.segments()]
        self.assertGreaterEqual(len(segs), 2, segs)
        want = ["line %07d" % i + " padding" * 8 for i in range(n)]
        # As a shell's glob names them (log.1 .. log.N, then the log),
        # newest segment first; the log twice; a segment after its log.
        for files in (segs + [self.json], [self.json, self.json],
                      [self.json, segs[0]]):
            got = self.logs("-o", "cat", files=files).splitlines()
            self.assertEqual(got, want, files)
        # The segments alone, in glob order: each once, oldest first,
        # all but the lines still in the log (none, when it rotated
        # right after the last one).
        with open(self.json, "rb") as f:
            in_log = f.read().count(b'"line":"line ')
        got = self.logs("-o", "cat", files=segs + segs[:1]).splitlines()
        self.assertEqual(got, want[:n - in_log])

    def test_no_rotation_as_the_collector_ends(self):
        # The summary, written as the collector ends, took the log past
        # --json-max-size: it rotated and left an empty log.jsonl, whose
        # segment record was never written; a follower waited for it
        # forever and the next run numbered its segments from 1 again.
        code = ("for i in range(5000):\n"
                "    print('line %07d' % i + ' padding' * 20)\n")
        first = os.path.join(self.tmp, "first.jsonl")
        p = self.launch_raw(["-s", os.path.join(self.tmp, "f.sock"), "-j",
                             first, "-q", "--", PYTHON, "-c", code])
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(first, "rb") as f:
            whole = f.read()
        last = whole.rstrip(b"\n").rsplit(b"\n", 1)[1]
        self.assertIn(b'"event":"summary"', last)
        self.assertGreater(len(whole), 1 << 20)
        # Past the size only with the summary.
        size = len(whole) - len(last) // 2
        p = self.launch_raw(["-s", os.path.join(self.tmp, "l.sock"), "-j",
                             self.json, "-q", "--json-max-size", str(size),
                             "--", PYTHON, "-c", code])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.segments(), [])
        with open(self.json, "rb") as f:
            self.assertIn(b'"event":"summary"', f.read())

    def test_follow_shows_segments_before_an_empty_new_file(self):
        # A log rotated twice while -f read its first file, and the new
        # log.jsonl still empty (its log_rotated record not written: a
        # collector stopped, or one before b5310d0 that rotated as it
        # ended): the follower waited for that record and never showed
        # the segments in between.
        def recs(seg, word):
            head = ('{"ts":"2026-11-30T10:00:00.000000Z","event":'
                    '"log_rotated","segment":%d,"previous":"log.1.jsonl"}\n'
                    % seg) if seg else ""
            return head + "".join(
                rec(1, i, "h", 7, 0, 1, "stdout", i, "%s %d" % (word, i))
                for i in range(3))

        with open(self.json, "w") as f:
            f.write(recs(0, "first"))
        p = subprocess.Popen([MESHLOGCTL, "logs", "-f", "-o", "cat",
                              self.json], stdout=subprocess.PIPE,
                             env=clean_env())
        watchdog = self.watchdog(p, 30)
        try:
            for i in range(3):
                self.assertEqual(p.stdout.readline(), b"first %d\n" % i)
            os.rename(self.json, os.path.join(self.tmp, "log.2.jsonl"))
            with open(os.path.join(self.tmp, "log.1.jsonl"), "w") as f:
                f.write(recs(1, "second"))
            open(self.json, "w").close()
            for i in range(3):
                self.assertEqual(p.stdout.readline(), b"second %d\n" % i)
            # Its record comes: the new file is read from its start.
            with open(self.json, "w") as f:
                f.write(recs(2, "third"))
            for i in range(3):
                self.assertEqual(p.stdout.readline(), b"third %d\n" % i)
        finally:
            watchdog.cancel()
            p.kill()
            p.wait()

    def test_rotation_keeps_n_segments(self):
        p = self.rotated_job(40000, keep=2)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.segments(), ["log.1.jsonl.zst",
                                           "log.2.jsonl.zst"])
        got = self.logs("-o", "cat", files=[self.json]).splitlines()
        self.assertEqual(got[-1], "line %07d" % 39999 + " padding" * 8)
        self.assertLess(len(got), 40000)

    def test_follow_across_the_collectors_rotation(self):
        n = 30000
        open(self.json, "w").close()    # the collector appends to it
        p = subprocess.Popen([MESHLOGCTL, "logs", "-f", "-o", "cat",
                              self.json], stdout=subprocess.PIPE,
                             env=clean_env())
        watchdog = self.watchdog(p)
        try:
            time.sleep(0.3)
            job = self.rotated_job(n, keep=1000)
            self.assertEqual(job.returncode, 0, job.stderr)
            self.assertGreaterEqual(len(self.segments()), 2)
            for i in range(n):
                self.assertEqual(p.stdout.readline().decode(),
                                 "line %07d" % i + " padding" * 8 + "\n")
        finally:
            watchdog.cancel()
            p.kill()
            p.wait()

    def test_follow_held_up_across_rotations_keeps_the_order(self):
        """-f drained the log, then was held up (by a slow reader of its
        own output) while the collector rotated it several times: the
        rest of the file it was reading comes before the segments."""
        lib = os.path.join(self.tmp, "hold.so")
        src = os.path.join(self.tmp, "hold.c")
        with open(src, "w") as f:
            f.write(HOLD_STAT)
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", lib, src],
                       check=True)
        first = self.launch_raw(["-s", os.path.join(self.tmp, "f.sock"),
                                 "-j", self.json, "-q", "--", "echo",
                                 "first"])
        self.assertEqual(first.returncode, 0, first.stderr)
        arm, held, release = (os.path.join(self.tmp, "arm"),
                              os.path.join(self.tmp, "held"),
                              os.path.join(self.tmp, "release"))
        p = subprocess.Popen([MESHLOGCTL, "logs", "-f", "-o", "cat",
                              self.json], stdout=subprocess.PIPE,
                             env=clean_env(LD_PRELOAD=lib,
                                           HOLD_PATH=self.json,
                                           HOLD_ARM=arm, HOLD_HELD=held,
                                           HOLD_RELEASE=release))
        watchdog = self.watchdog(p)
        try:
            self.assertEqual(p.stdout.readline(), b"first\n")
            open(arm, "w").close()
            for _ in range(1000):
                if os.path.exists(held):
                    break
                time.sleep(0.01)
            self.assertTrue(os.path.exists(held))
            n = 20000
            job = self.rotated_job(n, keep=1000)
            self.assertEqual(job.returncode, 0, job.stderr)
            self.assertGreaterEqual(len(self.segments()), 2)
            open(release, "w").close()
            for i in range(n):
                self.assertEqual(p.stdout.readline().decode(),
                                 "line %07d" % i + " padding" * 8 + "\n")
        finally:
            watchdog.cancel()
            p.kill()
            p.wait()

    def test_rotation_options_are_checked(self):
        for args in (["--json-max-size", "10K"], ["--json-max-size", "x"],
                     ["--json-keep", "0"], ["--json-keep", "1001"],
                     ["--json-max-size", "99999999999999G"]):
            p = self.launch_raw(["-j", self.json, *args, "--", "true"])
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(b"json-", p.stderr)
        p = self.launch_raw(["--json-keep", "3", "--", "true"])
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"need -j", p.stderr)

    def test_no_collector_and_no_file(self):
        env = clean_env(MESHLOG_SOCKET=os.path.join(self.tmp, "none.sock"))
        p = subprocess.run([MESHLOGCTL, "logs"], capture_output=True, env=env)
        self.assertEqual(p.returncode, 3, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
