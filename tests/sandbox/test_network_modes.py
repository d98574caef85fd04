"""README's network modes against the real binary, as root and as an
unprivileged uid:
- none: a network namespace of its own with only `lo`, a pid namespace (the
  host's processes are not visible), only AF_UNIX sockets, no connect(), and
  socketpair() works;
- full under a sandbox: the host's network (a listener on the host's
  loopback is reached) while the filesystem stays confined;
- proxy: the proxy variables README lists, upper and lower case, with the
  npm, yarn, pip, bundler and docker variants, pointing at the listeners."""

import json
import os
import shutil
import socket
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from wardenrpc import WARDEN_BIN, Server, run_tests  # noqa: E402
import wardenrpc  # noqa: E402

PY = "/usr/bin/python3"
NOBODY = (65534, 65534)
HOST_NS = {ns: os.readlink("/proc/self/ns/" + ns) for ns in ("net", "pid")}

# Runs inside the sandbox; prints what it sees as JSON.
INSIDE = r'''
import errno, json, os, socket, sys
v = {"ns": {n: os.readlink("/proc/self/ns/" + n) for n in ("net", "pid")}}
v["ifaces"] = sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else None
with open("/proc/net/dev") as f:
    v["netdev"] = sorted(l.split(":")[0].strip() for l in f.readlines()[2:])
v["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
v["self"] = os.getpid()
a, b = socket.socketpair()
a.sendall(b"pair")
v["socketpair"] = b.recv(4).decode()
def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
v["inet"] = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
v["inet6"] = attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close())
try:  # mode proxy refuses AF_UNIX sockets outright (EPERM); mode none, connect()
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    v["unix_socket"] = "ok"
    v["unix_connect"] = attempt(lambda: u.connect(sys.argv[1]))
except PermissionError:
    v["unix_socket"] = "EPERM"
    v["unix_connect"] = "EPERM"
v["env"] = {k: val for k, val in os.environ.items() if "proxy" in k.lower()}
print(json.dumps(v))
'''


class Box:
    def __init__(self, user):
        self.user = user
        self.base = tempfile.mkdtemp(prefix="warden-net-", dir="/var/tmp")
        os.chmod(self.base, 0o755)
        self.ws = os.path.join(self.base, "ws")
        os.mkdir(self.ws)
        self.script = os.path.join(self.base, "inside.py")
        with open(self.script, "w") as f:
            f.write(INSIDE)
        self.sock_path = os.path.join(self.base, "host.sock")
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.sock_path)
        os.chmod(self.sock_path, 0o666)
        self.unix.listen(4)
        if user:
            os.chown(self.ws, *user)
            self.bin = os.path.join(self.base, "warden")
            shutil.copy(WARDEN_BIN, self.bin)
            saved = wardenrpc.WARDEN_BIN
            wardenrpc.WARDEN_BIN = self.bin
            try:
                self.server = Server(env={"HOME": self.base}, user=user, cwd=self.base)
            finally:
                wardenrpc.WARDEN_BIN = saved
        else:
            self.server = Server(env={"HOME": self.base})
        self.n = 0

    def run(self, argv, sandbox):
        self.n += 1
        pid = "p%d" % self.n
        r = self.server.call("process/spawn", {"processId": pid, "argv": argv, "cwd": self.ws,
                                               "sandbox": sandbox})
        x = self.server.wait_exit(pid, timeout=60)
        return r, x["exitCode"], self.server.output_of(pid).decode()

    def inside(self, sandbox):
        r, code, out = self.run([PY, self.script, self.sock_path], sandbox)
        assert code == 0, out
        return r, json.loads(out)

    def close(self):
        self.server.close()
        self.unix.close()
        shutil.rmtree(self.base, ignore_errors=True)


def check_none(user):
    b = Box(user)
    try:
        none = {"type": "split", "network": {"mode": "none"}, "fileSystem": {"entries": [
            {"path": ":root", "access": "read"}, {"path": ":cwd", "access": "write"}]}}
        r, v = b.inside(none)
        assert r["sandbox"] == {"enforced": True, "backend": "namespaces", "network": "none"}, r
        assert v["ns"]["net"] != HOST_NS["net"] and v["ns"]["pid"] != HOST_NS["pid"], v
        assert v["netdev"] == ["lo"], v
        # pid namespace: the supervisor is 1, the command 2; nothing of the host
        assert v["self"] == 2 and v["pids"] == [1, 2], v
        assert v["socketpair"] == "pair", v
        assert v["inet"] == "EPERM" and v["inet6"] == "EPERM", v
        assert v["unix_connect"] == "EPERM", v
        # control: unsandboxed, the same script reaches the host's socket
        r, v = b.inside({"type": "dangerFullAccess"})
        assert v["unix_connect"] == "ok" and v["inet"] == "ok", v
        assert v["ns"] == HOST_NS, v
    finally:
        b.close()


def test_mode_none_as_root():
    check_none(None)


def test_mode_none_unprivileged():
    check_none(NOBODY)


def check_full(user):
    b = Box(user)
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    port = lst.getsockname()[1]
    got = []
    t = threading.Thread(target=lambda: got.append(lst.accept()[0].recv(16)), daemon=True)
    t.start()
    try:
        policy = {"type": "workspaceWrite", "networkAccess": True}
        code_ = ("import socket; s = socket.create_connection(('127.0.0.1', %d)); "
                 "s.sendall(b'from-sandbox'); s.close()" % port)
        r, code, out = b.run([PY, "-c", code_], policy)
        assert r["sandbox"]["enforced"] is True and r["sandbox"]["network"] == "full", r
        assert code == 0, out
        t.join(60)
        assert got == [b"from-sandbox"], got
        # the filesystem is still confined
        r, code, out = b.run(["sh", "-c", "echo x > %s/outside" % b.base], policy)
        assert code != 0 and not os.path.exists(os.path.join(b.base, "outside")), out
    finally:
        lst.close()
        b.close()


def test_mode_full_under_a_sandbox_as_root():
    check_full(None)


def test_mode_full_under_a_sandbox_unprivileged():
    check_full(NOBODY)


def test_mode_proxy_variables():
    b = Box(None)
    try:
        policy = {"type": "split", "network": {"mode": "proxy"}, "fileSystem": {"entries": [
            {"path": ":root", "access": "read"}, {"path": b.ws, "access": "write"}]}}
        r, v = b.inside(policy)
        assert r["sandbox"]["network"] == "proxy", r
        http = "http://127.0.0.1:3128"
        want = {k: http for k in [
            "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "npm_config_proxy",
            "npm_config_https_proxy", "YARN_HTTP_PROXY", "YARN_HTTPS_PROXY", "PIP_PROXY",
            "BUNDLE_HTTP_PROXY", "BUNDLE_HTTPS_PROXY", "DOCKER_HTTP_PROXY", "DOCKER_HTTPS_PROXY"]}
        want.update({"ALL_PROXY": "socks5h://127.0.0.1:1080",
                     "all_proxy": "socks5h://127.0.0.1:1080"})
        for k, val in want.items():
            assert v["env"].get(k) == val, (k, v["env"])
        for k in ("NO_PROXY", "no_proxy"):
            assert "127.0.0.1" in v["env"].get(k, "") and "localhost" in v["env"][k], v["env"]
        assert v["ns"]["net"] != HOST_NS["net"]  # the namespace of mode none, plus listeners
        assert v["unix_socket"] == "EPERM", v  # no unix socket reaches a host daemon
    finally:
        b.close()


if __name__ == "__main__":
    run_tests(globals())
