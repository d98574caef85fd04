"""Helpers for the egress proxy tests: loopback origin servers, a warden
serving --proxy-listen inside a private mount namespace whose /etc/hosts
names test hosts (all 127.0.0.1 or ::1) and whose resolv.conf points at a
closed loopback port, so no test ever asks a real resolver."""

import contextlib
import hashlib
import http.server
import json
import os
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import weakref

import wardenrpc
from wardenrpc import Server

HOSTS = """127.0.0.1 localhost
::1 localhost ip6-localhost
127.0.0.1 origin.warden-test
127.0.0.1 other.warden-test
127.0.0.1 rebind.warden-test
"""


class Origin(http.server.BaseHTTPRequestHandler):
    """GET /bytes/N: N bytes; POST: echoes length and sha256 of the body
    (chunked or Content-Length); every request's headers and the peer port
    are recorded on the server."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _record(self, body=b""):
        self.server.seen.append({"path": self.path, "headers": dict(self.headers.items()),
                                 "peer": self.client_address[1], "method": self.command,
                                 "body": body})

    def _send(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self._record()
        if self.path.startswith("/bytes/"):
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            block = bytes(range(256)) * 256
            while n:
                k = min(n, len(block))
                self.wfile.write(block[:k])
                n -= k
            return
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self._send(200, ("origin %s" % self.path).encode())

    do_HEAD = do_GET
    do_OPTIONS = do_GET

    def do_POST(self):
        try:
            self._post()
        except (ValueError, OSError):  # a body cut short (the fuzz test does that)
            self.close_connection = True

    def _post(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._record(body)
        self._send(200, json.dumps({"len": len(body),
                                    "sha": hashlib.sha256(body).hexdigest()}).encode())


class _Threading(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Threading6(_Threading):
    address_family = socket.AF_INET6


@contextlib.contextmanager
def origin(host="127.0.0.1"):
    cls = _Threading6 if ":" in host else _Threading
    srv = cls((host, 0), Origin)
    srv.seen = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv, srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


@contextlib.contextmanager
def echo_server(host="127.0.0.1"):
    """A raw TCP echo server (what a TLS-less CONNECT tunnel carries)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    ls = socket.socket(fam)
    ls.bind((host, 0))
    ls.listen(64)
    conns = []

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            conns.append(c)

            def one(c=c):
                try:
                    while True:
                        d = c.recv(65536)
                        if not d:
                            break
                        c.sendall(d)
                except OSError:
                    pass
                finally:
                    c.close()
            threading.Thread(target=one, daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    try:
        yield ls.getsockname()[1], conns
    finally:
        ls.close()


@contextlib.contextmanager
def warden_proxy(network=None, extra_args=(), user=None, nameserver="127.0.0.1"):
    """A warden serving --proxy-listen 127.0.0.1:0 with `network` as the
    config file's network object (and `nameserver` in its resolv.conf).
    Yields (server, proxy_port)."""
    d = tempfile.mkdtemp(prefix="warden-np-")
    try:
        os.chmod(d, 0o755)
        with open(os.path.join(d, "hosts"), "w") as f:
            f.write(HOSTS)
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write("nameserver %s\noptions timeout:1 attempts:1\n" % nameserver)
        cfg = os.path.join(d, "config.json")
        with open(cfg, "w") as f:
            json.dump({"network": network or {}, "stateDir": os.path.join(d, "state")}, f)
        os.chmod(cfg, 0o644)
        wrapper = os.path.join(d, "warden-ns")
        real = os.path.abspath(wardenrpc.WARDEN_BIN)
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec unshare -m sh -c 'mount --bind %s/hosts /etc/hosts && "
                    "mount --bind %s/resolv.conf /etc/resolv.conf && exec \"$0\" \"$@\"' %s \"$@\"\n"
                    % (d, d, real))
        os.chmod(wrapper, 0o755)
        saved = wardenrpc.WARDEN_BIN
        wardenrpc.WARDEN_BIN = wrapper
        try:
            s = Server("--config", cfg, "--proxy-listen", "127.0.0.1:0", *extra_args, user=user)
        finally:
            wardenrpc.WARDEN_BIN = saved
        with s:
            port = None
            deadline = time.time() + 30
            while port is None and time.time() < deadline:
                for line in list(s.stderr_lines):
                    if "proxy listening on 127.0.0.1:" in line:
                        port = int(line.split("127.0.0.1:")[1].split()[0])
                time.sleep(0.02)
            assert port, "no proxy port in stderr: %r" % s.stderr_lines
            yield s, port
    finally:
        shutil.rmtree(d, ignore_errors=True)


_readers = weakref.WeakKeyDictionary()  # one buffered reader per socket


def recv_response(sock, head_only=False):
    """Read one HTTP response (Content-Length, chunked or until close);
    returns (status, headers(lowercased), body)."""
    f = _readers.get(sock)
    if f is None:
        f = _readers[sock] = sock.makefile("rb")
    line = f.readline()
    if not line:
        raise ConnectionError("no response")
    status = int(line.split()[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, v = h.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = b""
    if head_only or status in (204, 304) or 100 <= status < 200:
        pass
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(f.readline().strip(), 16)
            if size == 0:
                f.readline()
                break
            body += f.read(size)
            f.readline()
    elif "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    else:
        body = f.read()
    return status, headers, body


def proxy_conn(port, timeout=30):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def request(port, raw, timeout=30, head_only=False):
    with proxy_conn(port, timeout) as s:
        s.sendall(raw)
        return recv_response(s, head_only)


def socks_connect(port, atyp, addr, dport, timeout=30):
    """SOCKS5 CONNECT; returns (socket, reply code)."""
    s = proxy_conn(port, timeout)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    if atyp == 1:
        a = socket.inet_pton(socket.AF_INET, addr)
    elif atyp == 4:
        a = socket.inet_pton(socket.AF_INET6, addr)
    else:
        a = bytes([len(addr)]) + addr.encode()
    s.sendall(b"\x05\x01\x00" + bytes([atyp]) + a + dport.to_bytes(2, "big"))
    rep = b""
    while len(rep) < 4:
        chunk = s.recv(4 - len(rep))
        if not chunk:
            break
        rep += chunk
    code = rep[1] if len(rep) > 1 else -1
    if len(rep) == 4:
        rest = {1: 6, 4: 18}.get(rep[3], 0)
        while rest:
            rest -= len(s.recv(rest))
    return s, code


class FlipDNS:
    """A DNS server on 127.0.0.2:53 (UDP) that answers A queries for one name
    with `first` the first time and `later` after that (a rebinding
    resolver), and no AAAA records; counts the A queries."""

    def __init__(self, name, first, later):
        self.name, self.first, self.later = name.encode(), first, later
        self.a_queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.2", 53))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                q, addr = self.sock.recvfrom(512)
            except OSError:
                return
            labels, i = [], 12
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]])
                i += 1 + q[i]
            qtype = int.from_bytes(q[i + 1:i + 3], "big")
            question = q[12:i + 5]
            name = b".".join(labels).lower()
            answers = b""
            if name == self.name and qtype == 1:
                self.a_queries += 1
                ip = self.first if self.a_queries == 1 else self.later
                answers = (b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04" +
                           socket.inet_aton(ip))
            rcode = 0 if name == self.name else 3
            head = q[:2] + bytes([0x81, 0x80 | rcode]) + b"\x00\x01" + \
                (b"\x00\x01" if answers else b"\x00\x00") + b"\x00\x00\x00\x00"
            self.sock.sendto(head + question + answers, addr)

    def close(self):
        self.sock.close()


def openssl_cert(d):
    """A self-signed certificate for origin.warden-test made by openssl, or
    None when openssl is not installed."""
    if not shutil.which("openssl"):
        return None
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=origin.warden-test",
                    "-addext", "subjectAltName=DNS:origin.warden-test"],
                   check=True, capture_output=True)
    return cert, key


def decisions(s):
    """The network/decision notifications so far. A round trip first: the
    server writes a decision before it answers the proxied client, and its
    stdout is in order, so every decision made before this call has been
    read once the round trip's answer is."""
    s.call("network/blocked/list", {})
    return [n["params"] for n in s.notifications if n.get("method") == "network/decision"]
