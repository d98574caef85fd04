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
# Workspace write with no network at all, spelled out: what networkAccess:false
# means may change (mode proxy), what these escapes test must not.
WORKSPACE = {"type": "split", "network": {"mode": "none"}, "fileSystem": {"entries": [
    {"path": ":root", "access": "read"}, {"path": ":cwd", "access": "write"}]}}
NOBODY = (65534, 65534)
HOST_TCP_LISTENERS = 2  # ephemeral ports (bind 0): fixed ones collide with other tests


class Listeners:
    """TCP and UDP listeners on the host's 127.0.0.1 and a unix socket; they
    record every connection or datagram that reaches them."""

    def __init__(self, unix_path):
        self.hits = []
        self.tcp = {}
        self.socks = []
        for _ in range(HOST_TCP_LISTENERS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            self.tcp[s.getsockname()[1]] = s
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

    def wait_hits(self, n):
        """Wait until n hits were recorded (the baseline's connection is
        accepted by our thread, asynchronously)."""
        deadline = time.time() + 30
        while len(self.hits) < n and time.time() < deadline:
            time.sleep(0.01)
        return len(self.hits)

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
    def __init__(self, user, server_env=None):
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
        env.update(server_env or {})
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
            self.server = Server(env=env, cwd=self.base)
        self.n = 0
        self.outside_writes = 0

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


# Each escape attempt, with the layers that stop it on their own (workspace
# write, network none, namespaces backend). test_layers.py switches one layer
# off at a time and asserts every attempt that another layer also stops is
# still refused; an attempt with a single layer is that layer's guarantee,
# and the layer-view test there proves the layer is applied.
def esc_write_outside(e):
    _, code, out = e.probe_both("write", "{ws}/../outside/file")
    assert code == 1, out
    with open(os.path.join(e.outside, "file")) as f:
        assert f.read().count("probe") == e.outside_writes + 1, "only the baseline may write"
    e.outside_writes += 1


def esc_write_protected(e):
    for target in ["{ws}/.git/config", "{ws}/.git/hooks/pre-commit", "{ws}/.codex/config.toml"]:
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


def esc_ptrace(e):
    _, code, out = e.probe_both("ptrace")
    assert code == 1, out


def esc_mount(e):
    # The baseline mounts in a mount namespace of its own (with a user
    # namespace when unprivileged), never on the host's tree.
    base_wrap = ["unshare", "-Urm"] if e.user else ["unshare", "-m"]
    _, code, out = e.probe_both("mount", e.outside, base_wrap=base_wrap)
    assert code == 1, out


def esc_userns(e):
    _, code, out = e.probe_both("userns")
    assert code == 1, out


def esc_io_uring(e):
    _, code, out = e.probe_both("io_uring")
    assert code == 1 and "EPERM" in out, out


def esc_tiocsti(e):
    _, code, out = e.probe_both("tiocsti", tty=True)
    assert code == 1 and "EPERM" in out, out


def esc_netlink(e):
    _, code, out = e.probe_both("netlink")
    assert code == 1, out


def esc_icmp(e):
    # The control: an unprivileged uid may not open ICMP sockets on this
    # host (ping_group_range), so its baseline runs as root of a user and
    # network namespace of its own, where the probe must work.
    wrap = None
    if e.user:
        wrap = ["unshare", "-Urn", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    _, code, out = e.probe_both("icmp", "127.0.0.1", base_wrap=wrap)
    assert code == 1, out


def esc_tcp(e):
    for port in e.listeners.tcp:
        before = len(e.listeners.hits)
        _, code, out = e.probe_both("tcp", "127.0.0.1", str(port))
        assert code == 1, (port, out)
        assert e.listeners.wait_hits(before + 1) == before + 1, "the baseline must connect"
    # a sandboxed connection would have been accepted before the next probe's
    # baseline; the last one is checked after the unix probe below


def esc_udp_refused(e):
    # no datagram socket at all in network mode none (seccomp): the send
    # fails, to our listener and to a DNS-shaped port alike
    for port in [str(e.listeners.udp_port), "53"]:
        code, out = e.run([PY, e.probe, "udp", "127.0.0.1", port], WORKSPACE, e.ws)
        assert code == 1, (port, out)


def esc_udp_reach(e):
    # Whatever the send returns, no sandboxed datagram reaches the host's
    # loopback. The sandboxed send goes first; the baseline's datagram,
    # queued behind it on the same socket, is the event we wait for.
    before = len(e.listeners.hits)
    code, out = e.run([PY, e.probe, "udp", "127.0.0.1", str(e.listeners.udp_port)], WORKSPACE,
                      e.ws)
    assert code is not None, out
    code, out = e.run([PY, e.probe, "udp", "127.0.0.1", str(e.listeners.udp_port)], FULL, e.free)
    assert code == 0, "baseline: " + out
    assert e.listeners.wait_hits(before + 1) >= before + 1, "the baseline datagram must arrive"
    assert len(e.listeners.hits) == before + 1, e.listeners.hits[before:]


def esc_unix(e):
    before = len(e.listeners.hits)
    _, code, out = e.probe_both("unix", os.path.join(e.outside, "sock"))
    assert code == 1, out
    assert e.listeners.wait_hits(before + 1) == before + 1


def esc_unreadable(e):
    split = {"type": "split", "network": {"mode": "none"}, "fileSystem": {"entries": [
        {"path": ":root", "access": "read"}, {"path": e.ws, "access": "write"},
        {"path": e.secret, "access": "none"}]}}
    code, out = e.run([PY, e.probe, "read", os.path.join(e.secret, "key")], FULL, e.free)
    assert code == 0, out
    code, out = e.run([PY, e.probe, "read", os.path.join(e.secret, "key")], split, e.ws)
    assert code == 1, out


def esc_worktree_gitdir(e):
    """A worktree's .git file points at its gitdir in the main repository's
    git directory. Put that directory where only the gitdir: rule protects
    it: inside a second writable root, under a name other than .git (a
    separate git dir), so the write below succeeds unless that rule holds."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main",
           "-c", "safe.directory=*"]
    top = os.path.join(e.base, "gw")
    os.mkdir(top)
    os.chown(top, e.user[0] if e.user else 0, e.user[1] if e.user else 0)
    g = " ".join(git)
    setup = (g + " init -q --separate-git-dir=" + os.path.join(top, "gitdata") +
             " repo && cd repo && echo a > a && " + g +
             " add a && " + g + " commit -qm a && " + g + " worktree add -q ../wt")
    code, out = e.run(["sh", "-c", setup], FULL, top)
    assert code == 0, out
    wt = os.path.join(top, "wt")
    head = os.path.join(top, "gitdata", "worktrees", "wt", "HEAD")
    assert os.path.isfile(head), out
    policy = {"type": "workspaceWrite", "writableRoots": [top]}
    # control: the same policy can write next to the git data
    code, out = e.run([PY, e.probe, "write", os.path.join(top, "gitdata-sibling")], policy, wt)
    assert code == 0, out
    code, out = e.run([PY, e.probe, "write", head], policy, wt)
    assert code == 1, out
    code, out = e.run(git + ["status", "--short"], policy, wt)
    assert code == 0, out


ESCAPES = [
    # (check, layers that stop it)
    (esc_write_outside, {"mounts", "landlock"}),
    (esc_write_protected, {"mounts"}),
    (esc_worktree_gitdir, {"mounts"}),
    (esc_unreadable, {"mounts"}),
    (esc_ptrace, {"seccomp"}),
    (esc_mount, {"seccomp", "caps"}),
    (esc_userns, {"seccomp"}),
    (esc_io_uring, {"seccomp"}),
    (esc_tiocsti, {"seccomp"}),
    (esc_netlink, {"seccomp"}),
    (esc_icmp, {"seccomp", "netns"}),
    (esc_tcp, {"seccomp", "netns"}),
    (esc_udp_refused, {"seccomp"}),
    (esc_udp_reach, {"seccomp", "netns"}),
    (esc_unix, {"seccomp"}),
]


def check_still_works(e):
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
    assert out.strip() == "1 none", out


def check_escapes(user):
    e = Env(user)
    try:
        for check, _ in ESCAPES:
            check(e)
        check_still_works(e)
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
