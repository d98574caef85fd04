"""How the client finds the server: the `warden` argument, else $WARDEN_BIN,
else `warden` on PATH, with one error naming all three when none gives one
(clients/ts/test/discovery.test.ts checks the TypeScript client the same way)."""

import os
import shutil
import stat
import tempfile
import unittest
from unittest import mock

import support  # noqa: F401  (puts the package on sys.path)
from support import real_warden
from warden_client import WardenClient, WardenNotFoundError, find_warden


def executable(path):
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(path, stat.S_IRWXU)
    return path


class Discovery(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="warden-discovery-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        for d in ("arg", "env", "path", "empty"):
            os.mkdir(os.path.join(self.tmp, d))
        self.arg = executable(os.path.join(self.tmp, "arg", "warden"))
        self.env = executable(os.path.join(self.tmp, "env", "warden"))
        self.on_path = executable(os.path.join(self.tmp, "path", "warden"))
        self.path_dir = os.path.join(self.tmp, "path")
        self.empty_dir = os.path.join(self.tmp, "empty")

    def environ(self, warden_bin=None, path=None):
        env = {k: v for k, v in os.environ.items() if k != "WARDEN_BIN"}
        if warden_bin is not None:
            env["WARDEN_BIN"] = warden_bin
        env["PATH"] = path if path is not None else self.path_dir
        return mock.patch.dict(os.environ, env, clear=True)

    def test_the_argument_comes_first(self):
        with self.environ(warden_bin=self.env):
            self.assertEqual(find_warden(self.arg), self.arg)

    def test_then_warden_bin(self):
        with self.environ(warden_bin=self.env):
            self.assertEqual(find_warden(), self.env)
            self.assertEqual(find_warden(None), self.env)

    def test_then_path(self):
        with self.environ():
            self.assertEqual(find_warden(), self.on_path)
        with self.environ(warden_bin=""):  # set but empty counts as unset
            self.assertEqual(find_warden(), self.on_path)

    def test_none_found_names_all_three(self):
        with self.environ(path=self.empty_dir):
            with self.assertRaises(WardenNotFoundError) as caught:
                find_warden()
        message = str(caught.exception)
        self.assertIsInstance(caught.exception, FileNotFoundError)
        for place in ("`warden` argument", "$WARDEN_BIN", "on PATH", self.empty_dir):
            self.assertIn(place, message)

    def test_a_bad_value_is_an_error_not_a_fallback(self):
        missing = os.path.join(self.tmp, "nowhere", "warden")
        with self.environ(warden_bin=missing):
            with self.assertRaises(WardenNotFoundError) as caught:
                find_warden()
            self.assertIn("$WARDEN_BIN", str(caught.exception))
            self.assertIn(missing, str(caught.exception))
            with self.assertRaises(WardenNotFoundError) as caught:
                find_warden(os.path.join(self.tmp, "arg"))  # a directory
            self.assertIn("`warden` argument", str(caught.exception))
        not_executable = os.path.join(self.tmp, "plain")
        open(not_executable, "w").close()
        with self.environ(warden_bin=not_executable):
            with self.assertRaises(WardenNotFoundError):
                find_warden()

    def test_a_bare_name_is_looked_up_on_path_and_paths_become_absolute(self):
        with self.environ():
            self.assertEqual(find_warden("warden"), self.on_path)
            with self.assertRaises(WardenNotFoundError):
                find_warden("no-such-warden-binary")
        cwd = os.getcwd()
        os.chdir(self.tmp)
        try:
            with self.environ(path=self.empty_dir):
                self.assertEqual(find_warden(os.path.join("env", "warden")), self.env)
        finally:
            os.chdir(cwd)

    def test_the_client_starts_the_server_found_on_path(self):
        binary = real_warden()
        bindir = os.path.join(self.tmp, "bin")
        os.mkdir(bindir)
        os.symlink(binary, os.path.join(bindir, "warden"))
        with self.environ(path=bindir + os.pathsep + "/usr/bin:/bin"):
            with WardenClient() as client:
                self.assertEqual(client.server_info["serverInfo"]["name"], "warden")
        with self.environ(path=self.empty_dir):
            with self.assertRaises(WardenNotFoundError):
                WardenClient()


if __name__ == "__main__":
    unittest.main()
