"""Load and fault test of the egress proxy: 500 CONNECT tunnels open at
once through --proxy-listen to a loopback echo origin the domain policy
allows, every byte of every tunnel echoed back intact (some tunnels carry
enough to be spliced), while the server keeps answering JSON-RPC (a spawn of
echo, timed); then every tunnel closed, the server's descriptors back to
where they were (no socket or pipe leaked) and a clean exit on stdin close.
Prints the server's peak RSS (VmHWM) and p50/p99 request latency, like the
other load tests; speed itself is never asserted (bench/ measures it).

The origin and the tunnels' clients run in processes of their own (forked),
so the timed requests do not wait for this process's GIL."""

import os
import resource
import selectors
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from netproxy_util import warden_proxy  # noqa: E402
from wardenrpc import hwm_kib, pct, run_tests  # noqa: E402

TUNNELS = 500
SMALL = 96 * 1024          # bytes each tunnel carries (copied)
LARGE = 1024 * 1024        # every LARGE_EVERY-th carries this much (spliced past 256 KiB)
LARGE_EVERY = 10
FDS_WANTED = 8192          # this process: 500 clients + 500 origin sockets, with room
REQUEST_BOUND_S = 10.0     # a JSON-RPC answer under this load (a hang, not a speed bound)
WAIT_S = 120               # how long a phase may take on a loaded machine
FULL = {"type": "dangerFullAccess"}


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def raise_nofile():
    """The server inherits this process's limit (Popen keeps rlimits)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FDS_WANTED if hard == resource.RLIM_INFINITY else min(hard, FDS_WANTED)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class EchoOrigin:
    """A forked process with one selector: echoes every connection's bytes
    back and closes when its peer does. Its open connections are counted by
    its descriptors."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1024)
        self.ls.setblocking(False)
        self.port = self.ls.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.ls, selectors.EVENT_READ, None)
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                self._run()
                code = 0
            finally:
                os._exit(code)
        self.sel.close()
        self.ls.close()
        self.base_fds = fd_count(self.pid)

    def open(self):
        return fd_count(self.pid) - self.base_fds

    def _run(self):
        while True:
            for key, ev in self.sel.select(0.2):
                if key.data is None:
                    try:
                        c, _ = self.ls.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    self.sel.register(c, selectors.EVENT_READ, bytearray())
                    continue
                c, buf = key.fileobj, key.data
                if ev & selectors.EVENT_READ:
                    try:
                        d = c.recv(262144)
                    except BlockingIOError:
                        d = None
                    except OSError:
                        d = b""
                    if d == b"":
                        self.sel.unregister(c)
                        c.close()
                        continue
                    if d:
                        buf += d
                if buf:
                    try:
                        n = c.send(buf)
                        del buf[:n]
                    except BlockingIOError:
                        pass
                    except OSError:
                        pass
                self.sel.modify(c, selectors.EVENT_READ | (selectors.EVENT_WRITE if buf else 0),
                                buf)

    def close(self):
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)


class Tunnel:
    def __init__(self, i, pp, target):
        self.i = i
        size = LARGE if i % LARGE_EVERY == 0 else SMALL
        # distinct per tunnel, so bytes crossing tunnels would show
        block = (b"%06d:" % i) + bytes((i + k) % 251 for k in range(249))
        self.payload = (block * (size // len(block) + 1))[:size]
        self.sent = 0
        self.got = bytearray()
        self.head = b""
        self.s = socket.create_connection(("127.0.0.1", pp), timeout=WAIT_S)
        self.s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target))


def open_tunnels(pp, target):
    tunnels = [Tunnel(i, pp, target) for i in range(TUNNELS)]
    sel = selectors.DefaultSelector()
    for t in tunnels:
        t.s.setblocking(False)
        sel.register(t.s, selectors.EVENT_READ, t)
    pending = TUNNELS
    deadline = time.time() + WAIT_S
    while pending:
        assert time.time() < deadline, "%d CONNECT answers missing" % pending
        for key, _ in sel.select(1):
            t = key.data
            d = t.s.recv(4096)
            assert d, "tunnel %d closed before its answer: %r" % (t.i, t.head)
            t.head += d
            if b"\r\n\r\n" in t.head:
                head, rest = t.head.split(b"\r\n\r\n", 1)
                assert head.startswith(b"HTTP/1.1 200"), (t.i, head)
                assert rest == b"", (t.i, rest)
                sel.unregister(t.s)
                pending -= 1
    sel.close()
    return tunnels


def pump_forked(tunnels):
    """pump() in a forked process (which inherits the sockets; ours are
    closed): returns its failure, or None."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        msg = b""
        try:
            pump(tunnels)
        except BaseException as e:  # reported to the parent, which fails
            msg = ("%s: %s" % (type(e).__name__, e)).encode() or b"failed"
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    for t in tunnels:
        t.s.close()
    with os.fdopen(r, "rb") as f:
        msg = f.read()
    os.waitpid(pid, 0)
    return msg.decode() or None


def pump(tunnels):
    """Every tunnel writes its payload and reads it back, all at once."""
    sel = selectors.DefaultSelector()
    for t in tunnels:
        sel.register(t.s, selectors.EVENT_READ | selectors.EVENT_WRITE, t)
    left = len(tunnels)
    deadline = time.time() + WAIT_S
    while left:
        assert time.time() < deadline, "%d tunnels still echoing" % left
        for key, ev in sel.select(1):
            t = key.data
            if ev & selectors.EVENT_WRITE and t.sent < len(t.payload):
                try:
                    t.sent += t.s.send(t.payload[t.sent:t.sent + 65536])
                except BlockingIOError:
                    pass
            if ev & selectors.EVENT_READ:
                try:
                    d = t.s.recv(262144)
                except BlockingIOError:
                    d = None
                assert d != b"", "tunnel %d closed after %d of %d bytes" % (
                    t.i, len(t.got), len(t.payload))
                if d:
                    t.got += d
            if len(t.got) >= len(t.payload):
                assert bytes(t.got) == t.payload, "tunnel %d: bytes changed on the way" % t.i
                sel.unregister(t.s)
                left -= 1
            elif t.sent >= len(t.payload):
                sel.modify(t.s, selectors.EVENT_READ, t)
    sel.close()


class Prober:
    """Spawns `echo` over JSON-RPC every PERIOD seconds while the tunnels
    run; times each answer and checks its output arrives."""
    PERIOD = 0.05

    def __init__(self, s):
        self.s = s
        self.lat = []
        self.n = 0
        self.errors = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            self.n += 1
            pid = "probe%d" % self.n
            t0 = time.time()
            try:
                r = self.s.request("process/spawn", {"processId": pid, "argv": ["echo", pid],
                                                     "sandbox": FULL}, timeout=REQUEST_BOUND_S)
                self.lat.append(time.time() - t0)
                if "result" not in r:
                    self.errors.append(r)
            except Exception as e:  # a timeout is the failure reported
                self.errors.append("%s: %r" % (pid, e))
            self.stop.wait(self.PERIOD)

    def finish(self):
        self.stop.set()
        self.t.join(REQUEST_BOUND_S + 5)
        for i in range(1, self.n + 1):
            pid = "probe%d" % i
            self.s.wait_exit(pid, timeout=WAIT_S)
            assert self.s.output_of(pid) == pid.encode() + b"\n", (pid, self.s.output_of(pid))


def wait_until(pred, what, timeout=WAIT_S):
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, what()
        time.sleep(0.1)


def test_500_concurrent_tunnels():
    limit = raise_nofile()
    assert limit >= 3 * TUNNELS, "RLIMIT_NOFILE hard limit %d is too low for this test" % limit
    origin = EchoOrigin()
    target = b"127.0.0.1:%d" % origin.port
    try:
        with warden_proxy({"allowedDomains": ["127.0.0.1"]}) as (s, pp):
            pid = s.proc.pid
            with open("/proc/%d/limits" % pid) as f:
                lim = [line for line in f if line.startswith("Max open files")][0].split()
            assert int(lim[3]) >= 3 * TUNNELS, lim  # the server has room for 500 tunnels
            # the engine's lazily opened descriptors exist before the baseline
            s.call("process/spawn", {"processId": "warm", "argv": ["true"], "sandbox": FULL})
            s.wait_exit("warm", timeout=WAIT_S)
            time.sleep(0.2)
            base_fds = fd_count(pid)
            t0 = time.time()
            prober = Prober(s)
            tunnels = open_tunnels(pp, target)
            opened_s = time.time() - t0
            assert origin.open() == TUNNELS, origin.open()
            open_fds = fd_count(pid)
            total = sum(len(t.payload) for t in tunnels)
            failure = pump_forked(tunnels)  # closes every tunnel when done
            pumped_s = time.time() - t0 - opened_s
            prober.finish()
            assert failure is None, failure
            assert not prober.errors, prober.errors[:3]
            assert prober.lat, "no request was timed"
            peak = hwm_kib(pid)
            wait_until(lambda: origin.open() == 0,
                       lambda: "%d origin connections still open" % origin.open())
            wait_until(lambda: fd_count(pid) <= base_fds,
                       lambda: "server fds %d, baseline %d: leaked" % (fd_count(pid), base_fds))
            print("500 concurrent CONNECT tunnels: opened in %.1f s, %d MiB echoed intact in "
                  "%.1f s; server peak RSS %d KiB; fds %d -> %d open -> %d after close; "
                  "process/spawn during the load: %d answered, p50 %.1f ms, p99 %.1f ms"
                  % (opened_s, total >> 20, pumped_s, peak, base_fds, open_fds, fd_count(pid),
                     len(prober.lat), pct(prober.lat, 0.5), pct(prober.lat, 0.99)))
            assert max(prober.lat) < REQUEST_BOUND_S
            assert s.close(timeout=60) == 0
    finally:
        origin.close()


if __name__ == "__main__":
    run_tests(globals())
