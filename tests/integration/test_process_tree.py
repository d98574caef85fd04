"""Signals reach the whole command, not only its first process:
terminate signals every process of the command's group; after the grace,
KILL takes the whole tree, including a descendant that moved to a process
group (and session) of its own and ignores TERM; and when the server itself
is SIGKILLed, the supervisor takes down a tree whose members ignore HUP and
TERM. Each case runs without a sandbox (the supervisor is a subreaper) and
inside one (the supervisor is pid 1 of a pid namespace)."""

import os
import signal
import sys
import tempfile
import time

from wardenrpc import Server, alive, descendants_of, run_tests

FULL = {"type": "dangerFullAccess"}
WS = {"type": "workspaceWrite"}
WAIT_S = 60  # how long an awaited event may take under load (not a speed bound)


def wait_lines(s, pid, needles):
    """Wait for output notifications until every needle has been seen."""
    def seen():
        out = s.output_of(pid)
        return all(n in out for n in needles)
    s.wait_for(lambda n: seen(), timeout=WAIT_S) if not seen() else None
    assert seen(), s.output_of(pid)


def spawn(s, pid, script, d, policy, tty=False):
    return s.call("process/spawn", {"processId": pid, "argv": ["sh", "-c", script], "cwd": d,
                                    "sandbox": policy, "tty": tty})


# A member of the command's group: records the TERM it gets, then exits.
MEMBER = "(trap 'echo TERM > got-%d; exit 0' TERM; echo ready-%d; while :; do sleep 0.05; done) &"


def test_terminate_reaches_every_process_of_the_group():
    for policy in (FULL, WS):
        with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
            with Server() as s:
                # the command waits for its members to record and exit
                # (its trap is set first: a subshell resets it to the default)
                script = ("trap 'echo main-TERM' TERM; " +
                          " ".join(MEMBER % (i, i) for i in range(3)) +
                          " echo ready-main; wait; wait")
                spawn(s, "g", script, d, policy)
                wait_lines(s, "g", [b"ready-%d" % i for i in range(3)] + [b"ready-main"])
                # a grace long enough that only TERM can explain the records
                assert s.call("process/terminate", {"processId": "g", "graceMs": 600000})["running"]
                x = s.wait_exit("g", timeout=WAIT_S)
                assert x["exitCode"] == 0, (x, s.output_of("g"))
                assert b"main-TERM" in s.output_of("g")
                for i in range(3):
                    with open(os.path.join(d, "got-%d" % i)) as f:
                        assert f.read() == "TERM\n", (policy, i)


def test_kill_after_grace_takes_the_whole_tree():
    """The command and a grandchild in a session of its own both ignore TERM:
    after the grace the whole tree is gone by the time process/exited
    arrives (the supervisor reaps it before it reports)."""
    for policy in (FULL, WS):
        for tty in (False, True):
            with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
                with Server() as s:
                    script = ("trap '' TERM; setsid sh -c \"trap '' TERM; echo ready-gc; "
                              "while :; do sleep 0.05; done\" & echo ready-cmd; "
                              "while :; do sleep 0.05; done")
                    spawn(s, "t", script, d, policy, tty=tty)
                    wait_lines(s, "t", [b"ready-gc", b"ready-cmd"])
                    tree = descendants_of(s.proc.pid)
                    assert len(tree) >= 3, tree  # supervisor, sh, the setsid'd sh
                    t0 = time.time()
                    s.call("process/terminate", {"processId": "t", "graceMs": 300})
                    x = s.wait_exit("t", timeout=WAIT_S)
                    assert x["signal"] == "KILL", x
                    assert time.time() - t0 >= 0.25, "KILL came before the grace"
                    left = [p for p in tree if alive(p)]
                    assert not left, (policy, tty, left)


def test_server_sigkill_takes_down_trees_ignoring_hup_and_term():
    """Nothing forwards a signal the tree would die of: every member ignores
    HUP and TERM, one sits in a session of its own. Only the supervisor
    noticing the server's death (and killing the tree) ends them."""
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        s = Server()
        member = "trap '' HUP TERM; echo ready-%s; while :; do sleep 0.05; done"
        script = ("trap '' HUP TERM; (%s) & setsid sh -c \"%s\" & echo ready-cmd; wait"
                  % (member % "a", member.replace("'", "\\'").replace("\\'", "'") % "b"))
        ready = [b"ready-a", b"ready-b", b"ready-cmd"]
        spawn(s, "plain", script, d, FULL)
        spawn(s, "pty", script, d, FULL, tty=True)
        spawn(s, "sbx", script, d, WS)
        for pid in ("plain", "pty", "sbx"):
            wait_lines(s, pid, ready)
        tree = descendants_of(s.proc.pid)
        assert len(tree) >= 12, tree  # per command: supervisor, sh, subshell, setsid'd sh
        s.proc.kill()
        s.proc.wait()
        deadline = time.time() + WAIT_S
        while time.time() < deadline and any(alive(p) for p in tree):
            time.sleep(0.05)
        left = [p for p in tree if alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert not left, left


if __name__ == "__main__":
    run_tests(globals())
