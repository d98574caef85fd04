"""Issue 9 item 1 (enforcement): in every network mode but full, no host unix
socket is reachable: path or abstract, stream, seqpacket or datagram, by
connect() or by sendto()/sendmsg() with an address (also from a datagram
socketpair re-pointed at a path). Proxy mode still reaches its proxy on the
namespace's 127.0.0.1, and socketpair() keeps working for a command's own
plumbing. Every attempt succeeds unsandboxed; as root and as uid 65534,
workspace under /tmp and /var/tmp."""

import os
import random
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from sbxenv import each, split, FULL  # noqa: E402
from wardenrpc import run_tests  # noqa: E402

ATTEMPT = r'''
import socket, sys
how, addr = sys.argv[1], sys.argv[2]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
try:
    if how == "stream":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr)  # reaching the listener is the escape
    elif how == "seqpacket":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(addr)
    elif how == "dgram":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"probe", addr)
    elif how == "dgram-connect":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.connect(addr)
        s.send(b"probe")
    elif how == "dgram-sendmsg":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendmsg([b"probe"], [], 0, addr)
    elif how == "pair-dgram":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.sendto(b"probe", addr)
    elif how == "pair-stream":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            a.sendto(b"probe", addr)  # must not reach addr
        except OSError:
            pass
        a.sendall(b"own")
        assert b.recv(3) == b"own"
    elif how == "tcp":
        socket.create_connection(("127.0.0.1", int(addr)), timeout=5).close()
except OSError as e:
    print("refused", how, e)
    sys.exit(1)
print("ok", how)
'''

STREAM_HOWS = ["stream"]
SEQ_HOWS = ["seqpacket"]
DGRAM_HOWS = ["dgram", "dgram-connect", "dgram-sendmsg", "pair-dgram"]


class UnixListeners:
    """Host listeners that record what reaches them: path and abstract, for
    each socket type."""

    def __init__(self, d, uid, gid):
        tag = "%08x" % random.getrandbits(32)
        self.addrs = {}
        self.socks = []
        self.hits = []
        for kind, typ in (("stream", socket.SOCK_STREAM), ("seqpacket", socket.SOCK_SEQPACKET),
                          ("dgram", socket.SOCK_DGRAM)):
            for where in ("path", "abstract"):
                s = socket.socket(socket.AF_UNIX, typ)
                if where == "path":
                    addr = os.path.join(d, "%s.sock" % kind)
                    s.bind(addr)
                    os.chmod(addr, 0o666)
                    os.chown(addr, uid, gid)
                    shown = addr
                else:
                    name = "warden-esc-%s-%s" % (tag, kind)
                    s.bind("\0" + name)
                    shown = "@" + name
                if typ != socket.SOCK_DGRAM:
                    s.listen(16)
                self.socks.append(s)
                self.addrs[(kind, where)] = shown
        self.stop = False
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        while not self.stop:
            r, _, _ = select.select(self.socks, [], [], 0.05)
            for s in r:
                if s.type == socket.SOCK_DGRAM:
                    self.hits.append(s.recv(64))
                else:
                    c, _ = s.accept()
                    self.hits.append(b"conn")
                    c.close()

    def close(self):
        self.stop = True
        self.t.join(2)
        for s in self.socks:
            s.close()


def check(e, label):
    lst = UnixListeners(e.outside, e.uid, e.gid)
    try:
        attempts = []
        for where in ("path", "abstract"):
            attempts += [(h, lst.addrs[("stream", where)]) for h in STREAM_HOWS]
            attempts += [(h, lst.addrs[("seqpacket", where)]) for h in SEQ_HOWS]
            attempts += [(h, lst.addrs[("dgram", where)]) for h in DGRAM_HOWS]
        # every attempt is real: it reaches the listener unsandboxed
        for how, addr in attempts:
            n = len(lst.hits)
            code, out = e.py(ATTEMPT, FULL, how, addr)
            assert code == 0, (label, "baseline", how, addr, out)
            deadline = time.time() + 2
            while len(lst.hits) == n and time.time() < deadline:
                time.sleep(0.01)
            assert len(lst.hits) == n + 1, (label, "baseline did not arrive", how, addr)
        failures = []
        for mode in ("none", "proxy"):
            policy = split([(":root", "read"), (":cwd", "write")], network=mode)
            for how, addr in attempts:
                n = len(lst.hits)
                code, out = e.py(ATTEMPT, policy, how, addr)
                time.sleep(0.05)
                if code != 1 or len(lst.hits) != n:
                    failures.append((mode, how, addr, code, out.strip()))
            # own plumbing keeps working
            code, out = e.py(ATTEMPT, policy, "pair-stream", lst.addrs[("dgram", "path")])
            if code != 0:
                failures.append((mode, "socketpair stream", code, out.strip()))
        assert not failures, (label, failures)
        # proxy mode still reaches its proxy inside the namespace
        code, out = e.py(ATTEMPT, split([(":root", "read"), (":cwd", "write")], network="proxy"),
                         "tcp", 3128)
        assert code == 0, (label, "proxy listener", out)
        # full network: the path socket is reachable (the probe works in a sandbox)
        code, out = e.py(ATTEMPT, split([(":root", "read"), (":cwd", "write")], network="full"),
                         "stream", lst.addrs[("stream", "path")])
        assert code == 0, (label, "full", out)
    finally:
        lst.close()


def test_no_host_unix_socket_without_full_network():
    each(check)


if __name__ == "__main__":
    run_tests(globals())
