"""Network mode "proxy" end to end: a sandboxed curl (its own network
namespace with only lo, the proxy variables pointing at the listeners
warden took over) reaches an allowed loopback origin on the host through the
egress proxy, and nothing else: not an unlisted name, not a local address
the policy does not name, not the host's loopback directly. As root (names
from a private /etc/hosts, allowLocalBinding) and as uid 65534 (the literal
allowlisted)."""
import http.server
import io
import json
import os
import shutil
import socket
import sys
import socketserver
import tempfile
import threading
import zipfile

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


class Registry(http.server.BaseHTTPRequestHandler):
    """A tiny npm registry and PyPI simple index for one package each."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.server.seen.append(self.path)
        host = self.headers.get("Host")
        files = {
            "/npm/warden-leftpad": json.dumps({
                "name": "warden-leftpad", "dist-tags": {"latest": "1.2.3"},
                "versions": {"1.2.3": {"name": "warden-leftpad", "version": "1.2.3",
                                       "dist": {"tarball": "http://%s/npm/x.tgz" % host}}}}
            ).encode(),
            "/simple/wardenpkg/": (b'<html><body><a href="/files/wardenpkg-1.0-py3-none-any.whl">'
                                   b'wardenpkg-1.0-py3-none-any.whl</a></body></html>'),
            "/files/wardenpkg-1.0-py3-none-any.whl": self.server.wheel,
        }
        body = files.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json" if "/npm/" in self.path
                         else "text/html" if "simple" in self.path else "application/zip")
        self.end_headers()
        self.wfile.write(body)


def wheel_bytes():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("wardenpkg/__init__.py", "")
        z.writestr("wardenpkg-1.0.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: wardenpkg\nVersion: 1.0\n")
        z.writestr("wardenpkg-1.0.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("wardenpkg-1.0.dist-info/RECORD",
                   "wardenpkg/__init__.py,,\nwardenpkg-1.0.dist-info/METADATA,,\n"
                   "wardenpkg-1.0.dist-info/WHEEL,,\nwardenpkg-1.0.dist-info/RECORD,,\n")
    return buf.getvalue()


def test_sandboxed_npm_and_pip_reach_the_allowed_registry_only():
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Registry)
    srv.daemon_threads = True
    srv.seen = []
    srv.wheel = wheel_bytes()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    try:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
            pol = {"allowedDomains": ["origin.warden-test"], "allowLocalBinding": True}
            with warden_proxy(pol) as (s, _):
                npm = ("npm view warden-leftpad version --registry http://%%s:%d/npm/ "
                       "--cache \"$PWD/.npm\" --update-notifier=false --fetch-retries=0" % port)
                pip = ("/usr/bin/python3 -m pip download --no-deps --no-cache-dir "
                       "--disable-pip-version-check --retries 0 --timeout 10 -d \"$PWD/dl\" "
                       "--index-url http://%%s:%d/simple/ --trusted-host %%s wardenpkg" % port)
                script = "\n".join([
                    'printf "npm="; %s 2>/dev/null | tail -1' % (npm % "origin.warden-test"),
                    'printf "npm_other="; %s >/dev/null 2>&1 && echo ok || echo failed'
                    % (npm % "other.warden-test"),
                    '%s >/dev/null 2>&1; printf "pip=%%s\\n" "$(ls dl 2>/dev/null)"'
                    % (pip % ("origin.warden-test", "origin.warden-test")),
                    'printf "pip_other="; %s >/dev/null 2>&1 && echo ok || echo failed'
                    % (pip % ("other.warden-test", "other.warden-test")),
                ])
                ex, got, out = run_script(s, d, script)
                assert got.get("npm") == "1.2.3", out
                assert got.get("npm_other") == "failed", out
                if not os.path.exists("/usr/lib/python3/dist-packages/pip"):
                    print("pip missing: npm only")
                else:
                    assert got.get("pip") == "wardenpkg-1.0-py3-none-any.whl", out
                    assert got.get("pip_other") == "failed", out
            ev = [n["params"] for n in s.notifications if n.get("method") == "network/decision"]
            assert all(e["host"] in ("origin.warden-test", "other.warden-test") for e in ev), ev
            assert not [e for e in ev if e["host"] == "other.warden-test"
                        and e["decision"] == "allow"], ev
            assert "/npm/warden-leftpad" in srv.seen, srv.seen
    finally:
        srv.shutdown()
        srv.server_close()


def test_sandboxed_git_clone_https_through_connect():
    import functools
    import ssl
    import subprocess
    from netproxy_util import openssl_cert
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        os.chmod(d, 0o755)
        pair = openssl_cert(d)
        if not pair or not shutil.which("git"):
            print("openssl or git missing: skipped")
            return
        os.chmod(pair[0], 0o644)
        src, bare = os.path.join(d, "src"), os.path.join(d, "www", "repo.git")
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
        run = functools.partial(subprocess.run, check=True, capture_output=True, env=env)
        run(["git", "init", "-q", src])
        with open(os.path.join(src, "hello.txt"), "w") as f:
            f.write("cloned through the proxy\n")
        run(["git", "-C", src, "add", "hello.txt"])
        run(["git", "-C", src, "commit", "-q", "-m", "one"])
        run(["git", "clone", "-q", "--bare", src, bare])
        run(["git", "-C", bare, "update-server-info"])  # dumb HTTP: static files
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *a):
                pass
        handler = functools.partial(Quiet, directory=os.path.join(d, "www"))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*pair)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        port = srv.server_address[1]
        work = os.path.join(d, "w")
        os.mkdir(work)
        try:
            pol = {"allowedDomains": ["origin.warden-test"], "allowLocalBinding": True}
            with warden_proxy(pol) as (s, _):
                script = (
                    "export GIT_SSL_CAINFO=%s GIT_TERMINAL_PROMPT=0\n"
                    "git clone -q https://origin.warden-test:%d/repo.git a 2>/dev/null\n"
                    'printf "clone=%%s\\n" "$(cat a/hello.txt 2>/dev/null)"\n'
                    "git clone -q https://other.warden-test:%d/repo.git b >/dev/null 2>&1 "
                    "&& echo other=ok || echo other=failed\n" % (pair[0], port, port))
                ex, got, out = run_script(s, work, script)
                assert got.get("clone") == "cloned through the proxy", out
                assert got.get("other") == "failed", out
                ev = [n["params"] for n in s.notifications
                      if n.get("method") == "network/decision"]
                assert {(e["host"], e["protocol"], e["decision"]) for e in ev} >= {
                    ("origin.warden-test", "https", "allow"),
                    ("other.warden-test", "https", "deny")}, ev
        finally:
            srv.shutdown()
            srv.server_close()


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
