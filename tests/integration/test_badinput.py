"""Bad input gets a marked record or a clear refusal, never a crash and
never silent loss: bytes that are not text, huge lines, progress bars,
malformed or silent peers, strangers on the socket."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CWRITER, PYTHON, MeshTest, events, line_records)


def raw_writer(data_expr):
    return [PYTHON, "-c", "import os\nos.write(1, %s)\n" % data_expr]


class BadBytes(MeshTest):

    def test_invalid_utf8_and_nul(self):
        p = self.launch(raw_writer(r"b'ok\xff\xfe bad\x00nul\x07\n'"))
        self.assertEqual(p.returncode, 0)
        self.assertEqual(self.texts(), ["ok\ufffd\ufffd bad\x00nul\x07"])
        # The console shows it escaped, never raw.
        out = p.stdout
        self.assertNotIn(b"\x00", out)
        self.assertNotIn(b"\x07", out)
        self.assertIn(b"bad\\x00nul\\x07", out)

    def test_ten_megabyte_line_without_newline(self):
        p = self.launch(raw_writer("b'x' * (10 * 1024 * 1024)"),
                        args=["-q"])
        self.assertEqual(p.returncode, 0)
        recs = line_records(self.records)
        self.assertEqual(len(recs), 2560)
        self.assertEqual(sum(len(r["line"]) for r in recs), 10 * 1024 * 1024)
        self.assertTrue(all(set(r["line"]) == {"x"} for r in recs))
        self.assertTrue(all(r.get("truncated") for r in recs[:-1]))
        self.assertTrue(recs[-1].get("partial"))

    def test_ten_thousand_progress_updates(self):
        code = ("import sys\n"
                "for i in range(10001):\n"
                "    sys.stdout.write('\\rstep %d/10000' % i)\n"
                "    sys.stdout.flush()\n"
                "sys.stdout.write('\\nafter\\n')\n")
        p = self.launch([PYTHON, "-c", code])
        self.assertEqual(p.returncode, 0)
        recs = line_records(self.records)
        self.assertEqual([r["line"] for r in recs],
                         ["step 10000/10000", "after"])
        self.assertTrue(recs[0]["progress"])
        # The console saw the final state and a bounded number of updates.
        lines = p.stdout.decode().splitlines()
        self.assertIn("step 10000/10000", lines[-2])
        self.assertLess(len(lines), 50)

    def test_line_max_option(self):
        p = self.launch(raw_writer("b'a' * 300 + b'\\n'"),
                        args=["--line-max", "128"])
        self.assertEqual(p.returncode, 0)
        self.assertEqual([len(t) for t in self.texts()], [128, 128, 44])


class SlowConsole(MeshTest):

    def test_json_log_never_waits_for_an_unread_console(self):
        # The collector's stdout is a pipe nobody reads: the console view
        # backs up and is dropped (and said so), the JSON log gets every
        # line, and the job finishes.
        n = 200000
        full = [self.collector_path(), "-s", os.path.join(self.tmp, "s"),
                "-j", self.json, "--", CWRITER, "lines", str(n), "slow"]
        coll = subprocess.Popen(full, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        self.children.append(coll)
        self.assertEqual(coll.wait(timeout=120), 0)
        self.records = __import__("harness").read_records(self.json)
        self.check_contract(self.records)
        self.assertEqual(len(line_records(self.records, stream="stdout")), n)
        dropped = events(self.records, "dropped")
        self.assertTrue(dropped and dropped[0]["bytes"] > 0, dropped)


class BadPeers(MeshTest):

    def registers_fine(self):
        rc = subprocess.run([CWRITER, "lines", "1", "ok"],
                            stdout=subprocess.DEVNULL,
                            env=self.shim_env()).returncode
        self.assertEqual(rc, 0)
        self.wait_for(lambda: b'"line":"ok 0"' in self.log_bytes(),
                      what="a normal registration")

    def test_malformed_hello(self):
        self.serve()
        for msg in (b"this is not json\n", b"[1,2,3]\n",
                    b'{"type":"hello","proto":2}\n',
                    b'{"type":"hello","proto":9}\n',
                    b'{"type":"frobnicate"}\n'):
            s = self.connect()
            s.sendall(msg)
            r = self.reply(s)
            self.assertEqual(r["type"], "error", msg)
            self.assertTrue(r["message"])
            s.close()
        self.registers_fine()
        self.assertEqual(self.stop(), 0)
        err = self.collector_stderr()
        self.assertIn("malformed JSON", err)
        self.assertIn("protocol version 9", err)
        self.assertIn("missing or bad field: pid", err)
        self.assertIn("unknown request type", err)

    def test_hello_without_descriptors(self):
        self.serve()
        hello = {"type": "hello", "proto": 2, "pid": os.getpid(), "ppid": 1,
                 "uid": os.getuid(), "host": "h", "start_us": 0,
                 "argv": ["x"], "rank": None, "local_rank": None,
                 "world_size": None,
                 "streams": [{"name": "stdout", "tty": False}]}
        line = json.dumps(hello).encode() + b"\n"
        # The hello is accepted on its own; the streams must bring them.
        s = self.connect()
        s.sendall(line)
        self.assertEqual(self.reply(s)["type"], "accept")
        s.sendall(b'{"type":"streams"}\n')
        r = self.reply(s)
        self.assertEqual(r["type"], "error")
        self.assertIn("descriptors", r["message"])
        # Descriptors that are not pipe read ends are refused too.
        s = self.connect()
        s.sendall(line)
        self.assertEqual(self.reply(s)["type"], "accept")
        fds = [os.open("/dev/null", os.O_RDONLY), os.open("/dev/null",
                                                         os.O_WRONLY)]
        socket.send_fds(s, [b'{"type":"streams"}\n'], fds)
        r = self.reply(s)
        self.assertEqual(r["type"], "error")
        self.assertIn("not a pipe", r["message"])
        # Descriptors with the hello itself (the old, one-step way) too.
        s = self.connect()
        socket.send_fds(s, [line], fds)
        r = self.reply(s)
        self.assertEqual(r["type"], "error")
        self.assertIn("after accept", r["message"])
        # Streams without a hello before them.
        s = self.connect()
        socket.send_fds(s, [b'{"type":"streams"}\n'], fds)
        self.assertIn("no hello", self.reply(s)["message"])
        self.registers_fine()
        self.assertEqual(self.stop(), 0)

    def test_too_long_and_too_many_descriptors(self):
        self.serve()
        s = self.connect()
        try:
            s.sendall(b"{" + b" " * 40000)  # over MESHLOG_MSG_MAX (32 KiB)
        except BrokenPipeError:
            pass
        self.assertIn("too long", self.reply(s)["message"])
        s = self.connect()
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(6)]
        socket.send_fds(s, [b'{"type":"hello"}\n'], fds)
        self.assertIn("descriptors", self.reply(s)["message"])
        self.registers_fine()
        self.assertEqual(self.stop(), 0)

    def test_silent_peer_is_closed_and_blocks_nobody(self):
        self.serve(args=["--hello-timeout", "1"])
        s = self.connect()
        self.registers_fine()
        t0 = time.time()
        r = self.reply(s)
        self.assertEqual(r["type"], "error")
        self.assertIn("no complete message", r["message"])
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(self.stop(), 0)
        self.assertIn("no complete message in time", self.collector_stderr())

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                         "needs root and setpriv to act as another user")
    def test_stranger_is_refused(self):
        # The collector refuses a directory others can enter; opening it
        # after the start leaves the peer check as the last line.
        self.serve()
        os.chmod(self.tmp, 0o755)
        os.chmod(self.sock, 0o777)
        code = ("import socket, sys\n"
                "s = socket.socket(socket.AF_UNIX)\n"
                "s.connect(%r)\n"
                "sys.stdout.write(s.recv(4096).decode())\n" % self.sock)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                            "--clear-groups", PYTHON, "-c", code],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(r["type"], "error")
        self.assertIn("another user", r["message"])
        self.registers_fine()
        self.assertEqual(self.stop(), 0)
        self.assertIn("uid 65534", self.collector_stderr())

    def test_second_collector_on_the_same_socket_is_refused(self):
        self.serve()
        p = subprocess.run([self.collector.args[0], "-s", self.sock],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"already listening", p.stderr)
        self.registers_fine()
        self.assertEqual(self.stop(), 0)

    def test_stale_socket_file_is_replaced(self):
        sock = os.path.join(self.tmp, "stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(sock)
        s.close()
        self.serve(sock=sock)
        self.registers_fine()
        self.assertEqual(self.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
