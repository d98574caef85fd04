"""Issue 9 item 4: a none/read carve-out below a writable root survives
renames. Every directory between the writable root and a carve-out is a
mount point in the sandbox, which cannot be renamed or removed (EBUSY), so
a command cannot move the carve-out to a name a later run would not
protect. Tried on the parent and the grandparent, two and three levels
down, as root and as uid 65534, workspace under /tmp and /var/tmp."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from sbxenv import each, split  # noqa: E402
from wardenrpc import run_tests  # noqa: E402

RENAME = r'''
import os, sys
try:
    os.rename(sys.argv[1], sys.argv[2])
except OSError as e:
    print("refused", e)
    sys.exit(1)
print("renamed")
'''


def check(e, label):
    secret = os.path.join(e.ws, "a", "b", "secret")
    ro = os.path.join(e.ws, "a", "b", "ro")
    deep = os.path.join(e.ws, "c", "d", "e", "keys")
    for d in (secret, ro, deep):
        os.makedirs(d)
        with open(os.path.join(d, "f"), "w") as f:
            f.write("host\n")
    e.chown_tree(e.ws)
    policy = split([(":root", "read"), (e.ws, "write"), (secret, "none"), (ro, "read"),
                    (deep, "none")])
    # the carve-outs hold where they are
    code, out = e.run(["cat", os.path.join(secret, "f")], policy)
    assert code != 0, (label, out)
    code, out = e.run(["sh", "-c", "echo x > %s/f" % ro], policy)
    assert code != 0, (label, out)
    failures = []
    for src in (os.path.join(e.ws, "a", "b"), os.path.join(e.ws, "a"),
                os.path.join(e.ws, "c", "d", "e"), os.path.join(e.ws, "c", "d"),
                os.path.join(e.ws, "c")):
        code, out = e.py(RENAME, policy, src, src + "-moved")
        if code != 1 or not os.path.isdir(src) or os.path.exists(src + "-moved"):
            failures.append((src, out.strip()))
    # a later run, whatever names the first may have made
    for d, name in ((secret, "f"), (deep, "f")):
        code, out = e.run(["cat", os.path.join(d, name)], policy)
        if code == 0:
            failures.append(("readable later", d))
    code, out = e.run(["sh", "-c", "echo y > %s/f" % ro], policy)
    if code == 0:
        failures.append(("writable later", ro))
    with open(os.path.join(ro, "f")) as f:
        assert f.read() == "host\n", label
    assert not failures, (label, failures)
    # the rest of the workspace stays writable, renames included
    os.makedirs(os.path.join(e.ws, "free", "x"))
    e.chown_tree(e.ws)
    code, out = e.py(RENAME, policy, os.path.join(e.ws, "free"), os.path.join(e.ws, "free2"))
    assert code == 0, (label, out)
    code, out = e.run(["sh", "-c", "echo z > a/b/new && mkdir a/n && rmdir a/n"], policy)
    assert code == 0, (label, out)


def test_carveouts_survive_renames():
    each(check)


if __name__ == "__main__":
    run_tests(globals())
