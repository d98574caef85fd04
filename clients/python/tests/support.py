"""Shared test helpers: where the package, the fake server and the real binary are."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(PACKAGE_ROOT))
sys.path.insert(0, PACKAGE_ROOT)

FAKE_SERVER = os.path.join(HERE, "fake_warden.py")

UNSANDBOXED = {"type": "dangerFullAccess"}


def fake_client_args():
    """Arguments for WardenClient/AsyncWardenClient that start the fake server."""
    return {"warden": sys.executable, "args": [FAKE_SERVER]}


def real_warden():
    """The real binary: $WARDEN_BIN (must exist when set), else build/server/warden.

    Tests that need it are skipped when neither exists, so the suite still runs
    before the server builds; ctest always sets WARDEN_BIN."""
    path = os.environ.get("WARDEN_BIN")
    if path:
        if not os.access(path, os.X_OK):
            raise AssertionError("WARDEN_BIN=%s is not an executable file" % path)
        return path
    path = os.path.join(REPO_ROOT, "build", "server", "warden")
    if os.access(path, os.X_OK):
        return path
    raise unittest.SkipTest("no warden binary: set WARDEN_BIN or build into build/")
