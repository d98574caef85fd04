"""README's claims, each against the real binary: `warden run`'s exit codes
and its PTY path (raw mode, resizes follow), every config key, the default
state directory, the setup marker's contents, WARDEN_LOG levels and
WARDEN_LOG_FORMAT, and externalSandbox and profile policies actually
spawned. (network/* and approval/* are being built; their tests come with
them.)"""

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time

from wardenrpc import WARDEN_BIN, Server, run_tests

FULL = {"type": "dangerFullAccess"}
WAIT_S = 60  # how long an awaited event may take under load (not a speed bound)


def warden_run(*argv, cwd=None, env=None, sandbox=None):
    args = [WARDEN_BIN, "run"]
    if sandbox is not None:
        args += ["--sandbox", json.dumps(sandbox)]
    if cwd:
        args += ["--cwd", cwd]
    return subprocess.run(args + ["--"] + list(argv), capture_output=True, timeout=WAIT_S,
                          stdin=subprocess.DEVNULL, env=env)


# ---- warden run: exit codes ----

def test_run_exit_codes():
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        # the command's own status
        assert warden_run("sh", "-c", "exit 5", cwd=d).returncode == 5
        # 128+signal
        p = warden_run("sh", "-c", "kill -TERM $$", cwd=d)
        assert p.returncode == 128 + signal.SIGTERM, p
        p = warden_run("sh", "-c", "kill -KILL $$", cwd=d, sandbox=FULL)
        assert p.returncode == 128 + signal.SIGKILL, p
        # 127: the command cannot start
        p = warden_run("/nonexistent/program", cwd=d)
        assert p.returncode == 127, p
        assert b"execve" in p.stderr, p.stderr
        # 126: the sandbox cannot be enforced (a protected name inside the
        # writable root is a symlink: no mount can protect it); nothing runs
        os.symlink("/tmp", os.path.join(d, ".codex"))
        marker = os.path.join(d, "ran")
        p = warden_run("sh", "-c", "touch %s" % marker, cwd=d)
        assert p.returncode == 126, p
        assert b"cannot be enforced" in p.stderr and b".codex" in p.stderr, p.stderr
        assert not os.path.exists(marker)
        # 2: bad usage
        p = subprocess.run([WARDEN_BIN, "run"], capture_output=True, timeout=WAIT_S)
        assert p.returncode == 2, p


# ---- warden run: the PTY path ----

class Pty:
    """warden run on a terminal of our own: we hold the master; the slave is
    warden's stdin and stdout."""

    def __init__(self, argv, rows=24, cols=80):
        self.master, self.slave = pty.openpty()
        self.set_size(rows, cols)
        self.proc = subprocess.Popen([WARDEN_BIN, "run", "--sandbox", json.dumps(FULL), "--"] +
                                     argv, stdin=self.slave, stdout=self.slave,
                                     stderr=subprocess.PIPE, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        self.buf = b""

    def set_size(self, rows, cols):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def expect(self, needle):
        deadline = time.time() + WAIT_S
        while needle not in self.buf:
            left = deadline - time.time()
            assert left > 0, (needle, self.buf)
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    self.buf += os.read(self.master, 4096)
                except OSError:
                    break
        assert needle in self.buf, (needle, self.buf)

    def lflag(self):
        return termios.tcgetattr(self.slave)[3]

    def close(self):
        try:
            if self.proc.poll() is None:  # the test failed half-way
                self.proc.kill()
            self.proc.wait(WAIT_S)
        finally:
            os.close(self.master)
            os.close(self.slave)


def test_run_pty_raw_mode_and_resize():
    t = Pty(["sh", "-c", "stty size; echo ready; while read x; do stty size; done; echo done"])
    try:
        t.expect(b"24 80")
        t.expect(b"ready")
        # while the command runs, warden's terminal (ours) is raw: no line
        # discipline of its own (the command's terminal has one)
        lf = t.lflag()
        assert not lf & termios.ICANON and not lf & termios.ECHO, lf
        # a resize of warden's terminal (the kernel sends it SIGWINCH) reaches
        # the command's: ask for the size until the new one is reported
        t.set_size(50, 132)
        deadline = time.time() + WAIT_S
        while b"50 132" not in t.buf:
            assert time.time() < deadline, t.buf
            seen = t.buf.count(b"\n")
            os.write(t.master, b"\r")
            while t.buf.count(b"\n") < seen + 2:  # the echo, then stty's line
                r, _, _ = select.select([t.master], [], [], max(0, deadline - time.time()))
                assert r, t.buf
                t.buf += os.read(t.master, 4096)
        os.write(t.master, b"\x04")  # ^D ends the loop
        t.expect(b"done")
        assert t.proc.wait(WAIT_S) == 0
        # and the terminal is given back as it was
        lf = t.lflag()
        assert lf & termios.ICANON and lf & termios.ECHO, lf
    finally:
        t.close()


# ---- the config file: every key ----

def with_config(cfg, fn, via_env=False):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        if via_env:
            with Server(env={"WARDEN_CONFIG": path}) as s:
                return fn(s, d)
        with Server("--config", path) as s:
            return fn(s, d)


def test_config_max_line_bytes():
    def fn(s, d):
        # JSON whitespace makes the lines long without changing the request
        s.send_raw('{"id":"big","method":"process/list"%s}\n' % (" " * 5000))
        assert s.call("process/list") == {"processes": []}  # still usable, and answered after
        with s.cond:
            errs = [json.loads(l) for l in s.lines if '"error"' in l]
        assert [e["error"]["code"] for e in errs] == [-32600], errs
        s.send_raw('{"id":"ok","method":"process/list"%s}\n' % (" " * 3000))
        assert "result" in s.wait_response("ok")  # under the limit: fine
    with_config({"maxLineBytes": 4096}, fn)
    with_config({"maxLineBytes": 4096}, fn, via_env=True)


def test_config_retain_bytes():
    def fn(s, d):
        s.call("process/spawn", {"processId": "r", "sandbox": FULL,
                                 "argv": ["sh", "-c", "head -c 300000 /dev/zero"]})
        s.wait_exit("r")
        assert len(s.output_of("r")) == 300000  # every byte streamed
        import base64
        kept = b"".join(base64.b64decode(c["deltaBase64"])
                        for c in s.call("process/read", {"processId": "r"})["chunks"])
        assert 0 < len(kept) <= 65536, len(kept)  # the ring keeps at most retainBytes
    with_config({"retainBytes": 65536}, fn)


def test_config_max_inflight():
    def fn(s, d):
        s.call("process/spawn", {"processId": "w", "argv": ["sleep", "300"], "sandbox": FULL})
        # two long-polls in flight; a third request is refused as overloaded
        a = s.request_async("process/read", {"processId": "w", "afterSeq": 0, "waitMs": 60000})
        b = s.request_async("process/read", {"processId": "w", "afterSeq": 0, "waitMs": 60000})
        r = s.request("process/list")
        assert r["error"]["code"] == -32001, r
        return a, b
    with_config({"maxInflight": 2}, fn)


def test_config_shutdown_grace_ms():
    """shutdownGraceMs: a command ignoring TERM is KILLed only after it."""
    def fn(s, d):
        s.call("process/spawn", {"processId": "i", "sandbox": FULL, "argv": [
            "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"]})
        s.wait_for(lambda n: n.get("method") == "process/output")
        t0 = time.time()
        assert s.call("shutdown") == {}
        x = s.wait_exit("i", timeout=WAIT_S)
        assert x["signal"] == "KILL", x
        assert time.time() - t0 >= 0.7, "KILL before the configured grace"
        assert s.proc.wait(WAIT_S) == 0
    with_config({"shutdownGraceMs": 800}, fn)


def test_config_output_high_water_bytes_accepted_and_nothing_lost():
    def fn(s, d):
        s.call("process/spawn", {"processId": "o", "sandbox": FULL,
                                 "argv": ["head", "-c", "2000000", "/dev/zero"]})
        s.wait_exit("o", timeout=WAIT_S)
        assert len(s.output_of("o")) == 2000000
    with_config({"outputHighWaterBytes": 65536}, fn)


def test_config_state_dir_default_sandbox_and_profiles():
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        state = os.path.join(d, "state")
        ws = os.path.join(d, "ws")
        os.mkdir(ws)
        cfg = {"stateDir": state,
               "defaultSandbox": {"type": "readOnly"},
               "profiles": {
                   "base": {"type": "split", "network": {"mode": "none"},
                            "fileSystem": {"entries": [{"path": ":root", "access": "read"}]}},
                   "writer": {"extends": "base",
                              "fileSystem": {"entries": [{"path": ws, "access": "write"}]}}}}
        path = os.path.join(d, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        with Server("--config", path) as s:
            # stateDir: refresh writes there
            s.call("sandbox/refresh", {"cwd": ws, "sandbox": {"type": "workspaceWrite"}})
            assert os.path.isfile(os.path.join(state, "v1", "workspaces.json"))
            # defaultSandbox: a spawn without a sandbox gets it (read-only)
            r = s.call("process/spawn", {"processId": "d", "cwd": ws,
                                         "argv": ["sh", "-c", "touch f"]})
            assert r["sandbox"]["enforced"] is True, r
            assert s.wait_exit("d")["exitCode"] != 0
            assert not os.path.exists(os.path.join(ws, "f"))
            # a profile with extends, actually spawned: writes ws, nothing else
            prof = {"type": "profile", "name": "writer"}
            r = s.call("process/spawn", {"processId": "p", "cwd": ws, "sandbox": prof,
                                         "argv": ["sh", "-c", "touch f; touch %s/g" % d]})
            assert r["sandbox"] == {"enforced": True, "backend": "namespaces", "network": "none"}
            assert s.wait_exit("p")["exitCode"] != 0
            assert os.path.exists(os.path.join(ws, "f"))
            assert not os.path.exists(os.path.join(d, "g"))


def test_config_rejects_unknown_keys_and_approval_timeout_is_a_key():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.json")
        with open(path, "w") as f:
            json.dump({"approvalTimeoutMs": 1000}, f)
        p = subprocess.run([WARDEN_BIN, "--config", path, "--version"], capture_output=True,
                           timeout=WAIT_S)
        assert p.returncode == 0, p
        with open(path, "w") as f:
            json.dump({"noSuchKey": 1}, f)
        p = subprocess.run([WARDEN_BIN, "--config", path], capture_output=True, timeout=WAIT_S,
                           stdin=subprocess.DEVNULL)
        assert p.returncode != 0 and b"noSuchKey" in p.stderr, p


# ---- state directory and the setup marker ----

def test_default_state_directory():
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        ws = os.path.join(d, "ws")
        os.mkdir(ws)
        env = dict(os.environ)
        env.pop("XDG_STATE_HOME", None)
        env["HOME"] = os.path.join(d, "home")
        os.mkdir(env["HOME"])
        pol = {"cwd": ws, "sandbox": {"type": "workspaceWrite"}}
        with Server(env={"HOME": env["HOME"], "XDG_STATE_HOME": ""}) as s:
            s.call("sandbox/refresh", pol)
        assert os.path.isdir(os.path.join(env["HOME"], ".local", "state", "warden", "v1"))
        xdg = os.path.join(d, "xdg")
        with Server(env={"HOME": env["HOME"], "XDG_STATE_HOME": xdg}) as s:
            s.call("sandbox/refresh", pol)
        assert os.path.isfile(os.path.join(xdg, "warden", "v1", "workspaces.json"))


def test_setup_marker_contents():
    with tempfile.TemporaryDirectory(dir="/var/tmp") as state:
        with Server("--state-dir", state) as s:
            info = s.call("sandbox/readiness")
            assert s.call("sandbox/setup") == {"started": True}
            done = s.wait_for(lambda n: n.get("method") == "sandbox/setupCompleted",
                              timeout=WAIT_S)["params"]
            assert done["success"] is True, done
        with open(os.path.join(state, "v1", "setup.json")) as f:
            marker = json.load(f)
        p = subprocess.run([WARDEN_BIN, "--version"], capture_output=True, timeout=WAIT_S)
        version = p.stdout.split()[1].decode()
        when = marker.pop("completedAtMs")
        assert isinstance(when, int) and when > 0, when
        kernel = {k: info["features"][k] for k in marker.get("features", {})}
        assert set(kernel) == {"landlockAbi", "userNamespaces", "networkNamespaces",
                               "seccomp"}, marker
        assert marker == {"version": version, "setupVersion": 1,
                          "features": kernel,
                          "proxy": {"httpPort": 3128, "socksPort": 1080}}, marker


# ---- logging ----

def log_lines(level, fmt=None):
    env = {"WARDEN_LOG": level}
    if fmt:
        env["WARDEN_LOG_FORMAT"] = fmt
    s = Server(env=env)
    s.call("sandbox/readiness")
    s.close()
    s._err_reader.join(WAIT_S)
    return s.stderr_lines


def test_warden_log_levels_and_json():
    # info: initialize and the shutdown on stdin EOF are logged
    info = log_lines("info")
    assert any(" info [server] initialize from tests" in l for l in info), info
    assert any("stdin closed" in l for l in info), info
    # debug adds the readiness detail; error hides info
    debug = log_lines("debug")
    assert any(" debug [sandbox] readiness" in l for l in debug), debug
    assert not [l for l in log_lines("error") if " info " in l or " debug " in l]
    assert not [l for l in info if " debug " in l]
    # json: one object per line with ts, level, module, msg
    lines = log_lines("info", "json")
    objs = [json.loads(l) for l in lines]
    assert objs and all(set(o) == {"ts", "level", "module", "msg"} for o in objs), lines
    assert any(o["level"] == "info" and o["msg"].startswith("initialize") for o in objs), objs


# ---- externalSandbox and profile policies, spawned ----

def test_external_sandbox_and_builtin_profile_spawned():
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        with Server() as s:
            r = s.call("process/spawn", {"processId": "e", "cwd": d,
                                         "sandbox": {"type": "externalSandbox"},
                                         "argv": ["sh", "-c", "echo $WARDEN_SANDBOX; touch %s/e" % d]})
            assert r["sandbox"]["enforced"] is False and r["sandbox"]["backend"] == "none", r
            assert s.wait_exit("e")["exitCode"] == 0
            assert os.path.exists(os.path.join(d, "e"))  # warden adds no sandbox of its own
            assert s.output_of("e") == b"\n"
            # a built-in profile: the workspace one writes cwd and nothing else
            os.mkdir(os.path.join(d, "ws"))
            r = s.call("process/spawn", {"processId": "w", "cwd": os.path.join(d, "ws"),
                                         "sandbox": {"type": "profile", "name": ":workspace"},
                                         "argv": ["sh", "-c", "touch in; touch %s/out" % d]})
            assert r["sandbox"]["enforced"] is True and r["sandbox"]["backend"] == "namespaces", r
            assert s.wait_exit("w")["exitCode"] != 0
            assert os.path.exists(os.path.join(d, "ws", "in"))
            assert not os.path.exists(os.path.join(d, "out"))


if __name__ == "__main__":
    run_tests(globals())
