#!/usr/bin/env python3
"""Egress proxy benchmark: warden's CONNECT tunnels against a direct loopback
connection, tinyproxy and squid (each started here on loopback with a config
written here; a reference that is not installed is skipped, saying so).

Prints one table: tunnel throughput, new CONNECT tunnels per second, the
latency a small GET gains through the proxy (p50, p99), and warden's peak RSS
with 500 open tunnels; ratios are against baselines measured in this same
run. Standard library only; loopback only; free ports. Speed never fails a
test: this prints numbers.

  python3 bench/proxy_bench.py [--warden build/server/warden] [--quick]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

CHUNK = 1 << 20


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


# ---- targets ----

def sink_server():
    """Reads everything, answers the byte count when the client shuts down."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1024)

    def one(c):
        # 8-byte length, then that many bytes; answers the count (proxies
        # differ on passing a half-close on, so the end is not an EOF)
        buf = bytearray(CHUNK)
        n = 0
        try:
            want = b""
            while len(want) < 8:
                d = c.recv(8 - len(want))
                if not d:
                    return
                want += d
            want = int.from_bytes(want, "big")
            while n < want:
                k = c.recv_into(buf, min(CHUNK, want - n))
                if not k:
                    break
                n += k
            c.sendall(str(n).encode())
        except OSError:
            pass
        c.close()

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(c,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return ls


def http_server():
    """Keep-alive HTTP/1.1 answering every request with a 2-byte body."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1024)
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def one(c):
        buf = b""
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    c.sendall(resp)
        except OSError:
            pass
        c.close()

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(c,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return ls


# ---- proxies ----

class Proxy:
    name = "?"
    proc = None
    port = None

    def tunnel(self, port):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (port, port))
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(1)
            if not d:
                raise OSError("%s closed the CONNECT" % self.name)
            head += d
        if not head.startswith(b"HTTP/1.") or head.split()[1] != b"200":
            raise OSError("%s refused CONNECT: %r" % (self.name, head[:60]))
        return s

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Direct(Proxy):
    name = "direct"

    def tunnel(self, port):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


class Warden(Proxy):
    name = "warden"

    def __init__(self, binary, d):
        cfg = os.path.join(d, "warden.json")
        with open(cfg, "w") as f:
            json.dump({"network": {"allowedDomains": ["127.0.0.1"], "allowLocalBinding": True,
                                   "maxConnectionsPerProcess": 4096},
                       "stateDir": os.path.join(d, "state")}, f)
        self.port = free_port()
        env = dict(os.environ, WARDEN_LOG="error")
        self.proc = subprocess.Popen([binary, "--config", cfg, "--proxy-listen",
                                      "127.0.0.1:%d" % self.port, "--max-line-bytes", "65536"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env)
        # opt out of network/decision notifications: they go to a pipe nobody reads
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"clientInfo": {"name": "bench"},
                           "capabilities": {"optOutNotificationMethods": ["network/decision"]}}}
        self.proc.stdin.write((json.dumps(init) + "\n").encode())
        self.proc.stdin.flush()
        if not wait_port(self.port):
            raise RuntimeError("warden did not listen")


class Tinyproxy(Proxy):
    name = "tinyproxy"

    def __init__(self, d):
        exe = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        if not os.path.exists(exe):
            raise FileNotFoundError("tinyproxy is not installed (apt-get install tinyproxy)")
        self.port = free_port()
        conf = os.path.join(d, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write("Port %d\nListen 127.0.0.1\nTimeout 600\nMaxClients 2000\n"
                    "Allow 127.0.0.1\nLogLevel Critical\nPidFile \"%s/tinyproxy.pid\"\n"
                    % (self.port, d))
            if os.geteuid() == 0:
                f.write("User nobody\nGroup nogroup\n")
        self.proc = subprocess.Popen([exe, "-d", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            raise RuntimeError("tinyproxy did not listen")


class Squid(Proxy):
    name = "squid"

    def __init__(self, d):
        exe = shutil.which("squid") or "/usr/sbin/squid"
        if not os.path.exists(exe):
            raise FileNotFoundError("squid is not installed (apt-get install squid)")
        self.port = free_port()
        conf = os.path.join(d, "squid.conf")
        os.chmod(d, 0o777)
        with open(conf, "w") as f:
            f.write("http_port 127.0.0.1:%d\nhttp_access allow all\ncache deny all\n"
                    "cache_mem 8 MB\naccess_log none\ncache_log /dev/null\n"
                    "pid_filename %s/squid.pid\ncoredump_dir %s\nshutdown_lifetime 0 seconds\n"
                    "max_filedescriptors 8192\nworkers 1\n" % (self.port, d, d))
        self.proc = subprocess.Popen([exe, "-N", "-f", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_port(self.port, 60):
            raise RuntimeError("squid did not listen")


# ---- measurements ----

def throughput(p, sink_port, total):
    s = p.tunnel(sink_port)
    buf = memoryview(bytearray(CHUNK))
    t0 = time.perf_counter()
    s.sendall(total.to_bytes(8, "big"))
    left = total
    while left:
        n = s.send(buf[:min(left, CHUNK)])
        left -= n
    got = b""
    while not got or got != str(total).encode()[:len(got)] or len(got) < len(str(total)):
        d = s.recv(64)
        if not d:
            break
        got += d
    dt = time.perf_counter() - t0
    s.close()
    assert int(got) == total, (p.name, got)
    return total / dt


def tunnels_per_sec(p, sink_port, seconds, threads=4):
    count = [0]
    stop = time.perf_counter() + seconds
    lock = threading.Lock()

    def loop():
        n = 0
        while time.perf_counter() < stop:
            s = p.tunnel(sink_port)
            s.close()
            n += 1
        with lock:
            count[0] += n
    ts = [threading.Thread(target=loop) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return count[0] / (time.perf_counter() - t0)


def get_latencies(p, http_port, n):
    """Small GETs on one keep-alive connection; a proxy that closes the
    client connection after each answer (tinyproxy) is reconnected, and its
    times include the connect (the table says so)."""
    if isinstance(p, Direct):
        addr = ("127.0.0.1", http_port)
        req = b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % http_port
    else:
        addr = ("127.0.0.1", p.port)
        req = b"GET http://127.0.0.1:%d/x HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (
            http_port, http_port)
    s = None
    out = []
    reconnects = 0
    for _ in range(n):
        t0 = time.perf_counter()
        for attempt in range(2):
            if s is None:
                s = socket.create_connection(addr)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(req)
            buf = b""
            while not (b"\r\n\r\n" in buf and buf.endswith(b"ok")):
                d = s.recv(4096)
                if not d:
                    break
                buf += d
            if buf.endswith(b"ok"):
                break
            s.close()
            s = None
            reconnects += 1
            t0 = time.perf_counter()
        else:
            raise OSError("%s did not answer" % p.name)
        out.append(time.perf_counter() - t0)
        if buf.lower().find(b"connection: close") >= 0:
            s.close()
            s = None
    if s:
        s.close()
    out.sort()
    p.reconnects = reconnects
    return out[len(out) // 2], out[min(len(out) - 1, int(len(out) * 0.99))]


def build_c_client(d):
    """bench/proxy_tput.c, compiled here; None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy_tput.c")
    exe = os.path.join(d, "proxy_tput")
    if not cc or subprocess.run([cc, "-O2", "-pthread", "-o", exe, src]).returncode != 0:
        return None
    return exe


def c_measure(exe, p, mode, arg, threads=4):
    port = 0 if isinstance(p, Direct) else p.port
    args = [exe, mode, str(port), "0", str(arg)] + ([str(threads)] if mode == "tunnels" else [])
    r = subprocess.run(args, capture_output=True, timeout=600)
    if r.returncode != 0:
        raise OSError("%s: proxy_tput %s failed" % (p.name, mode))
    return float(r.stdout)


def rss_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def open_tunnels_rss(p, sink_port, n):
    socks = []
    before = rss_kib(p.proc.pid, "VmRSS") if p.proc else 0
    for _ in range(n):
        s = p.tunnel(sink_port)
        s.sendall((1 << 40).to_bytes(8, "big") + b"x" * 1024)
        socks.append(s)
    time.sleep(0.5)
    peak = rss_kib(p.proc.pid, "VmHWM") if p.proc else 0
    cur = rss_kib(p.proc.pid, "VmRSS") if p.proc else 0
    for s in socks:
        s.close()
    return peak, cur, before


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", default=os.environ.get("WARDEN_BIN", "build/server/warden"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers to FILE as JSON")
    a = ap.parse_args()
    total = (256 if a.quick else 2048) * CHUNK
    secs = 1.0 if a.quick else 3.0
    nget = 300 if a.quick else 3000
    sink = sink_server()
    http = http_server()
    sp, hp = sink.getsockname()[1], http.getsockname()[1]
    d = tempfile.mkdtemp(prefix="warden-proxybench-")
    proxies, skipped = [Direct()], []
    cexe = build_c_client(d)
    if not cexe:
        skipped.append("no C compiler: throughput and tunnels/s measured with the Python client")
    for make in (lambda: Warden(a.warden, d), lambda: Tinyproxy(d), lambda: Squid(d)):
        try:
            proxies.append(make())
        except Exception as e:  # a reference that cannot run is skipped, saying so
            skipped.append(str(e))
    rows = {}
    try:
        for p in proxies:
            r = {}
            try:
                runs = 1 if a.quick else 3
                if cexe:  # best of `runs`: the machine may be busy with other work
                    c_measure(cexe, p, "tput", 16 * CHUNK)  # warm up
                    r["tput"] = max(c_measure(cexe, p, "tput", total) for _ in range(runs)) * 2**20
                    r["tps"] = max(c_measure(cexe, p, "tunnels", secs) for _ in range(runs))
                else:
                    throughput(p, sp, 16 * CHUNK)  # warm up
                    r["tput"] = max(throughput(p, sp, total) for _ in range(runs))
                    r["tps"] = tunnels_per_sec(p, sp, secs)
                r["p50"], r["p99"] = get_latencies(p, hp, nget)
            except Exception as e:
                skipped.append("%s: %s" % (p.name, e))
            rows[p.name] = r
        w = next((p for p in proxies if p.name == "warden"), None)
        rss = open_tunnels_rss(w, sp, 500) if w else (0, 0, 0)
    finally:
        for p in proxies:
            p.stop()
        shutil.rmtree(d, ignore_errors=True)
    base = rows.get("direct", {})
    print("%-10s %12s %9s %10s %9s %12s %12s" % ("proxy", "CONNECT MiB/s", "x direct",
                                                   "tunnels/s", "x direct", "+p50 GET us",
                                                   "+p99 GET us"))
    for name, r in rows.items():
        if "p50" not in r:
            print("%-10s (failed)" % name)
            continue
        add50 = (r["p50"] - base["p50"]) * 1e6
        add99 = (r["p99"] - base["p99"]) * 1e6
        print("%-10s %12.0f %9.2f %10.0f %9.2f %12.0f %12.0f" % (
            name, r["tput"] / 2**20, r["tput"] / base["tput"], r["tps"], r["tps"] / base["tps"],
            add50, add99))
    wr = rows.get("warden", {})
    for ref in ("tinyproxy", "squid"):
        rr = rows.get(ref, {})
        if "p50" in wr and "p50" in rr:
            print("warden vs %-9s throughput x%.2f, tunnels/s x%.2f, p50 GET x%.2f" % (
                ref, wr["tput"] / rr["tput"], wr["tps"] / rr["tps"], rr["p50"] / wr["p50"]))
    print("warden RSS with 500 open tunnels: peak %d KiB (VmHWM), now %d KiB, before %d KiB"
          % rss)
    for p in proxies:
        if getattr(p, "reconnects", 0):
            print("note: %s closed the client connection after answers (%d reconnects);"
                  " its GET times include a connect" % (p.name, p.reconnects))
    for s in skipped:
        print("skipped: %s" % s)
    if a.json:
        m = {}
        if "p50" in wr and "p50" in base:
            refs = {n: rows[n] for n in ("tinyproxy", "squid") if "p50" in rows.get(n, {})}
            m["proxy.connect_mib_s"] = {"value": wr["tput"] / 2**20, "unit": "MiB/s",
                                        "baseline": base["tput"] / 2**20}
            m["proxy.tunnels_per_s"] = {"value": wr["tps"], "unit": "/s", "baseline": base["tps"]}
            m["proxy.get_added_p50_us"] = {"value": (wr["p50"] - base["p50"]) * 1e6,
                                           "unit": "us"}
            m["proxy.get_added_p99_us"] = {"value": (wr["p99"] - base["p99"]) * 1e6,
                                           "unit": "us"}
            for n, rr in refs.items():
                m["proxy.connect_mib_s"].setdefault("reference", {})[n] = rr["tput"] / 2**20
                m["proxy.tunnels_per_s"].setdefault("reference", {})[n] = rr["tps"]
                m["proxy.get_added_p50_us"].setdefault("reference", {})[n] = \
                    (rr["p50"] - base["p50"]) * 1e6
                m["proxy.get_added_p99_us"].setdefault("reference", {})[n] = \
                    (rr["p99"] - base["p99"]) * 1e6
        if rss and rss[0]:
            m["proxy.rss_500_tunnels_kib"] = {"value": rss[0], "unit": "KiB",
                                              "baseline": rss[2]}
        with open(a.json, "w") as f:
            json.dump(m, f, indent=1)


if __name__ == "__main__":
    main()
