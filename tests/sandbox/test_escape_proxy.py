"""Escape attempts from network mode "proxy" with an empty allowlist, next
to the same attempts from mode "none": nothing gets out. The attempts aim at
listeners on the host's loopback (TCP and UDP) directly, through the proxy's
HTTP, CONNECT and SOCKS5 listeners by address and by name, and at the
proxy's listeners with bytes that are neither. As root and with the server
running as uid 65534. A control run without a sandbox reaches the same
listeners, so the test can fail."""
import json
import os
import select
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from wardenrpc import Server, run_tests  # noqa: E402

PY = "/usr/bin/python3"
NOBODY = (65534, 65534)

ATTEMPTS = r'''
import socket, sys
tcp, udp = int(sys.argv[1]), int(sys.argv[2])
out = []
def attempt(name, fn):
    try:
        r = fn()
        out.append("%s=%s" % (name, r))
    except Exception as e:
        out.append("%s=err:%s" % (name, type(e).__name__))
def direct():
    socket.create_connection(("127.0.0.1", tcp), timeout=3).close()
    return "open"
def via_http(target):
    def f():
        s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
        s.sendall(b"GET http://%s:%d/ HTTP/1.1\r\n\r\n" % (target.encode(), tcp))
        return s.recv(12).decode()
    return f
def via_connect(target):
    def f():
        s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
        s.sendall(b"CONNECT %s:%d HTTP/1.1\r\n\r\n" % (target.encode(), tcp))
        return s.recv(12).decode()
    return f
def via_socks(atyp, addr):
    def f():
        s = socket.create_connection(("127.0.0.1", 1080), timeout=5)
        s.sendall(b"\x05\x01\x00"); s.recv(2)
        s.sendall(b"\x05\x01\x00" + bytes([atyp]) + addr + tcp.to_bytes(2, "big"))
        r = s.recv(10)
        return "rep%d" % r[1]
    return f
def udp_send():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"escape", ("127.0.0.1", udp))
    return "sent"
def garbage():
    s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
    s.sendall(b"\x16\x03\x01\x00\x05hello\r\n\r\n")
    return s.recv(12).decode() or "closed"
attempt("direct", direct)
attempt("http_ip", via_http("127.0.0.1"))
attempt("http_name", via_http("localhost"))
attempt("http_v6", via_http("[::ffff:127.0.0.1]"))
attempt("connect_ip", via_connect("127.0.0.1"))
attempt("connect_name", via_connect("localhost"))
attempt("socks_ip", via_socks(1, socket.inet_aton("127.0.0.1")))
attempt("socks_name", via_socks(3, b"\x09localhost"))
attempt("udp", udp_send)
def udp_associate():
    s = socket.create_connection(("127.0.0.1", 1080), timeout=5)
    s.sendall(b"\x05\x01\x00"); s.recv(2)
    s.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
    return "rep%d" % s.recv(10)[1]
attempt("udp_assoc", udp_associate)
def unix_path():
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(3)
    u.connect(sys.argv[3])
    return "open"
attempt("unix", unix_path)
def unix_dgram():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.sendto(b"escape", sys.argv[4])
    return "sent"
attempt("unix_dgram", unix_dgram)
attempt("garbage", garbage)
print("\n".join(out))
'''


class Listeners:
    """A TCP and a UDP listener on the host's 127.0.0.1, and a unix stream
    and datagram socket by path (a host daemon's), that record hits."""

    def __init__(self, d):
        self.hits = []
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.unix_path = os.path.join(d, "daemon.sock")
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.unix_path)
        os.chmod(self.unix_path, 0o666)
        self.unix.listen(16)
        self.dgram_path = os.path.join(d, "daemon.dgram")
        self.dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dgram.bind(self.dgram_path)
        os.chmod(self.dgram_path, 0o666)
        self.stop = False
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        while not self.stop:
            r, _, _ = select.select([self.tcp, self.udp, self.unix, self.dgram], [], [], 0.1)
            for s in r:
                if s in (self.tcp, self.unix):
                    c, a = s.accept()
                    self.hits.append(("tcp", a))
                    c.close()
                else:
                    self.hits.append(("udp", s.recvfrom(100)))

    def close(self):
        self.stop = True
        self.t.join()
        for s in (self.tcp, self.udp, self.unix, self.dgram):
            s.close()


def run(mode, user, control=False):
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        os.chmod(d, 0o777)
        lis = Listeners(d)
        try:
            cfg = os.path.join(d, "config.json")
            with open(cfg, "w") as f:
                json.dump({"network": {"allowedDomains": [], "deniedDomains": []},
                           "stateDir": os.path.join(d, "state")}, f)
            os.chmod(cfg, 0o644)
            params = {"processId": "p", "cwd": d,
                      "argv": [PY, "-c", ATTEMPTS, str(lis.tcp.getsockname()[1]),
                               str(lis.udp.getsockname()[1]), lis.unix_path, lis.dgram_path]}
            if control:
                params["sandbox"] = {"type": "dangerFullAccess"}
            else:
                params["sandbox"] = {"type": "split", "network": {"mode": mode},
                                     "fileSystem": {"entries": [
                                         {"path": ":root", "access": "read"},
                                         {"path": ":cwd", "access": "write"}]}}
            with Server("--config", cfg, user=user, cwd=d,
                        env={"XDG_STATE_HOME": os.path.join(d, "state")}) as s:
                s.call("process/spawn", params)
                ex = s.wait_exit("p", timeout=120)
                out = s.output_of("p").decode()
                assert ex["exitCode"] == 0, out
                time.sleep(0.3)  # let a stray datagram land before we look
                return (dict(l.split("=", 1) for l in out.strip().splitlines()),
                        list(lis.hits), out)
        finally:
            lis.close()


def check_nothing_gets_out(user):
    got, hits, out = run("none", user, control=True)
    assert got["direct"] == got["unix"] == "open" and got["unix_dgram"] == "sent", out
    assert len(hits) >= 3, ("control run did not reach the listeners", hits, out)
    for mode in ("none", "proxy"):
        got, hits, out = run(mode, user)
        assert hits == [], (mode, hits, out)
        assert got["direct"].startswith("err:"), (mode, out)
        assert got["unix"].startswith("err:") and got["unix_dgram"].startswith("err:"), (mode, out)
        if mode == "proxy":
            for k in ("http_ip", "http_name", "http_v6", "connect_ip", "connect_name"):
                assert got[k] == "HTTP/1.1 403", (k, out)
            assert got["socks_ip"] == got["socks_name"] == "rep2", out
            assert got["udp_assoc"] == "rep7", out  # no UDP relay inside a sandbox
            assert not got["garbage"].startswith("HTTP/1.1 2"), out
        else:
            for k in ("http_ip", "connect_ip", "socks_ip", "garbage"):
                assert got[k].startswith("err:"), (k, out)


def test_nothing_gets_out_as_root():
    check_nothing_gets_out(None)


def test_nothing_gets_out_unprivileged():
    check_nothing_gets_out(NOBODY)


if __name__ == "__main__":
    run_tests(globals())
