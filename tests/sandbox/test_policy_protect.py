"""Protected paths never vanish (issue 9, items 3, 5 and 6), tried as an
attacker, as root and as uid 65534, with the workspace under /tmp and under
/var/tmp:

- the .git/.codex/.agents of every repository enclosing the cwd, not only
  the cwd's own (a cwd in a sub-directory of a repository that a writable
  root covers);
- a cwd inside .git is read-only;
- writableRoots ["/"] keeps the protected paths;
- a workspace that is "/" (no cwd, server started in /) is refused;
- $HOME as the workspace: writable, but secrets and host-persistence paths
  are not, also when $HOME lies inside another writable root;
- a directory on the server's PATH inside the workspace is read-only."""

import os

from policy_harness import FULL, PY, WORKSPACE, Box, each_setup, label
from wardenrpc import run_tests


def ws_policy(box, **extra):
    """workspaceWrite with a writable root that covers the whole tree (under
    /tmp the default /tmp root already does)."""
    p = {"type": "workspaceWrite", "writableRoots": [box.base]}
    p.update(extra)
    return p


def check_enclosing_repository(user, loc):
    b = Box(user, loc)
    try:
        b.mkdir("ws/repo/.git/hooks")
        b.write("ws/repo/.git/config", "[core]\n")
        b.mkdir("ws/repo/sub")
        b.mkdir("ws/.git")
        b.start()
        cwd = b.path("ws/repo/sub")
        for sb in ([ws_policy(b)] + ([WORKSPACE] if loc == "/tmp" else [])):
            what = "enclosing repo %s %s" % (label(user, loc), sb)
            b.allowed("create", b.path("ws/repo/sub/made-%d" % id(sb)), sb, cwd, what)
            b.refused("create", b.path("ws/repo/.git/hooks/pre-commit-%d" % id(sb)), sb, cwd,
                      what=what)
            b.refused("write", b.path("ws/repo/.git/config"), sb, cwd, baseline=False, what=what)
            b.refused("create", b.path("ws/repo/.codex/config-%d.toml" % id(sb)), sb, cwd,
                      baseline=False, what=what)
            b.refused("create", b.path("ws/.git/HEAD-%d" % id(sb)), sb, cwd, baseline=False,
                      what=what)
            # Under /tmp the default policy's /tmp is the workspace's private
            # one: the repository above the cwd is not in it, and nothing the
            # command tries there reaches the host's .git.
            hooks = b.path("ws/repo/.git/hooks")
            before = sorted(os.listdir(hooks))
            code, out = b.attempt("create", os.path.join(hooks, "planted-%d" % id(sb)), sb, cwd)
            assert code == 1, (what, out)
            assert sorted(os.listdir(hooks)) == before, (what, "host hooks changed")
        assert not os.path.exists(b.path("ws/repo/.codex")), "mount point left behind"
    finally:
        b.close()


def check_cwd_inside_git(user, loc):
    b = Box(user, loc)
    try:
        b.mkdir("repo/.git/hooks")
        b.write("repo/.git/config", "[core]\n")
        b.start()
        b.write("repo/.git/hooks/pre-commit.sample", "#!/bin/sh\n")
        cwd = b.path("repo/.git/hooks")
        what = "cwd inside .git %s" % label(user, loc)
        # the cwd is there, read-only, with the host's content (under /tmp
        # too, where /tmp is the workspace's private one)
        b.allowed("read", b.path("repo/.git/hooks/pre-commit.sample"), WORKSPACE, cwd, what)
        b.refused("create", b.path("repo/.git/hooks/pre-commit"), WORKSPACE, cwd, what=what)
        b.refused("write", b.path("repo/.git/config"), WORKSPACE, cwd, what=what)
        b.refused("create", b.path("repo/.git/planted"), WORKSPACE, cwd, what=what)
    finally:
        b.close()


PLANT = r"""
import os, sys
made = []
for rel in sys.argv[1:]:
    try:
        os.makedirs(os.path.dirname(rel), exist_ok=True)
        with open(rel, "w") as f:
            f.write("#!/bin/sh\necho planted\n")
        made.append(rel)
    except OSError:
        pass
print("made", made)
"""


def check_private_tmp_parents(user, loc):
    """Under /tmp the workspace's /tmp is private and shared by its runs.
    The directories above a bound cwd (/tmp/<x>/ws/repo above
    /tmp/<x>/ws/repo/sub) must not be the workspace's to write: a run
    planting a fake .git (hooks, config) there would have the next run's
    git execute it."""
    b = Box(user, loc)
    try:
        b.mkdir("ws/repo/sub")
        b.mkdir("ws/repo/.git/hooks")
        b.start()
        cwd = b.path("ws/repo/sub")
        fake = [b.path("ws/repo/.git/hooks/pre-commit"), b.path("ws/repo/.git/config"),
                b.path("ws/.git/HEAD"), b.path("ws/repo/planted")]
        r, code, out = b.spawn([PY, "-c", PLANT] + fake, WORKSPACE, cwd)
        assert code == 0, (r, out)
        # a later run of the same workspace sees none of it
        probe = "import os,sys; print([p for p in sys.argv[1:] if os.path.exists(p)])"
        r, code, out = b.spawn([PY, "-c", probe] + fake, WORKSPACE, cwd)
        assert code == 0, (r, out)
        host = [p for p in fake if os.path.exists(p)]
        assert out.strip() == repr(host), (label(user, loc), out, host)
        assert not os.path.exists(fake[0]) and not os.path.exists(fake[1]), "host repo changed"
        # nor does anything of it stay in the private directory on the host
        planted = []
        for root, dirs, files in os.walk(b.state):
            if "/tmp" in root[len(b.state):]:
                planted += [f for f in files if f in ("pre-commit", "config", "HEAD", "planted")]
        assert not planted, (label(user, loc), planted)
    finally:
        b.close()


def check_writable_slash(user, loc):
    b = Box(user, loc)
    try:
        b.mkdir("repo/.git/hooks")
        b.mkdir("repo/sub")
        b.start()
        sb = {"type": "workspaceWrite", "writableRoots": ["/"]}
        cwd = b.path("repo/sub")
        r = b.server.call("policy/resolve", {"cwd": cwd, "sandbox": sb})
        slash = [w for w in r["plan"]["writableRoots"] if w["root"] == "/"]
        assert slash and slash[0]["readOnlySubpaths"], r
        assert b.path("repo/.git") in slash[0]["readOnlySubpaths"], r
        what = "writableRoots [/] %s" % label(user, loc)
        b.allowed("create", b.path("repo/sub/made"), sb, cwd, what)
        b.refused("create", b.path("repo/.git/hooks/pre-push"), sb, cwd, what=what)
    finally:
        b.close()


def check_workspace_slash_refused(user, loc):
    b = Box(user, loc, server_cwd="/")
    try:
        b.start()
        for cwd in (None, "/"):
            r, code, _ = b.spawn(["/bin/true"], WORKSPACE, cwd)
            assert "error" in r and r["error"]["code"] == -32003, r
            assert "whole host" in r["error"]["data"]["reason"], r
        # named explicitly, "/" is a decision: allowed, with protections
        r, code, _ = b.spawn(["/bin/true"], {"type": "workspaceWrite", "writableRoots": ["/"]},
                             None)
        assert code == 0, r
        r, code, _ = b.spawn(["/bin/true"], FULL, None)
        assert code == 0, r
    finally:
        b.close()


HOME_REFUSED = [
    ("write", ".bashrc"), ("create", ".profile"), ("create", ".bash_profile"),
    ("create", ".zshrc"), ("create", ".zshenv"), ("create", ".zprofile"), ("create", ".zlogin"),
    ("create", ".bash_login"), ("create", ".bash_logout"),
    ("create", ".config/fish/config.fish"), ("write", ".gitconfig"),
    ("create", ".config/git/config"), ("create", ".config/autostart/evil.desktop"),
    ("create", ".config/systemd/user/evil.service"), ("create", ".ssh/authorized_keys"),
    ("write", ".ssh/id_ed25519"), ("create", ".gnupg/gpg.conf"), ("create", ".aws/credentials"),
    ("create", ".netrc"), ("create", ".git-credentials"), ("create", ".pypirc"),
    ("create", ".npmrc"), ("create", ".kube/config"), ("create", ".docker/config.json"),
    ("write", "keys/id_work"),  # a top-level entry ~/.ssh/config names, whole
    ("create", "keys/other"),
]


def make_home(b, rel):
    b.mkdir(rel + "/.ssh")
    b.write(rel + "/.ssh/id_ed25519", "secret key\n")
    b.write(rel + "/.ssh/config", "IdentityFile ~/keys/id_work\n")
    b.write(rel + "/keys/id_work", "another key\n")
    b.write(rel + "/.bashrc", "# rc\n")
    b.write(rel + "/.gitconfig", "[user]\n")
    b.mkdir(rel + "/code")
    return b.path(rel)


def check_home(user, loc):
    b = Box(user, loc)
    try:
        home = make_home(b, "home")
        b.env["HOME"] = home
        b.start()
        what = "HOME as workspace %s" % label(user, loc)
        # The workspace is writable, top level included.
        b.allowed("create", os.path.join(home, "new-file"), WORKSPACE, home, what)
        b.allowed("create", os.path.join(home, "code", "x"), WORKSPACE, home, what)
        for action, rel in HOME_REFUSED:
            b.refused(action, os.path.join(home, rel), WORKSPACE, home, baseline=False,
                      what=what + " " + rel)
        # full read: secrets are read-only, not hidden
        b.allowed("read", os.path.join(home, ".ssh", "id_ed25519"), WORKSPACE, home, what)
        # restricted reads: secrets are unreadable, the workspace writable
        restricted = {"type": "split", "network": {"mode": "none"}, "fileSystem": {"entries": [
            {"path": ":minimal", "access": "read"}, {"path": ":cwd", "access": "write"}]}}
        b.refused("read", os.path.join(home, ".ssh", "id_ed25519"), restricted, home,
                  what=what + " restricted")
        b.refused("read", os.path.join(home, "keys", "id_work"), restricted, home,
                  what=what + " restricted")
        b.allowed("create", os.path.join(home, "new-file-2"), restricted, home, what)
        # the baseline: the same uid can do all of it without a sandbox
        for action, rel in HOME_REFUSED[:3]:
            code, out = b.attempt(action, os.path.join(home, rel), FULL, home)
            assert code == 0, out
    finally:
        b.close()


def check_home_inside_other_root(user, loc):
    """A workspace that is $HOME inside another writable root (under /tmp
    the default /tmp root, elsewhere writableRoots) keeps its protections."""
    b = Box(user, loc)
    try:
        home = make_home(b, "home")
        b.env["HOME"] = home
        b.start()
        what = "HOME inside another root %s" % label(user, loc)
        sb = ws_policy(b)
        for cwd in (home, b.mkdir("elsewhere")):
            for action, rel in [("write", ".bashrc"), ("create", ".ssh/rc"),
                                ("create", ".config/autostart/a.desktop")]:
                b.refused(action, os.path.join(home, rel), sb, cwd, baseline=False, what=what)
            b.allowed("create", os.path.join(cwd, "ok-%d" % len(cwd)), sb, cwd, what)
    finally:
        b.close()


def check_path_dirs(user, loc):
    b = Box(user, loc)
    try:
        b.mkdir("ws/bin")
        b.env["PATH"] = "%s:/usr/local/bin:/usr/bin:/bin" % b.path("ws/bin")
        b.start()
        cwd = b.path("ws")
        what = "PATH dir %s" % label(user, loc)
        b.refused("create", b.path("ws/bin/git"), WORKSPACE, cwd, what=what)
        b.allowed("create", b.path("ws/other"), WORKSPACE, cwd, what)
    finally:
        b.close()


COUNT = {"setups": 0}


def _all(fn):
    COUNT["setups"] += each_setup(fn)


def test_enclosing_repository():
    _all(check_enclosing_repository)


def test_cwd_inside_git_is_read_only():
    _all(check_cwd_inside_git)


def test_private_tmp_parents_are_not_plantable():
    _all(check_private_tmp_parents)


def test_writable_slash_keeps_protections():
    _all(check_writable_slash)


def test_workspace_slash_is_refused():
    each_setup(check_workspace_slash_refused, locations=["/var/tmp"])


def test_home_as_workspace():
    _all(check_home)


def test_home_inside_another_root():
    _all(check_home_inside_other_root)


def test_path_dirs_are_read_only():
    _all(check_path_dirs)


if __name__ == "__main__":
    run_tests(globals())
