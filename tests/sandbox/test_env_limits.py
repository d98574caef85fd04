"""Spawn limits and a linear environment build (issue 10, item 3): a
process/spawn with more env entries, argv entries or bytes than the named
limits answers -32602 naming the field before any work; one under the
limits is served (the environment is built with a hash index, not a scan
per variable), and the server keeps answering other requests meanwhile.
Behaviour does not depend on the uid; the sandboxed runs go once as root
and once as uid 65534."""

import os

from policy_harness import FULL, NOBODY, WORKSPACE, Box, label
from wardenrpc import run_tests

MAX_ENV = 16384
MAX_ARGV = 16384


def many_env(n):
    return {"W%06d" % i: "v%d" % i for i in range(n)}


def check_limits(user, loc):
    b = Box(user, loc)
    try:
        ws = b.mkdir("ws")
        b.start()
        what = label(user, loc)
        # 100,000 entries: over the limit, refused by name
        r, code, _ = b.spawn(["/bin/true"], FULL, ws, env=many_env(100000))
        assert r.get("error", {}).get("code") == -32602, (what, str(r)[:300])
        assert r["error"]["data"]["path"] == "params.env", r["error"]
        assert "16384" in r["error"]["message"], r["error"]
        # argv: too many entries, one too long, too many bytes
        r, code, _ = b.spawn(["/bin/true"] + ["x"] * MAX_ARGV, FULL, ws)
        assert r["error"]["code"] == -32602 and r["error"]["data"]["path"] == "params.argv", r
        r, code, _ = b.spawn(["/bin/echo", "y" * (200 * 1024)], FULL, ws)
        assert r["error"]["code"] == -32602, r
        assert r["error"]["data"]["path"] == "params.argv[1]", r["error"]
        r, code, _ = b.spawn(["/bin/true"], FULL, ws, env={"BIG": "z" * (200 * 1024)})
        assert r["error"]["data"]["path"] == "params.env.BIG", r["error"]
        r, code, _ = b.spawn(["/bin/true"] + ["a" * 100000] * 12, FULL, ws)
        assert r["error"]["code"] == -32602 and "together" in r["error"]["message"], r
        # under the limit: served, every variable arrives, sandboxed too
        for sb in (FULL, WORKSPACE):
            env = many_env(MAX_ENV - 100)
            r, code, out = b.spawn(["sh", "-c", "env | grep -c '^W0'"], sb, ws, env=env)
            assert code == 0, (what, sb, str(r)[:300])
            assert int(out.strip()) == len(env), out
        # a second session keeps answering while a big request is handled:
        # the big one and a small one sent back to back both get answers
        s = b.server
        big = s.request_async("process/spawn", {"processId": "big", "argv": ["/bin/true"],
                                                "cwd": ws, "sandbox": FULL,
                                                "env": many_env(100000)})
        small = s.request_async("process/spawn", {"processId": "small", "argv": ["/bin/true"],
                                                  "cwd": ws, "sandbox": WORKSPACE})
        rb = s.wait_response(big, timeout=60)
        rs = s.wait_response(small, timeout=60)
        assert rb["error"]["code"] == -32602, rb
        assert "result" in rs, rs
        assert s.wait_exit("small", timeout=60)["exitCode"] == 0
        lst = s.call("process/list", {})
        assert any(p["processId"] == "small" for p in lst["processes"]), lst
    finally:
        b.close()


def test_limits_as_root():
    check_limits(None, "/var/tmp")


def test_limits_unprivileged():
    check_limits(NOBODY, "/tmp")


if __name__ == "__main__":
    run_tests(globals())
