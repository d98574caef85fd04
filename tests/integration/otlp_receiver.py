"""A loopback OTLP/HTTP receiver for tests and benchmarks (standard library
only): records every POST to /v1/traces and /v1/logs, decoded (gzip
included), and can answer with a scripted list of statuses, or accept
connections and never answer."""

import gzip
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, statuses=None, retry_after=None):
        """statuses: HTTP statuses to answer in turn (then 200 for ever);
        retry_after: value of Retry-After sent with 429/503 answers."""
        self.requests = []  # dicts: path, headers, raw, body (parsed JSON)
        self.statuses = list(statuses or [])
        self.retry_after = retry_after
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                data = raw
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(raw)
                try:
                    body = json.loads(data)
                except ValueError:
                    body = None
                with outer.cond:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                           "raw": raw, "body": body, "status": status,
                                           "time": time.time()})
                    outer.cond.notify_all()
                reply = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                if status in (429, 503) and outer.retry_after is not None:
                    self.send_header("Retry-After", str(outer.retry_after))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self, path):
        """Bodies of the requests to path that were answered 2xx."""
        with self.cond:
            return [r["body"] for r in self.requests if r["path"] == path and r["status"] < 300]

    def wait(self, pred, timeout=30):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                got = pred(self)
                if got:
                    return got
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("receiver: condition not met in %ss; requests: %r" % (
                        timeout, [(r["path"], r["status"]) for r in self.requests]))
                self.cond.wait(min(left, 0.2))

    def spans(self):
        out = []
        for b in self.accepted("/v1/traces"):
            for rs in b["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for s in ss["spans"]:
                        out.append((rs["resource"], ss["scope"], s))
        return out

    def log_records(self):
        out = []
        for b in self.accepted("/v1/logs"):
            for rl in b["resourceLogs"]:
                for sl in rl["scopeLogs"]:
                    for r in sl["logRecords"]:
                        out.append((rl["resource"], sl["scope"], r))
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Hanging:
    """Accepts connections and reads, but never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.conns = []
        self.bytes = 0
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._drain, args=(c,), daemon=True).start()

    def _drain(self, c):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                self.bytes += len(d)
        except OSError:
            return

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def dead_endpoint():
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d" % port


def attrs(obj):
    """OTLP attribute list -> dict of plain values."""
    out = {}
    for a in obj.get("attributes", []):
        v = a["value"]
        if "stringValue" in v:
            out[a["key"]] = v["stringValue"]
        elif "intValue" in v:
            out[a["key"]] = int(v["intValue"])
        elif "boolValue" in v:
            out[a["key"]] = v["boolValue"]
        elif "doubleValue" in v:
            out[a["key"]] = v["doubleValue"]
        elif "arrayValue" in v:
            out[a["key"]] = [list(x.values())[0] for x in v["arrayValue"].get("values", [])]
    return out
