"""Fail closed: a policy this kernel cannot enforce is refused, never run
weaker. The test build's WARDEN_TEST_FEATURES hook makes the feature probe
report less than the kernel has (a Landlock ABI cap, no user or network
namespaces, no seccomp); then process/spawn answers -32003 with data.reason
and runs nothing, `warden run` exits 126 without running the command, and
sandbox/refresh warns. Each case has its control: the same request on a
server without the hook runs."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from schemacheck import assert_error  # noqa: E402
from wardenrpc import WARDEN_BIN, Server, Skip, run_tests  # noqa: E402

WS = {"type": "split", "network": {"mode": "none"}, "fileSystem": {"entries": [
    {"path": ":root", "access": "read"}, {"path": ":cwd", "access": "write"}]}}
WS_NET = {"type": "workspaceWrite", "networkAccess": True}
RO_NET = {"type": "readOnly", "networkAccess": True}

# (features, policy, a word the reason must contain)
CASES = [
    ("userns=0", WS, "namespaces"),
    ("userns=0", WS_NET, "namespaces"),
    ("netns=0", WS, "network namespace"),
    ("seccomp=0", WS_NET, "seccomp"),
    ("seccomp=0", RO_NET, "seccomp"),
    ("landlock=0,userns=0", RO_NET, "Landlock"),
]


def require_hooks():
    p = subprocess.run([WARDEN_BIN, "--version"], env=dict(os.environ, WARDEN_TEST_FEATURES="x"),
                       capture_output=True, timeout=60)
    if p.returncode != 2:
        raise Skip("built without -DWARDEN_TEST_HOOKS=ON (scripts/test.sh builds with it)")


def spawn_marker(s, d, policy, pid):
    marker = os.path.join(d, "ran-" + pid)
    r = s.request("process/spawn", {"processId": pid, "cwd": d, "sandbox": policy,
                                    "argv": ["sh", "-c", "touch %s; echo ran" % marker]})
    return r, marker


def test_spawn_refused_never_weaker():
    require_hooks()
    for feats, policy, word in CASES:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
            with Server(env={"WARDEN_TEST_FEATURES": feats, "XDG_STATE_HOME": d}) as s:
                r, marker = spawn_marker(s, d, policy, "p")
                e = assert_error(r, -32003)
                assert word in e["data"]["reason"], (feats, e)
                # nothing ran, and the id is not taken by a weaker run
                lst = s.call("process/list")
                assert not lst.get("processes"), (feats, lst)
                assert not [n for n in s.notifications if n["method"].startswith("process/")]
                assert not os.path.exists(marker)
            with Server(env={"XDG_STATE_HOME": d}) as s:  # control
                r, marker = spawn_marker(s, d, policy, "c")
                assert "result" in r, (feats, policy, r)
                assert r["result"]["sandbox"]["enforced"] is True, r
                assert s.wait_exit("c")["exitCode"] == 0
                assert b"ran" in s.output_of("c")


def test_spawn_refused_unprivileged():
    """The same refusals when the server runs as an unprivileged uid."""
    import shutil
    import wardenrpc
    require_hooks()
    base = tempfile.mkdtemp(prefix="warden-refuse-", dir="/var/tmp")
    try:
        os.chmod(base, 0o755)
        d = os.path.join(base, "ws")
        os.mkdir(d)
        os.chown(d, 65534, 65534)
        binary = os.path.join(base, "warden")
        shutil.copy(WARDEN_BIN, binary)
        saved, wardenrpc.WARDEN_BIN = wardenrpc.WARDEN_BIN, binary
        try:
            for feats, policy, word in CASES:
                env = {"WARDEN_TEST_FEATURES": feats, "HOME": base, "XDG_STATE_HOME": d}
                with Server(env=env, user=(65534, 65534), cwd=base) as s:
                    r, marker = spawn_marker(s, d, policy, "p")
                    e = assert_error(r, -32003)
                    assert word in e["data"]["reason"], (feats, e)
                    assert not os.path.exists(marker)
                with Server(env={"HOME": base}, user=(65534, 65534), cwd=base) as s:  # control
                    r, marker = spawn_marker(s, d, policy, "c")
                    assert "result" in r, (feats, policy, r)
                    assert s.wait_exit("c")["exitCode"] == 0
                    assert b"ran" in s.output_of("c")
                    assert os.path.exists(marker) == (policy is not RO_NET)
                    if os.path.exists(marker):
                        os.unlink(marker)
        finally:
            wardenrpc.WARDEN_BIN = saved
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_warden_run_exits_126():
    require_hooks()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        marker = os.path.join(d, "ran")
        argv = [WARDEN_BIN, "run", "--cwd", d, "--", "sh", "-c", "touch %s" % marker]
        for feats in ["userns=0", "seccomp=0", "netns=0"]:
            p = subprocess.run(argv, env=dict(os.environ, WARDEN_TEST_FEATURES=feats),
                               capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
            assert p.returncode == 126, (feats, p)
            assert b"cannot be enforced" in p.stderr, p.stderr
            assert not os.path.exists(marker), feats
        p = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        assert p.returncode == 0 and os.path.exists(marker), p  # control


def test_refresh_warns():
    require_hooks()
    for feats, policy, word in CASES:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
            with Server(env={"WARDEN_TEST_FEATURES": feats, "XDG_STATE_HOME": d}) as s:
                res = s.call("sandbox/refresh", {"cwd": d, "sandbox": policy})
                w = [x for x in res["warnings"] if "cannot be enforced" in x]
                assert len(w) == 1 and word in w[0], (feats, res)
            with Server(env={"XDG_STATE_HOME": d}) as s:  # control
                res = s.call("sandbox/refresh", {"cwd": d, "sandbox": policy})
                assert not [x for x in res["warnings"] if "cannot be enforced" in x], res


def test_landlock_cap_falls_back_to_namespaces_not_weaker():
    """Below ABI 3 Landlock alone cannot deny truncate(): the read-only
    policy moves to the namespaces backend, and still cannot write."""
    require_hooks()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        target = os.path.join(d, "t")
        with open(target, "w") as f:
            f.write("keep\n")
        # The namespaces backend serves every network mode where user
        # namespaces work; Landlock alone only where they do not, and there
        # ABI 2 cannot enforce read-only: refused, never weaker.
        for feats, backend in [("landlock=2", "namespaces"), ("", "namespaces"),
                               ("userns=0", "landlock"), ("userns=0,landlock=2", None)]:
            with Server(env={"WARDEN_TEST_FEATURES": feats, "XDG_STATE_HOME": d}) as s:
                r = s.request("process/spawn", {"processId": "t", "cwd": d, "sandbox": RO_NET,
                                                "argv": ["truncate", "-s", "0", target]})
                if backend is None:
                    assert r.get("error", {}).get("code") == -32003, (feats, r)
                    assert r["error"]["data"]["reason"], r
                    continue
                r = r["result"]
                assert r["sandbox"]["backend"] == backend, (feats, r)
                assert s.wait_exit("t")["exitCode"] != 0, s.output_of("t")
                with open(target) as f:
                    assert f.read() == "keep\n"


if __name__ == "__main__":
    run_tests(globals())
