"""policy/resolve and policy/transform through the protocol."""
import os
import shutil
import tempfile

from wardenrpc import Server, run_tests


def split(entries, mode="none"):
    return {"type": "split", "network": {"mode": mode},
            "fileSystem": {"entries": [{"path": p, "access": a} for p, a in entries]}}


class Tree:
    def __init__(self):
        self.base = os.path.realpath(tempfile.mkdtemp(prefix="warden-pol-"))
        self.w = os.path.join(self.base, "w")
        os.makedirs(os.path.join(self.w, "docs", "tmp"))
        os.makedirs(os.path.join(self.w, ".git"))

    def close(self):
        shutil.rmtree(self.base, ignore_errors=True)


def roots(plan):
    return {r["root"]: sorted(r["readOnlySubpaths"]) for r in plan["writableRoots"]}


def test_nested_carveouts_and_protected_paths():
    t = Tree()
    try:
        with Server() as s:
            docs = os.path.join(t.w, "docs")
            r = s.call("policy/resolve", {"cwd": t.w, "sandbox": split(
                [(":root", "read"), (t.w, "write"), (docs, "read"),
                 (os.path.join(docs, "tmp"), "write")])})
            assert r["enforceable"] is True and r["legacyEquivalent"] is False, r
            p = r["plan"]
            assert p["fullDiskRead"] is True and p["fullDiskWrite"] is False
            assert p["network"] == "none"
            rs = roots(p)
            # /w/docs/tmp is reopened writable: a root of its own, protected too.
            assert set(rs) == {t.w, os.path.join(docs, "tmp")}, rs
            # ... and the covering root keeps the protected names of every
            # directory down to it (issue 9, item 3).
            assert rs[t.w] == sorted(os.path.join(t.w, n) for n in
                                     [".agents", ".codex", ".git", "docs", "docs/.agents",
                                      "docs/.codex", "docs/.git", "docs/tmp/.agents",
                                      "docs/tmp/.codex", "docs/tmp/.git"]), rs
            assert os.path.join(docs, "tmp", ".git") in rs[os.path.join(docs, "tmp")]
    finally:
        t.close()


def test_symlinked_codex_and_worktree_gitdir():
    t = Tree()
    try:
        decoy = os.path.join(t.base, "decoy")
        os.makedirs(decoy)
        os.symlink(decoy, os.path.join(t.w, ".codex"))
        repo_git = os.path.join(t.base, "repo", ".git", "worktrees", "w")
        os.makedirs(repo_git)
        shutil.rmtree(os.path.join(t.w, ".git"))
        with open(os.path.join(t.w, ".git"), "w") as f:
            f.write("gitdir: %s\n" % repo_git)
        with Server() as s:
            r = s.call("policy/resolve", {"cwd": t.w, "sandbox": {"type": "workspaceWrite",
                                                                   "excludeSlashTmp": True,
                                                                   "excludeTmpdirEnvVar": True}})
            sub = roots(r["plan"])[t.w]
            assert os.path.join(t.w, ".codex") in sub, sub  # the literal path, not the decoy
            assert decoy not in sub
            assert os.path.join(t.w, ".git") in sub
            every = [p for v in roots(r["plan"]).values() for p in v]
            assert repo_git in every, r["plan"]
            assert r["legacyEquivalent"] is True
    finally:
        t.close()


def test_home_expansion_hides_secrets():
    t = Tree()
    try:
        home = os.path.join(t.base, "home")
        for d in ["code", ".ssh", ".aws", ".config/gh", ".config/other", "keys"]:
            os.makedirs(os.path.join(home, d))
        with open(os.path.join(home, ".ssh", "config"), "w") as f:
            f.write("Include ~/.ssh/conf.d/*\n")
        os.makedirs(os.path.join(home, ".ssh", "conf.d"))
        with open(os.path.join(home, ".ssh", "conf.d", "work"), "w") as f:
            f.write("Host work\n  IdentityFile %d/keys/id_work\n")
        with Server(env={"HOME": home}) as s:
            r = s.call("policy/resolve", {"cwd": t.w, "sandbox": split(
                [(":minimal", "read"), (home, "read"), (t.w, "write")])})
            readable = r["plan"]["readableRoots"]
            assert os.path.join(home, "code") in readable, readable
            for hidden in [".ssh", ".aws", ".config/gh"]:
                assert os.path.join(home, hidden) not in readable, (hidden, readable)
            assert home not in readable  # expanded, never granted whole
            assert os.path.join(home, "keys", "id_work") not in readable
    finally:
        t.close()


def test_errors_name_the_entry():
    t = Tree()
    try:
        with Server() as s:
            r = s.request("policy/resolve", {"cwd": t.w, "sandbox": split([(":bogus", "read")])})
            e = r["error"]
            assert e["code"] == -32602, e
            assert e["data"]["path"] == "params.sandbox.fileSystem.entries[0].path", e
            assert ":bogus" in e["message"]
            r = s.request("policy/resolve", {"cwd": t.w, "sandbox": split([("rel/path", "read")])})
            assert r["error"]["data"]["path"].startswith("params.sandbox.fileSystem.entries[0]")
            r = s.request("policy/resolve", {"cwd": t.w, "sandbox": {"type": "profile",
                                                                      "name": "nope"}})
            assert r["error"]["code"] == -32602 and "nope" in r["error"]["message"], r
    finally:
        t.close()


def test_transform_round_trips_and_refusals():
    t = Tree()
    try:
        with Server(env={"TMPDIR": "/tmp"}) as s:
            for legacy in [{"type": "readOnly"},
                           {"type": "workspaceWrite"},
                           {"type": "workspaceWrite", "writableRoots": [t.base],
                            "excludeSlashTmp": True, "excludeTmpdirEnvVar": True},
                           {"type": "dangerFullAccess"}]:
                sp = s.call("policy/transform", {"cwd": t.w, "to": "split",
                                                 "sandbox": legacy})["sandbox"]
                back = s.call("policy/transform", {"cwd": t.w, "to": "legacy",
                                                   "sandbox": sp})["sandbox"]
                a = s.call("policy/resolve", {"cwd": t.w, "sandbox": legacy})["plan"]
                b = s.call("policy/resolve", {"cwd": t.w, "sandbox": back})["plan"]
                assert a == b, (legacy, sp, back)
            # A read-only carveout inside a writable root has no legacy form.
            r = s.request("policy/transform", {"cwd": t.w, "to": "legacy", "sandbox": split(
                [(":root", "read"), (":cwd", "write"), (os.path.join(t.w, "docs"), "read")],
                mode="proxy")})
            e = r["error"]
            assert e["code"] == -32602 and e["data"]["path"].startswith(
                "params.sandbox.fileSystem.entries[2]"), e
            assert "legacy" in e["message"]
    finally:
        t.close()


def test_spawn_uses_the_plan():
    t = Tree()
    try:
        with Server() as s:
            docs = os.path.join(t.w, "docs")
            pol = split([(":root", "read"), (t.w, "write"), (docs, "read"),
                         (os.path.join(docs, "tmp"), "write")])
            s.call("process/spawn", {"processId": "p", "cwd": t.w, "sandbox": pol, "argv": [
                "sh", "-c", "echo a > a; echo b > docs/b; echo c > docs/tmp/c; echo d > .git/d;"
                " ls -A . docs docs/tmp | tr '\\n' ' '"]})
            s.wait_exit("p")
            assert os.path.exists(os.path.join(t.w, "a"))
            assert not os.path.exists(os.path.join(docs, "b"))
            assert os.path.exists(os.path.join(docs, "tmp", "c"))
            assert not os.path.exists(os.path.join(t.w, ".git", "d"))
    finally:
        t.close()


def test_resolve_agrees_with_spawn():
    """policy/resolve's enforceable and backend are what process/spawn does
    with the same policy: a full-network plan runs on the namespaces
    backend where the kernel allows it, and a /dev or /proc entry that the
    sandbox refuses (its /dev and /proc are its own) is not enforceable."""
    t = Tree()
    state = os.path.join(t.base, "state")
    os.makedirs(state)
    policies = [
        {"type": "readOnly", "networkAccess": True},
        {"type": "readOnly"},
        {"type": "workspaceWrite", "networkAccess": True},
        split([(":root", "read"), (":cwd", "write")], mode="full"),
        split([(":root", "read"), (":cwd", "write"), ("/dev/null", "write")]),
        split([(":root", "read"), (":cwd", "write"), ("/dev/shm", "write")]),
        split([(":root", "read"), (":cwd", "write"), ("/dev/sda", "write")]),
        split([(":root", "read"), (":cwd", "write"), ("/proc/sys", "write")]),
        split([(":root", "read"), (":cwd", "write"), ("/proc", "none")]),
        split([(":minimal", "read"), (":cwd", "write"), ("/dev/mem", "read")]),
        {"type": "dangerFullAccess"},
    ]
    seen = {"refused": 0, "namespaces": 0}
    try:
        with Server(env={"XDG_STATE_HOME": state}) as s:
            for i, pol in enumerate(policies):
                r = s.call("policy/resolve", {"cwd": t.w, "sandbox": pol})
                sp = s.request("process/spawn", {"processId": "r%d" % i, "cwd": t.w,
                                                 "sandbox": pol, "argv": ["true"]})
                if "error" in sp:
                    assert sp["error"]["code"] == -32003, (pol, sp)
                    assert r["enforceable"] is False and r.get("reason"), (pol, r, sp)
                    seen["refused"] += 1
                    continue
                s.wait_exit("r%d" % i)
                assert r["enforceable"] is True, (pol, r, sp)
                assert r["backend"] == sp["result"]["sandbox"]["backend"], (pol, r, sp)
                seen[r["backend"]] = seen.get(r["backend"], 0) + 1
    finally:
        t.close()
    # on this kernel (tests run where namespaces work) both kinds occur
    assert seen["refused"] >= 3 and seen["namespaces"] >= 4, seen


if __name__ == "__main__":
    run_tests(globals())
