"""clients/python installs with pip into a fresh venv without the network
(--no-build-isolation --no-index: Debian's python3-setuptools, python3-wheel
and python3-venv build it), ships py.typed, declares no dependencies, and the
README's example runs from the installed package against the built binary,
found through $WARDEN_BIN, then through PATH."""

import os
import re
import shutil
import sys
import unittest

from support import SOURCE_DIR, WARDEN_BIN, TempDirTest, run

CLIENT = os.path.join(SOURCE_DIR, "clients", "python")


def readme_examples():
    with open(os.path.join(CLIENT, "README.md"), encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


class PythonPackage(TempDirTest):
    def setUp(self):
        super().setUp()
        # Built from a copy: pip builds in the tree (build/, *.egg-info).
        self.src = os.path.join(self.tmp, "src")
        shutil.copytree(CLIENT, self.src, ignore=shutil.ignore_patterns(
            "__pycache__", "build", "*.egg-info", "tests"))
        self.venv = os.path.join(self.tmp, "venv")
        # One interpreter throughout: the one running this test (ctest runs it
        # with /usr/bin/python3 when there is one, see CMakeLists.txt).
        run([sys.executable, "-m", "venv", "--system-site-packages", self.venv])
        self.python = os.path.join(self.venv, "bin", "python")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONPATH", "WARDEN_BIN", "PYTHONHOME")}
        self.env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
                        PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1")
        run([self.python, "-m", "pip", "install", "--no-build-isolation", "--no-index", self.src],
            env=self.env, cwd=self.tmp)

    def py(self, code, **env):
        return run([self.python, "-c", code], env=dict(self.env, **env), cwd=self.tmp)

    def test_installed_package(self):
        out = self.py(
            "import importlib.metadata as m, os, warden_client\n"
            "print(os.path.dirname(warden_client.__file__))\n"
            "print(m.version('warden-client'), warden_client.__version__)\n"
            "print(m.requires('warden-client'))\n").splitlines()
        package_dir = out[0]
        self.assertTrue(package_dir.startswith(os.path.join(self.venv, "lib")), package_dir)
        self.assertTrue(os.path.isfile(os.path.join(package_dir, "py.typed")))
        version, module_version = out[1].split()
        self.assertEqual(version, module_version)
        self.assertEqual(out[2], "None")  # no dependencies

    def check_quickstart(self, out):
        lines = dict(line.split(": ", 1) for line in out.splitlines())
        self.assertIn("'name': 'warden'", lines["server"])
        self.assertIn("40 120", lines["after resize"])
        self.assertEqual(lines["shell exit code"], "3")
        self.assertIn("'enforced': True", lines["sandbox"])
        self.assertEqual(lines["stdout"], "wrote inside.txt")
        self.assertIn("Read-only file system", lines["stderr"])
        self.assertEqual(lines["exit code"], "2")
        self.assertTrue(lines["error"].startswith("-32004 "), lines["error"])

    def test_readme_example_runs_from_the_venv(self):
        examples = readme_examples()
        self.assertGreaterEqual(len(examples), 2)
        script = os.path.join(self.tmp, "example.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(examples[0])
        outside = os.path.join(os.path.expanduser("~"), "outside.txt")
        existed = os.path.exists(outside)
        env = dict(self.env, WARDEN_BIN=os.path.abspath(WARDEN_BIN))
        self.check_quickstart(run([self.python, script], env=env, cwd=self.tmp))
        if not existed:
            self.assertFalse(os.path.exists(outside), "the sandbox let a write through")

        # The same with the server found on PATH instead, as after
        # `cmake --install` or the .deb.
        bindir = os.path.join(self.tmp, "bin")
        os.mkdir(bindir)
        os.symlink(os.path.abspath(WARDEN_BIN), os.path.join(bindir, "warden"))
        env = dict(self.env, PATH=bindir + os.pathsep + self.env.get("PATH", "/usr/bin:/bin"))
        self.check_quickstart(run([self.python, script], env=env, cwd=self.tmp))

        with open(script, "w", encoding="utf-8") as f:
            f.write(examples[1])
        out = run([self.python, script], env=dict(env, WARDEN_BIN=os.path.abspath(WARDEN_BIN)),
                  cwd=self.tmp).splitlines()
        self.assertEqual(out[:3], ["p1 done 3 exit 0", "p2 done 1 exit 0", "p3 done 2 exit 0"])
        self.assertEqual(out[-1], "exited: 0")


if __name__ == "__main__":
    unittest.main()
