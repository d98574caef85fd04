"""Helpers for the approval tests: a loopback origin, a warden serving its
proxy on loopback (--proxy-listen 127.0.0.1:0) with a private state
directory, requests through that proxy, and the approval/network requests
the server sends (answered by the test)."""

import contextlib
import http.client
import http.server
import json
import os
import re
import socket
import socketserver
import tempfile
import threading
import time

from wardenrpc import Server, Timeout


class _Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = ("origin %d %s" % (self.server.server_address[1], self.path)).encode()
        self.server.hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Threading(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024


@contextlib.contextmanager
def origin():
    """A loopback HTTP origin on a free port: yields (server, port)."""
    srv = _Threading(("127.0.0.1", 0), _Origin)
    srv.hits = 0
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv, srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


class Warden:
    """A warden with its proxy on loopback and its own state directory."""

    def __init__(self, state_dir, approvals=True, config=None, policy=None):
        args = ["--state-dir", state_dir, "--proxy-listen", "127.0.0.1:0"]
        self.config_file = None
        if config:
            fd, self.config_file = tempfile.mkstemp(suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(config, f)
            args += ["--config", self.config_file]
        self.s = Server(*args, env={"WARDEN_LOG": "info"}, init=False)
        caps = {"networkApprovals": True} if approvals else {}
        r = self.s.request("initialize", {"clientInfo": {"name": "approvals-tests"},
                                          "capabilities": caps})
        assert "result" in r, r
        self.s.notify("initialized")
        self.port = self._proxy_port()
        # Loopback origins are local addresses: allowed past the local check,
        # they miss the (empty) allow list and so ask.
        p = {"allowedDomains": [], "deniedDomains": [], "mode": "full",
             "allowLocalBinding": True}
        p.update(policy or {})
        self.s.call("network/policy/set", p)
        self.answered = set()

    def _proxy_port(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in list(self.s.stderr_lines):
                m = re.search(r"proxy listening on 127\.0\.0\.1:(\d+)", line)
                if m:
                    return int(m.group(1))
            time.sleep(0.01)
        raise AssertionError("no proxy port in stderr: %r" % self.s.stderr_lines)

    # -- prompts --------------------------------------------------------------

    def prompts(self):
        with self.s.cond:
            return [n for n in self.s.notifications if n.get("method") == "approval/network"]

    def resolved(self):
        with self.s.cond:
            return [n["params"] for n in self.s.notifications
                    if n.get("method") == "approval/resolved"]

    def wait_prompts(self, count, timeout=30):
        deadline = time.time() + timeout
        while True:
            p = self.prompts()
            if len(p) >= count:
                return p
            if time.time() > deadline or self.s.eof:
                raise Timeout("%d prompts seen, %d wanted" % (len(p), count))
            time.sleep(0.01)

    def wait_resolved(self, approval_id, timeout=30):
        n = self.s.wait_for(lambda n: n.get("method") == "approval/resolved"
                            and n["params"]["approvalId"] == approval_id, timeout)
        return n["params"]

    def answer(self, prompt, decision=None, error=None, result=None):
        msg = {"jsonrpc": "2.0", "id": prompt["id"]}
        if error is not None:
            msg["error"] = error
        else:
            msg["result"] = result if result is not None else {"decision": decision}
        self.s.send(msg)

    def close(self):
        code = self.s.close()
        self.s._err_reader.join(5)
        if self.config_file:
            os.unlink(self.config_file)
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.s.proc.poll() is None:
            self.close()


def fetch(proxy_port, url, timeout=60):
    """GET url through the proxy: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=timeout)
    try:
        conn.request("GET", url)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def fetch_async(proxy_port, url, results, key, timeout=60):
    def run():
        try:
            results[key] = fetch(proxy_port, url, timeout)
        except Exception as e:  # recorded, the test asserts on it
            results[key] = ("error", repr(e))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def connect_tunnel(proxy_port, host, port, timeout=60):
    """CONNECT host:port: the status line (the socket is closed)."""
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    try:
        s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (
            host.encode(), port, host.encode(), port))
        return s.recv(4096).split(b"\r\n")[0].decode()
    finally:
        s.close()
