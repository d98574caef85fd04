"""The egress proxy through --proxy-listen: HTTP forwarding (keep-alive,
pipelining, streamed and chunked bodies, hop-by-hop headers, Host checks,
malformed, oversize and slow heads), refusals and their notifications and
history, the policy methods, and the config file's network object."""

import hashlib
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from netproxy_util import (decisions, origin, proxy_conn, recv_response, request,  # noqa: E402
                           warden_proxy)
from wardenrpc import run_tests  # noqa: E402

LOCAL = {"allowedDomains": ["127.0.0.1", "origin.warden-test"], "allowLocalBinding": True}


def get(port, url, extra=b"", host=None):
    host = host or url.split("/")[2]
    return b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (url.encode(), host.encode(), extra)


def test_forward_get_and_keepalive_reuses_upstream():
    with origin() as (srv, op), warden_proxy(LOCAL) as (s, pp):
        with proxy_conn(pp) as c:
            for i in range(3):
                c.sendall(get(pp, "http://127.0.0.1:%d/k%d" % (op, i)))
                st, h, body = recv_response(c)
                assert st == 200 and body == b"origin /k%d" % i, (st, body)
        assert [x["path"] for x in srv.seen] == ["/k0", "/k1", "/k2"]
        assert len({x["peer"] for x in srv.seen}) == 1, "upstream connection not reused"
        allows = decisions(s)
        assert len(allows) == 3 and all(a["decision"] == "allow" for a in allows), allows
        a = allows[0]
        assert (a["host"], a["port"], a["protocol"], a["method"], a["processId"]) == \
            ("127.0.0.1", op, "http", "GET", None), a
        assert a["timestamp"].endswith("Z") and "T" in a["timestamp"], a


def test_upstream_closing_an_idle_keepalive_is_redialled():
    import threading
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    op = ls.getsockname()[1]
    accepted = []

    def serve():  # answers one request per connection, keep-alive, then hangs up
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            accepted.append(c)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(4096)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            time.sleep(0.1)
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    with warden_proxy(LOCAL) as (s, pp):
        with proxy_conn(pp) as c:
            for i in range(3):
                c.sendall(get(pp, "http://127.0.0.1:%d/%d" % (op, i)))
                st, _, body = recv_response(c)
                assert (st, body) == (200, b"ok"), (i, st, body)
                time.sleep(0.4)  # the origin hangs up meanwhile
    assert len(accepted) == 3
    ls.close()


def test_policy_change_applies_to_the_next_keepalive_request():
    pol = {"allowedDomains": ["127.0.0.1"], "deniedDomains": [], "mode": "full",
           "allowLocalBinding": False}
    with origin() as (srv, op), warden_proxy(pol) as (s, pp):
        with proxy_conn(pp) as c:
            c.sendall(get(pp, "http://127.0.0.1:%d/1" % op))
            assert recv_response(c)[0] == 200
            s.call("network/policy/set", dict(pol, allowedDomains=[]))
            c.sendall(get(pp, "http://127.0.0.1:%d/2" % op))
            st, h, _ = recv_response(c)
            assert st == 403 and h["x-proxy-error"] == "blocked-by-local-policy", (st, h)
        assert [x["path"] for x in srv.seen] == ["/1"]


def test_http10_and_connection_close_end_the_connection():
    with origin() as (srv, op), warden_proxy(LOCAL) as (s, pp):
        for req in (b"GET http://127.0.0.1:%d/a HTTP/1.0\r\n\r\n" % op,
                    b"GET http://127.0.0.1:%d/b HTTP/1.1\r\nConnection: close\r\n\r\n" % op):
            with proxy_conn(pp) as c:
                c.sendall(req)
                st, h, body = recv_response(c)
                assert st == 200 and h.get("connection") == "close", (st, h)
                c.settimeout(30)
                assert c.recv(10) == b""  # and the proxy closes it


def test_pipelined_requests_answered_in_order():
    with origin() as (srv, op), warden_proxy(LOCAL) as (s, pp):
        with proxy_conn(pp) as c:
            c.sendall(b"".join(get(pp, "http://127.0.0.1:%d/p%d" % (op, i)) for i in range(4)))
            f = c.makefile("rb")
            for i in range(4):
                st, _, body = recv_response(c)
                assert (st, body) == (200, b"origin /p%d" % i), (i, st, body)


def test_chunked_upload_and_chunked_response():
    payload = os.urandom(300000)
    chunks = [payload[i:i + 70001] for i in range(0, len(payload), 70001)]
    with origin() as (srv, op), warden_proxy(LOCAL) as (s, pp):
        with proxy_conn(pp) as c:
            c.sendall(b"POST http://127.0.0.1:%d/up HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" % (op, op))
            for ch in chunks:
                c.sendall(b"%x\r\n%s\r\n" % (len(ch), ch))
                time.sleep(0.01)
            c.sendall(b"0\r\n\r\n")
            st, _, body = recv_response(c)
            assert st == 200, st
            assert json.loads(body) == {"len": len(payload),
                                        "sha": hashlib.sha256(payload).hexdigest()}
            c.sendall(get(pp, "http://127.0.0.1:%d/chunked" % op))
            st, h, body = recv_response(c)
            assert (st, body) == (200, b"hello chunked world"), (st, h, body)


def test_large_response_streams_intact():
    n = 32 * 1024 * 1024
    with origin() as (srv, op), warden_proxy(LOCAL) as (s, pp):
        st, _, body = request(pp, get(pp, "http://127.0.0.1:%d/bytes/%d" % (op, n)))
        assert st == 200 and len(body) == n, (st, len(body))
        block = bytes(range(256)) * 256
        assert body == (block * (n // len(block) + 1))[:n]


def test_head_and_content_length_post():
    with origin() as (srv, op), warden_proxy(LOCAL) as (s, pp):
        with proxy_conn(pp) as c:
            c.sendall(b"HEAD http://127.0.0.1:%d/h HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                      % (op, op))
            st, h, body = recv_response(c, head_only=True)
            assert st == 200 and int(h["content-length"]) == len(b"origin /h"), h
            c.sendall(b"POST http://127.0.0.1:%d/p HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      b"Content-Length: 5\r\n\r\nhello" % (op, op))
            st, _, body = recv_response(c)
            assert json.loads(body)["len"] == 5


def test_expect_100_continue_passes_the_interim_answer():
    with origin() as (srv, op), warden_proxy(LOCAL) as (s, pp):
        with proxy_conn(pp) as c:
            c.sendall(b"POST http://127.0.0.1:%d/e HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      b"Content-Length: 4\r\nExpect: 100-continue\r\n\r\n" % (op, op))
            st, _, _ = recv_response(c)
            assert st == 100, st  # the body is sent only after this
            c.sendall(b"body")
            st, _, body = recv_response(c)
            assert st == 200 and json.loads(body)["len"] == 4, (st, body)


def test_hop_by_hop_headers_stripped():
    with origin() as (srv, op), warden_proxy(LOCAL) as (s, pp):
        st, _, _ = request(pp, get(pp, "http://127.0.0.1:%d/x" % op,
                                   b"Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
                                   b"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
                                   b"Proxy-Connection: keep-alive\r\nKeep-Alive: 5\r\nTE: trailers\r\n"
                                   b"Upgrade: h2c\r\nX-Kept: yes\r\n"))
        assert st == 200
        seen = {k.lower() for k in srv.seen[0]["headers"]}
        for gone in ("connection", "x-secret", "proxy-authorization", "proxy-connection",
                     "keep-alive", "te", "upgrade"):
            assert gone not in seen, (gone, seen)
        assert "x-kept" in seen and "host" in seen, seen
        # a Connection header naming what the body's framing and the target
        # rest on strips none of them: the body stays a body (no request
        # smuggled to the origin inside it), the Host stays
        inner = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        with proxy_conn(pp) as c:
            c.sendall(b"POST http://127.0.0.1:%d/y HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      b"Content-Length: %d\r\nConnection: content-length, host\r\n\r\n%s"
                      % (op, op, len(inner), inner))
            st, _, body = recv_response(c)
        assert st == 200 and json.loads(body)["len"] == len(inner), (st, body)
        assert [x["path"] for x in srv.seen] == ["/x", "/y"], srv.seen
        assert "host" in {k.lower() for k in srv.seen[1]["headers"]}, srv.seen[1]


def test_bad_heads():
    with origin() as (srv, op), warden_proxy(dict(LOCAL, headTimeoutMs=300)) as (s, pp):
        assert request(pp, b"GARBAGE\r\n\r\n")[0] == 400
        # HTTP/0.9 and 2.0 request lines: not forwarded (a 0.9 CONNECT took the
        # tunnel's first bytes for the rest of its head)
        for line in (b"CONNECT 127.0.0.1:%d\r\n\r\nearly" % op,
                     b"GET http://127.0.0.1:%d/\r\n\r\n" % op,
                     b"GET http://127.0.0.1:%d/ HTTP/2.0\r\n\r\n" % op):
            assert request(pp, line)[0] == 505, line
        # a CR without its LF ends no line: refused, not taken for one (a
        # CONNECT's head ended on the tunnel's first byte)
        assert request(pp, b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\x00early" % op)[0] == 400
        assert request(pp, get(pp, "http://127.0.0.1:%d/" % op, b"X-A: 1\rX-B: 2\r\n"))[0] == 400
        # a folded header line (obs-fold): its value would carry the line break
        st, _, body = request(pp, get(pp, "http://127.0.0.1:%d/" % op, b"X-A: 1\r\n 2\r\n"))
        assert st == 400 and b"obs-fold" in body, (st, body)
        # brackets hold an IPv6 literal: "[a:b]" was taken for host a (port b)
        st, _, body = request(pp, b"GET http://[f80:21]:%d/ HTTP/1.1\r\n\r\n" % op)
        assert st == 400 and b"invalid host" in body, (st, body)
        # a header name with a space: "X A" is no name, and a leading one made
        # the line read to the origin as a continuation of the line before
        for raw in (get(pp, "http://127.0.0.1:%d/" % op, b"X A: 1\r\n"),
                    b"GET http://127.0.0.1:%d/ HTTP/1.1\r\n X-A: 1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                    % (op, op)):
            st, _, body = request(pp, raw)
            assert st == 400 and b"token" in body, (st, body)
        # a NUL in a header value (an upstream in C would read the value's end)
        st, _, body = request(pp, get(pp, "http://127.0.0.1:%d/" % op, b"X-A: \x00X\r\n"))
        assert st == 400 and b"NUL" in body, (st, body)
        # a Transfer-Encoding that does not end in chunked: no body end to find
        st, _, body = request(pp, get(pp, "http://127.0.0.1:%d/" % op,
                                      b"Transfer-Encoding: gzip\r\n"))
        assert st == 400 and b"transfer" in body.lower(), (st, body)
        st, _, body = request(pp, b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n")
        assert st == 400 and b"absolute-form" in body, body
        # Host must name the target
        st, _, body = request(pp, get(pp, "http://127.0.0.1:%d/" % op, host="evil.example"))
        assert st == 400 and b"Host header" in body, body
        st, _, _ = request(pp, get(pp, "http://127.0.0.1:%d/" % op, host="127.0.0.1:1"))
        assert st == 400
        # two Host headers: which one would the origin read?
        st, _, body = request(pp, get(pp, "http://127.0.0.1:%d/" % op,
                                      b"Host: evil.example\r\n"))
        assert st == 400 and b"more than one Host" in body, body
        # oversize head, too many header lines
        st, _, _ = request(pp, get(pp, "http://127.0.0.1:%d/" % op, b"X-Big: " + b"a" * 40000 +
                                   b"\r\n"))
        assert st == 431, st
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        assert request(pp, get(pp, "http://127.0.0.1:%d/" % op, many))[0] == 431
        # a head that never completes: 408 after the head timeout
        with proxy_conn(pp) as c:
            c.sendall(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127" % op)
            st, _, _ = recv_response(c)
            assert st == 408, st
        assert srv.seen == [], "a bad request reached the origin"


def test_refusals_notifications_and_history():
    pol = {"allowedDomains": ["*.allowed.test", "127.0.0.1"], "deniedDomains": ["bad.allowed.test"]}
    with origin() as (srv, op), warden_proxy(pol) as (s, pp):
        st, h, body = request(pp, get(pp, "http://nothere.test/"))
        assert st == 403 and h["x-proxy-error"] == "blocked-by-allowlist", (st, h)
        j = json.loads(body)
        assert {k: j[k] for k in ("status", "host", "port", "protocol", "reason", "decision")} == \
            {"status": "blocked", "host": "nothere.test", "port": 80, "protocol": "http",
             "reason": "not_allowed", "decision": "deny"}, j
        assert "allowed domains" in j["message"] and j["source"], j
        st, h, body = request(pp, get(pp, "http://BAD.allowed.test./"))
        assert st == 403 and h["x-proxy-error"] == "blocked-by-denylist", h
        assert json.loads(body)["host"] == "bad.allowed.test"
        # 127.0.0.1 is named exactly, but 10.0.0.1 and localhost are local
        st, h, _ = request(pp, get(pp, "http://10.0.0.1/"))
        assert st == 403 and h["x-proxy-error"] == "blocked-by-local-policy", h
        st, h, _ = request(pp, get(pp, "http://localhost:%d/" % op))
        assert st == 403 and h["x-proxy-error"] == "blocked-by-local-policy", h
        assert request(pp, get(pp, "http://127.0.0.1:%d/" % op))[0] == 200
        made = decisions(s)
        kinds = [(d["host"], d["decision"], d["reason"]) for d in made]
        assert ("nothere.test", "ask", "not_allowed") in kinds, kinds
        assert ("nothere.test", "deny", "not_allowed") in kinds, kinds
        assert ("bad.allowed.test", "deny", "denied") in kinds, kinds
        assert ("10.0.0.1", "deny", "not_allowed_local") in kinds, kinds
        assert ("127.0.0.1", "allow", "allowed") in kinds, kinds
        blocked = s.call("network/blocked/list", {})["blocked"]
        assert [b["host"] for b in blocked] == ["localhost", "10.0.0.1", "bad.allowed.test",
                                                "nothere.test"], blocked
        assert all(b["decision"] == "deny" for b in blocked)
        assert len(s.call("network/blocked/list", {"limit": 2})["blocked"]) == 2
        assert srv.seen and all(x["path"] == "/" for x in srv.seen) and len(srv.seen) == 1


def test_upstream_failures():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    cport = closed.getsockname()[1]
    closed.close()
    with warden_proxy({"allowedDomains": ["*"], "allowLocalBinding": True}) as (s, pp):
        st, _, body = request(pp, get(pp, "http://127.0.0.1:%d/" % cport))
        assert st == 502, (st, body)
        # a name that does not resolve (the resolver here is a closed port)
        st, _, body = request(pp, get(pp, "http://does-not-resolve.invalid/"))
        assert st in (502, 504), (st, body)


def test_upstream_connect_timeout_is_504():
    # A listener whose accept queue is full drops SYNs: connect() hangs until
    # the proxy's connect timeout (NETPROXY_CONNECT_TIMEOUT_MS).
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fill = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        try:
            f.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fill.append(f)
    time.sleep(0.2)
    with warden_proxy({"allowedDomains": ["127.0.0.1"]}) as (s, pp):
        st, _, body = request(pp, get(pp, "http://127.0.0.1:%d/" % port), timeout=120)
        assert st == 504 and b"did not answer in time" in body, (st, body)
    for f in fill:
        f.close()
    ls.close()


def test_policy_methods_and_config_start_value():
    start = {"allowedDomains": ["example.com", "**.example.org"], "deniedDomains": ["x.example.org"],
             "mode": "limited", "allowLocalBinding": False}
    with warden_proxy(start) as (s, pp):
        assert s.call("network/policy/get") == start
        new = {"allowedDomains": ["*"], "deniedDomains": [], "mode": "full",
               "allowLocalBinding": True}
        assert s.call("network/policy/set", new) == {}
        assert s.call("network/policy/get") == new
        r = s.request("network/policy/set", dict(new, deniedDomains=["*"]))
        assert r["error"]["code"] == -32602 and "global wildcard" in r["error"]["message"], r
        r = s.request("network/policy/set", dict(new, allowedDomains=["bad host/x"]))
        assert r["error"]["code"] == -32602 and "allowedDomains[0]" in r["error"]["message"], r
        r = s.request("network/policy/set", {"allowedDomains": []})
        assert r["error"]["code"] == -32602, r
        assert s.call("network/policy/get") == new, "a refused set changed the policy"


def test_bad_config_network_object_is_refused():
    import subprocess
    import tempfile
    import wardenrpc
    with tempfile.TemporaryDirectory() as d:
        for net, word in (({"allowedDomains": "x"}, "allowedDomains"),
                          ({"deniedDomains": ["*"]}, "global wildcard"),
                          ({"nope": 1}, "nope")):
            cfg = os.path.join(d, "c.json")
            with open(cfg, "w") as f:
                json.dump({"network": net}, f)
            p = subprocess.run([wardenrpc.WARDEN_BIN, "--config", cfg], input=b"",
                               capture_output=True, timeout=30)
            assert p.returncode != 0 and word.encode() in p.stderr, (net, p.stderr)
        p = subprocess.run([wardenrpc.WARDEN_BIN, "--proxy-listen", "8.8.8.8:0"], input=b"",
                           capture_output=True, timeout=30)
        assert p.returncode != 0 and b"loopback" in p.stderr, p.stderr


def test_connections_per_process_limit():
    with origin() as (srv, op), warden_proxy(dict(LOCAL, maxConnectionsPerProcess=2)) as (s, pp):
        a, b = proxy_conn(pp), proxy_conn(pp)
        a.sendall(get(pp, "http://127.0.0.1:%d/a" % op))
        assert recv_response(a)[0] == 200
        c = proxy_conn(pp)  # the third: accepted and closed at once
        c.settimeout(30)
        assert c.recv(100) == b""
        c.close()
        b.sendall(get(pp, "http://127.0.0.1:%d/b" % op))
        assert recv_response(b)[0] == 200
        for x in (a, b):  # (shutdown: the buffered reader keeps the fd open)
            x.shutdown(socket.SHUT_RDWR)
            x.close()
        deadline = time.time() + 30
        while time.time() < deadline:  # once they are gone, a new one is served
            d = proxy_conn(pp)
            d.sendall(get(pp, "http://127.0.0.1:%d/d" % op))
            try:
                if recv_response(d)[0] == 200:
                    break
            except ConnectionError:
                pass
            finally:
                d.close()
            time.sleep(0.05)
        else:
            assert False, "the limit did not free up"


def test_limited_mode_http():
    with origin() as (srv, op), warden_proxy(dict(LOCAL, mode="limited")) as (s, pp):
        assert request(pp, get(pp, "http://127.0.0.1:%d/g" % op))[0] == 200
        st, h, body = request(pp, b"POST http://127.0.0.1:%d/p HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                              b"Content-Length: 2\r\n\r\nhi" % (op, op))
        assert st == 403 and h["x-proxy-error"] == "blocked-by-method-policy", (st, h)
        assert json.loads(body)["reason"] == "method_not_allowed"
        assert [x["path"] for x in srv.seen] == ["/g"]


if __name__ == "__main__":
    run_tests(globals())
