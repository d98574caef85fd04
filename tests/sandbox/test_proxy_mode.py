"""Network mode "proxy": the command reaches only the proxy's listeners inside
its own network namespace, which (until the egress proxy lands) refuse every
request explicitly; nothing on the host's loopback is reachable."""
import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from wardenrpc import Server, run_tests  # noqa: E402

PY = "/usr/bin/python3"

CLIENT = r'''
import os, socket, sys, urllib.request
out = []
out.append("net=" + os.environ.get("WARDEN_SANDBOX_NETWORK", "?"))
for v in ("HTTP_PROXY", "https_proxy", "ALL_PROXY", "NO_PROXY", "npm_config_proxy", "PIP_PROXY"):
    out.append("%s=%s" % (v, os.environ.get(v)))
try:
    urllib.request.urlopen("http://example.invalid/", timeout=10)
    out.append("http=open")
except urllib.error.HTTPError as e:
    out.append("http=%d:%s" % (e.code, e.read().decode().strip()))
except Exception as e:
    out.append("http=err:%r" % e)
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(b"CONNECT example.invalid:443 HTTP/1.1\r\nHost: example.invalid:443\r\n\r\n")
out.append("connect=" + s.recv(64).split(b"\r\n")[0].decode())
s.close()
s = socket.create_connection(("127.0.0.1", 1080), timeout=10)
s.sendall(b"\x05\x01\x00")
greet = s.recv(2)
s.sendall(b"\x05\x01\x00\x03\x0bexample.com\x00\x50")
rep = s.recv(10)
out.append("socks=%s/%d" % (greet.hex(), rep[1] if len(rep) > 1 else -1))
s.close()
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
    out.append("host=reached")
except OSError as e:
    out.append("host=refused")
print("\n".join(out))
'''


def test_proxy_mode_refuses_everything():
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen(4)
    port = host.getsockname()[1]
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d, Server() as s:
        policy = {"type": "split", "network": {"mode": "proxy"}, "fileSystem": {"entries": [
            {"path": ":root", "access": "read"}, {"path": ":cwd", "access": "write"}]}}
        r = s.call("process/spawn", {"processId": "p", "argv": [PY, "-c", CLIENT, str(port)],
                                     "cwd": d, "sandbox": policy})
        assert r["sandbox"] == {"enforced": True, "backend": "namespaces", "network": "proxy"}, r
        ex = s.wait_exit("p")
        out = s.output_of("p").decode()
        assert ex["exitCode"] == 0, out
        lines = dict(l.split("=", 1) for l in out.strip().splitlines())
        assert lines["net"] == "proxy", out
        assert lines["HTTP_PROXY"] == "http://127.0.0.1:3128", out
        assert lines["https_proxy"] == "http://127.0.0.1:3128", out
        assert lines["ALL_PROXY"] == "socks5h://127.0.0.1:1080", out
        assert lines["npm_config_proxy"] == lines["PIP_PROXY"] == "http://127.0.0.1:3128", out
        assert "127.0.0.1" in lines["NO_PROXY"], out
        assert lines["http"].startswith("403:warden: blocked by the sandbox"), out
        assert lines["connect"] == "HTTP/1.1 403 Forbidden", out
        assert lines["socks"] == "0500/2", out
        assert lines["host"] == "refused", out
        host.settimeout(0.2)
        try:
            host.accept()
            assert False, "the sandbox reached the host's loopback"
        except socket.timeout:
            pass
    host.close()


def test_legacy_no_network_is_mode_none():
    # Without the egress proxy, networkAccess:false means no network at all.
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d, Server() as s:
        r = s.call("process/spawn", {"processId": "p", "argv": ["true"], "cwd": d,
                                     "sandbox": {"type": "workspaceWrite"}})
        assert r["sandbox"]["network"] == "none", r


if __name__ == "__main__":
    run_tests(globals())
