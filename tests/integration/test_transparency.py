"""Transparency: without a collector the shim changes nothing but one notice
line; with one, isatty and the window size answer as the original
destination, and the process gets no thread and no extra descriptor."""
import errno
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, CWRITER, CXXWRITER, PYTHON, SHIM, MeshTest,
                     clean_env, line_records, read_records, run_on_pty,
                     type_on_pty, wait_serving)

PROBE = ("import os, sys, shutil\n"
         "print('isatty', os.isatty(1), sys.stdout.isatty(), os.isatty(2))\n"
         "print('size', shutil.get_terminal_size((1, 1)))\n"
         "print('threads', len(os.listdir('/proc/self/task')))\n"
         "print('fds', sorted(int(f) for f in os.listdir('/proc/self/fd')))\n"
         "print('marker', os.environ.get('MESHLOG_STREAM'))\n"
         "st = os.fstat(1)\n"
         "print('fd1', '%d:%d' % (st.st_dev, st.st_ino))\n")


class NoCollector(MeshTest):

    def env(self, **extra):
        return clean_env(LD_PRELOAD=SHIM, MESHLOG_SOCKET=os.path.join(
            self.tmp, "nobody.sock"), **extra)

    def test_output_and_status_unchanged_and_no_notice_in_pipes(self):
        # A pipe or file is program data (a launcher's, the job's own):
        # not a place for meshlog's words.
        for cmd in ([CWRITER, "lines", "30", "n"], [CXXWRITER, "2"],
                    ["bash", "-c", "echo a; echo b >&2; exit 4"]):
            plain = subprocess.run(cmd, capture_output=True, env=clean_env())
            shim = subprocess.run(cmd, capture_output=True, env=self.env())
            self.assertEqual((shim.stdout, shim.stderr, shim.returncode),
                             (plain.stdout, plain.stderr, plain.returncode))

    def test_one_notice_on_the_terminal_naming_socket_and_cause(self):
        cmd = ["bash", "-c", "echo a; echo b >&2; exit 4"]
        rc, out = run_on_pty(cmd, self.env())
        plain_rc, plain = run_on_pty(cmd, clean_env())
        self.assertEqual(rc, plain_rc)
        notice, _, rest = out.partition("\n")
        self.assertIn("meshlog: output not captured: no collector socket "
                      "(%s;" % os.path.join(self.tmp, "nobody.sock"), notice)
        self.assertEqual(rest, plain)

    def test_quiet_means_no_notice(self):
        cmd = [CWRITER, "lines", "3", "q"]
        plain = subprocess.run(cmd, capture_output=True, env=clean_env())
        shim = subprocess.run(cmd, capture_output=True,
                              env=self.env(MESHLOG_QUIET=1))
        self.assertEqual((shim.stdout, shim.stderr, shim.returncode),
                         (plain.stdout, plain.stderr, plain.returncode))

    def test_one_notice_for_a_whole_process_tree(self):
        rc, out = run_on_pty(["bash", "-c", "for i in 1 2 3 4; do %s lines 1"
                              " t; done; python3 -c 'print(1)'" % CWRITER],
                             self.env())
        self.assertEqual(rc, 0)
        self.assertEqual(out.count("meshlog:"), 1)
        self.assertEqual(out.count("t 0\n"), 4)
        # A stderr that is not the terminal says nothing, and its
        # descendants say nothing either, even on the terminal.
        env = self.env()
        del env["LD_PRELOAD"]
        rc, out = run_on_pty(["bash", "-c", "LD_PRELOAD=%s bash -c 'exec 2>&3;"
                              " bash -c \"echo child >&2\"' 3>&2 2>/dev/null"
                              % SHIM], env)
        self.assertEqual((rc, out), (0, "child\n"))

    def test_one_notice_for_processes_started_side_by_side(self):
        # A shell that is not preloaded starts three preloaded processes,
        # two at once: none inherits another's quiet, yet the job says it
        # once. The next job on another terminal says it again.
        run = os.path.join(self.tmp, "run")
        os.mkdir(run, 0o700)
        env = self.env(XDG_RUNTIME_DIR=run)
        del env["LD_PRELOAD"]
        pre = "LD_PRELOAD=%s %s lines 1" % (SHIM, CWRITER)
        cmd = ["bash", "-c", "%s a & %s b & wait; %s c" % (pre, pre, pre)]
        for _ in range(2):
            rc, out = run_on_pty(cmd, env)
            self.assertEqual(rc, 0)
            self.assertEqual(out.count("meshlog: output not captured"), 1,
                             out)
            self.assertEqual(sorted(l for l in out.splitlines()
                                    if " 0" in l and "err" not in l),
                             ["a 0", "b 0", "c 0"])
        # The marks of jobs that are gone do not pile up.
        self.assertLessEqual(len(os.listdir(run)), 1, os.listdir(run))

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                         "needs root and setpriv to switch uid")
    def test_no_notice_in_a_process_that_switched_uid(self):
        # The job's collector refuses a process of another user (it cannot
        # even reach the socket); that process's stderr is not ours to
        # write in.
        self.serve()
        cmd = ["setpriv", "--reuid=65534", "--regid=65534",
               "--clear-groups", "env", "LD_PRELOAD=" + SHIM,
               "MESHLOG_SOCKET=" + self.sock, CWRITER, "lines", "1", "u"]
        p = subprocess.run(cmd, capture_output=True, timeout=30,
                           env=clean_env())
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"u 0\n")
        self.assertEqual(p.stderr, b"u err 0\n")
        self.assertEqual(self.stop(), 0)

    def test_disabled(self):
        self.serve()
        p = subprocess.run([CWRITER, "lines", "2", "d"], capture_output=True,
                           env=self.shim_env(MESHLOG_DISABLE=1))
        self.assertEqual(p.stdout, b"d 0\nd 1\n")
        self.assertEqual(self.stop(), 0)
        self.assertEqual(self.texts(), [])


class WithCollector(MeshTest):

    def probe(self, text):
        return dict(l.split(" ", 1) for l in text.splitlines()
                    if l.split(" ", 1)[0] in ("isatty", "size", "threads",
                                              "fds", "marker", "fd1"))

    def test_terminal_stays_a_terminal(self):
        self.serve()
        rc, _ = run_on_pty([PYTHON, "-c", PROBE], self.shim_env())
        self.assertEqual(rc, 0)
        self.assertEqual(self.stop(), 0)
        got = self.probe("\n".join(self.texts(stream="stdout")))
        self.assertEqual(got["isatty"], "True True True")
        self.assertEqual(got["size"], "os.terminal_size(columns=97, lines=31)")
        # Captured (the marker names the pipe), yet fstat(1) answers as
        # the terminal (test_a_terminal_told_by_its_file_type...).
        self.assertRegex(got["marker"], r"^\d+:\d+,\d+:\d+$")
        self.assertNotEqual(got["marker"].split(",")[0], got["fd1"])

    def test_a_terminal_told_by_its_file_type_or_buffering(self):
        # GNU grep's --color=auto tells a terminal by fstat(1) (a
        # character device), not by isatty: on a terminal under the shim
        # it saw the pipe and printed no colour. And with
        # PYTHONUNBUFFERED=1 (write-through), Python's stdout is not
        # line-buffered; the hook made it so.
        self.serve()
        probe = ("import os, stat, sys\n"
                 "st = os.fstat(1)\n"
                 "print('fstat', stat.S_ISCHR(st.st_mode), st.st_rdev =="
                 " os.stat(os.ttyname(1)).st_rdev, stat.S_ISCHR("
                 "os.fstat(2).st_mode))\n"
                 "print('buffering', sys.stdout.line_buffering,"
                 " sys.stdout.write_through)\n")
        # Programs built before glibc 2.33 (conda's Python) call
        # __fxstat64, not fstat.
        old = ("import ctypes, stat\n"
               "libc = ctypes.CDLL(None)\n"
               "for name, args in (('__fxstat64', (1, 1)),"
               " ('fstat64', (1,))):\n"
               "    buf = ctypes.create_string_buffer(256)\n"
               "    rc = getattr(libc, name)(*args, buf)\n"
               "    mode = int.from_bytes(buf.raw[24:28], 'little')\n"
               "    print(name, rc, stat.S_ISCHR(mode))\n")
        cases = (["sh", "-c", "echo abc | grep --color=auto b"],
                 [PYTHON, "-c", probe], [PYTHON, "-c", old])
        seen = []
        for env in ({}, {"PYTHONUNBUFFERED": "1"}):
            for cmd in cases:
                plain = run_on_pty(cmd, clean_env(**env))
                got = run_on_pty(cmd, self.shim_env(**env))
                self.assertEqual(got, plain, (cmd, env))
                seen.append(plain[1])
        # To a file, where the hook line-buffers Python's stdout: not
        # when it writes through already.
        out = os.path.join(self.tmp, "buffering.txt")
        for env in (clean_env(PYTHONUNBUFFERED="1"),
                    self.shim_env(PYTHONUNBUFFERED="1")):
            with open(out, "wb") as f:
                subprocess.run([PYTHON, "-c", "import sys; print("
                                "sys.stdout.line_buffering)"], stdout=f,
                               env=env, timeout=60)
            with open(out) as f:
                seen.append(f.read())
        self.assertEqual(seen[-2:], ["False\n", "False\n"])
        # What was compared: grep's colour, a terminal, both bufferings.
        self.assertIn("\x1b[", seen[0])
        self.assertEqual(seen[1], "fstat True True True\nbuffering True "
                         "False\n")
        self.assertEqual(seen[2], "__fxstat64 0 True\nfstat64 0 True\n")
        self.assertEqual(seen[4], "fstat True True True\nbuffering False "
                         "True\n")
        self.assertEqual(self.stop(), 0)

    def test_file_stays_a_file_and_nothing_is_added(self):
        self.serve()
        out = os.path.join(self.tmp, "out.txt")
        with open(out, "wb") as f:
            rc = subprocess.run([PYTHON, "-c", PROBE], stdout=f,
                                stderr=subprocess.DEVNULL,
                                env=self.shim_env()).returncode
        self.assertEqual(rc, 0)
        with open(out, "wb") as f:
            subprocess.run([PYTHON, "-c", PROBE], stdout=f,
                           stderr=subprocess.DEVNULL, env=clean_env())
        with open(out) as f:
            plain = self.probe(f.read())
        self.assertEqual(self.stop(), 0)
        got = self.probe("\n".join(self.texts(stream="stdout")))
        self.assertEqual(got["isatty"], "False False False")
        self.assertEqual(got["threads"], "1")
        self.assertEqual(got["fds"], plain["fds"])
        self.assertEqual(got["marker"].split(",")[0], got["fd1"])

    def test_a_file_is_whole_when_its_writer_exits(self):
        # `cmd > file; cat file` works as without meshlog: a writer whose
        # output is bound for a file waits at exit until the collector has
        # written it there. The writer stops the collector for 0.5 s right
        # before its last line, so without that wait cat finds no line.
        out = os.path.join(self.tmp, "out.txt")
        code = os.path.join(self.tmp, "w.py")
        with open(code, "w") as f:
            f.write("import os, signal, subprocess\n"
                    "pid = int(os.environ['CPID'])\n"
                    "os.kill(pid, signal.SIGSTOP)\n"
                    "subprocess.Popen(['sh', '-c', 'sleep 0.5; kill -CONT "
                    "%d' % pid], env=dict(os.environ, MESHLOG_DISABLE='1'))\n"
                    "print('written before exit')\n")
        t = time.monotonic()
        p = self.launch(["bash", "-c", "CPID=$PPID %s %s > %s; cat %s"
                         % (PYTHON, code, out, out)])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreater(time.monotonic() - t, 0.45)
        self.assertIn("] written before exit\n", p.stdout.decode())
        with open(out) as f:
            self.assertEqual(f.read(), "written before exit\n")
        self.assertEqual(self.texts(stream="stdout").count(
            "written before exit"), 2)

    @unittest.skipUnless(shutil.which("node"), "needs Node.js")
    def test_node_exit_keeps_a_whole_file(self):
        # Node writes a file synchronously but a pipe asynchronously, and
        # process.exit() drops what is still queued: 20 MB to a file must
        # all be there, as without meshlog.
        app = os.path.join(os.environ.get("MESHLOG_SRCDIR", BUILD),
                           "tests", "transparency", "nodeexit.js")
        self.serve()
        sizes = []
        for env in (clean_env(), self.shim_env()):
            out = os.path.join(self.tmp, "node.out")
            with open(out, "wb") as f:
                rc = subprocess.run(["node", app], stdout=f, env=env,
                                    timeout=60).returncode
            sizes.append((rc, os.path.getsize(out)))
        self.assertEqual(sizes, [(5, 20000000), (5, 20000000)])
        self.assertEqual(self.stop(), 0)

    def test_launch_keeps_inherited_ignores(self):
        # `nohup meshlog-collector -- job`, or a job started with `&` by a
        # batch shell: signals ignored when the collector started stay
        # ignored in the job, and the collector forwards none of them.
        probe = ("import signal, sys, time\n"
                 "print(*(int(signal.getsignal(s)) for s in (signal.SIGHUP,"
                 " signal.SIGINT, signal.SIGTERM)), flush=True)\n"
                 "time.sleep(1.5)\n"
                 "print('survived', flush=True)\n")

        def ignore():
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)

        p = subprocess.Popen([self.collector_path(), "-q", "-s",
                              os.path.join(self.tmp, "n.sock"), "--",
                              PYTHON, "-c", probe], preexec_fn=ignore,
                             stdout=subprocess.PIPE, env=clean_env())
        time.sleep(0.7)
        p.send_signal(signal.SIGHUP)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0)
        # SIG_IGN is 1, SIG_DFL 0: as inherited, SIGTERM left alone.
        self.assertEqual(out.decode().split("\n")[:2], ["1 1 0", "survived"])

    def signalled(self, probe, ways, lines):
        """For each way (a shell command, %s the probe's), the first lines
        of its output run plainly and with the probe under a launch
        collector, each in a session of its own (a group of its own to
        signal); {way: (plain, meshlog, meshlog's stderr)}."""
        path = os.path.join(self.tmp, "probe.py")
        with open(path, "w") as f:
            f.write(probe)
        got = {}
        for way, shape in ways.items():
            outs = []
            for pre in ("", "%s -q -s %s -- " % (
                    self.collector_path(), os.path.join(self.tmp,
                                                        way + ".sock"))):
                p = subprocess.run(
                    ["sh", "-c", shape % (pre + "%s %s" % (PYTHON, path))],
                    capture_output=True, env=clean_env(), timeout=60,
                    start_new_session=True)
                outs.append(p.stdout.decode().split("\n")[:lines])
            got[way] = (outs[0], outs[1], p.stderr)
        return got

    def test_a_signal_to_the_process_group_reaches_the_command_once(self):
        # timeout(1) signals its process group; so do a script's kill 0,
        # kill -- -PGID and the command's own kill 0. The command, in
        # that group, has the signal already: passed on as well, it came
        # twice (a Python handler ran twice; torchrun's shutdown was
        # interrupted by the second). A signal sent to the collector
        # alone, by a process of the same group, is still passed on.
        # The keeper, in the group too, outlives a group's SIGQUIT.
        probe = ("import os, signal, sys, time\n"
                 "n = {signal.SIGTERM: 0, signal.SIGQUIT: 0}\n"
                 "def h(s, f):\n"
                 "    n[s] += 1\n"
                 "for s in n:\n"
                 "    signal.signal(s, h)\n"
                 "print('up', flush=True)\n"
                 "if sys.argv[1:] == ['own']:\n"
                 "    os.kill(0, signal.SIGTERM)\n"
                 "time.sleep(1.5)\n"
                 "print(n[signal.SIGTERM], n[signal.SIGQUIT], flush=True)"
                 "\n")
        ways = {
            "timeout": 'timeout -s TERM 0.8 %s',
            "script": '%s & sleep 0.8; trap "" TERM; kill -TERM 0; wait',
            "quit": '%s & sleep 0.8; trap "" QUIT; kill -QUIT 0; wait',
            "own": '%s own',
            "sibling": '%s & p=$!; sleep 0.8; kill -TERM $p; wait',
        }
        for way, (plain, meshlog, err) in self.signalled(probe, ways,
                                                         2).items():
            self.assertEqual(meshlog, plain, (way, err))
            self.assertEqual(plain[1], "0 1" if way == "quit" else "1 0",
                             way)

    def test_a_schedulers_warning_signal_reaches_the_command(self):
        # Slurm's --signal=USR1@60 warns a job that its time is nearly
        # up (Lightning requeues on it); SIGUSR1's default ended the
        # collector (status 138) and the command never got it. --signal
        # takes any signal: SIGPWR or a real-time one ended the
        # collector too, and the command went on without its log. Sent
        # to the group or to the collector alone, the command gets each
        # once and the job ends as it would.
        probe = ("import signal, time\n"
                 "n = {s: 0 for s in (signal.SIGUSR1, signal.SIGUSR2,"
                 " signal.SIGALRM, signal.SIGPWR, signal.SIGVTALRM,"
                 " signal.SIGRTMIN + 2)}\n"
                 "def h(s, f):\n"
                 "    n[s] += 1\n"
                 "for s in n:\n"
                 "    signal.signal(s, h)\n"
                 "print('up', flush=True)\n"
                 "time.sleep(1.5)\n"
                 "print(*n.values(), flush=True)\n")
        # By number: sh's kill knows no real-time names.
        rt = signal.SIGRTMIN + 2
        ways = {
            "group": '%%s & sleep 0.8; trap "" USR1 USR2 ALRM PWR VTALRM '
                     '%d; kill -USR1 0; kill -USR2 0; kill -ALRM 0; '
                     'kill -PWR 0; kill -VTALRM 0; kill -%d 0; wait $!; '
                     'echo rc=$?' % (rt, rt),
            "alone": '%%s & p=$!; sleep 0.8; kill -USR1 $p; sleep 0.1; '
                     'kill -USR2 $p; sleep 0.1; kill -ALRM $p; '
                     'kill -PWR $p; kill -VTALRM $p; kill -%d $p; '
                     'wait $p; echo rc=$?' % rt,
        }
        for way, (plain, meshlog, err) in self.signalled(probe, ways,
                                                         3).items():
            self.assertEqual(plain, ["up", "1 1 1 1 1 1", "rc=0"], way)
            self.assertEqual(meshlog, plain, (way, err))

    def test_a_stop_and_a_continue_reach_the_command(self):
        # kill -TSTP of the collector alone stopped the collector only:
        # the command ran on, and a kill -CONT never reached it. Each is
        # now passed on, and the collector stops with the command, so a
        # shell sees its job stopped; one sent to the group is not
        # passed on again. On a terminal, ^Z, jobs and fg work as they
        # do for the command alone, and it gets one SIGCONT.
        probe = os.path.join(self.tmp, "stop.py")
        pidfile = os.path.join(self.tmp, "stop.pid")
        with open(probe, "w") as f:
            f.write("import os, signal, sys, time\n"
                    "n = 0\n"
                    "def h(s, f):\n"
                    "    global n\n"
                    "    n += 1\n"
                    "signal.signal(signal.SIGCONT, h)\n"
                    "with open(sys.argv[1], 'w') as f:\n"
                    "    f.write(str(os.getpid()))\n"
                    "print('up', flush=True)\n"
                    "time.sleep(1.5)\n"
                    "print('continued', n, flush=True)\n")

        def state(pid):
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                return "gone"

        def settled(pids, want):
            for _ in range(100):
                got = [state(p) for p in pids]
                if got == [want] * len(pids):
                    break
                time.sleep(0.02)
            return got

        def run(pre, send):
            # A group of its own in our session: not orphaned, so a
            # stop signal stops it.
            p = subprocess.Popen(pre + [PYTHON, probe, pidfile],
                                 stdout=subprocess.PIPE, env=clean_env(),
                                 process_group=0)
            self.assertEqual(p.stdout.readline(), b"up\n")
            with open(pidfile) as f:
                pids = sorted({p.pid, int(f.read())})
            send(p.pid, signal.SIGTSTP)
            stopped = settled(pids, "T")
            send(p.pid, signal.SIGCONT)
            going = settled(pids, "S")
            out, _ = p.communicate(timeout=30)
            return stopped, going, out, p.returncode

        for how, send in (("alone", os.kill), ("group", os.killpg)):
            plain = run([], send)
            self.assertEqual(plain, (["T"], ["S"], b"continued 1\n", 0))
            got = run([self.collector_path(), "-q", "-s",
                       os.path.join(self.tmp, how + ".sock"), "--"], send)
            self.assertEqual(got, (["T", "T"], ["S", "S"],
                                   b"continued 1\n", 0), how)

        def job_control(cmd):
            pid, master = pty.fork()
            if pid == 0:
                os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"],
                           clean_env(PS1="$ ", TERM="dumb"))
            out = b""

            def upto(mark):
                nonlocal out
                end = time.time() + 30
                while mark not in out and time.time() < end:
                    if select.select([master], [], [], 0.1)[0]:
                        try:
                            out += os.read(master, 65536)
                        except OSError:     # EIO: bash is gone
                            return

            os.write(master, cmd.encode() + b"\n")
            upto(b"up\r\n")
            os.write(master, b"\x1a")
            upto(b"Stopped")
            os.write(master, b"jobs; fg\n")
            upto(b"continued")
            os.write(master, b"echo rc=$?; exit\n")
            upto(b"\nexit")
            os.waitpid(pid, 0)
            os.close(master)
            return (out.count(b"Stopped"),
                    re.findall(rb"continued \d+|rc=\d+", out))

        plain = job_control("%s %s %s" % (PYTHON, probe, pidfile))
        self.assertEqual(plain, (2, [b"continued 1", b"rc=0"]))
        self.assertEqual(job_control("%s -q -s %s -- %s %s %s" % (
            self.collector_path(), os.path.join(self.tmp, "jc.sock"),
            PYTHON, probe, pidfile)), plain)

    def test_an_interrupt_on_a_terminal_reaches_the_command_once(self):
        # In its terminal's foreground, a ^C reaches the command once,
        # from the terminal; a kill -INT of the collector alone (from
        # another terminal, an IDE's stop button) is passed on, as it
        # reaches the command when there is no collector. It was
        # swallowed: the foreground was taken to mean a terminal's ^C.
        probe = ("import signal, time\n"
                 "n = 0\n"
                 "def h(s, f):\n"
                 "    global n\n"
                 "    n += 1\n"
                 "signal.signal(signal.SIGINT, h)\n"
                 "print('up', flush=True)\n"
                 "time.sleep(1.5)\n"
                 "print('caught', n, flush=True)\n")

        def on_pty(cmd, how):
            pid, master = pty.fork()
            if pid == 0:
                os.execvpe(cmd[0], cmd, clean_env())
            out = b""
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                if b"up" not in out and b"up" in out + chunk:
                    time.sleep(0.3)
                    if how == "key":
                        os.write(master, b"\x03")
                    else:
                        os.kill(pid, signal.SIGINT)
                out += chunk
            os.waitpid(pid, 0)
            os.close(master)
            return re.findall(rb"caught \d+", out)

        for how in ("key", "kill"):
            plain = on_pty([PYTHON, "-c", probe], how)
            self.assertEqual(plain, [b"caught 1"], how)
            self.assertEqual(on_pty([self.collector_path(), "-q", "-s",
                                     os.path.join(self.tmp, how + ".sock"),
                                     "--", PYTHON, "-c", probe], how),
                             plain, how)

    def test_the_keeper_outlives_a_quit_sent_to_the_group(self):
        p = subprocess.Popen([self.collector_path(), "-q", "-s",
                              os.path.join(self.tmp, "q.sock"), "--", "sh",
                              "-c", "trap '' QUIT; echo up; sleep 1; "
                              "kill -QUIT 0; sleep 0.5; echo after; "
                              "sleep 1; echo done"],
                             stdout=subprocess.PIPE, env=clean_env(),
                             start_new_session=True)
        self.assertEqual(p.stdout.readline(), b"up\n")
        with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
            kids = [int(k) for k in f.read().split()]
        keeper = []
        for k in kids:
            with open("/proc/%d/comm" % k) as f:
                if f.read() == "meshlog-keeper\n":
                    keeper.append(k)
        self.assertEqual(len(keeper), 1, kids)
        # Looked at while the command still runs: once it has ended, the
        # keeper ends too, as it should, and was seen a zombie then.
        self.assertEqual(p.stdout.readline(), b"after\n")
        try:
            with open("/proc/%d/stat" % keeper[0]) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            state = "gone"
        self.assertNotIn(state, ("Z", "X", "gone"))
        self.assertEqual(p.stdout.readline(), b"done\n")
        p.stdout.close()
        self.assertEqual(p.wait(timeout=60), 0)

    def test_launch_passes_limits_and_signal_mask_through(self):
        # The collector raises its own descriptor limit to hold many
        # sources; the job gets the limit it was started with (a higher
        # soft limit breaks select() past 1024 and slows programs that
        # close every possible descriptor), and the signal mask, umask
        # and every other limit as inherited.
        probe = ("import os, resource\n"
                 "print([(n, resource.getrlimit(getattr(resource, n)))"
                 " for n in sorted(dir(resource)) if n.startswith("
                 "'RLIMIT_')])\n"
                 "print(os.umask(0o022))\n"
                 "print([l for l in open('/proc/self/status')"
                 " if l.startswith(('SigBlk', 'SigIgn'))])\n")

        def start():
            import resource
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 512),
                                                        hard))
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2,
                                                      signal.SIGWINCH])
            os.umask(0o027)

        views = []
        for pre in ([], [self.collector_path(), "-q", "-s",
                         os.path.join(self.tmp, "l.sock"), "--"]):
            out = subprocess.run(pre + [PYTHON, "-c", probe],
                                 preexec_fn=start, stdout=subprocess.PIPE,
                                 env=clean_env(), timeout=60, check=True)
            views.append(out.stdout.decode())
        self.assertIn("('RLIMIT_NOFILE', (512,", views[0])
        self.assertIn("SigBlk:\\t0000000008000800", views[0])
        self.assertEqual(views[1], views[0])

    def test_launch_ends_as_its_command_did(self):
        # Its parent sees what it would see of the command itself: an
        # exit code, or death by the same signal (Python's -11, a
        # shell's "Segmentation fault"), and no core of the collector.
        import resource

        def cores():
            resource.setrlimit(resource.RLIMIT_CORE, (
                resource.RLIM_INFINITY, resource.RLIM_INFINITY))

        cwd = os.path.join(self.tmp, "cwd")
        os.mkdir(cwd)
        for cmd, want in (("exit 3", 3), ("ulimit -c 0; kill -SEGV $$",
                                          -signal.SIGSEGV),
                          ("kill -TERM $$", -signal.SIGTERM)):
            got = []
            for pre in ([], [self.collector_path(), "-q", "-s",
                             os.path.join(self.tmp, "e.sock"), "--"]):
                got.append(subprocess.run(
                    pre + ["sh", "-c", cmd], cwd=cwd, preexec_fn=cores,
                    env=clean_env(), timeout=60).returncode)
            self.assertEqual(got, [want, want], cmd)
        self.assertEqual(os.listdir(cwd), [])

    def test_a_sanitizers_runtime_stays_first_in_launch_mode(self):
        # AddressSanitizer's runtime refuses to run (exit 1, "ASan
        # runtime does not come first in initial library list") unless
        # it is the first library loaded, and tells its user to preload
        # it. Preloaded for the collector, it must stay first for the
        # job, the shim second.
        rt = subprocess.run(["gcc", "-print-file-name=libasan.so"],
                            stdout=subprocess.PIPE, text=True,
                            check=True).stdout.strip()
        self.assertTrue(os.path.isabs(rt), "gcc has no libasan: " + rt)
        src = os.path.join(self.tmp, "asan.c")
        prog = os.path.join(self.tmp, "asan")
        with open(src, "w") as f:
            f.write('#include <stdio.h>\n'
                    'int main(void) { puts("asan ok"); return 0; }\n')
        subprocess.run(["gcc", "-fsanitize=address", "-o", prog, src],
                       check=True)
        env = clean_env(ASAN_OPTIONS="detect_leaks=0")
        cmd = [self.collector_path(), "-q", "-s",
               os.path.join(self.tmp, "a.sock"), "--", "sh", "-c",
               'echo "$LD_PRELOAD"; exec "$0"', prog]
        # Without the runtime preloaded, the shim first: ASan refuses.
        got = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(got.returncode, 1, got)
        self.assertIn(b"does not come first", got.stderr)
        for extra in ("", ":/lib/x86_64-linux-gnu/libm.so.6"):
            got = subprocess.run(cmd, env=dict(env, LD_PRELOAD=rt + extra),
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=60)
            self.assertEqual((got.returncode, got.stdout.splitlines()),
                             (0, [(rt + ":" + os.path.realpath(SHIM) +
                                   extra).encode(), b"asan ok"]), got)

    def test_a_failing_destination_does_not_kill_the_writer(self):
        # A full disk (/dev/full here) or a terminal hung up (an ssh
        # session dropped under a job that ignores SIGHUP) fails the
        # writer's writes with ENOSPC or EIO, and it goes on. A pipe can
        # give it neither error, but it must not be killed by SIGPIPE as
        # if its reader had left: it goes on, and the log has its lines.
        import pty
        done = os.path.join(self.tmp, "done")
        prog = ("import os, signal, time\n"
                "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
                "for i in range(6):\n"
                "    try: os.write(1, b'line %%d\\n' %% i)\n"
                "    except OSError: pass\n"
                "    time.sleep(0.2)\n"
                "open(%r, 'a').write('done\\n')\n" % done)
        self.serve()
        with open("/dev/full", "wb") as full:
            p = subprocess.run([PYTHON, "-c", prog], stdout=full,
                               env=self.shim_env(), timeout=60)
        self.assertEqual(p.returncode, 0)
        # A terminal hung up 0.5 s in; the job ignores SIGHUP.
        pid, master = pty.fork()
        if pid == 0:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            os.execvpe(PYTHON, [PYTHON, "-c", prog], self.shim_env())
        time.sleep(0.5)
        os.close(master)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        with open(done) as f:
            self.assertEqual(f.read(), "done\n" * 2)
        self.stop()
        self.assertEqual(sorted(self.texts(stream="stdout")),
                         sorted(["line %d" % i for i in range(6)] * 2))

    def test_a_sync_after_failed_writes_says_so(self):
        # Writes to a file on a full disk succeed into the pipe that
        # stands for it; fsync(2) is where the program learns: ENOSPC,
        # not 0 with its data lost. A 64 KiB tmpfs in a mount namespace
        # of its own (root, as the cgroup test).
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs needs root")
        d = os.path.join(self.tmp, "small")
        os.mkdir(d)
        prog = ("import os, sys\n"
                "for i in range(40):\n"
                "    os.write(1, b'x' * 4096)\n"
                "for fn in (os.fdatasync, os.fsync):\n"
                "    try: fn(1); print(fn.__name__, 'ok', file=sys.stderr)\n"
                "    except OSError as e:\n"
                "        print(fn.__name__, e.errno, file=sys.stderr)\n")
        self.serve()
        p = subprocess.run(
            ["unshare", "-m", "sh", "-c",
             'mount -t tmpfs -o size=64k tmpfs "$1" && "$2" -c "$3" > '
             '"$1/f"', "sh", d, PYTHON, prog],
            stderr=subprocess.PIPE, env=self.shim_env(), timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.decode().splitlines(),
                         ["fdatasync %d" % errno.ENOSPC,
                          "fsync %d" % errno.ENOSPC], p.stderr)
        self.stop()

    def test_closed_standard_descriptors(self):
        # Started with stderr closed (a daemon, cron), the collector's
        # next file would be descriptor 2 and take its messages: it holds
        # 0-2 with /dev/null. Its command gets them closed, as without it.
        def close_2():
            os.close(2)

        sock = os.path.join(self.tmp, "d.sock")
        p = subprocess.Popen([self.collector_path(), "-s", sock, "-j",
                              os.path.join(self.tmp, "d.jsonl")],
                             stdout=subprocess.DEVNULL, preexec_fn=close_2,
                             env=clean_env())
        self.children.append(p)
        wait_serving(sock, p)
        self.assertEqual(os.readlink("/proc/%d/fd/2" % p.pid), "/dev/null")
        p.terminate()
        self.assertEqual(p.wait(timeout=30), 0)
        probe = ("import os\n"
                 "def ok(fd):\n"
                 "    try: return os.fstat(fd) is not None\n"
                 "    except OSError: return False\n"
                 "print([fd for fd in range(3) if ok(fd)])\n")
        got = []
        for pre in ([], [self.collector_path(), "-q", "-s",
                         os.path.join(self.tmp, "l.sock"), "--"]):
            got.append(subprocess.run(pre + [PYTHON, "-c", probe],
                                      stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE,
                                      preexec_fn=close_2, env=clean_env(),
                                      timeout=60).stdout)
        self.assertEqual(got[0], b"[0, 1]\n")
        self.assertEqual(got[1], got[0])

    def key_count(self, key, sig, stdin_null=False):
        """Run a command that counts sig under a launch-mode collector on
        a new terminal, type key once it is ready; its exit status, its
        count and the screen."""
        prog = ("import signal, time\n"
                "n = []\n"
                "signal.signal(signal.%s, lambda s, f: n.append(s))\n"
                "print('ready', flush=True)\n"
                "t = time.time()\n"
                "while not n and time.time() - t < 20: time.sleep(0.05)\n"
                "time.sleep(0.5)\n"
                "print('count', len(n), flush=True)\n" % sig)
        cmd = [self.collector_path(), "-s", os.path.join(self.tmp, "k.sock"),
               "--", PYTHON, "-c", prog]
        rc, out = type_on_pty(cmd, clean_env(), b"ready", key,
                              stdin_null=stdin_null)
        return rc, out.decode(errors="replace")

    def test_quit_key_reaches_the_command_once(self):
        # ^\ on the terminal sends SIGQUIT to the foreground group, the
        # command included (Java's thread dump, Python's faulthandler):
        # the collector neither dies of it nor passes it on again.
        rc, text = self.key_count(b"\x1c", "SIGQUIT")
        self.assertEqual(rc, 0, text)
        self.assertIn("count 1", text)
        self.assertIn("meshlog: 1 process, all exited 0", text)

    def test_interrupt_key_reaches_the_command_once(self):
        # ^C likewise, also when stdin is not the terminal (`job <
        # input`): the collector asked stdin alone whether it was in the
        # foreground, and passed a second SIGINT on.
        for stdin_null in (False, True):
            rc, text = self.key_count(b"\x03", "SIGINT", stdin_null)
            self.assertEqual(rc, 0, text)
            self.assertIn("count 1", text, "stdin /dev/null: %s" %
                          stdin_null)

    def test_a_full_screen_program_draws_raw_under_the_view(self):
        # The view prefixes lines; a program that takes the terminal out
        # of canonical mode (less here; vim, top, a line editor) draws
        # its screen raw, byte for byte as without meshlog, and the view
        # goes on after it.
        text = os.path.join(self.tmp, "nums.txt")
        with open(text, "w") as f:
            f.write("".join("%d\n" % i for i in range(1, 101)))
        env = clean_env(LESS="", TERM="xterm")

        def screen(cmd):
            return type_on_pty(cmd, env, b"nums.txt", b"q", delay=0.3)[1]

        plain = screen(["less", text])
        got = screen([self.collector_path(), "-s",
                      os.path.join(self.tmp, "v.sock"), "--", "less", text])
        self.assertIn(b"\x1b[?1049h", plain)
        self.assertIn(plain, got)
        self.assertNotIn(b"[pid", got)
        self.assertIn(b"meshlog: 1 process, all exited 0", got)

    def test_an_editor_a_monitor_and_a_line_editor_on_a_terminal(self):
        # The programs issue 11 names beside less: vim edits and writes a
        # file, top draws its screen and quits on its key, and readline
        # edits a line (an arrow key moves back, a letter goes in). Under
        # the shim alone the line editor's bytes are exact; under the
        # view too, but for its notice, its summary and the printed
        # result's prefix.
        env = clean_env(TERM="xterm")
        edited = os.path.join(self.tmp, "edited.txt")
        vim = ["vim", "-u", "NONE", "-N", "-i", "NONE", "-n"]
        keys = (":call setline(1, 'written by vim')|wq! %s\r"
                % edited).encode()
        readline = [PYTHON, "-c", "import readline; "
                    "print(repr(input('edit> ')))"]
        plain = type_on_pty(readline, env, b"edit> ", b"abc\x1b[Dx\r",
                            delay=0.2)
        self.assertEqual(plain, (0, b"edit> abc\x08xc\x08\r\n'abxc'\r\n"))
        self.serve()
        self.assertEqual(type_on_pty(readline, self.shim_env(TERM="xterm"),
                                     b"edit> ", b"abc\x1b[Dx\r",
                                     delay=0.2), plain)
        self.assertEqual(self.stop(), 0)
        for name, cmd, wait_for, key in (
                ("vim", vim, b"VIM", keys),
                ("top", ["top", "-d", "0.2"], b"PID", b"q"),
                ("readline", readline, b"edit> ", b"abc\x1b[Dx\r")):
            rc, out = type_on_pty(
                [self.collector_path(), "-s",
                 os.path.join(self.tmp, name + ".sock"), "--"] + cmd,
                env, wait_for, key, delay=0.3)
            self.assertEqual(rc, 0, "%s: %r" % (name, out[-2000:]))
            self.assertIn(b"meshlog: 1 process, all exited 0", out, name)
        with open(edited) as f:
            self.assertEqual(f.read(), "written by vim\n")
        self.assertIn(b"edit> abc\x08xc\x08\r\n", out)
        self.assertRegex(out, rb"\r\n\[pid \d+\] 'abxc'\r\n")

    def test_pagers_and_editors_read_their_keys_from_stderr(self):
        # util-linux more(1) reads its keys from stderr, the terminal it
        # was opened read-write on, polling it with stdin; vim reading a
        # pipe (cmd | vim -) reads them from stderr too, with select(2).
        # On the capture pipe they waited for them forever.
        text = os.path.join(self.tmp, "hundred.txt")
        with open(text, "w") as f:
            f.write("".join("line %d\n" % i for i in range(100)))
        env = clean_env(TERM="xterm")
        vim = "vim -u NONE -N -n -i NONE -"
        cases = ((["more", text], b"--More--", b"q"),
                 (["sh", "-c", "cat %s | more" % text], b"--More--", b"q"),
                 (["sh", "-c", "cat %s | %s" % (text, vim)], b"-stdin-",
                  b":q!\r"))
        plain = [type_on_pty(["timeout", "20"] + cmd, env, wait, key,
                             delay=0.3, rows=10)
                 for cmd, wait, key in cases]
        for rc, out in plain:
            self.assertEqual(rc, 0, out)
            self.assertIn(b"line 8", out)
        self.serve()
        for (cmd, wait, key), want in zip(cases, plain):
            self.assertEqual(type_on_pty(["timeout", "20"] + cmd,
                                         self.shim_env(TERM="xterm"), wait,
                                         key, delay=0.3, rows=10), want)
        self.assertEqual(self.stop(), 0)

    def test_a_mode_change_by_ioctl_on_stdin_keeps_earlier_lines_in_view(
            self):
        # tcsetattr on stdin waited for earlier output to be written; the
        # same change made with ioctl(TCSETS) did not, so lines written
        # just before it were found raw and shown without their prefix.
        prog = ("import fcntl, os, termios\n"
                "a = termios.tcgetattr(0)\n"
                "b = fcntl.ioctl(0, termios.TCGETS, bytes(60))\n"
                "lflag = int.from_bytes(b[12:16], 'little')\n"
                "lflag &= ~(termios.ICANON | termios.ECHO)\n"
                "b = b[:12] + lflag.to_bytes(4, 'little') + b[16:]\n"
                "for i in range(5):\n"
                "    os.write(1, b'cooked %d\\n' % i)\n"
                "    fcntl.ioctl(0, termios.TCSETS, b)\n"
                "    os.write(1, b'raw %d\\r\\n' % i)\n"
                "    termios.tcsetattr(0, termios.TCSADRAIN, a)\n")
        rc, out = run_on_pty([self.collector_path(), "-s",
                              os.path.join(self.tmp, "i.sock"), "--",
                              PYTHON, "-c", prog], clean_env())
        self.assertEqual(rc, 0, out)
        lines = out.splitlines()
        for i in range(5):
            self.assertIn("raw %d" % i, lines, out)
            self.assertTrue(any(l.startswith("[pid ") and
                                l.endswith("] cooked %d" % i)
                                for l in lines), out)

    def test_our_lines_start_a_line_after_raw_output(self):
        # A program that drew raw and left the cursor mid-line: the
        # collector's next words (here the failure's announcement) began
        # on that line, "abcmeshlog: first failure".
        prog = ("import os, sys, termios, tty\n"
                "a = termios.tcgetattr(0)\n"
                "tty.setraw(0)\n"
                "os.write(1, b'drawn raw')\n"
                "termios.tcsetattr(0, termios.TCSADRAIN, a)\n"
                "sys.exit(3)\n")
        rc, out = run_on_pty([self.collector_path(), "-s",
                              os.path.join(self.tmp, "r.sock"), "--",
                              PYTHON, "-c", prog], clean_env())
        self.assertEqual(rc, 3, out)
        lines = re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines()
        self.assertIn("drawn raw", lines, out)
        self.assertTrue(any(l.startswith("meshlog: first failure: pid ")
                            for l in lines), out)

    def test_console_view_on_a_terminal_in_launch_mode(self):
        # In launch mode on a terminal the console view replaces the raw
        # output: each line once, prefixed.
        cmd = [os.path.join(os.path.dirname(os.path.dirname(SHIM)), "..",
                            "collector", "meshlog-collector"),
               "-s", os.path.join(self.tmp, "t.sock"), "--",
               CWRITER, "lines", "3", "tty"]
        rc, out = run_on_pty(cmd, clean_env())
        self.assertEqual(rc, 0, out)
        lines = [l for l in out.splitlines() if "tty " in l and "err" not in l]
        self.assertEqual(len(lines), 3, out)
        self.assertTrue(all(l.startswith("[pid ") for l in lines), out)

    def test_one_terminal_for_both_streams(self):
        # stdout and stderr on one terminal: where the raw bytes reach
        # it, one pipe keeps their order on the screen (the transparency
        # case merged-pty); where the console view replaces them, the
        # streams stay apart and the log says which lines are stderr.
        prog = ("import sys\n"
                "for i in range(3):\n"
                "    print('out', i, flush=True)\n"
                "    print('err', i, file=sys.stderr, flush=True)\n")
        logs = {}
        for name, opts in (("view", []), ("raw", ["-q"])):
            logs[name] = os.path.join(self.tmp, name + ".jsonl")
            rc, out = run_on_pty([self.collector_path(), *opts, "-s",
                                  os.path.join(self.tmp, name + ".sock"),
                                  "-j", logs[name], "--", PYTHON, "-c",
                                  prog], clean_env())
            self.assertEqual(rc, 0, out)
        view = read_records(logs["view"])
        self.assertEqual(sorted((r["line"], r["stream"])
                                for r in line_records(view)),
                         sorted(("%s %d" % (w, i), s) for i in range(3)
                                for w, s in (("out", "stdout"),
                                             ("err", "stderr"))))
        raw = read_records(logs["raw"])
        opened = [r for r in raw if r.get("event") == "source_open"]
        self.assertEqual(opened[0].get("merged"), True, opened)
        self.assertEqual([r["line"] for r in line_records(raw)],
                         ["out 0", "err 0", "out 1", "err 1", "out 2",
                          "err 2"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
