"""Fault tests: the client or the host misbehaves and warden keeps its
promises (every request answered once, no child orphaned, no byte lost,
memory bounded). Each test prints the server's peak RSS and, where requests
are timed, p50/p99 latency. What test_process.py and test_protocol.py
already cover (an idle disconnect, SIGKILL of an unsandboxed server, one slow
reader, 10,000 pipelined process/list) is not repeated here."""

import base64
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import wardenrpc  # noqa: E402
from wardenrpc import (WARDEN_BIN, Server, hwm_kib, janitors, pct, run_tests,  # noqa: E402
                      wait_gone)

FULL = {"type": "dangerFullAccess"}
WORKSPACE = {"type": "workspaceWrite"}


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def marked_pids(marker):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if marker.encode() in f.read():
                        out.append(int(d))
            except OSError:
                pass
    return out


class Raw:
    """A server driven over raw pipes, for tests that must control exactly
    when stdout is read and stdin is closed."""

    def __init__(self, *args, preexec=None, cwd=None, env=None):
        full_env = dict(os.environ)
        full_env.setdefault("WARDEN_LOG", "warn")
        full_env.update(env or {})
        self.p = subprocess.Popen([WARDEN_BIN, *args], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  preexec_fn=preexec, cwd=cwd, env=full_env)

    def send(self, msg):
        self.p.stdin.write((json.dumps(msg) + "\n").encode())
        self.p.stdin.flush()

    def messages(self):
        for raw in self.p.stdout:
            yield json.loads(raw)

    def until(self, pred):
        for m in self.messages():
            if pred(m):
                return m
        raise AssertionError("stdout ended")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def test_client_closes_stdin_mid_stream():
    """stdin ends in the middle of a line while processes are writing and
    requests are in flight: the requests already sent are answered, the half
    line is refused, the server exits 0 and every child is gone."""
    marker = "midstream-" + uuid.uuid4().hex
    s = Raw()
    try:
        s.send({"id": 0, "method": "initialize", "params": {"clientInfo": {"name": "t"}}})
        for i in range(5):
            s.send({"id": "s%d" % i, "method": "process/spawn", "params": {
                "processId": "w%d" % i, "argv": ["sh", "-c", "while :; do echo %s; done" % marker],
                "sandbox": FULL}})
        for i in range(20):
            s.send({"id": i + 1, "method": "process/list"})
        s.p.stdin.write(b'{"id": 999, "method": "process/li')
        s.p.stdin.close()
        answered = {}
        exited = set()
        for m in s.messages():
            if "id" in m:
                answered[json.dumps(m["id"])] = answered.get(json.dumps(m["id"]), 0) + 1
            if m.get("method") == "process/exited":
                exited.add(m["params"]["processId"])
        assert s.p.wait(30) == 0
        for i in range(20):
            assert answered.get(json.dumps(i + 1)) == 1, (i, answered)
        for i in range(5):
            assert answered.get(json.dumps("s%d" % i)) == 1, answered
        assert answered.get("999") is None  # a half line is not a request
        assert wait_gone(lambda: not marked_pids(marker)), marked_pids(marker)
        print("stdin closed mid-stream: %d answers, %d exits reported, peak RSS n/a (exited)"
              % (sum(answered.values()), len(exited)))
    finally:
        s.kill()


def test_client_stops_reading_30s_while_50_processes_write():
    """50 processes write 2 MiB each while the client reads nothing for 30 s:
    the server's RSS stays bounded (it stops reading the children), and after
    the client resumes every byte of every process arrives, in order."""
    n, size = 50, 2 << 20
    env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8"}
    s = Raw(env=env)
    try:
        s.send({"id": 0, "method": "initialize", "params": {"clientInfo": {"name": "t"}}})
        s.until(lambda m: m.get("id") == 0)
        base = rss_kib(s.p.pid)
        for i in range(n):
            # Lines "<i> <line number>\n": order and completeness are checkable.
            s.send({"id": "s%d" % i, "method": "process/spawn", "params": {
                "processId": "w%d" % i,
                "argv": ["sh", "-c", "seq 1 1000000 | sed 's/^/%d /' | head -c %d" % (i, size)],
                "sandbox": FULL}})
        peak = base
        end = time.time() + 30
        while time.time() < end:
            peak = max(peak, rss_kib(s.p.pid))
            time.sleep(0.1)
        data = {i: bytearray() for i in range(n)}
        exited = {}
        spawned = 0
        for m in s.messages():
            if str(m.get("id", "")).startswith("s"):
                assert "result" in m, m
                spawned += 1
            elif m.get("method") == "process/output":
                i = int(m["params"]["processId"][1:])
                data[i] += base64.b64decode(m["params"]["deltaBase64"])
            elif m.get("method") == "process/exited":
                exited[m["params"]["processId"]] = m["params"]
                if len(exited) == n:
                    break
        assert spawned == n
        for i in range(n):
            want = b"".join(b"%d %d\n" % (i, k) for k in range(1, 400000))[:size]
            assert bytes(data[i]) == want, "process %d: %d bytes, expected %d" % (
                i, len(data[i]), size)
        s.p.stdin.close()
        assert s.p.wait(30) == 0
        grown = peak - base
        print("client not reading for 30 s, 50 writers: RSS %d -> peak %d KiB (+%d KiB), "
              "%d MiB delivered intact" % (base, peak, grown, n * size >> 20))
        # Bounded: the output queue's high-water mark (4 MiB) plus the
        # retained rings (1 MiB per process) plus slack, not 100 MiB of output.
        assert grown < (4 + n * 1 + 32) * 1024, grown
    finally:
        s.kill()


NOBODY = (65534, 65534)


def janitor_fds(pid):
    """What the janitor's descriptors are open on."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(") ", 1)[1].split()


def sig_ignored(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigIgn:"):
                return int(line.split()[1], 16)
    return 0


def sigkill_with_sandboxes(user):
    """A server (as root, or as uid 65534 with user namespaces) with three
    workspaceWrite sessions is SIGKILLed: every process of every sandbox
    dies, the client sees EOF on stdout at once, and its janitor removes the
    stubs the sandbox put on the host (empty .git/.codex/.agents mount
    points in the workspace) and the state directory's records of them, with
    no server started again."""
    base = tempfile.mkdtemp(prefix="warden-fault-", dir="/var/tmp")
    os.chmod(base, 0o755)
    ws, home, state = (os.path.join(base, n) for n in ("ws", "home", "state"))
    for d in (ws, home, state):
        os.makedirs(d)
    binary = WARDEN_BIN
    if user:  # the build tree need not be readable by nobody
        binary = os.path.join(base, "warden")
        shutil.copy(WARDEN_BIN, binary)
        for d in (ws, home, state):
            os.chown(d, *user)
    records_dir = os.path.join(state, "v1", "placeholders")

    def records():
        return os.listdir(records_dir) if os.path.isdir(records_dir) else []
    marker = "killed-" + uuid.uuid4().hex
    saved = wardenrpc.WARDEN_BIN
    wardenrpc.WARDEN_BIN = binary
    try:
        s = Server("--state-dir", state, cwd=ws, env={"HOME": home, "TMPDIR": "/tmp"}, user=user)
    finally:
        wardenrpc.WARDEN_BIN = saved
    label = "uid %d" % user[0] if user else "root"
    try:
        for i in range(3):
            s.call("process/spawn", {"processId": "t%d" % i, "cwd": ws, "sandbox": WORKSPACE,
                                     "argv": ["sh", "-c", "sleep 300 & (setsid sleep 301 &); "
                                              "echo started; wait", marker]})
        for i in range(3):
            s.wait_for(lambda n, i=i: n.get("method") == "process/output"
                       and n["params"]["processId"] == "t%d" % i, 30)
        before = marked_pids(marker)
        assert len(before) >= 3, before
        created = sorted(os.listdir(ws))
        assert created == [".agents", ".codex", ".git"], (label, created)
        assert records(), (label, "no placeholder record in the state directory")
        jan = janitors(state)
        assert len(jan) == 1, (label, jan)
        j = jan[0]
        assert wait_gone(lambda: open("/proc/%d/comm" % j).read().strip() == "warden-janitor",
                         10), (label, "the janitor never named itself (it names itself last)")
        # it holds nothing of the server's and no lock of the state directory:
        # /dev/null for 0-2, its socket, pidfds of the server and of the three
        # supervisors
        fds = janitor_fds(j)
        assert all(t == "/dev/null" or t.startswith("socket:") or t == "anon_inode:[pidfd]"
                   for t in fds), (label, fds)
        assert fds.count("anon_inode:[pidfd]") == 4, (label, fds)
        # no child of the server, in a session of its own, deaf to ^C and hangups
        assert j not in wardenrpc.descendants_of(s.proc.pid), label
        assert proc_stat(j)[3] != proc_stat(s.proc.pid)[3], (label, "same session")
        ign = sig_ignored(j)
        assert ign & (1 << (signal.SIGINT - 1)) and ign & (1 << (signal.SIGHUP - 1)), hex(ign)
        os.kill(j, signal.SIGINT)
        os.kill(j, signal.SIGHUP)
        t0 = time.time()
        s.proc.kill()
        s.proc.wait()
        # the janitor does not keep the server's stdout open
        assert wait_gone(lambda: s.eof, 10), (label, "no EOF on the killed server's stdout")
        assert wait_gone(lambda: not marked_pids(marker)), "survivors: %r" % marked_pids(marker)
        wait_gone(lambda: not os.listdir(ws), 30)
        gone_s = time.time() - t0
        left = sorted(os.listdir(ws))
        assert left == [], (label, "host stub files left in the workspace", left)
        assert wait_gone(lambda: not records(), 30), (label, "records left", records())
        assert wait_gone(lambda: not janitors(state), 30), (label, "the janitor lives on")
        print("SIGKILL of a sandboxed server (%s): %d sandboxed processes gone; workspace while "
              "running %r, stubs and records gone %.2f s after the kill, no restart"
              % (label, len(before), created, gone_s))
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
        shutil.rmtree(base, ignore_errors=True)


def test_sigkill_of_sandboxed_server_leaves_no_child():
    sigkill_with_sandboxes(None)
    if os.geteuid() == 0:
        sigkill_with_sandboxes(NOBODY)


def test_janitor_starts_with_the_first_placeholder_and_goes_with_the_server():
    """No janitor for a server that has made no placeholder (nothing at
    start-up, nothing for unsandboxed runs); the first workspaceWrite run
    starts one, which no sandboxed command can see; on a normal exit the
    server removes its stubs, the janitor its record, and goes."""
    base = tempfile.mkdtemp(prefix="warden-jt-", dir="/var/tmp")
    ws, home, state = (os.path.join(base, n) for n in ("ws", "home", "state"))
    for d in (ws, home, state):
        os.makedirs(d)
    records_dir = os.path.join(state, "v1", "placeholders")
    try:
        with Server("--state-dir", state, cwd=ws, env={"HOME": home, "TMPDIR": "/tmp"}) as s:
            s.call("process/spawn", {"processId": "full", "argv": ["true"], "sandbox": FULL})
            s.wait_exit("full")
            assert janitors(state) == [], "a janitor without a placeholder"
            s.call("process/spawn", {"processId": "ws", "cwd": ws, "sandbox": WORKSPACE,
                                     "argv": ["sh", "-c", "cat /proc/[0-9]*/cmdline; echo"]})
            assert s.wait_exit("ws")["exitCode"] == 0
            assert b"warden-janitor\0" not in s.output_of("ws"), s.output_of("ws")
            assert len(janitors(state)) == 1, janitors(state)
            assert os.listdir(ws) == [], os.listdir(ws)  # removed at the run's end
            assert s.close() == 0
        assert wait_gone(lambda: not janitors(state), 30), "the janitor lives on"
        assert os.listdir(records_dir) == [], os.listdir(records_dir)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_grandchild_dies_when_child_exits_or_is_terminated():
    """A child forks a grandchild that ignores HUP/TERM and leaves the process
    group: when the child exits the grandchild is killed with it; when the
    child keeps running, terminate kills both. Unsandboxed and sandboxed."""
    with Server() as s:
        for sandbox in (FULL, WORKSPACE):
            tag = sandbox["type"]
            marker = "gc-" + uuid.uuid4().hex
            s.call("process/spawn", {"processId": "exits-" + tag, "sandbox": sandbox, "argv": [
                "sh", "-c", "(trap '' HUP TERM; exec setsid sh -c 'sleep 300; :' %s) & sleep 0.3; exit 0" % marker,
                marker]})
            assert wait_gone(lambda: len(marked_pids(marker)) >= 1), marked_pids(marker)
            x = s.wait_exit("exits-" + tag)
            assert x["exitCode"] == 0, x
            assert wait_gone(lambda: not marked_pids(marker)), (tag, marked_pids(marker))
            marker = "gc-" + uuid.uuid4().hex
            s.call("process/spawn", {"processId": "runs-" + tag, "sandbox": sandbox, "argv": [
                "sh", "-c", "(trap '' HUP TERM; exec setsid sh -c 'sleep 300; :' %s) & echo up; "
                "exec sleep 300" % marker, marker]})
            s.wait_for(lambda n, t=tag: n.get("method") == "process/output"
                       and n["params"]["processId"] == "runs-" + t, 30)
            assert wait_gone(lambda: len(marked_pids(marker)) >= 1), marked_pids(marker)
            assert s.call("process/terminate", {"processId": "runs-" + tag, "graceMs": 200}) == {
                "running": True}
            x = s.wait_exit("runs-" + tag)
            assert x["signal"] in ("TERM", "KILL"), x
            assert wait_gone(lambda: not marked_pids(marker)), (tag, marked_pids(marker))


def test_child_closes_stdout_early():
    """A child closes stdout at once and goes on writing to stderr: nothing
    is lost, exited comes after the last stderr byte, with its exit code;
    likewise when it closes both and lives on."""
    with Server() as s:
        s.call("process/spawn", {"processId": "a", "sandbox": FULL, "argv": [
            "sh", "-c", "echo first; exec 1>&-; sleep 0.2; i=0; while [ $i -lt 1000 ]; do "
            "echo line$i >&2; i=$((i+1)); done; exit 3"]})
        x = s.wait_exit("a")
        assert x["exitCode"] == 3, x
        assert s.output_of("a", "stdout") == b"first\n"
        err = s.output_of("a", "stderr").decode().split()
        assert err == ["line%d" % i for i in range(1000)], err[-3:]
        s.call("process/spawn", {"processId": "b", "sandbox": FULL, "argv": [
            "sh", "-c", "exec 1>&- 2>&-; sleep 0.5; exit 4"]})
        x = s.wait_exit("b")
        assert x["exitCode"] == 4 and s.output_of("b") == b"", x


def test_fd_exhaustion_spawns_fail_and_server_lives():
    """With RLIMIT_NOFILE 64 the server runs out of descriptors after a few
    sessions: further spawns fail with -32004 (EMFILE) and a clear message,
    every other request keeps being answered, and once sessions end spawns
    work again."""
    def low_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    s = Raw(preexec=low_fds)
    try:
        s.send({"id": 0, "method": "initialize", "params": {"clientInfo": {"name": "t"}}})
        s.until(lambda m: m.get("id") == 0)
        ok, failed = [], []
        for i in range(40):
            s.send({"id": i + 1, "method": "process/spawn", "params": {
                "processId": "p%d" % i, "argv": ["sleep", "300"], "sandbox": FULL}})
            r = s.until(lambda m, i=i: m.get("id") == i + 1)
            (ok if "result" in r else failed).append(r)
        assert ok and failed, (len(ok), len(failed))
        for r in failed:
            e = r["error"]
            assert e["code"] == -32004, e
            assert e["data"]["errno"] == 24 or "Too many open files" in e["message"], e
        s.send({"id": "list", "method": "process/list"})
        r = s.until(lambda m: m.get("id") == "list")
        assert len(r["result"]["processes"]) == len(ok), r
        for i in range(len(ok)):
            s.send({"id": "k%d" % i, "method": "process/release", "params": {"processId": "p%d" % i}})
        want = {"k%d" % i for i in range(len(ok))}
        for m in s.messages():  # answered in the order the processes are reaped
            want.discard(m.get("id"))
            if not want:
                break
        assert not want, want
        s.send({"id": "again", "method": "process/spawn", "params": {
            "processId": "again", "argv": ["echo", "back"], "sandbox": FULL}})
        r = s.until(lambda m: m.get("id") == "again")
        assert "result" in r, r
        s.until(lambda m: m.get("method") == "process/exited")
        print("fd exhaustion (ulimit -n 64): %d spawns ok, %d refused with -32004; "
              "server RSS %d KiB" % (len(ok), len(failed), rss_kib(s.p.pid)))
        s.p.stdin.close()
        assert s.p.wait(30) == 0
    finally:
        s.kill()


def test_full_state_directory():
    """The state directory is on a full tmpfs of the test's own: sandbox/setup
    reports the failure in words (ENOSPC), and the server keeps answering and
    spawning (nothing else needs the state directory)."""
    if os.geteuid() != 0:
        print("skipped: mounting a tmpfs needs root")
        return
    base = tempfile.mkdtemp(prefix="warden-full-")
    mnt = os.path.join(base, "state")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=64", "tmpfs", mnt],
                   check=True)
    try:
        i = 0
        while True:  # fill blocks, then inodes
            try:
                with open(os.path.join(mnt, "fill%d" % i), "wb") as f:
                    f.write(b"x" * 4096)
                i += 1
            except OSError:
                break
        while True:
            try:
                os.mkdir(os.path.join(mnt, "d%d" % i))
                i += 1
            except OSError:
                break
        with Server("--state-dir", mnt) as s:
            assert s.call("sandbox/setup", {}) == {"started": True}
            done = s.wait_for(lambda n: n.get("method") == "sandbox/setupCompleted", 60)["params"]
            assert done["success"] is False, done
            assert done["error"], done
            s.call("process/spawn", {"processId": "x", "argv": ["echo", "ok"], "sandbox": FULL})
            assert s.wait_exit("x")["exitCode"] == 0
            assert s.output_of("x") == b"ok\n"
            assert s.call("process/list")["processes"][0]["processId"] == "x"
            print("full state directory: setup failed with %r; spawns keep working; "
                  "RSS %d KiB" % (done["error"], rss_kib(s.proc.pid)))
    finally:
        subprocess.run(["umount", mnt])
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
