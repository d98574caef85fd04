"""Issue 14: supervisors come from the zygote, a small process the server
forks at start (server/exec/zygote.c), never from the server itself. What
the supervisors promised before still holds, and the zygote adds no way out:

- it is the server's only long-lived child besides supervisors, holds no fd
  but /dev/null and its socket (not the client's stdout), and its
  supervisors are the server's children (CLONE_PARENT);
- it dies with the server (SIGKILL or orderly exit), survives a ^C to the
  process group (the server decides), and when it is gone spawns go on by
  forking the server, saying so once;
- a sandboxed command cannot see or signal it (root and uid 65534), holds no
  fd of it, and nothing of one spawn (env, fds) reaches the next;
- --no-zygote spawns without it, with the same results.
Standard library only."""

import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from sbxenv import Env, FULL, NOBODY, WORKSPACE, PY  # noqa: E402
from wardenrpc import Server, alive, descendants_of, run_tests, wait_gone  # noqa: E402


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            out.append((int(d), st[st.index("(") + 1:st.rindex(")")], rest[0]))
    return out


def start_time(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    return int(st[st.rindex(")") + 2:].split()[19])


def zygote_of(server_pid):
    """The zygote: forked once initialize is answered and named right after
    the fork (so look for a moment). A supervisor it has just cloned carries
    its name for a few instructions: the zygote is the oldest."""
    def named():
        return [p for p, comm, state in children(server_pid) if comm == "warden-zygote"]
    assert wait_gone(lambda: named(), timeout=5), children(server_pid)
    return min(named(), key=start_time)


def warm_of(server_pid):
    return sorted(p for p, comm, state in children(server_pid) if comm == "warden-warm")


def fd_targets(pid):
    d = "/proc/%d/fd" % pid
    return {int(n): os.readlink(os.path.join(d, n)) for n in os.listdir(d)}


def run(s, pid, argv, sandbox=FULL, env=None, cwd=None):
    p = {"processId": pid, "argv": argv, "sandbox": sandbox}
    if env:
        p["env"] = env
    if cwd:
        p["cwd"] = cwd
    s.call("process/spawn", p)
    x = s.wait_exit(pid, timeout=60)
    return x["exitCode"], s.output_of(pid).decode("utf-8", "replace")


def test_zygote_shape_and_supervisors_are_the_servers_children():
    with Server() as s:
        z = zygote_of(s.proc.pid)
        wait_gone(lambda: len(warm_of(s.proc.pid)) == 2, timeout=10)
        fds = fd_targets(z)
        # 0-2 are /dev/null, then sockets only: one to the server, one to
        # each warm supervisor; nothing of the client's pipes
        assert all(fds[i] == "/dev/null" for i in (0, 1, 2)), fds
        others = [t for n, t in fds.items() if n > 2]
        assert len(others) == 1 + len(warm_of(s.proc.pid)), (fds, children(s.proc.pid))
        assert all(t.startswith("socket:") for t in others), fds
        server_fds = fd_targets(s.proc.pid)
        assert server_fds[1] not in fds.values() and server_fds[0] not in fds.values()
        marker = "zy-" + uuid.uuid4().hex
        s.call("process/spawn", {"processId": "a", "argv": [
            "sh", "-c", "echo up; exec sleep 300", marker]})
        s.wait_for(lambda n: n.get("method") == "process/output", 30)
        kids = children(s.proc.pid)
        sups = [p for p, comm, _ in kids if comm not in ("warden-zygote", "warden-warm")]
        assert len(sups) == 1, kids
        # the supervisor is the server's child, named as the server, and the
        # command is its child
        assert [c for c in children(sups[0])], children(sups[0])
        assert children(z) == [], "the zygote must never keep children: %r" % children(z)
        s.call("process/terminate", {"processId": "a", "graceMs": 100})
        s.wait_exit("a", timeout=30)
        assert zygote_of(s.proc.pid) == z  # one zygote for the server's life


def test_zygote_dies_with_the_server():
    # SIGKILL: PDEATHSIG
    s = Server()
    z = zygote_of(s.proc.pid)
    assert run(s, "sb", ["true"], WORKSPACE)[0] == 0  # warm sandboxed ones too
    assert wait_gone(lambda: len(warm_of(s.proc.pid)) == 4, timeout=10), children(s.proc.pid)
    warm = warm_of(s.proc.pid)
    s.proc.kill()
    s.proc.wait()
    assert wait_gone(lambda: not alive(z)), "zygote %d outlived a SIGKILLed server" % z
    assert wait_gone(lambda: not [w for w in warm if alive(w)]), \
        "warm supervisors outlived a SIGKILLed server: %r" % [w for w in warm if alive(w)]
    # orderly: EOF on its socket, and the server waits for it
    s = Server()
    z = zygote_of(s.proc.pid)
    assert wait_gone(lambda: len(warm_of(s.proc.pid)) == 2, timeout=10)
    warm = warm_of(s.proc.pid)
    assert s.close() == 0
    assert not alive(z)
    assert not [w for w in warm if alive(w)], warm


def test_ctrl_c_to_the_group_is_the_servers():
    """SIGINT to the whole process group (a terminal's ^C): the zygote
    ignores it; the server shuts down in order and takes it along."""
    s = Server()
    z = zygote_of(s.proc.pid)
    assert run(s, "before", ["echo", "x"]) == (0, "x\n")
    os.kill(z, signal.SIGINT)
    os.kill(z, signal.SIGTERM)
    os.kill(z, signal.SIGHUP)
    time.sleep(0.2)
    assert alive(z), "the zygote died of a signal meant for the server"
    assert run(s, "after", ["echo", "y"]) == (0, "y\n")
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(30) is not None
    assert wait_gone(lambda: not alive(z))


def test_spawns_go_on_when_the_zygote_is_gone():
    with Server() as s:
        z = zygote_of(s.proc.pid)
        os.kill(z, signal.SIGKILL)
        for i in range(3):
            assert run(s, "p%d" % i, ["echo", str(i)]) == (0, "%d\n" % i)
            assert run(s, "w%d" % i, ["echo", str(i)], WORKSPACE)[0] == 0
        warned = [l for l in s.stderr_lines if "zygote" in l]
        assert len(warned) == 1 and "spawning without it" in warned[0], s.stderr_lines
        # reaped, not left a zombie
        assert not [k for k in children(s.proc.pid) if k[0] == z], children(s.proc.pid)


def test_no_zygote_flag():
    with Server("--no-zygote") as s:
        assert [c for c in children(s.proc.pid) if c[1] == "warden-zygote"] == []
        assert run(s, "a", ["echo", "plain"]) == (0, "plain\n")
        assert run(s, "b", ["echo", "sandboxed"], WORKSPACE) == (0, "sandboxed\n")


SEE = r'''
import os, signal, sys
z = int(sys.argv[1])
# the zygote's pid may exist in our pid namespace only as somebody else
try:
    comm = open("/proc/%d/comm" % z).read().strip()
except OSError:
    comm = None
try:
    os.kill(z, 0)
    signalled = True
except OSError:
    signalled = False
fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
print("comm", comm, "signalled", signalled, "fds", fds)
sys.exit(1 if comm == "warden-zygote" else 0)
'''


def test_a_sandboxed_command_cannot_reach_the_zygote():
    for user in (None, NOBODY):
        with Env(user, "/var/tmp") as e:
            z = zygote_of(e.server.proc.pid)
            for sandbox in (WORKSPACE, {"type": "readOnly"}):
                code, out = e.py(SEE, sandbox, z)
                assert code == 0, (user, sandbox, out)
                # fds: 0-2 and the one listdir opened
                assert "comm None" in out or "warden-zygote" not in out, out
                assert out.strip().endswith("fds [0, 1, 2, 3]"), (user, sandbox, out)
            # unsandboxed: it may see the zygote, but holds none of its fds
            code, out = e.py(SEE.replace("sys.exit(1 if", "sys.exit(0 if"), FULL, z)
            assert out.strip().endswith("fds [0, 1, 2, 3]"), (user, out)


ENV_FDS = r'''
import os
print(sorted(int(n) for n in os.listdir("/proc/self/fd")))
print(sorted(k for k in os.environ if k.startswith("ZYGOTE_")))
print(os.getcwd())
print(" ".join(os.readlink("/proc/self/ns/" + k) for k in ("mnt", "net", "pid", "ipc", "user")))
'''


def test_nothing_of_one_spawn_reaches_the_next():
    with Env(None, "/var/tmp") as e:
        seen = []
        other = os.path.join(e.base, "outside")
        for i, (sandbox, cwd) in enumerate([(WORKSPACE, e.ws), (FULL, other), (WORKSPACE, e.ws),
                                           (FULL, e.ws)]):
            secret = "ZYGOTE_SECRET_%d" % i
            e.n += 1
            pid = "p%d" % e.n
            # a PTY for one, pipes with stdin for another: different fd sets
            r = e.server.request("process/spawn", {
                "processId": pid, "argv": [PY, "-c", ENV_FDS], "sandbox": sandbox,
                "cwd": cwd, "env": {secret: "x"}, "tty": i == 1, "streamStdin": i == 2})
            assert "result" in r, r
            if i == 2:
                e.server.call("process/write", {"processId": pid, "closeStdin": True})
            x = e.server.wait_exit(pid, timeout=60)
            out = e.server.output_of(pid).decode().replace("\r", "").split("\n")
            assert x["exitCode"] == 0, out
            assert out[0] == "[0, 1, 2, 3]", (i, out)
            assert out[1] == repr([secret]), (i, out)
            assert out[2] == cwd, (i, out)
            if sandbox is WORKSPACE:
                seen.append(out[3].split())
        # each sandboxed spawn had namespaces of its own (the user namespace
        # too, unless the server is root: then there is none)
        a, b = seen
        assert all(x != y for x, y in zip(a[:4], b[:4])), (a, b)


def server_faults_per_spawn(*args, n=40):
    with Server(*args) as s:
        def minflt():
            with open("/proc/%d/stat" % s.proc.pid) as f:
                st = f.read()
            return int(st[st.rindex(")") + 2:].split()[7])
        for i in range(5):
            run(s, "warm%d" % i, ["true"])
            s.call("process/release", {"processId": "warm%d" % i})
        before = minflt()
        for i in range(n):
            run(s, "p%d" % i, ["true"])
            s.call("process/release", {"processId": "p%d" % i})
        return (minflt() - before) / n


def test_server_takes_no_copy_on_write_faults_per_spawn():
    """The server is never forked, so spawning does not copy-on-write its
    pages. Its page faults per spawn are compared with --no-zygote's in the
    same run (a sanitizer build takes some of its own for every allocation):
    a fork of the server cost 20-90 per spawn, each on every CPU's TLB."""
    zygote = server_faults_per_spawn()
    forked = server_faults_per_spawn("--no-zygote")
    print("server page faults per spawn: zygote %.1f, --no-zygote %.1f" % (zygote, forked))
    assert zygote <= forked / 2, (zygote, forked)
    if not sanitized():
        assert zygote < 5, zygote


def sanitized():
    from wardenrpc import WARDEN_BIN
    with open(WARDEN_BIN, "rb") as f:
        return b"__asan_init" in f.read()


def ns_of(pid, kind):
    return os.readlink("/proc/%d/ns/%s" % (pid, kind))


def test_warm_supervisors_are_used_once_and_refilled():
    with Server("--warm-supervisors", "2") as s:
        assert wait_gone(lambda: len(warm_of(s.proc.pid)) == 2, timeout=10), children(s.proc.pid)
        used = set()
        for i in range(4):
            before = set(warm_of(s.proc.pid))
            s.call("process/spawn", {"processId": "w%d" % i, "sandbox": FULL,
                                     "argv": ["sh", "-c", "echo up; exec sleep 300"]})
            s.wait_for(lambda n, i=i: n.get("method") == "process/output"
                       and n["params"]["processId"] == "w%d" % i, 30)
            sups = [p for p, comm, _ in children(s.proc.pid)
                    if comm not in ("warden-zygote", "warden-warm") and p not in used]
            assert len(sups) == 1, children(s.proc.pid)
            assert sups[0] in before, ("the supervisor was not a warm one", sups, before)
            used.add(sups[0])
            # refilled, and never with one that served already
            assert wait_gone(lambda: len(warm_of(s.proc.pid)) == 2, timeout=10)
            assert not used & set(warm_of(s.proc.pid))
        # a sandboxed spawn makes that kind warm too: in namespaces of its own
        assert run(s, "sb", ["true"], WORKSPACE)[0] == 0
        assert wait_gone(lambda: len(warm_of(s.proc.pid)) == 4, timeout=10), children(s.proc.pid)
        nets = {ns_of(p, "net") for p in warm_of(s.proc.pid)}
        assert ns_of(s.proc.pid, "net") in nets  # the plain ones
        assert len(nets) == 3, nets  # and one network namespace per sandboxed one
        for i in range(4):
            s.call("process/terminate", {"processId": "w%d" % i, "graceMs": 100})
            s.wait_exit("w%d" % i, timeout=30)


def test_no_warm_supervisors():
    with Server("--warm-supervisors", "0") as s:
        zygote_of(s.proc.pid)
        assert run(s, "a", ["echo", "cold"]) == (0, "cold\n")
        assert run(s, "b", ["echo", "cold"], WORKSPACE) == (0, "cold\n")
        assert warm_of(s.proc.pid) == []
    for bad in ("9", "-1", "x"):
        p = Server("--warm-supervisors", bad, init=False)
        assert p.proc.wait(10) == 2
        assert "--warm-supervisors" in "".join(p.stderr_lines) or p.proc.stderr is not None


def test_a_killed_warm_supervisor_is_reaped_and_replaced():
    with Server() as s:
        assert wait_gone(lambda: len(warm_of(s.proc.pid)) == 2, timeout=10)
        for w in warm_of(s.proc.pid):
            os.kill(w, signal.SIGKILL)
        for i in range(3):
            assert run(s, "p%d" % i, ["echo", str(i)]) == (0, "%d\n" % i)
        assert wait_gone(lambda: len(warm_of(s.proc.pid)) == 2, timeout=10)
        zombies = [c for c in children(s.proc.pid) if c[2] == "Z"]
        assert zombies == [], zombies


MOUNTED = r'''
import os, sys
print(open(os.path.join(sys.argv[1], "inside-the-mount")).read())
'''


def test_a_warm_sandbox_sees_the_mount_table_of_its_spawn():
    """Warm sandboxed supervisors are made before the spawn; the mount table
    must still be the one at the spawn (a tmpfs mounted in the workspace in
    between is what the command sees), as root and as uid 65534."""
    if os.geteuid() != 0:
        return
    import subprocess
    for user in (None, NOBODY):
        with Env(user, "/var/tmp") as e:
            # make the sandboxed kind warm, and wait for the refill
            assert e.run(["true"], WORKSPACE)[0] == 0
            assert wait_gone(lambda: len(warm_of(e.server.proc.pid)) == 4, timeout=10)
            m = os.path.join(e.ws, "mnt")
            os.makedirs(m)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "t", m], check=True)
            try:
                with open(os.path.join(m, "inside-the-mount"), "w") as f:
                    f.write("fresh")
                code, out = e.py(MOUNTED, WORKSPACE, m)
                assert (code, out.strip()) == (0, "fresh"), (user, code, out)
            finally:
                subprocess.run(["umount", "-l", m], check=False)


if __name__ == "__main__":
    run_tests(globals())
