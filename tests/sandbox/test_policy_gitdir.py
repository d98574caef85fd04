"""Git pointers (issue 9, item 9), as root and as uid 65534, workspaces
under /tmp and /var/tmp: a `.git` file whose gitdir: target does not exist
yet must not let the sandbox create the target (and plant hooks the host's
git runs later); a pointer that goes through a symlink the sandbox could
replace is refused with -32003 and a reason; the workspace's own .git file
stays unchangeable."""

import os

from policy_harness import WORKSPACE, Box, each_setup, label
from wardenrpc import run_tests


def covering(b):
    return {"type": "workspaceWrite", "writableRoots": [b.base]}


def check_missing_target(user, loc):
    b = Box(user, loc)
    try:
        b.mkdir("ws")
        b.mkdir("gitdirs")
        # absolute, to a missing directory in a writable root
        b.write("ws/.git", "gitdir: %s\n" % b.path("gitdirs/ws"))
        # relative, inside the workspace itself, missing two levels deep
        b.mkdir("ws2")
        b.write("ws2/.git", "gitdir: .store/wt\n")
        b.start()
        what = "missing gitdir target %s" % label(user, loc)
        cwd = b.path("ws")
        b.refused("create", b.path("gitdirs/ws/hooks/post-checkout"), covering(b), cwd,
                  what=what)
        b.refused("create", b.path("gitdirs/ws/config"), covering(b), cwd, baseline=False,
                  what=what)
        b.refused("write", b.path("ws/.git"), covering(b), cwd, what=what)
        cwd2 = b.path("ws2")
        b.refused("create", b.path("ws2/.store/wt/hooks/pre-commit"), WORKSPACE, cwd2, what=what)
        b.allowed("create", b.path("ws2/.store-not/x"), WORKSPACE, cwd2, what)
    finally:
        b.close()


def check_repointable(user, loc):
    b = Box(user, loc)
    try:
        b.mkdir("real/wt")
        b.mkdir("ws")
        os.symlink(b.path("real"), b.path("ws/link"))
        os.lchown(b.path("ws/link"), b.uid, b.gid)
        b.write("ws/.git", "gitdir: %s\n" % b.path("ws/link/wt"))
        b.start()
        r, code, _ = b.spawn(["/bin/true"], WORKSPACE, b.path("ws"))
        assert "error" in r and r["error"]["code"] == -32003, (label(user, loc), r)
        reason = r["error"]["data"]["reason"]
        assert "symlink" in reason and b.path("ws/link") in reason, reason
        # policy/resolve says the same
        p = b.server.call("policy/resolve", {"cwd": b.path("ws"), "sandbox": WORKSPACE})
        assert p["enforceable"] is False and "symlink" in p["reason"], p
        # a symlink the sandbox cannot touch (outside every writable root) is fine
        if loc != "/tmp":  # under /tmp the default /tmp root covers the base
            b.mkdir("ws3")
            os.symlink(b.path("real"), b.path("rolink"))
            b.write("ws3/.git", "gitdir: %s\n" % b.path("rolink/wt"))
            r, code, _ = b.spawn(["/bin/true"], WORKSPACE, b.path("ws3"))
            assert code == 0, r
    finally:
        b.close()


def test_missing_gitdir_target_is_protected():
    each_setup(check_missing_target)


def test_repointable_gitdir_is_refused():
    each_setup(check_repointable)


if __name__ == "__main__":
    run_tests(globals())
