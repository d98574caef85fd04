"""Shared set-up for the tests/sandbox/test_escape_*.py files: a server run
as root or as an unprivileged uid, with its own state directory and HOME,
and a workspace under /tmp or elsewhere (/var/tmp). Every escape is tried in
all four combinations (see matrix()).

Standard library only."""

import base64
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import wardenrpc  # noqa: E402
from wardenrpc import WARDEN_BIN, Server  # noqa: E402

PY = "/usr/bin/python3"
FULL = {"type": "dangerFullAccess"}
WORKSPACE = {"type": "workspaceWrite"}
NOBODY = (65534, 65534)
USERS = [("root", None), ("nobody", NOBODY)]
BASES = ["/tmp", "/var/tmp"]


def matrix():
    """(label, user, base) for both uids and both workspace locations."""
    for uname, user in USERS:
        for base in BASES:
            yield "%s,%s" % (uname, base), user, base


def split(entries, network="none"):
    return {"type": "split", "network": {"mode": network},
            "fileSystem": {"entries": [{"path": p, "access": a} for p, a in entries]}}


class Refused(dict):
    """The error of a refused spawn; has strip() as output has, so an
    unexpected refusal is reported by the assertion, not crashed on."""

    def strip(self):
        return "refused: %r" % dict(self)


class Env:
    """A base directory (root-owned, 0755) holding: ws/ (the workspace),
    outside/ (host files outside every writable root), home/, state/, a copy
    of probe.py and, for an unprivileged server, of the warden binary."""

    def __init__(self, user, base_parent, server_env=None, start=True):
        self.user = user
        self.uid = user[0] if user else 0
        self.gid = user[1] if user else 0
        self.base = tempfile.mkdtemp(prefix="warden-esc-", dir=base_parent)
        os.chmod(self.base, 0o755)
        self.ws = os.path.join(self.base, "ws")
        self.outside = os.path.join(self.base, "outside")
        self.home = os.path.join(self.base, "home")
        self.state = os.path.join(self.base, "state")
        for d in (self.ws, self.outside, self.home, self.state):
            os.makedirs(d)
        self.probe = os.path.join(self.base, "probe.py")
        shutil.copy(os.path.join(os.path.dirname(__file__), "probe.py"), self.probe)
        self.bin = os.path.join(self.base, "warden")
        shutil.copy(WARDEN_BIN, self.bin)
        self.chown_tree(self.base)
        os.chown(self.base, 0, 0)
        self.server_env = {"HOME": self.home, "TMPDIR": "/tmp", "XDG_STATE_HOME": self.state}
        if server_env:
            self.server_env.update(server_env)
        self.server = None
        self.n = 0
        if start:
            self.start()

    def chown_tree(self, top):
        os.lchown(top, self.uid, self.gid)
        for root, dirs, files in os.walk(top):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), self.uid, self.gid)

    def start(self):
        saved = wardenrpc.WARDEN_BIN
        wardenrpc.WARDEN_BIN = self.bin
        try:
            self.server = Server(env=self.server_env, user=self.user, cwd=self.base)
        finally:
            wardenrpc.WARDEN_BIN = saved
        return self.server

    def spawn(self, argv, sandbox, cwd=None, tty=False, server=None):
        """Start a process; returns (processId, result) or (None, error)."""
        srv = server or self.server
        self.n += 1
        pid = "p%d" % self.n
        params = {"processId": pid, "argv": argv, "cwd": cwd or self.ws, "sandbox": sandbox,
                  "tty": tty}
        r = srv.request("process/spawn", params, timeout=60)
        if "error" in r:
            return None, r["error"]
        return pid, r["result"]

    def run(self, argv, sandbox, cwd=None, tty=False, stdin=None, server=None):
        """(exitCode, output) of a finished run, or (None, error) when the
        spawn was refused."""
        srv = server or self.server
        pid, res = self.spawn(argv, sandbox, cwd, tty, server=srv)
        if pid is None:
            return None, Refused(res)
        if stdin is not None:
            srv.call("process/write", {"processId": pid,
                                       "deltaBase64": base64.b64encode(stdin).decode()})
        x = srv.wait_exit(pid, timeout=60)
        return x["exitCode"], srv.output_of(pid).decode("utf-8", "replace")

    def py(self, code, sandbox, *args, cwd=None):
        return self.run([PY, "-c", code] + [str(a) for a in args], sandbox, cwd)

    def both(self, code, sandbox, *args, cwd=None):
        """Run `code` unsandboxed (the baseline must succeed, so the attempt
        is meaningful) and then sandboxed; returns the sandboxed (code, out)."""
        bc, bout = self.py(code, FULL, *args, cwd=cwd)
        assert bc == 0, "baseline failed: %r" % bout
        return self.py(code, sandbox, *args, cwd=cwd)

    def close(self):
        if self.server:
            self.server.close()
        subprocess.run(["rm", "-rf", self.base], check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def each(fn):
    """Run fn(env, label) in all four combinations; collect failures so one
    run reports every combination that broke."""
    failures = []
    for label, user, base in matrix():
        with Env(user, base) as e:
            try:
                fn(e, label)
            except AssertionError as ex:
                failures.append("%s: %s" % (label, ex))
    assert not failures, "\n".join(failures)
