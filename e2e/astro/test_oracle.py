"""Unit tests of oracle.py (standard library only): python3 -m unittest e2e/astro/test_oracle.py"""

import os
import random
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402

HEADER = "#   1 NUMBER  Running object number\n#   2 X_IMAGE  x [pixel]\n#   3 Y_IMAGE  y [pixel]\n"


def catalogue(points):
    return HEADER + "".join(f"{i + 1} {x:.4f} {y:.4f}\n" for i, (x, y) in enumerate(points))


def field(n=30, seed=1):
    rng = random.Random(seed)
    return [(rng.uniform(10, 246), rng.uniform(10, 246), rng.uniform(500, 20000)) for _ in range(n)]


class ParseTest(unittest.TestCase):
    def test_columns_by_header(self):
        rows = oracle.parse_catalogue(catalogue([(1.5, 2.5), (3.0, 4.0)]))
        self.assertEqual([(r["X_IMAGE"], r["Y_IMAGE"]) for r in rows], [(1.5, 2.5), (3.0, 4.0)])

    def test_missing_position_column_is_named(self):
        with self.assertRaisesRegex(oracle.InputError, "no Y_IMAGE column"):
            oracle.parse_catalogue("#   1 X_IMAGE x\n1.0\n", "c.cat")

    def test_bad_number_names_line(self):
        with self.assertRaisesRegex(oracle.InputError, "c.cat:4: not a number"):
            oracle.parse_catalogue(HEADER + "1 2.0 abc\n", "c.cat")

    def test_truth_missing_column(self):
        with self.assertRaisesRegex(oracle.InputError, "missing column.*flux"):
            oracle.parse_truth("x,y\n1,2\n")


class EvaluateTest(unittest.TestCase):
    def test_exact_catalogue_passes(self):
        truth = field()
        ok, msg = oracle.evaluate(truth, [(x, y) for x, y, _ in truth])
        self.assertTrue(ok, msg)

    def test_small_offsets_pass_large_fail(self):
        truth = field()
        near = [(x + 1.0, y - 1.0) for x, y, _ in truth]  # 1.41 px
        self.assertTrue(oracle.evaluate(truth, near)[0])
        far = [(x + 1.2, y - 1.2) for x, y, _ in truth]  # 1.70 px
        ok, msg = oracle.evaluate(truth, far)
        self.assertFalse(ok)
        self.assertIn("missed", msg)

    def test_missing_bright_stars_fail_at_ninety_percent(self):
        truth = [(20.0 + 7 * i, 50.0, 5000.0) for i in range(20)]
        dets = [(x, y) for x, y, _ in truth]
        self.assertTrue(oracle.evaluate(truth, dets[:18])[0])  # 90%
        self.assertFalse(oracle.evaluate(truth, dets[:17])[0])  # 85%

    def test_faint_stars_need_not_be_found_but_do_not_count_as_spurious(self):
        truth = [(20.0, 20.0, 5000.0), (60.0, 60.0, 100.0)]
        self.assertTrue(oracle.evaluate(truth, [(20.0, 20.0)])[0])
        ok, msg = oracle.evaluate(truth, [(20.0, 20.0), (60.2, 60.0)])
        self.assertTrue(ok, msg)
        self.assertIn("0 spurious", msg)

    def test_spurious_limit(self):
        truth = [(20.0 + 7 * i, 50.0, 5000.0) for i in range(30)]
        dets = [(x, y) for x, y, _ in truth]
        junk = [(10.0 + 7 * i, 200.0) for i in range(4)]
        self.assertTrue(oracle.evaluate(truth, dets + junk[:3])[0])  # 3 <= floor(0.1 * 33)
        ok, msg = oracle.evaluate(truth, dets + junk)  # 4 > floor(0.1 * 34)
        self.assertFalse(ok)
        self.assertIn("too many spurious", msg)

    def test_one_detection_matches_one_star(self):
        truth = [(50.0, 50.0, 5000.0), (51.0, 50.0, 4000.0)]
        ok, msg = oracle.evaluate(truth, [(50.5, 50.0)], min_recovered=1.0)
        self.assertFalse(ok, msg)

    def test_wrong_field_fails(self):
        ok, _ = oracle.evaluate(field(seed=1), [(x, y) for x, y, _ in field(seed=2)])
        self.assertFalse(ok)


class CommandLineTest(unittest.TestCase):
    def run_oracle(self, *args):
        return subprocess.run(
            [sys.executable, os.path.join(os.path.dirname(__file__), "oracle.py"), *args],
            capture_output=True,
            text=True,
        )

    def test_exit_codes(self):
        truth = field()
        with tempfile.TemporaryDirectory() as d:
            cat, tru = os.path.join(d, "f.cat"), os.path.join(d, "f.csv")
            with open(tru, "w") as f:
                f.write("x,y,flux,ra,dec\n" + "".join(f"{x},{y},{fl},0,0\n" for x, y, fl in truth))
            with open(cat, "w") as f:
                f.write(catalogue([(x, y) for x, y, _ in truth]))
            r = self.run_oracle(cat, tru)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("oracle: PASS", r.stdout)
            with open(cat, "w") as f:
                f.write(catalogue([(x + 3, y) for x, y, _ in truth]))
            r = self.run_oracle(cat, tru)
            self.assertEqual(r.returncode, 1)
            self.assertIn("oracle: FAIL", r.stdout)
            self.assertEqual(self.run_oracle(os.path.join(d, "none.cat"), tru).returncode, 2)
            self.assertEqual(self.run_oracle(cat, "--min-sources", "30").returncode, 0)
            self.assertEqual(self.run_oracle(cat, "--min-sources", "31").returncode, 1)


if __name__ == "__main__":
    unittest.main()
