"""process/exited comes after the last byte of output, even when the exit is
known long before that output can be read.

The window is opened on purpose: the client stops reading warden's stdout,
so warden stops reading its children (backpressure). A command then writes
what fits in its pipe and exits, and the test waits until warden has reaped
its supervisor: the exit is known while every byte is still in the pipe.
When the client reads again, all of it must arrive, before process/exited."""

import base64
import fcntl
import json
import os
import struct
import subprocess
import tempfile
import termios
import threading
import time

from wardenrpc import WARDEN_BIN, run_tests

WAIT_S = 60  # how long an awaited event may take under load (not a speed bound)
LATE_BYTES = 60000  # fits in a pipe: the command exits without blocking


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                if int(st[st.rindex(")") + 2:].split()[1]) == pid:
                    out.append(int(d))
            except (OSError, ValueError):
                pass
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ")
    except OSError:
        return b""


def wchan(pid):
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return f.read()
    except OSError:
        return ""


def wait_until(pred, what):
    deadline = time.time() + WAIT_S
    while not pred():
        assert time.time() < deadline, what
        time.sleep(0.01)


def test_exit_known_while_output_still_in_the_pipe():
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        cfg = os.path.join(d, "config.json")
        with open(cfg, "w") as f:
            json.dump({"outputHighWaterBytes": 65536}, f)
        go = os.path.join(d, "go")
        p = subprocess.Popen([WARDEN_BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=dict(os.environ, WARDEN_CONFIG=cfg))
        send = lambda m: (p.stdin.write((json.dumps(m) + "\n").encode()), p.stdin.flush())
        errs = []
        err_reader = threading.Thread(target=lambda: errs.append(p.stderr.read()), daemon=True)
        err_reader.start()
        try:
            full = {"type": "dangerFullAccess"}
            send({"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "race"}}})
            send({"id": 2, "method": "process/spawn", "params": {
                "processId": "late", "sandbox": full, "cwd": d, "argv": [
                    "sh", "-c", "while [ ! -e go ]; do sleep 0.01; done; "
                                "head -c %d /dev/zero | tr '\\0' L" % LATE_BYTES]}})
            send({"id": 3, "method": "process/spawn", "params": {
                "processId": "flood", "sandbox": full, "argv": ["yes", "flood"]}})
            # The client reads nothing: once warden stops reading its
            # children, the flood blocks on its full pipe for good.
            flood = []
            wait_until(lambda: flood or flood.extend(
                c for s in children(p.pid) for c in children(s) if b"yes flood" in cmdline(c)),
                "the flood command runs")
            def paused():
                # our end of warden's stdout is full, and the flood stays blocked
                n = struct.unpack("i", fcntl.ioctl(p.stdout.fileno(), termios.FIONREAD,
                                                   b"\0\0\0\0"))[0]
                if n < 32768 or "pipe_write" not in wchan(flood[0]):
                    return False
                time.sleep(0.1)
                return "pipe_write" in wchan(flood[0])
            wait_until(paused, "warden stops reading the flood")
            late_sh = [c for s in children(p.pid) for c in children(s)
                       if b"while [ ! -e go ]" in cmdline(c)]
            assert len(late_sh) == 1, late_sh
            sup = [s for s in children(p.pid) if late_sh[0] in children(s)][0]
            open(go, "w").close()
            # warden reaps the late command's supervisor: its exit is known
            wait_until(lambda: sup not in children(p.pid), "warden reaps the supervisor")
            assert "pipe_write" in wchan(flood[0]), "warden read a child while paused"
            # now read: every late byte arrives, then its process/exited
            got, exited = b"", None
            send({"id": 4, "method": "process/terminate", "params": {
                "processId": "flood", "signal": "KILL"}})
            for raw in p.stdout:
                msg = json.loads(raw)
                prm = msg.get("params", {})
                if prm.get("processId") != "late":
                    continue
                if msg["method"] == "process/output":
                    assert exited is None, "output after process/exited"
                    got += base64.b64decode(prm["deltaBase64"])
                elif msg["method"] == "process/exited":
                    exited = prm
                    break
            assert exited and exited["exitCode"] == 0, exited
            assert got == b"L" * LATE_BYTES, len(got)
        finally:
            p.stdin.close()
            for _ in p.stdout:
                pass
            rc = p.wait(WAIT_S)
            err_reader.join(WAIT_S)
            assert rc == 0, (rc, b"".join(errs).decode("utf-8", "replace")[-3000:])


if __name__ == "__main__":
    run_tests(globals())
