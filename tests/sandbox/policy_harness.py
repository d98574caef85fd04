"""Shared set-up for the policy and environment escape tests
(test_policy_*.py, test_env_*.py): a private tree under /tmp or /var/tmp
owned by the uid the server runs as, a server (as root or as an
unprivileged uid, with its own state directory), and small attempts run
inside the sandbox that exit 0 when the action worked and 1 when the
kernel refused it.

Each escape is checked twice: refused inside the sandbox, then done by the
same uid without a sandbox (dangerFullAccess), so a refusal that comes from
plain file permissions does not count as the sandbox holding."""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import wardenrpc  # noqa: E402
from wardenrpc import Server  # noqa: E402

PY = "/usr/bin/python3"
FULL = {"type": "dangerFullAccess"}
WORKSPACE = {"type": "workspaceWrite"}
NOBODY = (65534, 65534)
USERS = [None, NOBODY]
LOCATIONS = ["/tmp", "/var/tmp"]

# One action per attempt; exit 0 when it worked, 1 when refused (OSError).
ATTEMPT = r"""
import os, sys
action, path = sys.argv[1], sys.argv[2]
try:
    if action == "write":
        with open(path, "a") as f:
            f.write("planted\n")
    elif action == "create":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "x") as f:
            f.write("planted\n")
    elif action == "read":
        with open(path) as f:
            f.read()
    elif action == "relink":
        os.rename(path, path + ".old")
        os.symlink("/", path)
    else:
        sys.exit(2)
except OSError as e:
    print("refused %s %s: %s" % (action, path, e))
    sys.exit(1)
print("done %s %s" % (action, path))
"""


def label(user, location):
    return "%s@%s" % ("uid65534" if user else "root", location)


class Box:
    def __init__(self, user, location, env=None, server_cwd=None):
        self.user = user
        self.uid = user[0] if user else 0
        self.gid = user[1] if user else 0
        self.base = os.path.realpath(tempfile.mkdtemp(prefix="warden-h9-", dir=location))
        os.chmod(self.base, 0o755)
        self.state = self.mkdir("state")
        self.bin = os.path.join(self.base, "warden")
        shutil.copy(wardenrpc.WARDEN_BIN, self.bin)
        os.chmod(self.bin, 0o755)
        self.env = {"HOME": self.mkdir("home"), "TMPDIR": "/tmp",
                    "XDG_STATE_HOME": self.state, "WARDEN_LOG": "error"}
        if env:
            self.env.update(env)
        self.server_cwd = server_cwd or self.base
        self.server = None
        self.n = 0

    def path(self, rel):
        return os.path.join(self.base, rel)

    def mkdir(self, rel):
        p = self.path(rel)
        os.makedirs(p, exist_ok=True)
        self._own(p)
        return p

    def write(self, rel, content="x\n"):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(content)
        self._own(p)
        return p

    def _own(self, p):
        # chown everything from p up to (not including) the base
        while p.startswith(self.base + "/"):
            os.lchown(p, self.uid, self.gid)
            p = os.path.dirname(p)

    def start(self):
        saved = wardenrpc.WARDEN_BIN
        wardenrpc.WARDEN_BIN = self.bin
        try:
            self.server = Server(env=self.env, user=self.user, cwd=self.server_cwd)
        finally:
            wardenrpc.WARDEN_BIN = saved
        return self

    def spawn(self, argv, sandbox, cwd, env=None, **extra):
        """Returns (response, exit_code, output); exit_code None on an error."""
        self.n += 1
        pid = "p%d" % self.n
        params = {"processId": pid, "argv": argv, "sandbox": sandbox}
        if cwd is not None:
            params["cwd"] = cwd
        if env is not None:
            params["env"] = env
        params.update(extra)
        r = self.server.request("process/spawn", params, timeout=60)
        if "error" in r:
            return r, None, ""
        x = self.server.wait_exit(pid, timeout=60)
        return r, x["exitCode"], self.server.output_of(pid).decode("utf-8", "replace")

    def attempt(self, action, path, sandbox, cwd):
        r, code, out = self.spawn([PY, "-c", ATTEMPT, action, path], sandbox, cwd)
        assert code is not None, r
        return code, out

    def refused(self, action, path, sandbox, cwd, baseline=True, what=""):
        """The sandbox refuses; the same uid without a sandbox can."""
        code, out = self.attempt(action, path, sandbox, cwd)
        assert code == 1, "%s: %s %s was not refused (%s): %s" % (what, action, path,
                                                                  label(self.user, self.base),
                                                                  out)
        if baseline:
            code, out = self.attempt(action, path, FULL, cwd if os.path.isdir(cwd) else "/")
            assert code == 0, "%s: baseline %s %s failed: %s" % (what, action, path, out)

    def allowed(self, action, path, sandbox, cwd, what=""):
        code, out = self.attempt(action, path, sandbox, cwd)
        assert code == 0, "%s: %s %s refused: %s" % (what, action, path, out)

    def close(self):
        count = os.environ.get("WARDEN_TEST_COUNT_FILE")  # escape-suite size, for reports
        if count:
            with open(count, "a") as f:
                f.write("%s %d\n" % (label(self.user, os.path.dirname(self.base)), self.n))
        if self.server:
            self.server.close()
        shutil.rmtree(self.base, ignore_errors=True)


def each_setup(fn, locations=LOCATIONS, users=USERS):
    """Run fn(user, location) for both uids and both workspace locations;
    returns the number of setups run."""
    n = 0
    for user in users:
        for loc in locations:
            fn(user, loc)
            n += 1
    return n
