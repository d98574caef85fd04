"""Issue 9 item 11 (leftovers): the mount points created on the host to mask
missing protected paths (.git, .codex, .agents) are recorded in the state
directory before they are created and removed by the server's janitor when
the server was SIGKILLed (at the next start when the janitor was killed
too); placeholders shared by concurrent runs (of one server or of several)
are never removed under a run that still masks them, so many concurrent
spawns all succeed and leave nothing behind. As root and as uid
65534, workspace under /tmp and /var/tmp."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from sbxenv import each, WORKSPACE  # noqa: E402
from wardenrpc import janitors, run_tests  # noqa: E402

NAMES = (".git", ".codex", ".agents")
# the mask holds while the command runs (it cannot create what is masked)
PROBE = "test -d .agents && ! mkdir .agents/x 2>/dev/null && ! touch .codex/y 2>/dev/null"


def leftovers(*dirs):
    return [os.path.join(d, n) for d in dirs for n in NAMES if os.path.lexists(os.path.join(d, n))]


def new_ws(e, name):
    d = os.path.join(e.base, name)
    os.makedirs(d)
    os.chown(d, e.uid, e.gid)
    return d


def wait_for(pred, timeout=30):
    deadline = time.time() + timeout
    while not pred() and time.time() < deadline:
        time.sleep(0.02)
    return pred()


def kill_server(e, res):
    e.server.proc.kill()
    e.server.proc.wait()
    assert wait_for(lambda: not alive(res["pid"]), 10)  # the sandbox follows its server
    e.server = None


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def check_sigkill(e, label):
    tmp_before = leftovers("/tmp")
    records = os.path.join(e.state, "warden", "v1", "placeholders")
    # the janitor removes a killed server's placeholders and their records
    pid, res = e.spawn(["sleep", "60"], WORKSPACE)
    assert pid, res
    assert sorted(leftovers(e.ws)) == sorted(os.path.join(e.ws, n) for n in NAMES), label
    assert os.listdir(records), (label, "no record")
    kill_server(e, res)
    assert wait_for(lambda: leftovers(e.ws) == []), (label, "left by the janitor",
                                                     leftovers(e.ws))
    assert wait_for(lambda: os.listdir(records) == []), (label, "records", os.listdir(records))
    # without a janitor (killed first), the next start removes them
    e.start()
    pid, res = e.spawn(["sleep", "60"], WORKSPACE)
    assert pid, res
    jan = janitors(e.state)
    assert len(jan) == 1, (label, jan)
    os.kill(jan[0], signal.SIGKILL)
    kill_server(e, res)
    time.sleep(0.5)
    assert leftovers(e.ws), (label, "the killed server left nothing to clean up")
    e.start()
    other = new_ws(e, "other")
    code, out = e.run(["true"], WORKSPACE, cwd=other)
    assert code == 0, (label, out)
    assert leftovers(e.ws, other) == [], (label, "left after restart", leftovers(e.ws, other))
    assert leftovers("/tmp") == tmp_before, (label, "placeholders in the host's /tmp")


def spawn_many(e, server, cwds):
    ids = []
    for i, cwd in enumerate(cwds):
        e.n += 1
        pid = "c%d" % e.n
        rid = server.request_async("process/spawn", {"processId": pid, "argv": ["sh", "-c", PROBE],
                                                     "cwd": cwd, "sandbox": WORKSPACE})
        ids.append((pid, rid))
    bad = []
    for pid, rid in ids:
        r = server.wait_response(rid, timeout=120)
        if "error" in r:
            bad.append(r["error"])
            continue
        x = server.wait_exit(pid, timeout=120)
        if x["exitCode"] != 0:
            bad.append((pid, x, server.output_of(pid)))
    return bad


def check_concurrent(e, label):
    others = [new_ws(e, "w%d" % i) for i in range(6)]
    cwds = [e.ws] * 10 + others
    bad = spawn_many(e, e.server, cwds)
    assert not bad, (label, bad)
    assert leftovers(e.ws, *others) == [], (label, "one server", leftovers(e.ws, *others))
    # two servers on the same workspaces at once
    first = e.server
    second = e.start()
    import threading
    res = {}
    t = threading.Thread(target=lambda: res.setdefault("a", spawn_many(e, first, cwds)))
    t.start()
    res["b"] = spawn_many(e, second, cwds)
    t.join(300)
    assert not res.get("a") and not res.get("b"), (label, res)
    first.close()
    second.close()
    # what one server could not remove under the other's runs goes at the next start
    e.start()
    code, out = e.run(["true"], WORKSPACE, cwd=new_ws(e, "last"))
    assert code == 0, out
    assert leftovers(e.ws, *others) == [], (label, "next start", leftovers(e.ws, *others))


LOCKER = r'''
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
'''


def check_lock_dos(e, label):
    """A command that locks a protected path it can see (another
    workspace's .git, read-only to it) must not hang the server's next
    build there."""
    os.makedirs(os.path.join(e.ws, ".git"))
    sub = os.path.join(e.ws, "sub")
    os.makedirs(sub)
    e.chown_tree(e.ws)
    pid, res = e.spawn(["/usr/bin/python3", "-c", LOCKER, os.path.join(e.ws, ".git")],
                       {"type": "readOnly"}, cwd=sub)
    assert pid, res
    deadline = time.time() + 30
    while b"locked" not in e.server.output_of(pid) and time.time() < deadline:
        time.sleep(0.02)
    assert b"locked" in e.server.output_of(pid), (label, e.server.output_of(pid))
    try:
        code, out = e.run(["true"], WORKSPACE)  # times out (raises) when the server hangs
        assert code == 0, (label, out)
    finally:
        e.server.request("process/terminate", {"processId": pid})
        e.server.wait_exit(pid, timeout=60)


def test_locked_placeholder_does_not_hang_the_server():
    each(check_lock_dos)


def test_placeholders_removed_after_sigkill():
    each(check_sigkill)


def test_concurrent_spawns_share_placeholders():
    each(check_concurrent)


SLASH = {"type": "workspaceWrite", "writableRoots": ["/"]}
# $P (the .agents of a directory above the cwd, protected by the plan of
# writableRoots ["/"]) is masked (a mount of ours) or, where the server cannot
# create a placeholder there (uid 65534: the base is root's), the command
# cannot create it either
SLASH_PROBE = ('if test -d "$P"; then ! mkdir "$P/x" 2>/dev/null; '
               'else ! mkdir "$P" 2>/dev/null; fi && ! touch /.codex/y 2>/dev/null')


def slow_remover(path, stop, counts):
    """Another server's run ending, as the placeholder protocol has it
    remove a placeholder (exclusive lock, then rmdir), but descheduled for
    a while between taking the lock and removing: path is created when
    missing (a stub of its own), locked exclusively when nobody holds it,
    removed 50 ms later, and created again 30 ms after that."""
    import fcntl
    while not stop.is_set():
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            pass
        except OSError:
            return
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            time.sleep(0.005)
            continue
        time.sleep(0.05)
        try:
            os.rmdir(path)
            counts["removed"] = counts.get("removed", 0) + 1
        except OSError:
            pass
        os.close(fd)
        time.sleep(0.03)  # until the next run that creates it


def slash_many(e, server, n, tag, target):
    ids = []
    for i in range(n):
        pid = "%s%d" % (tag, i)
        rid = server.request_async("process/spawn", {"processId": pid, "sandbox": SLASH,
                                                     "argv": ["env", "P=" + target, "sh",
                                                              "-c", SLASH_PROBE],
                                                     "cwd": e.ws})
        ids.append((pid, rid))
    bad = []
    for pid, rid in ids:
        r = server.wait_response(rid, timeout=120)
        if "error" in r:
            bad.append(r["error"])
            continue
        x = server.wait_exit(pid, timeout=120)
        if x["exitCode"] != 0:
            bad.append((pid, x, server.output_of(pid)))
    return bad


def check_slash_two_servers(e, label):
    """writableRoots ["/"]: two servers (own state directories) start many
    runs at once while a placeholder they share (the .agents of the
    directory above the workspace; one of /'s own would be shared with
    every other test on the host) is created and removed under them; every
    run starts, and in every run it is masked."""
    import threading
    target = os.path.join(e.base, ".agents")
    first = e.server
    other_state = os.path.join(e.base, "state2")
    os.makedirs(other_state)
    os.chown(other_state, e.uid, e.gid)
    e.server_env["XDG_STATE_HOME"] = other_state
    second = e.start()
    stop, counts, res = threading.Event(), {}, {}
    remover = threading.Thread(target=slow_remover, args=(target, stop, counts))
    remover.start()
    try:
        # rounds of runs from both servers; between rounds nobody holds
        # the placeholder and the remover gets its turn (at least 4 rounds,
        # and until it has removed it twice)
        rnd = 0
        while rnd < 4 or (counts.get("removed", 0) < 2 and rnd < 40):
            t = threading.Thread(target=lambda: res.setdefault("a", []).extend(
                slash_many(e, first, 12, "a%d_" % rnd, target)))
            t.start()
            res.setdefault("b", []).extend(slash_many(e, second, 12, "b%d_" % rnd, target))
            t.join(300)
            rnd += 1
            time.sleep(0.2)
    finally:
        stop.set()
        remover.join(60)
        first.close()
    assert counts.get("removed"), (label, "the remover never removed anything")
    assert not res.get("a") and not res.get("b"), (label, res)


def test_slash_placeholders_with_a_slow_remover():
    each(check_slash_two_servers)


if __name__ == "__main__":
    run_tests(globals())
