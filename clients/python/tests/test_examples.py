"""The README's examples and the top-level demo run against the real binary,
and the README shows the example files verbatim."""

import os
import subprocess
import sys
import time
import unittest

from support import PACKAGE_ROOT, REPO_ROOT, real_warden

EXAMPLES = os.path.join(PACKAGE_ROOT, "examples")


def run(argv, timeout=60):
    env = dict(os.environ, WARDEN_BIN=real_warden(), PYTHONPATH=PACKAGE_ROOT)
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    if proc.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (argv, proc.returncode, out, err))
    return out, time.monotonic() - started


class ExamplesTest(unittest.TestCase):
    def test_readme_shows_the_examples_verbatim(self):
        with open(os.path.join(PACKAGE_ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        for name in ("quickstart.py", "quickstart_async.py"):
            with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
                self.assertIn("```python\n" + f.read() + "```", readme, name)

    def test_quickstart(self):
        outside = os.path.join(os.path.expanduser("~"), "outside.txt")
        existed = os.path.exists(outside)
        out, _ = run([sys.executable, os.path.join(EXAMPLES, "quickstart.py")])
        lines = dict(line.split(": ", 1) for line in out.splitlines())
        self.assertIn("24 80", lines["before resize"])
        self.assertIn("40 120", lines["after resize"])
        self.assertEqual(lines["shell exit code"], "3")
        self.assertIn("'enforced': True", lines["sandbox"])
        self.assertEqual(lines["stdout"], "wrote inside.txt")
        self.assertIn("outside.txt: Read-only file system", lines["stderr"])
        self.assertEqual(lines["exit code"], "2")
        self.assertTrue(lines["error"].startswith("-32004 "), lines["error"])
        self.assertIn("'errno': 2", lines["error"])
        if not existed:
            self.assertFalse(os.path.exists(outside), "the sandbox let a write through")

    def test_quickstart_async(self):
        out, _ = run([sys.executable, os.path.join(EXAMPLES, "quickstart_async.py")])
        lines = out.splitlines()
        self.assertEqual(lines[:3], ["p1 done 3 exit 0", "p2 done 1 exit 0", "p3 done 2 exit 0"])
        # A chunk may hold more than one line: compare the text, not the chunks.
        streamed = [line.replace("output: ", "", 1) for line in lines[3:-1]]
        self.assertEqual(streamed, ["tick 1", "tick 2", "tick 3"])
        self.assertEqual(lines[-1], "exited: 0")

    def test_demo(self):
        out, _ = run([sys.executable, os.path.join(REPO_ROOT, "examples", "demo.py"),
                      "--warden", real_warden()])
        for expected in ("server      warden ", "hello from /dev/", "30 100",
                         "process/exited says exitCode=7", "HELLO THROUGH A PIPE",
                         "a note on stderr", "exit code   3", "enforced    True",
                         "wrote inside.txt", "Read-only file system",
                         "cannot create .git/config", ".git/config unchanged: True",
                         "warden exited with 0"):
            self.assertIn(expected, out)
        self.assertNotIn("wrote .git/config", out)
        self.assertRegex(out, r"warden-demo-\d+\.txt: absent")


if __name__ == "__main__":
    unittest.main()
