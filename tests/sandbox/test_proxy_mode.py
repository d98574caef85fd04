"""Network mode "proxy" end to end: a sandboxed curl (its own network
namespace with only lo, the proxy variables pointing at the listeners
warden took over) reaches an allowed loopback origin on the host through the
egress proxy, and nothing else: not an unlisted name, not a local address
the policy does not name, not the host's loopback directly. As root (names
from a private /etc/hosts, allowLocalBinding) and as uid 65534 (the literal
allowlisted)."""
import json
import os
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from netproxy_util import origin, warden_proxy  # noqa: E402
from wardenrpc import Server, run_tests  # noqa: E402

CURL = shutil.which("curl") or "/usr/bin/curl"
NOBODY = (65534, 65534)


def split_proxy():
    return {"type": "split", "network": {"mode": "proxy"}, "fileSystem": {"entries": [
        {"path": ":root", "access": "read"}, {"path": ":cwd", "access": "write"}]}}


def run_script(s, cwd, script, pid="p"):
    r = s.call("process/spawn", {"processId": pid, "argv": ["/bin/sh", "-c", script], "cwd": cwd,
                                 "sandbox": split_proxy()})
    assert r["sandbox"] == {"enforced": True, "backend": "namespaces", "network": "proxy"}, r
    ex = s.wait_exit(pid, timeout=120)
    out = s.output_of(pid).decode()
    return ex, dict(l.split("=", 1) for l in out.strip().splitlines() if "=" in l), out


def curl(name, args):
    # -w prints the status (000 when no HTTP answer came back)
    return ('printf "%s="; %s -s -o /dev/null -m 20 -w "%%{http_code}" %s; echo\n'
            % (name, CURL, args))


def test_sandboxed_curl_reaches_allowed_origin_only():
    with origin() as (srv, op), tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        pol = {"allowedDomains": ["origin.warden-test"], "allowLocalBinding": True}
        with warden_proxy(pol) as (s, _):
            script = (
                'echo "proxy=$HTTP_PROXY"\n'
                + curl("allowed", "http://origin.warden-test:%d/ok" % op)
                + curl("socks", "-x socks5h://127.0.0.1:1080 http://origin.warden-test:%d/socks" % op)
                + curl("other", "http://other.warden-test:%d/other" % op)
                + curl("direct", "--noproxy '*' http://127.0.0.1:%d/direct" % op)
                + curl("local", "--noproxy '' http://127.0.0.1:%d/local" % op))
            ex, got, out = run_script(s, d, script)
            assert got["proxy"] == "http://127.0.0.1:3128", out
            assert got["allowed"] == "200" and got["socks"] == "200", out
            assert got["other"] == "403", out      # not in the allowlist
            assert got["local"] == "403", out      # 127.0.0.1 is not named
            assert got["direct"] == "000", out     # the sandbox's lo has no origin
            assert sorted(x["path"] for x in srv.seen) == ["/ok", "/socks"], srv.seen
            ev = [n["params"] for n in s.notifications if n.get("method") == "network/decision"]
            assert ev and all(e["processId"] == "p" for e in ev), ev
            assert {(e["host"], e["decision"]) for e in ev} >= {
                ("origin.warden-test", "allow"), ("other.warden-test", "deny"),
                ("127.0.0.1", "deny")}, ev


def test_unprivileged_server_literal_allowlisted():
    with origin() as (srv, op), tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        os.chmod(d, 0o777)
        cfg = os.path.join(d, "config.json")
        with open(cfg, "w") as f:
            json.dump({"network": {"allowedDomains": ["127.0.0.1"]},
                       "stateDir": os.path.join(d, "state")}, f)
        os.chmod(cfg, 0o644)
        work = os.path.join(d, "w")
        os.mkdir(work)
        os.chown(work, *NOBODY)
        with Server("--config", cfg, user=NOBODY, cwd=d,
                    env={"XDG_STATE_HOME": os.path.join(d, "state")}) as s:
            script = (curl("literal", "--noproxy '' http://127.0.0.1:%d/lit" % op)
                      + curl("other", "--noproxy '' http://127.0.0.2:%d/no" % op)
                      + curl("name", "http://localhost:%d/no" % op))
            ex, got, out = run_script(s, work, script)
            assert got["literal"] == "200", out
            assert got["other"] == "403", out
            assert got["name"] == "000", out  # NO_PROXY sends localhost direct: nothing there
            assert [x["path"] for x in srv.seen] == ["/lit"], srv.seen


def test_legacy_no_network_is_mode_proxy():
    # With the egress proxy built in, networkAccess:false means mode proxy.
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d, Server() as s:
        r = s.call("process/spawn", {"processId": "p", "argv": ["true"], "cwd": d,
                                     "sandbox": {"type": "workspaceWrite"}})
        assert r["sandbox"]["network"] == "proxy", r
        r = s.call("policy/resolve", {"cwd": d, "sandbox": {"type": "readOnly"}})
        assert r["plan"]["network"] == "proxy", r


if __name__ == "__main__":
    run_tests(globals())
