"""Console view control: aggregation across ranks, the level filter, and
(from the control socket) flush barriers and live mode changes."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CWRITER, PYTHON, MeshTest, events, line_records)

RANKS8 = ("for r in 0 1 2 3 4 5 6 7; do RANK=$r %s -c \"$1\" & done; wait"
          % PYTHON)


class Aggregation(MeshTest):

    def run8(self, code, args=()):
        return self.launch(["bash", "-c", RANKS8, "ranks8", code], args=args)

    def test_one_template_from_eight_ranks_prints_once(self):
        p = self.run8("import os\nr = int(os.environ['RANK'])\n"
                      "print('step 100 loss=%.3f' % (2.3 + r * 0.011))")
        self.assertEqual(p.returncode, 0)
        out = p.stdout.decode()
        self.assertEqual(len(re.findall(r"^\[8 similar lines\] \[ranks 0-7\] "
                                        r"step 100 loss=2\.\d+$", out,
                                        re.M)), 1, out)
        self.assertNotIn("[rank 3] step", out)
        # The JSON log is lossless: eight records.
        self.assertEqual(len([t for t in self.texts()
                              if t.startswith("step 100")]), 8)

    def test_tracebacks_stay_together_and_severities_do_not_merge(self):
        code = ("import os, sys, logging\n"
                "logging.basicConfig(format='%(levelname)s %(message)s')\n"
                "r = int(os.environ['RANK'])\n"
                "if r in (2, 5):\n"
                "    print('Traceback (most recent call last):',"
                " file=sys.stderr)\n"
                "    print('  File \"train.py\", line %d, in step' % (10 + r),"
                " file=sys.stderr)\n"
                "    print('ValueError: rank %d diverged' % r,"
                " file=sys.stderr)\n"
                "logging.warning('disk slow')\n"
                "logging.error('disk slow')\n")
        p = self.run8(code)
        self.assertEqual(p.returncode, 0)
        err = p.stderr.decode().splitlines()
        tb = [i for i, l in enumerate(err) if "Traceback" in l]
        # Both tracebacks: one group of 2, followed by each rank's lines
        # in order, or each printed whole under its own rank.
        for i, l in enumerate(err):
            if "ValueError: rank 2" in l:
                self.assertIn("File", err[i - 1])
        self.assertEqual(len([l for l in err if "WARNING disk slow" in l]), 1)
        self.assertEqual(len([l for l in err if "ERROR disk slow" in l]), 1)
        self.assertTrue(any(l.startswith("[8 similar lines] [ranks 0-7] "
                                         "WARNING disk slow") for l in err))
        self.assertTrue(tb, err)

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
        p = self.launch([PYTHON, "-c", code], args=["--level", "WARNING",
                                                    "--aggregate", "off"])
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
        p = self.launch_raw(["--level", "LOUD", "--", "true"])
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--level takes", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
