"""Trust on first use, both ways: the collector puts its socket only in a
directory that is its user's alone, creates nothing through a link someone
planted, keeps its JSON log private, and the preload library hands nothing
to a collector of another user."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import COLLECTOR, CWRITER, SHIM, MeshTest, clean_env

NOBODY = 65534
AS_ROOT = os.geteuid() == 0 and shutil.which("setpriv")


class SocketDirectory(MeshTest):

    def refused(self, sock, *args):
        p = subprocess.run([COLLECTOR, "-s", sock, *args],
                           capture_output=True, timeout=30, env=clean_env())
        self.assertNotEqual(p.returncode, 0)
        self.assertFalse(os.path.exists(sock))
        return p.stderr.decode()

    def test_directory_writable_by_others_is_refused(self):
        d = os.path.join(self.tmp, "open")
        os.mkdir(d)
        os.chmod(d, 0o777)
        err = self.refused(os.path.join(d, "c.sock"))
        self.assertIn("writable by other users (mode 777)", err)
        # Readable and searchable is fine: an ordinary directory.
        os.chmod(d, 0o755)
        self.serve(sock=os.path.join(d, "c.sock"))
        self.assertEqual(self.stop(), 0)

    @unittest.skipUnless(AS_ROOT, "needs root to give a directory away")
    def test_directory_of_another_user_is_refused(self):
        d = os.path.join(self.tmp, "theirs")
        os.mkdir(d, 0o700)
        os.chown(d, NOBODY, NOBODY)
        err = self.refused(os.path.join(d, "c.sock"))
        self.assertIn("belongs to uid %d" % NOBODY, err)

    def test_planted_lock_link_is_not_followed(self):
        victim = os.path.join(self.tmp, "victim")
        sock = os.path.join(self.tmp, "c.sock")
        os.symlink(victim, sock + ".lock")
        err = self.refused(sock)
        self.assertIn("a link is not followed", err)
        self.assertFalse(os.path.exists(victim))

    def test_planted_level_file_is_not_followed(self):
        self.serve()
        victim = os.path.join(self.tmp, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        os.symlink(victim, "%s.level.%d.tmp" % (self.sock,
                                                self.collector.pid))
        p = subprocess.run([os.path.join(os.path.dirname(COLLECTOR),
                                         "meshlogctl"), "-s", self.sock,
                            "set-mode", "--level", "WARNING"],
                           capture_output=True, timeout=30, env=clean_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")
        with open(self.sock + ".level") as f:
            self.assertEqual(json.load(f)["level"], 30)
        self.assertEqual(os.stat(self.sock + ".level").st_mode & 0o777,
                         0o600)
        self.assertEqual(self.stop(), 0)


class JsonLog(MeshTest):

    def test_new_log_is_private(self):
        p = self.launch([CWRITER, "lines", "1", "secret"])
        self.assertEqual(p.returncode, 0)
        self.assertEqual(os.stat(self.json).st_mode & 0o777, 0o600)

    def test_log_through_a_link_is_refused(self):
        victim = os.path.join(self.tmp, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        link = os.path.join(self.tmp, "link.jsonl")
        os.symlink(victim, link)
        p = subprocess.run([COLLECTOR, "-s", os.path.join(self.tmp, "l.sock"),
                            "-j", link, "--", CWRITER, "lines", "1", "x"],
                           capture_output=True, timeout=30, env=clean_env())
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"symbolic link, which is not followed", p.stderr)
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")


@unittest.skipUnless(AS_ROOT, "needs root and setpriv to act as another user")
class ForeignCollector(MeshTest):

    def test_shim_hands_nothing_to_a_collector_of_another_user(self):
        # A collector of uid 65534 listens where this root process looks:
        # the process must not register, and says why once.
        d = tempfile.mkdtemp(prefix="meshlog-nobody-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chown(d, NOBODY, NOBODY)
        sock = os.path.join(d, "c.sock")
        c = subprocess.Popen(["setpriv", "--reuid=%d" % NOBODY,
                              "--regid=%d" % NOBODY, "--clear-groups",
                              COLLECTOR, "-s", sock],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=clean_env())
        self.children.append(c)
        deadline = time.time() + 10
        while not os.path.exists(sock):
            self.assertIsNone(c.poll(), c.stderr.read() if c.poll() else "")
            self.assertLess(time.time(), deadline)
            time.sleep(0.02)
        p = subprocess.run([CWRITER, "lines", "2", "mine"],
                           capture_output=True, timeout=30,
                           env=clean_env(LD_PRELOAD=SHIM,
                                         MESHLOG_SOCKET=sock))
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"mine 0\nmine 1\n")
        self.assertIn(b"the collector socket belongs to another user",
                      p.stderr)
        c.terminate()
        _, err = c.communicate(timeout=30)
        self.assertNotIn(b"source", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
