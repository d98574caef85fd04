"""Issue 9 item 3 (mounts): /tmp (and $TMPDIR) inside a sandbox is private to
its workspace: a directory under the state directory bound at /tmp, shared
by that workspace's runs and by nobody else, unless the policy names the
host's /tmp in writableRoots. A command can neither plant a symlink where a
later session's cwd is resolved nor replace a host service's socket in /tmp.
As root and as uid 65534, workspace under /tmp and /var/tmp."""

import os
import random
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from sbxenv import each, Env, matrix, FULL, WORKSPACE  # noqa: E402
from wardenrpc import run_tests  # noqa: E402


def uniq(prefix):
    return "/tmp/warden-esc-%s-%08x" % (prefix, random.getrandbits(32))


def check(e, label):
    victim = os.path.join(e.outside, "victim")
    os.makedirs(victim)
    os.chown(victim, e.uid, e.gid)
    link, note = uniq("link"), uniq("note")
    try:
        # plant a symlink and a file in /tmp
        code, out = e.run(["sh", "-c", "ln -s %s %s && echo planted > %s && cat %s" %
                           (victim, link, note, note)], WORKSPACE)
        assert code == 0 and "planted" in out, (label, out)
        assert not os.path.lexists(link), (label, "symlink planted in the host's /tmp")
        assert not os.path.lexists(note), (label, "file written to the host's /tmp")
        # a later session whose cwd is that path does not land in the victim
        code, out = e.run(["sh", "-c", "echo pwned > f"], WORKSPACE, cwd=link)
        assert code is None, (label, "cwd resolved through a planted link", out)
        assert os.listdir(victim) == [], label
        # the workspace's later runs share its /tmp
        code, out = e.run(["cat", note], WORKSPACE)
        assert code == 0 and "planted" in out, (label, out)
        # another workspace does not see it
        ws2 = os.path.join(e.base, "ws2")
        os.makedirs(ws2)
        os.chown(ws2, e.uid, e.gid)
        code, out = e.run(["cat", note], WORKSPACE, cwd=ws2)
        assert code != 0, (label, "another workspace sees this workspace's /tmp", out)
        # the private directory lives in the state directory
        tmps = os.path.join(e.state, "warden", "v1", "tmp")
        assert os.path.isdir(tmps) and len(os.listdir(tmps)) >= 2, (label, os.listdir(tmps))
        # the workspace itself stays the host's, also when it lies under /tmp
        code, out = e.run(["sh", "-c", "echo kept > made && cat made"], WORKSPACE)
        assert code == 0 and os.path.exists(os.path.join(e.ws, "made")), (label, out)
    finally:
        for p in (link, note):
            if os.path.lexists(p):
                os.unlink(p)


def check_service_socket(e, label):
    path = uniq("svc") + ".sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o666)
    os.chown(path, e.uid, e.gid)
    srv.listen(4)
    try:
        ino = os.lstat(path).st_ino
        evil = ("import os, socket\n"
                "p = %r\n"
                "try:\n    os.unlink(p)\nexcept OSError:\n    pass\n"
                "s = socket.socket(socket.AF_UNIX)\ns.bind(p)\ns.listen(1)\nprint('bound')\n"
                % path)
        # unsandboxed in a private mount namespace, the same code would work:
        code, out = e.py(evil, WORKSPACE)
        assert os.lstat(path).st_ino == ino, (label, "host socket replaced", out)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)
        conn, _ = srv.accept()
        conn.close()
        c.close()
    finally:
        srv.close()
        os.unlink(path)


def check_named_host_tmp(e, label):
    note = uniq("named")
    try:
        code, out = e.run(["sh", "-c", "echo host > %s" % note],
                          {"type": "workspaceWrite", "writableRoots": ["/tmp"]})
        assert code == 0, (label, out)
        assert os.path.exists(note), (label, "the policy named the host's /tmp")
        os.unlink(note)
        # a workspace that is /tmp itself names it too
        code, out = e.run(["sh", "-c", "echo host > %s" % os.path.basename(note)], WORKSPACE,
                          cwd="/tmp")
        assert code == 0, (label, out)
        assert os.path.exists(note), (label, "the workspace /tmp is the host's")
    finally:
        if os.path.exists(note):
            os.unlink(note)


def test_tmp_is_private_to_the_workspace():
    each(check)


def test_host_service_socket_in_tmp_cannot_be_replaced():
    each(check_service_socket)


def test_policy_naming_host_tmp_shares_it():
    each(check_named_host_tmp)


def test_tmpdir_is_private_too():
    failures = []
    for label, user, base in matrix():
        e = Env(user, base, start=False)
        try:
            tmpd = os.path.join(e.base, "tmpd")
            os.makedirs(tmpd)
            os.chown(tmpd, e.uid, e.gid)
            e.server_env["TMPDIR"] = tmpd
            e.start()
            code, out = e.run(["sh", "-c", 'echo t > "$TMPDIR/f" && cat /tmp/f'], WORKSPACE)
            if code != 0 or "t" not in out:
                failures.append((label, "TMPDIR is not the private /tmp", out))
            if os.path.exists(os.path.join(tmpd, "f")):
                failures.append((label, "written to the host's TMPDIR"))
            code, out = e.run(["sh", "-c", 'echo x > "$TMPDIR/g"'], FULL)
            assert code == 0 and os.path.exists(os.path.join(tmpd, "g")), out
        finally:
            e.close()
    assert not failures, failures


def test_no_state_directory_still_private():
    """No usable state directory (HOME=/nonexistent, as for nobody): each
    run gets a fresh private /tmp instead of the host's."""
    failures = []
    existed = os.path.exists("/nonexistent")
    for label, user, base in matrix():
        e = Env(user, base, start=False)
        try:
            e.server_env.update({"HOME": "/nonexistent", "XDG_STATE_HOME": ""})
            e.start()
            note = uniq("scratch")
            code, out = e.run(["sh", "-c", "echo s > %s && cat %s && echo w > made" % (note, note)],
                              WORKSPACE)
            if code != 0 or "s" not in out or not os.path.exists(os.path.join(e.ws, "made")):
                failures.append((label, "run failed", out))
            if os.path.lexists(note):
                os.unlink(note)
                failures.append((label, "wrote the host's /tmp"))
            if not existed and os.path.exists("/nonexistent"):
                failures.append((label, "created /nonexistent for a state directory"))
        finally:
            e.close()
    assert not failures, failures


def test_state_directory_inside_the_workspace_is_read_only():
    """A workspace that is $HOME holds the state directory (private /tmp of
    every workspace, placeholder records replayed as the server's user at
    the next start): a command cannot write it."""
    failures = []
    for label, user, base in matrix():
        e = Env(user, base, start=False)
        try:
            state = os.path.join(e.ws, ".local", "state")
            os.makedirs(state)
            e.chown_tree(e.ws)
            e.server_env.update({"HOME": e.ws, "XDG_STATE_HOME": state})
            e.start()
            other = os.path.join(e.base, "other")
            os.makedirs(other)
            os.chown(other, e.uid, e.gid)
            code, out = e.run(["sh", "-c", "echo mine > /tmp/f"], WORKSPACE, cwd=other)
            assert code == 0, out
            code, out = e.run(["sh", "-c", "echo x > /tmp/g"], WORKSPACE)  # makes the state dir
            assert code == 0, out
            vdir = os.path.join(state, "warden", "v1")
            targets = [os.path.join(vdir, "placeholders", "evil.list"),
                       os.path.join(vdir, "setup.json")]
            targets += [os.path.join(vdir, "tmp", h, "planted")
                        for h in os.listdir(os.path.join(vdir, "tmp"))]
            for t in targets:
                code, out = e.run(["sh", "-c", "echo 'd /etc' > %s" % t], WORKSPACE)
                if code == 0 or os.path.exists(t):
                    failures.append((label, "wrote", t))
        finally:
            e.close()
    assert not failures, failures


if __name__ == "__main__":
    run_tests(globals())
