"""Issue 9 item 10: a policy that grants write to a root grants it in fact,
whoever owns the files, and no more. A root server's sandbox keeps
CAP_DAC_OVERRIDE and CAP_FOWNER (no user namespace: they apply to every
file), confined by the read-only mounts and Landlock: a workspace of another
user is writable, everything outside the writable roots stays read-only
(also files of that user, protected paths, chmod), hidden paths stay
hidden. The unprivileged server keeps its own identity (checked the same
way on its own workspace). Workspaces under /tmp and /var/tmp."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from sbxenv import Env, BASES, NOBODY, WORKSPACE, split  # noqa: E402
from wardenrpc import run_tests  # noqa: E402

OWNER = (1000, 1000)

ATTEMPT = r'''
import os, sys
what, path = sys.argv[1], sys.argv[2]
try:
    if what == "create":
        with open(path, "w") as f:
            f.write("new\n")
    elif what == "append":
        with open(path, "a") as f:
            f.write("more\n")
    elif what == "mkdir":
        os.mkdir(path)
    elif what == "rename":
        os.rename(path, path + ".moved")
        os.rename(path + ".moved", path)
    elif what == "chmod":
        os.chmod(path, 0o600)
    elif what == "setuid":
        os.chmod(path, 0o4755)
    elif what == "create-setuid":
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o4755))
        if os.stat(path).st_mode & 0o4000:
            sys.exit(0)
        raise OSError(1, "created without the bit")
    elif what == "read":
        open(path).read()
    elif what == "unlink":
        os.unlink(path)
except OSError as e:
    print("refused", what, e)
    sys.exit(1)
print("ok", what)
'''


def setup(e, owner):
    uid, gid = owner
    for d in (e.ws, e.outside):
        os.chown(d, uid, gid)
        os.chmod(d, 0o755)
    for p in (os.path.join(e.ws, "mine"), os.path.join(e.outside, "theirs")):
        with open(p, "w") as f:
            f.write("host\n")
        os.chown(p, uid, gid)
        os.chmod(p, 0o644)
    os.makedirs(os.path.join(e.ws, ".git"))
    with open(os.path.join(e.ws, ".git", "config"), "w") as f:
        f.write("[core]\n")
    os.makedirs(os.path.join(e.ws, "sub", "deep"))
    secret = os.path.join(e.ws, "secret")
    os.makedirs(secret)
    with open(os.path.join(secret, "key"), "w") as f:
        f.write("k\n")
    for root, dirs, files in os.walk(e.ws):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), uid, gid)
    os.chmod(os.path.join(secret, "key"), 0o600)


def check(e, label, owner):
    setup(e, owner)
    failures = []
    allowed = [("create", os.path.join(e.ws, "new")), ("append", os.path.join(e.ws, "mine")),
               ("mkdir", os.path.join(e.ws, "newdir")),
               ("rename", os.path.join(e.ws, "sub", "deep")),
               ("chmod", os.path.join(e.ws, "mine")), ("unlink", os.path.join(e.ws, "mine"))]
    for what, path in allowed:
        code, out = e.py(ATTEMPT, WORKSPACE, what, path)
        if code != 0:
            failures.append(("writable root not writable", what, path, out))
    denied = [("append", os.path.join(e.outside, "theirs")),
              ("create", os.path.join(e.outside, "new")),
              ("chmod", os.path.join(e.outside, "theirs")),
              ("append", os.path.join(e.ws, ".git", "config")),
              ("create", os.path.join(e.ws, ".git", "hooks-new")),
              ("create", os.path.join(e.ws, ".codex")),
              # a setuid binary planted in the workspace is setuid on the host
              ("setuid", os.path.join(e.ws, "sub")),
              ("create-setuid", os.path.join(e.ws, "suid"))]
    for what, path in denied:
        code, out = e.py(ATTEMPT, WORKSPACE, what, path)
        if code != 1:
            failures.append(("outside the writable roots", what, path, out))
    with open(os.path.join(e.outside, "theirs")) as f:
        assert f.read() == "host\n"
    hidden = split([(":root", "read"), (":cwd", "write"), (os.path.join(e.ws, "secret"), "none")])
    code, out = e.py(ATTEMPT, hidden, "read", os.path.join(e.ws, "secret", "key"))
    if code != 1:
        failures.append(("hidden path readable", out))
    code, out = e.py(ATTEMPT, hidden, "create", os.path.join(e.ws, "secret", "planted"))
    if code != 1:
        failures.append(("hidden path writable", out))
    # exactly the capabilities named above, in every set, after exec
    code, out = e.run(["sh", "-c", "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status"],
                      WORKSPACE)
    caps = dict((l.split(":")[0], int(l.split(":")[1], 16)) for l in out.strip().splitlines())
    want = (1 << 1 | 1 << 3) if owner != NOBODY else 0  # CAP_DAC_OVERRIDE, CAP_FOWNER
    if caps != {"CapInh": want, "CapPrm": want, "CapEff": want, "CapBnd": 0, "CapAmb": want}:
        failures.append(("capabilities", caps))
    assert not failures, (label, failures)


def test_root_server_writes_another_users_workspace():
    for base in BASES:
        with Env(None, base) as e:
            check(e, "root,%s,owner 1000" % base, OWNER)


def test_unprivileged_server_on_its_own_workspace():
    for base in BASES:
        with Env(NOBODY, base) as e:
            check(e, "nobody,%s" % base, NOBODY)


if __name__ == "__main__":
    run_tests(globals())
