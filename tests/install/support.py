"""Shared pieces of the install tests: where things are, and running commands."""

import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("WARDEN_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("WARDEN_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
WARDEN_BIN = os.environ.get("WARDEN_BIN") or os.path.join(BUILD_DIR, "server", "warden")
CMAKE = os.environ.get("CMAKE_COMMAND") or "cmake"
CPACK = os.environ.get("CPACK_COMMAND") or "cpack"


def run(argv, **kw):
    """Run argv, return its stdout (text); fail the test with its output on error."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("universal_newlines", True)
    p = subprocess.run(argv, **kw)
    if p.returncode != 0:
        raise AssertionError("%s exited with %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(map(str, argv)), p.returncode, p.stdout, p.stderr))
    return p.stdout


def contract_docs():
    """The docs/*.md of the source tree (what `cmake --install` ships besides README.md)."""
    docs = os.path.join(SOURCE_DIR, "docs")
    if not os.path.isdir(docs):
        return []
    return sorted(f for f in os.listdir(docs) if f.endswith(".md"))


def help_paths(help_text):
    """The contract files and the schema directory that `warden --help` names."""
    contract, schema = [], None
    for line in help_text.splitlines():
        if line.startswith("protocol:"):
            contract = [p.strip() for p in line[len("protocol:"):].split(",")]
        elif line.startswith("schema:"):
            schema = line[len("schema:"):].split()[0]
    return contract, schema


class TempDirTest(unittest.TestCase):
    """A test with its own temporary directory, self.tmp, removed afterwards."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="warden-install-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
