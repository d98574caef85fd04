"""Environment escapes (issue 9, items 1 and 8), as root and as uid 65534,
workspaces under /tmp and /var/tmp:

- in every network mode but full, the server's socket-locating variables
  (SSH_AUTH_SOCK, DBUS_SESSION_BUS_ADDRESS, DOCKER_HOST at a unix socket,
  XDG_RUNTIME_DIR, DISPLAY of a local X server, WAYLAND_DISPLAY,
  GPG_AGENT_INFO, and any variable whose value is a socket) are not passed
  in; with network full they are;
- the default filter drops password-like variables and URLs with a
  password in their userinfo in every mode, keeps GIT_AUTHOR_*;
- process/spawn's result lists the dropped names (never the values)."""

import json
import os
import socket

from policy_harness import FULL, WORKSPACE, Box, each_setup, label
from wardenrpc import run_tests

SECRETS = {
    "PGPASSWORD": "pg-secret-1", "MYSQL_PWD": "my-secret-2", "DB_PASSWORD": "db-secret-3",
    "LDAP_BIND_PASSWD": "ldap-secret-4", "AZURE_CREDENTIAL_FILE": "/x/cred-5",
    "GITLAB_PAT": "glpat-secret-6", "NPM_AUTH": "npm-secret-7",
    "HTTP_AUTHORIZATION": "Basic c2VjcmV0LTg=",
    "DATABASE_URL": "postgres://app:url-secret-9@db.example:5432/app",
    "https_proxy": "http://user:proxy-secret-10@proxy.example:3128",
    "ALL_PROXY": "socks5h://u:socks-secret-11@127.0.0.1:1080",
}
KEPT = {"GIT_AUTHOR_NAME": "Ann Author", "GIT_AUTHOR_EMAIL": "ann@example.org",
        "HTTP_PROXY": "http://proxy.example:3128", "PLAIN": "value"}


def socket_env(b):
    sock = os.path.join(b.base, "agent.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.listen(1)
    os.chmod(sock, 0o666)
    return s, {
        "SSH_AUTH_SOCK": sock,
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=%s,guid=0123" % sock,
        "DOCKER_HOST": "unix://%s" % sock,
        "XDG_RUNTIME_DIR": b.base,
        "DISPLAY": ":99",
        "WAYLAND_DISPLAY": "wayland-9",
        "GPG_AGENT_INFO": "%s:0:1" % sock,
        "SOME_TOOL_SOCKET": sock,  # unknown name, value is a socket
        "TMUX": "%s,4242,0" % sock,
    }


def env_of(b, sandbox, cwd):
    r, code, out = b.spawn(["env", "-0"], sandbox, cwd)
    assert code == 0, r
    got = {}
    for item in out.split("\0"):
        if "=" in item:
            k, v = item.split("=", 1)
            got[k] = v
    return r["result"], got


def check_env(user, loc):
    b = Box(user, loc)
    listener = None
    try:
        listener, socks = socket_env(b)
        b.env.update(socks)
        b.env.update(SECRETS)
        b.env.update(KEPT)
        ws = b.mkdir("ws")
        b.start()
        what = "env %s" % label(user, loc)
        proxy = {"type": "split", "network": {"mode": "proxy"}, "fileSystem": {"entries": [
            {"path": ":root", "access": "read"}, {"path": ":cwd", "access": "write"}]}}
        none = dict(proxy, network={"mode": "none"})
        modes = [("none", none), ("proxy", WORKSPACE), ("proxy", proxy), ("full", FULL),
                 ("full", {"type": "workspaceWrite", "networkAccess": True})]
        for mode, sb in modes:
            result, got = env_of(b, sb, ws)
            assert result["sandbox"]["network"] == mode, (what, result)
            dropped = result["envDropped"]
            for k, v in SECRETS.items():
                # (in proxy mode the sandbox sets its own proxy variables)
                assert got.get(k) != v and v not in "".join(got.values()), (what, mode, k)
                assert k in dropped, (what, mode, k, dropped)
            for k, v in KEPT.items():
                if not (mode == "proxy" and k == "HTTP_PROXY"):  # the sandbox's own
                    assert got.get(k) == v, (what, mode, k)
                assert k not in dropped
            for k in socks:
                if mode == "full":
                    assert got.get(k) == socks[k], (what, mode, k)
                    assert k not in dropped
                else:
                    assert k not in got, (what, mode, k, got.get(k))
                    assert k in dropped, (what, mode, k, dropped)
            text = json.dumps(result)
            for v in list(SECRETS.values()) + list(socks.values()):
                assert v not in text, (what, "a value leaked into the result", v)
        # what the client passes explicitly is its choice, in any mode
        r, code, out = b.spawn(["sh", "-c", "echo $SSH_AUTH_SOCK"], WORKSPACE, ws,
                               env={"SSH_AUTH_SOCK": "/chosen/by/client"})
        assert out.strip() == "/chosen/by/client", out
        # an explicit envPolicy.exclude replaces the secret filter (not the socket one)
        r, code, out = b.spawn(["sh", "-c", "echo $PGPASSWORD+$SSH_AUTH_SOCK"], WORKSPACE, ws,
                               envPolicy={"exclude": ["NOTHING"]})
        assert out.strip() == "pg-secret-1+", out
    finally:
        if listener:
            listener.close()
        b.close()


def test_env_filters():
    each_setup(check_env)


if __name__ == "__main__":
    run_tests(globals())
