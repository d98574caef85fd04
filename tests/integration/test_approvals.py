"""Network approvals through the real binary: the proxy on loopback
(--proxy-listen), loopback origins, the test as the client answering
approval/network. One prompt per (host, protocol, port) shared by every
waiter; each decision; every failure is a deny and nothing hangs."""

import os
import socket
import tempfile
import threading
import time

from approvals_util import Warden, connect_tunnel, fetch, fetch_async, origin
from wardenrpc import run_tests

N = 50


def url(port, path="/"):
    return "http://127.0.0.1:%d%s" % (port, path)


def asks(w):
    with w.s.cond:
        return [n for n in w.s.notifications if n.get("method") == "network/decision"
                and n["params"]["decision"] == "ask"]


def wait_asks(w, count, timeout=30):
    deadline = time.time() + timeout
    while len(asks(w)) < count:
        assert time.time() < deadline, "%d asks seen, %d wanted" % (len(asks(w)), count)
        time.sleep(0.02)


def join(threads, timeout=60):
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a request is still blocked"


def test_concurrent_requests_share_one_prompt_and_all_proceed():
    with tempfile.TemporaryDirectory() as st, origin() as (o, port), Warden(st) as w:
        res = {}
        threads = [fetch_async(w.port, url(port, "/%d" % i), res, i) for i in range(N)]
        p = w.wait_prompts(1)
        # Every request is held (asked, no origin hit): then answer once.
        wait_asks(w, N)
        assert o.hits == 0
        assert len(w.prompts()) == 1, w.prompts()
        assert p[0]["params"]["host"] == "127.0.0.1" and p[0]["params"]["port"] == port, p
        assert p[0]["params"]["protocol"] == "http", p
        w.answer(p[0], "allowOnce")
        join(threads)
        assert sorted(res) == list(range(N)), res
        assert all(r[0] == 200 for r in res.values()), res
        r = w.wait_resolved(p[0]["params"]["approvalId"])
        assert r == {"approvalId": p[0]["params"]["approvalId"], "decision": "allowOnce",
                     "waiters": N}, r  # no reason: it was allowed
        assert len(w.prompts()) == 1
        # allowOnce remembers nothing: the next request asks again.
        res2 = {}
        t = fetch_async(w.port, url(port), res2, 0)
        p = w.wait_prompts(2)
        w.answer(p[1], "deny")
        join([t])
        assert res2[0][0] == 403, res2


def test_concurrent_requests_all_fail_on_deny():
    with tempfile.TemporaryDirectory() as st, origin() as (o, port), Warden(st) as w:
        res = {}
        threads = [fetch_async(w.port, url(port), res, i) for i in range(N)]
        p = w.wait_prompts(1)
        wait_asks(w, N)
        w.answer(p[0], "deny")
        join(threads)
        assert all(r[0] == 403 for r in res.values()) and len(res) == N, res
        assert o.hits == 0
        r = w.wait_resolved(p[0]["params"]["approvalId"])
        assert r["waiters"] == N and r["reason"] == "denied_by_user", r
        assert len(w.prompts()) == 1


def test_ports_and_protocols_are_separate_prompts():
    with tempfile.TemporaryDirectory() as st, origin() as (o1, p1), origin() as (o2, p2), \
            Warden(st) as w:
        res = {}
        threads = [fetch_async(w.port, url(p1), res, "a"), fetch_async(w.port, url(p2), res, "b")]
        tunnel = {}

        def connect():
            tunnel["status"] = connect_tunnel(w.port, "127.0.0.1", p1)
        tc = threading.Thread(target=connect, daemon=True)
        tc.start()

        def socks():
            s = socket.create_connection(("127.0.0.1", w.port), timeout=60)
            s.sendall(b"\x05\x01\x00")
            s.recv(2)
            s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") +
                      p1.to_bytes(2, "big"))
            tunnel["socks"] = s.recv(10)[1]
            s.close()
        ts = threading.Thread(target=socks, daemon=True)
        ts.start()
        prompts = w.wait_prompts(4)
        time.sleep(0.3)  # nothing more comes
        keys = sorted((p["params"]["protocol"], p["params"]["port"]) for p in w.prompts())
        assert keys == sorted([("http", p1), ("http", p2), ("https", p1), ("socks5Tcp", p1)]), keys
        for p in prompts:
            w.answer(p, "allowOnce" if p["params"]["port"] == p1 else "deny")
        join(threads + [tc, ts])
        assert res["a"][0] == 200 and res["b"][0] == 403, res
        assert tunnel["status"].startswith("HTTP/1.1 200"), tunnel
        assert tunnel["socks"] == 0, tunnel  # SOCKS5 reply: succeeded


def test_host_spellings_share_one_key():
    with tempfile.TemporaryDirectory() as st, origin() as (o, port), Warden(st) as w:
        res = {}
        threads = [fetch_async(w.port, "http://LocalHost.:%d/" % port, res, 0),
                   fetch_async(w.port, "http://localhost:%d/" % port, res, 1)]
        p = w.wait_prompts(1)
        wait_asks(w, 2)
        assert len(w.prompts()) == 1, w.prompts()
        assert p[0]["params"]["host"] == "localhost", p
        w.answer(p[0], "allowOnce")
        join(threads)
        assert res[0][0] == 200 and res[1][0] == 200, res


def test_allow_for_session_skips_the_next_prompt():
    with tempfile.TemporaryDirectory() as st, origin() as (o, port), Warden(st) as w:
        res = {}
        t = fetch_async(w.port, url(port), res, 0)
        p = w.wait_prompts(1)
        w.answer(p[0], "allowForSession")
        join([t])
        assert res[0][0] == 200, res
        for _ in range(3):
            assert fetch(w.port, url(port))[0] == 200
        assert len(w.prompts()) == 1
        # Session only: not written, not in the rules.
        assert "approvalRules" not in w.s.call("network/policy/get")
        assert not os.path.exists(os.path.join(st, "network-rules"))


def always(decision, status):
    with tempfile.TemporaryDirectory() as st, origin() as (o, port):
        rule = {"action": "allow" if decision == "allowAlways" else "deny",
                "protocol": "http", "host": "127.0.0.1", "port": port}
        with Warden(st) as w:
            res = {}
            t = fetch_async(w.port, url(port), res, 0)
            p = w.wait_prompts(1)
            w.answer(p[0], decision)
            join([t])
            assert res[0][0] == status, res
            assert fetch(w.port, url(port))[0] == status
            assert len(w.prompts()) == 1
            got = w.s.call("network/policy/get")
            assert got["approvalRules"] == [rule], got
            # What get returns can be set again as it is; the rules stay.
            assert w.s.call("network/policy/set", got) == {}
            assert w.s.call("network/policy/get") == got
        with open(os.path.join(st, "network-rules")) as f:
            text = f.read()
        assert "%s http 127.0.0.1 %d\n" % (rule["action"], port) in text, text
        # A new server over the same state directory: no prompt, same answer.
        with Warden(st) as w:
            assert w.s.call("network/policy/get")["approvalRules"] == [rule]
            assert fetch(w.port, url(port))[0] == status
            assert w.prompts() == []
            # Exact: another port of the same host still asks.
            with origin() as (o2, port2):
                res = {}
                t = fetch_async(w.port, url(port2), res, 0)
                p = w.wait_prompts(1)
                w.answer(p[0], "deny")
                join([t])


def test_allow_always_survives_a_restart():
    always("allowAlways", 200)


def test_deny_always_survives_a_restart():
    always("denyAlways", 403)


def failing(answer_fn, config=None, reason=None):
    with tempfile.TemporaryDirectory() as st, origin() as (o, port), \
            Warden(st, config=config) as w:
        res = {}
        threads = [fetch_async(w.port, url(port), res, i) for i in range(5)]
        p = w.wait_prompts(1)
        wait_asks(w, 5)  # all five wait on this prompt (a late one would start another)
        answer_fn(w, p[0])
        join(threads)
        assert [r[0] for r in res.values()] == [403] * 5, res
        r = w.wait_resolved(p[0]["params"]["approvalId"])
        assert r["decision"] == "deny" and r["reason"] == reason, r
        assert o.hits == 0
        if reason:
            w.close()
            assert any(reason in l for l in w.s.stderr_lines), w.s.stderr_lines


def test_deny_on_timeout():
    failing(lambda w, p: None, config={"approvalTimeoutMs": 300}, reason="approval_timeout")


def test_deny_on_error_answer():
    failing(lambda w, p: w.answer(p, error={"code": -32000, "message": "dialog crashed"}),
            reason="approval_error")


def test_deny_on_unknown_decision():
    failing(lambda w, p: w.answer(p, result={"decision": "allowForever"}),
            reason="approval_unknown_decision")
    failing(lambda w, p: w.answer(p, result={"nothing": True}),
            reason="approval_unknown_decision")


def test_deny_without_the_capability():
    with tempfile.TemporaryDirectory() as st, origin() as (o, port), \
            Warden(st, approvals=False) as w:
        assert fetch(w.port, url(port))[0] == 403
        time.sleep(0.2)
        assert w.prompts() == []
        assert o.hits == 0


def test_deny_when_the_client_closes_stdin_mid_prompt():
    with tempfile.TemporaryDirectory() as st, origin() as (o, port):
        w = Warden(st)
        res = {}
        threads = [fetch_async(w.port, url(port), res, i) for i in range(5)]
        w.wait_prompts(1)
        wait_asks(w, 5)
        w.s.proc.stdin.close()
        join(threads)
        assert [r[0] for r in res.values()] == [403] * 5, res
        assert w.s.proc.wait(30) == 0
        w.s._reader.join(5)
        assert [(r["decision"], r["waiters"], r.get("reason")) for r in w.resolved()] == \
            [("deny", 5, "approval_client_gone")], w.resolved()
        assert o.hits == 0


def test_a_waiter_that_disconnects_leaves_the_group():
    with tempfile.TemporaryDirectory() as st, origin() as (o, port), Warden(st) as w:
        res = {}
        stay = fetch_async(w.port, url(port, "/stay"), res, "stay")
        p = w.wait_prompts(1)
        leaver = socket.create_connection(("127.0.0.1", w.port), timeout=30)
        leaver.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (
            url(port, "/leave").encode(), port))
        # Wait for its ask, then hang up while it is held.
        wait_asks(w, 2)
        leaver.close()
        deadline = time.time() + 30
        while not any("left its approval group" in l for l in list(w.s.stderr_lines)):
            assert time.time() < deadline, "the server did not see the waiter leave"
            time.sleep(0.01)
        assert len(w.prompts()) == 1
        w.answer(p[0], "allowOnce")
        join([stay])
        assert res["stay"][0] == 200, res
        r = w.wait_resolved(p[0]["params"]["approvalId"])
        assert r["waiters"] == 1, r
        assert o.hits == 1


if __name__ == "__main__":
    run_tests(globals())
