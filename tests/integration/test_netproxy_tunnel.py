"""The egress proxy's tunnels: CONNECT (raw bytes, and TLS to a self-signed
origin when openssl exists), SOCKS5 CONNECT by IPv4, IPv6 and name, IPv6
literals, limited mode, a live policy change with a tunnel open, names that
resolve to loopback (DNS checked, connect pinned), allowLocalBinding and an
allowlisted literal."""

import os
import socket
import ssl
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from netproxy_util import (decisions, echo_server, openssl_cert, origin, proxy_conn,  # noqa: E402
                           recv_response, request, socks_connect, warden_proxy)
from wardenrpc import run_tests  # noqa: E402


def connect(pp, target):
    c = proxy_conn(pp)
    c.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target.encode(), target.encode()))
    f = b""
    while b"\r\n\r\n" not in f:
        d = c.recv(1)
        if not d:
            break
        f += d
    status = int(f.split()[1]) if f else 0
    return c, status, f


def roundtrip(c, data):
    c.sendall(data)
    got = b""
    while len(got) < len(data):
        d = c.recv(65536)
        assert d, "tunnel closed early"
        got += d
    return got


def test_connect_tunnel_carries_bytes_and_early_data():
    with echo_server() as (ep, _), warden_proxy({"allowedDomains": ["127.0.0.1"]}) as (s, pp):
        c, st, head = connect(pp, "127.0.0.1:%d" % ep)
        assert st == 200, head
        big = os.urandom(3 * 1024 * 1024)
        assert roundtrip(c, big) == big
        c.close()
        # bytes sent right behind the CONNECT head go first through the tunnel
        c = proxy_conn(pp)
        c.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\nearly" % ep)
        f = b""
        while not f.endswith(b"early"):
            d = c.recv(4096)
            assert d, f
            f += d
        assert f.startswith(b"HTTP/1.1 200"), f
        c.close()
        ev = decisions(s)
        assert ev[0]["protocol"] == "https" and ev[0]["method"] == "CONNECT", ev


def test_connect_https_to_self_signed_origin():
    with tempfile.TemporaryDirectory() as d:
        pair = openssl_cert(d)
        if not pair:
            print("openssl missing: the TLS-less echo test covers CONNECT")
            return
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*pair)
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(4)
        port = ls.getsockname()[1]
        import threading

        def serve():
            raw, _ = ls.accept()
            with ctx.wrap_socket(raw, server_side=True) as t:
                req = b""
                while b"\r\n\r\n" not in req:
                    req += t.recv(4096)
                t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecret")
        th = threading.Thread(target=serve, daemon=True)
        th.start()
        pol = {"allowedDomains": ["origin.warden-test"], "allowLocalBinding": True}
        with warden_proxy(pol) as (s, pp):
            c, st, _ = connect(pp, "origin.warden-test:%d" % port)
            assert st == 200
            cctx = ssl.create_default_context(cafile=pair[0])
            with cctx.wrap_socket(c, server_hostname="origin.warden-test") as t:
                t.sendall(b"GET / HTTP/1.1\r\nHost: origin.warden-test\r\n\r\n")
                st, _, body = recv_response(t)
                assert (st, body) == (200, b"secret")
        ls.close()


def test_connect_refusals():
    pol = {"allowedDomains": ["127.0.0.1"], "deniedDomains": ["*.bad.test"]}
    with warden_proxy(pol) as (s, pp):
        c, st, head = connect(pp, "x.bad.test:443")
        assert st == 403 and b"x-proxy-error: blocked-by-denylist" in head, head
        c.close()
        c, st, head = connect(pp, "elsewhere.test:443")
        assert st == 403 and b"blocked-by-allowlist" in head, head
        c.close()
        c, st, head = connect(pp, "192.168.1.1:443")
        assert st == 403 and b"blocked-by-local-policy" in head, head
        c.close()


def test_socks5_connect_v4_v6_name_and_refusals():
    pol = {"allowedDomains": ["127.0.0.1", "[::1]", "origin.warden-test"],
           "allowLocalBinding": True}
    with echo_server() as (ep, _), echo_server("::1") as (ep6, _), \
            warden_proxy(pol) as (s, pp):
        c, code = socks_connect(pp, 1, "127.0.0.1", ep)
        assert code == 0 and roundtrip(c, b"v4") == b"v4"
        c.close()
        c, code = socks_connect(pp, 4, "::1", ep6)
        assert code == 0 and roundtrip(c, b"v6") == b"v6"
        c.close()
        c, code = socks_connect(pp, 3, "origin.warden-test", ep)
        assert code == 0 and roundtrip(c, b"name") == b"name"
        c.close()
        c, code = socks_connect(pp, 3, "other.warden-test", ep)
        assert code == 2, code  # not in the allowlist: "not allowed by ruleset"
        c.close()
        # a name with a NUL is no host (it was cut short at the NUL and
        # decided and dialled as origin.warden-test)
        c, code = socks_connect(pp, 3, "origin.warden-test\x00.other", ep)
        assert code == 4, code  # host unreachable
        c.close()
        # BIND is not supported
        c = proxy_conn(pp)
        c.sendall(b"\x05\x01\x00")
        assert c.recv(2) == b"\x05\x00"
        c.sendall(b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50")
        assert c.recv(10)[1] == 7
        c.close()
        ev = decisions(s)
        assert {e["protocol"] for e in ev} == {"socks5Tcp"}, ev
        assert ("other.warden-test", "deny") in [(e["host"], e["decision"]) for e in ev]


def test_ipv6_literal_http():
    with origin("::1") as (srv, op), \
            warden_proxy({"allowedDomains": ["[::1]"]}) as (s, pp):
        st, _, body = request(pp, b"GET http://[::1]:%d/six HTTP/1.1\r\nHost: [::1]:%d\r\n\r\n"
                              % (op, op))
        assert (st, body) == (200, b"origin /six"), (st, body)
        # ::ffff:127.0.0.1 is loopback too, and not named exactly
        st, h, _ = request(pp, b"GET http://[::ffff:127.0.0.1]:%d/ HTTP/1.1\r\n\r\n" % op)
        assert st == 403 and h["x-proxy-error"] == "blocked-by-local-policy", (st, h)


def test_limited_mode_refuses_tunnels():
    pol = {"allowedDomains": ["127.0.0.1"], "mode": "limited"}
    with echo_server() as (ep, conns), warden_proxy(pol) as (s, pp):
        c, st, head = connect(pp, "127.0.0.1:%d" % ep)
        assert st == 403 and b"blocked-by-method-policy" in head, head
        c.close()
        c, code = socks_connect(pp, 1, "127.0.0.1", ep)
        assert code == 2
        c.close()
        assert conns == []


def test_live_policy_change_keeps_open_tunnel():
    pol = {"allowedDomains": ["127.0.0.1"], "deniedDomains": [], "mode": "full",
           "allowLocalBinding": False}
    with echo_server() as (ep, _), warden_proxy(pol) as (s, pp):
        c, st, _ = connect(pp, "127.0.0.1:%d" % ep)
        assert st == 200 and roundtrip(c, b"before") == b"before"
        s.call("network/policy/set", dict(pol, allowedDomains=[]))
        assert roundtrip(c, b"after") == b"after"  # the open tunnel stays up
        c2, st, head = connect(pp, "127.0.0.1:%d" % ep)
        assert st == 403, head  # a new one is decided under the new policy
        c2.close()
        c.close()


def test_name_resolving_to_loopback_is_local():
    with origin() as (srv, op):
        pol = {"allowedDomains": ["rebind.warden-test", "*"], "allowLocalBinding": False}
        with warden_proxy(pol) as (s, pp):
            # allowlisted by name, but the name resolves to 127.0.0.1
            st, h, body = request(pp, b"GET http://rebind.warden-test:%d/ HTTP/1.1\r\n\r\n" % op)
            assert st == 403 and h["x-proxy-error"] == "blocked-by-local-policy", (st, h, body)
            # "*" does not open local literals either
            st, h, _ = request(pp, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\n\r\n" % op)
            assert st == 403 and h["x-proxy-error"] == "blocked-by-local-policy", (st, h)
            c, code = socks_connect(pp, 3, "rebind.warden-test", op)
            assert code == 2
            c.close()
            assert srv.seen == []
            # allowLocalBinding opens them
            s.call("network/policy/set", dict(pol, deniedDomains=[], mode="full",
                                               allowLocalBinding=True))
            st, _, body = request(pp, b"GET http://rebind.warden-test:%d/r HTTP/1.1\r\n\r\n" % op)
            assert (st, body) == (200, b"origin /r"), (st, body)
        # the allowlist naming the literal exactly opens that literal only
        pol = {"allowedDomains": ["127.0.0.1"], "allowLocalBinding": False}
        with warden_proxy(pol) as (s, pp):
            assert request(pp, b"GET http://127.0.0.1:%d/l HTTP/1.1\r\n\r\n" % op)[0] == 200
            st, h, _ = request(pp, b"GET http://127.0.0.2:%d/ HTTP/1.1\r\n\r\n" % op)
            assert st == 403 and h["x-proxy-error"] == "blocked-by-local-policy"


def udp_associate(pp):
    c = proxy_conn(pp)
    c.sendall(b"\x05\x01\x00")
    assert c.recv(2) == b"\x05\x00"
    c.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
    rep = c.recv(10)
    return c, rep


def test_socks5_udp_associate_checks_each_datagram():
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.2", 0))
    import threading

    def serve():
        while True:
            try:
                d, a = echo.recvfrom(65535)
            except OSError:
                return
            echo.sendto(b"echo:" + d, a)
    threading.Thread(target=serve, daemon=True).start()
    with warden_proxy({"allowedDomains": ["127.0.0.1", "origin.warden-test"]}) as (s, pp):
        c, rep = udp_associate(pp)
        assert rep[1] == 0 and rep[3] == 1, rep
        relay = (socket.inet_ntoa(rep[4:8]), int.from_bytes(rep[8:10], "big"))
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.settimeout(10)
        hdr = b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.1") + \
            echo.getsockname()[1].to_bytes(2, "big")
        u.sendto(hdr + b"ping", relay)
        d, _ = u.recvfrom(65535)
        assert d == hdr + b"echo:ping", d
        # a destination the policy does not allow gets nothing
        hdr2 = b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.2") + \
            other.getsockname()[1].to_bytes(2, "big")
        u.sendto(hdr2 + b"nope", relay)
        u.sendto(hdr + b"again", relay)
        assert u.recvfrom(65535)[0] == hdr + b"echo:again"
        other.settimeout(0.5)
        try:
            other.recvfrom(100)
            assert False, "a refused datagram got through"
        except socket.timeout:
            pass
        # a name is resolved and checked: origin.warden-test is 127.0.0.1, not named
        hdr3 = b"\x00\x00\x00\x03\x12origin.warden-test" + \
            echo.getsockname()[1].to_bytes(2, "big")
        u.sendto(hdr3 + b"byname", relay)
        # (the name is looked up off the loop: wait for its decision)
        d = s.wait_for(lambda n: n.get("method") == "network/decision"
                       and n["params"]["host"] == "origin.warden-test")["params"]
        assert (d["protocol"], d["decision"], d["reason"]) == \
            ("socks5Udp", "deny", "not_allowed_local"), d
        s.call("network/policy/set", {"allowedDomains": ["127.0.0.1", "origin.warden-test"],
                                      "deniedDomains": [], "mode": "full",
                                      "allowLocalBinding": True})
        u.sendto(hdr3 + b"byname", relay)
        d, _ = u.recvfrom(65535)
        assert d == hdr + b"echo:byname", d  # answered from the address it resolved to
        ev = [(n["params"]["host"], n["params"]["protocol"], n["params"]["decision"])
              for n in s.notifications if n.get("method") == "network/decision"]
        assert ("127.0.0.1", "socks5Udp", "allow") in ev and \
            ("127.0.0.2", "socks5Udp", "deny") in ev, ev
        assert ev.count(("127.0.0.1", "socks5Udp", "allow")) == 1, ev  # reported on change only
        c.close()
        s.call("network/policy/set", {"allowedDomains": ["127.0.0.1"], "deniedDomains": [],
                                      "mode": "limited", "allowLocalBinding": False})
        c, rep = udp_associate(pp)
        assert rep[1] == 2, rep
        c.close()
    echo.close()
    other.close()


def test_one_lookup_and_the_checked_address_is_the_one_connected():
    # The resolver answers 127.0.0.1 once, then 127.0.0.3 (nothing there):
    # the proxy resolves once per request and connects to what it checked.
    from netproxy_util import FlipDNS
    try:
        dns = FlipDNS("flip.warden-test", "127.0.0.1", "127.0.0.3")
    except OSError as e:
        print("cannot bind 127.0.0.2:53 (%s): skipped" % e)
        return
    try:
        with origin() as (srv, op), warden_proxy(
                {"allowedDomains": ["flip.warden-test"], "allowLocalBinding": True},
                nameserver="127.0.0.2") as (s, pp):
            st, _, body = request(pp, b"GET http://flip.warden-test:%d/f HTTP/1.1\r\n\r\n" % op)
            assert (st, body) == (200, b"origin /f"), (st, body)
            assert dns.a_queries == 1, dns.a_queries
            # without allowLocalBinding the first answer (loopback) is refused
            dns.a_queries = 0
            s.call("network/policy/set", {"allowedDomains": ["flip.warden-test"],
                                          "deniedDomains": [], "mode": "full",
                                          "allowLocalBinding": False})
            st, h, _ = request(pp, b"GET http://flip.warden-test:%d/g HTTP/1.1\r\n\r\n" % op)
            assert st == 403 and h["x-proxy-error"] == "blocked-by-local-policy", (st, h)
            assert [x["path"] for x in srv.seen] == ["/f"]
    finally:
        dns.close()


if __name__ == "__main__":
    run_tests(globals())
