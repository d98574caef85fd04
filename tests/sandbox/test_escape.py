"""Sandbox escape attempts through the protocol, as root and again with the
server running as an unprivileged uid. For workspace-write with network
none, every attempt must fail while the same command without the sandbox
succeeds; the everyday things must keep working."""

import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from wardenrpc import WARDEN_BIN, Server, run_tests  # noqa: E402

PY = "/usr/bin/python3"
FULL = {"type": "dangerFullAccess"}
WORKSPACE = {"type": "workspaceWrite"}
NOBODY = (65534, 65534)
HOST_TCP_PORTS = [53, 853, 445, 139, 0]  # 0: an ephemeral port


class Listeners:
    """TCP and UDP listeners on the host's 127.0.0.1 and a unix socket; they
    record every connection or datagram that reaches them."""

    def __init__(self, unix_path):
        self.hits = []
        self.tcp = {}
        self.socks = []
        for port in HOST_TCP_PORTS:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue  # something on this machine has the port; skip it
            s.listen(16)
            self.tcp[port or s.getsockname()[1]] = s
            self.socks.append(s)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp_port = self.udp.getsockname()[1]
        self.socks.append(self.udp)
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(unix_path)
        os.chmod(unix_path, 0o666)
        self.unix.listen(16)
        self.socks.append(self.unix)
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import select
        while not self.stop:
            r, _, _ = select.select(self.socks, [], [], 0.1)
            for s in r:
                if s is self.udp:
                    data, addr = s.recvfrom(1024)
                    self.hits.append(("udp", data))
                else:
                    c, _ = s.accept()
                    self.hits.append(("conn", s.getsockname()))
                    c.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        for s in self.socks:
            s.close()


def make_workspace(base, name, owner):
    ws = os.path.join(base, name)
    os.makedirs(os.path.join(ws, ".git", "hooks"))
    with open(os.path.join(ws, ".git", "config"), "w") as f:
        f.write("[core]\n")
    os.makedirs(os.path.join(ws, ".codex"))
    with open(os.path.join(ws, ".codex", "config.toml"), "w") as f:
        f.write("x = 1\n")
    return ws


class Env:
    def __init__(self, user):
        self.user = user
        self.base = tempfile.mkdtemp(prefix="warden-sbx-", dir="/var/tmp")
        os.chmod(self.base, 0o755)
        uid = user[0] if user else 0
        gid = user[1] if user else 0
        self.free = make_workspace(self.base, "free", uid)      # for unsandboxed runs
        self.ws = make_workspace(self.base, "ws", uid)          # for sandboxed runs
        self.outside = os.path.join(self.base, "outside")
        os.makedirs(self.outside)
        self.secret = os.path.join(self.base, "secret")
        os.makedirs(self.secret)
        with open(os.path.join(self.secret, "key"), "w") as f:
            f.write("hidden\n")
        self.home = os.path.join(self.base, "home")
        os.makedirs(self.home)
        self.probe = os.path.join(self.base, "probe.py")
        shutil.copy(os.path.join(os.path.dirname(__file__), "probe.py"), self.probe)
        self.bin = os.path.join(self.base, "warden")
        shutil.copy(WARDEN_BIN, self.bin)
        for root, dirs, files in os.walk(self.base):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), uid, gid)
        os.chown(self.base, 0, 0)
        self.listeners = Listeners(os.path.join(self.outside, "sock"))
        env = {"HOME": self.home, "TMPDIR": "/tmp"}
        if user:
            # The unprivileged server runs a copy of the binary it can execute
            # wherever the build tree lives.
            import wardenrpc
            saved = wardenrpc.WARDEN_BIN
            wardenrpc.WARDEN_BIN = self.bin
            try:
                self.server = Server(env=env, user=user, cwd=self.base)
            finally:
                wardenrpc.WARDEN_BIN = saved
        else:
            self.server = Server(env=env)
        self.n = 0

    def run(self, argv, sandbox, cwd, tty=False, stdin=None):
        self.n += 1
        pid = "p%d" % self.n
        params = {"processId": pid, "argv": argv, "cwd": cwd, "sandbox": sandbox, "tty": tty}
        r = self.server.request("process/spawn", params)
        if "error" in r:
            return None, r["error"]
        if stdin is not None:
            self.server.call("process/write", {"processId": pid,
                                               "deltaBase64": base64.b64encode(stdin).decode()})
        x = self.server.wait_exit(pid, timeout=60)
        return x["exitCode"], self.server.output_of(pid).decode("utf-8", "replace")

    def probe_both(self, name, *args, in_ws=None, baseline_required=True, tty=False,
                   base_wrap=None):
        """Run probe NAME unsandboxed (in the free workspace, under base_wrap
        when given) and sandboxed (in ws). Returns (baseline_code,
        sandboxed_code, sandboxed_output)."""
        def argv_for(ws, wrap):
            a = [PY, self.probe, name] + [x.replace("{ws}", ws) for x in args]
            return (wrap or []) + a
        base_code, base_out = self.run(argv_for(self.free, base_wrap), FULL, self.free, tty=tty)
        if baseline_required:
            assert base_code == 0, "baseline %s failed: %s" % (name, base_out)
        code, out = self.run(argv_for(self.ws, None), WORKSPACE, self.ws, tty=tty)
        assert code is not None, out
        return base_code, code, out

    def close(self):
        self.server.close()
        self.listeners.close()
        shutil.rmtree(self.base, ignore_errors=True)


def check_escapes(user):
    e = Env(user)
    try:
        # Filesystem
        for target in ["{ws}/../outside/file", "{ws}/.git/config", "{ws}/.git/hooks/pre-commit",
                       "{ws}/.codex/config.toml"]:
            _, code, out = e.probe_both("write", target)
            assert code == 1, (target, out)
        _, code, out = e.probe_both("mkdir", "{ws}/.agents")
        assert code == 1, out
        assert not os.path.exists(os.path.join(e.ws, ".agents")), "mount point left behind"
        _, code, out = e.probe_both("replace-with-symlink", "{ws}/.codex")
        assert code == 1, out
        assert not os.path.islink(os.path.join(e.ws, ".codex"))
        with open(os.path.join(e.ws, ".git", "config")) as f:
            assert f.read() == "[core]\n"
        # Processes and kernel surfaces
        _, code, out = e.probe_both("ptrace")
        assert code == 1, out
        # The baseline mounts in a mount namespace of its own (with a user
        # namespace when unprivileged), never on the host's tree.
        base_wrap = ["unshare", "-Urm"] if user else ["unshare", "-m"]
        mnt = os.path.join(e.base, "outside")
        _, code, out = e.probe_both("mount", mnt, base_wrap=base_wrap)
        assert code == 1, out
        _, code, out = e.probe_both("userns")
        assert code == 1, out
        _, code, out = e.probe_both("io_uring")
        assert code == 1 and "EPERM" in out, out
        _, code, out = e.probe_both("tiocsti", tty=True)
        assert code == 1 and "EPERM" in out, out
        _, code, out = e.probe_both("netlink")
        assert code == 1, out
        # Network: nothing reaches the host's loopback.
        _, code, out = e.probe_both("icmp", "127.0.0.1", baseline_required=user is None)
        assert code == 1, out
        for port in e.listeners.tcp:
            before = len(e.listeners.hits)
            _, code, out = e.probe_both("tcp", "127.0.0.1", str(port))
            time.sleep(0.05)
            assert code == 1, (port, out)
            assert len(e.listeners.hits) == before + 1, "only the baseline may connect"
        before = len(e.listeners.hits)
        _, code, out = e.probe_both("udp", "127.0.0.1", str(e.listeners.udp_port))
        time.sleep(0.2)
        assert len(e.listeners.hits) == before + 1, e.listeners.hits
        for port in ["53", "853"]:  # DNS and DoT to a resolver, over UDP
            _, code, out = e.probe_both("udp", "127.0.0.1", port)
        before = len(e.listeners.hits)
        _, code, out = e.probe_both("unix", os.path.join(e.outside, "sock"))
        time.sleep(0.05)
        assert code == 1, out
        assert len(e.listeners.hits) == before + 1
        # An unreadable root in a split policy.
        split = {"type": "split", "network": {"mode": "none"}, "fileSystem": {"entries": [
            {"path": ":root", "access": "read"}, {"path": e.ws, "access": "write"},
            {"path": e.secret, "access": "none"}]}}
        code, out = e.run([PY, e.probe, "read", os.path.join(e.secret, "key")], FULL, e.free)
        assert code == 0, out
        code, out = e.run([PY, e.probe, "read", os.path.join(e.secret, "key")], split, e.ws)
        assert code == 1, out

        # What must keep working.
        code, out = e.run(["sh", "-c", "echo hi > made.txt && cat made.txt"], WORKSPACE, e.ws)
        assert code == 0 and "hi" in out, out
        code, out = e.run(["sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c"],
                          WORKSPACE, e.ws)
        assert code == 0 and "4" in out, out
        code, out = e.run(["sh", "-c", "ls /usr/bin >/dev/null && cat /etc/os-release | head -1"],
                          WORKSPACE, e.ws)
        assert code == 0, out
        code, out = e.run(["sh", "-c", "tty && echo pty-ok"], WORKSPACE, e.ws, tty=True)
        assert code == 0 and "pty-ok" in out, out
        code, out = e.run(["sh", "-c", "echo $WARDEN_SANDBOX $WARDEN_SANDBOX_NETWORK"], WORKSPACE,
                          e.ws)
        assert out.strip() == "1 proxy", out  # networkAccess:false is mode proxy
        # git status in a worktree (a .git file with gitdir:)
        repo = os.path.join(e.ws, "repo")
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main"]
        setup = (" ".join(git) + " init -q repo && cd repo && echo a > a && " + " ".join(git) +
                 " add a && " + " ".join(git) + " commit -qm a && " + " ".join(git) +
                 " worktree add -q ../wt")
        code, out = e.run(["sh", "-c", setup], FULL, e.ws)
        assert code == 0, out
        wt = os.path.join(e.ws, "wt")
        code, out = e.run(git + ["status", "--short"], WORKSPACE, wt)
        assert code == 0, out
        # the worktree's gitdir target is protected too
        code, out = e.run([PY, e.probe, "write", os.path.join(repo, ".git", "worktrees", "wt",
                                                              "HEAD")], WORKSPACE, wt)
        assert code == 1, out
    finally:
        e.close()


def test_escapes_as_root():
    check_escapes(None)


def test_escapes_unprivileged():
    check_escapes(NOBODY)


def test_warden_run_cli():
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        p = subprocess.run([WARDEN_BIN, "run", "--cwd", d, "--", "sh", "-c",
                            "echo ok > f && cat f && touch /var/tmp/warden-run-escape"],
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        assert p.stdout == b"ok\n", p
        assert p.returncode != 0
        assert not os.path.exists("/var/tmp/warden-run-escape")
        p = subprocess.run([WARDEN_BIN, "run", "--sandbox", '{"type":"nope"}', "--", "true"],
                           capture_output=True, timeout=60)
        assert p.returncode == 2 and b"sandbox.type" in p.stderr
        p = subprocess.run([WARDEN_BIN, "run", "--sandbox", '{"type":"dangerFullAccess"}', "--",
                            "sh", "-c", "exit 5"], capture_output=True, timeout=60)
        assert p.returncode == 5


if __name__ == "__main__":
    run_tests(globals())
