"""Resource limits (process/spawn `limits`): a fork bomb and a memory balloon in
a sandbox stay inside it while another session of the same server keeps
echoing; every limit is reported with the mechanism that enforced it and the
limit that ended the process. Run as root (cgroups where the host has them)
and again with the server as uid 65534 (no cgroup to create: rlimits)."""

import base64
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import wardenrpc  # noqa: E402
from wardenrpc import WARDEN_BIN, Server, run_tests  # noqa: E402

PY = "/usr/bin/python3"
WORKSPACE = {"type": "workspaceWrite"}
NOBODY = (65534, 65534)
LIMIT_NAMES = ["maxProcesses", "memoryBytes", "cpuSeconds", "fileSizeBytes", "openFiles"]


class Env:
    def __init__(self, user, config=None):
        self.user = user
        self.base = tempfile.mkdtemp(prefix="warden-lim-", dir="/var/tmp")
        os.chmod(self.base, 0o755)
        uid, gid = user if user else (0, 0)
        self.ws = os.path.join(self.base, "ws")
        self.state = os.path.join(self.base, "state")
        os.makedirs(self.ws)
        os.makedirs(self.state)
        self.home = os.path.join(self.base, "home")  # not the workspace: a cwd that is
        os.makedirs(self.home)                       # $HOME is never a writable root
        self.bin = os.path.join(self.base, "warden")
        shutil.copy(WARDEN_BIN, self.bin)
        args = ["--state-dir", self.state]
        if config is not None:
            cfg = os.path.join(self.base, "config.json")
            with open(cfg, "w") as f:
                json.dump(config, f)
            args += ["--config", cfg]
        for root, dirs, files in os.walk(self.base):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), uid, gid)
        saved = wardenrpc.WARDEN_BIN
        wardenrpc.WARDEN_BIN = self.bin
        try:
            # ASan's quarantine of freed memory would count as RSS growth.
            asan = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8"
            self.server = Server(*args, env={"HOME": self.home, "TMPDIR": "/tmp",
                                             "ASAN_OPTIONS": asan}, user=user,
                                 cwd=self.ws, init=False)
        finally:
            wardenrpc.WARDEN_BIN = saved
        r = self.server.request("initialize", {"clientInfo": {"name": "test_limits"}})
        assert "result" in r, r
        self.init = r["result"]
        self.server.notify("initialized")

    def spawn(self, pid, argv, limits=None, sandbox=WORKSPACE, **extra):
        params = {"processId": pid, "argv": argv, "cwd": self.ws, **extra}
        if sandbox is not None:
            params["sandbox"] = sandbox
        if limits is not None:
            params["limits"] = limits
        return self.server.call("process/spawn", params)

    def rss_kib(self):
        with open("/proc/%d/status" % self.server.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def close(self):
        self.server.close()
        shutil.rmtree(self.base, ignore_errors=True)


def marked_pids(marker):
    """Host pids whose command line carries marker."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out


def wait_until(pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class Echo:
    """A second session (cat with streamStdin) that echoes while the hostile
    one runs; records each round trip."""

    def __init__(self, env, pid):
        self.env, self.pid = env, pid
        env.spawn(pid, ["cat"], streamStdin=True)
        self.lat = []
        self.n = 0

    def once(self):
        self.n += 1
        token = ("echo-%d\n" % self.n).encode()
        start = time.time()
        self.env.server.call("process/write", {"processId": self.pid,
                                               "deltaBase64": base64.b64encode(token).decode()})
        enc = base64.b64encode(token).decode()
        self.env.server.wait_for(lambda n: n.get("method") == "process/output"
                                 and n["params"]["processId"] == self.pid
                                 and n["params"]["deltaBase64"] == enc, 60)
        self.lat.append(time.time() - start)

    def summary(self):
        s = sorted(self.lat)
        return "p50 %.1f ms, p99 %.1f ms over %d echoes" % (
            statistics.median(s) * 1000, s[min(len(s) - 1, int(len(s) * 0.99))] * 1000, len(s))


def check_features(env):
    feats = env.init["sandbox"]
    assert set(feats["limits"]) == set(LIMIT_NAMES), feats
    for v in feats["limits"].values():
        assert v in ("cgroup2", "cgroup1", "rlimit", "none"), feats
    assert isinstance(feats["cgroups"], str) and feats["cgroups"], feats
    return feats["limits"]


def check_fork_bomb(user):
    env = Env(user)
    try:
        mech = check_features(env)
        echo = Echo(env, "echo")
        for _ in range(20):
            echo.once()
        before = echo.lat[:]
        rss0 = env.rss_kib()
        marker = "bomb-" + uuid.uuid4().hex
        # A classic shell fork bomb: every copy forks two more, forever.
        r = env.spawn("bomb", ["sh", "-c", "b() { b | b & }; b; sleep 1000", marker],
                      limits={"maxProcesses": 64})
        assert r["limits"]["maxProcesses"] == {"value": 64, "enforcedBy": mech["maxProcesses"]}, r
        # The default memory limit of a sandboxed command is there too when a
        # cgroup can enforce it.
        if mech["memoryBytes"] in ("cgroup1", "cgroup2"):
            assert r["limits"]["memoryBytes"]["value"] >= 1 << 30, r
        peak = 0
        end = time.time() + 3
        while time.time() < end:
            peak = max(peak, len(marked_pids(marker)))
            echo.once()
        rss1 = env.rss_kib()
        if mech["maxProcesses"] != "none":
            # pids.max / RLIMIT_NPROC: never more than the limit (the
            # supervisor and the command are counted too).
            assert peak <= 64, "fork bomb grew to %d processes" % peak
        env.server.request("process/terminate", {"processId": "bomb", "signal": "KILL"})
        x = env.server.wait_exit("bomb", 60)
        # Killed by us, or its first shell gave up when a fork failed.
        assert x["signal"] == "KILL" or x["exitCode"] != 0, x
        if mech["maxProcesses"] in ("cgroup1", "cgroup2"):
            assert x["limit"] == "processes", x
        assert wait_until(lambda: not marked_pids(marker)), \
            "bomb processes left: %r" % marked_pids(marker)
        for _ in range(5):
            echo.once()
        print("fork bomb (%s, %s): peak %d processes; echo before %s; during %s; "
              "server RSS %d -> %d KiB" % (
                  "root" if not user else "uid %d" % user[0], mech["maxProcesses"], peak,
                  "p50 %.1f ms" % (statistics.median(before) * 1000), echo.summary(), rss0, rss1))
        # The server's own memory does not grow with the bomb (the bomb's
        # memory is not the server's): within 32 MiB of where it started
        # (ASan builds keep some freed memory; a plain build grows well under 1 MiB).
        assert rss1 - rss0 < 32 * 1024, (rss0, rss1)
    finally:
        env.close()


def check_balloon(user):
    env = Env(user)
    try:
        mech = check_features(env)
        echo = Echo(env, "echo")
        echo.once()
        rss0 = env.rss_kib()
        # Grows by 16 MiB at a time, touching every page, far past the limit.
        prog = ("a = []\n"
                "while True:\n"
                "    a.append(bytearray(16 << 20))\n")
        r = env.spawn("balloon", [PY, "-c", prog], limits={"memoryBytes": 256 << 20})
        assert r["limits"]["memoryBytes"] == {"value": 256 << 20,
                                              "enforcedBy": mech["memoryBytes"]}, r
        done = threading.Event()

        def keep_echoing():
            while not done.is_set():
                echo.once()
        t = threading.Thread(target=keep_echoing)
        t.start()
        try:
            x = env.server.wait_exit("balloon", 120)
        finally:
            done.set()
            t.join(60)
        rss1 = env.rss_kib()
        if mech["memoryBytes"] in ("cgroup1", "cgroup2"):
            # The cgroup's OOM killer ended it.
            assert x["signal"] == "KILL" and x["limit"] == "memory", x
        else:
            # RLIMIT_AS: the allocation fails inside the process (MemoryError).
            assert x["exitCode"] == 1 and x["limit"] is None, x
            assert b"MemoryError" in env.server.output_of("balloon", "stderr"), \
                env.server.output_of("balloon")
        echo.once()
        print("memory balloon (%s, %s): %r; echo %s; server RSS %d -> %d KiB" % (
            "root" if not user else "uid %d" % user[0], mech["memoryBytes"], x, echo.summary(),
            rss0, rss1))
        assert rss1 - rss0 < 32 * 1024, (rss0, rss1)
    finally:
        env.close()


def check_rlimits(user):
    env = Env(user)
    try:
        # cpuSeconds: SIGXCPU ends a busy loop.
        r = env.spawn("cpu", [PY, "-c", "while True: pass"], limits={"cpuSeconds": 1})
        assert r["limits"]["cpuSeconds"] == {"value": 1, "enforcedBy": "rlimit"}, r
        x = env.server.wait_exit("cpu", 60)
        assert x["signal"] == "XCPU" and x["limit"] == "cpu", x
        # fileSizeBytes: SIGXFSZ ends a writer past the limit.
        r = env.spawn("fsize", ["dd", "if=/dev/zero", "of=big", "bs=1024", "count=64"],
                      limits={"fileSizeBytes": 4096})
        x = env.server.wait_exit("fsize", 60)
        assert x["signal"] == "XFSZ" and x["limit"] == "fileSize", (x, env.server.output_of("fsize"))
        assert os.path.getsize(os.path.join(env.ws, "big")) == 4096
        # openFiles: the 17th descriptor is refused.
        prog = "import os\nfds=[]\ntry:\n  while True: fds.append(os.open('/dev/null', 0))\n" \
               "except OSError as e: print(len(fds) + 3, e.errno)\n"
        r = env.spawn("nofile", [PY, "-c", prog], limits={"openFiles": 16})
        x = env.server.wait_exit("nofile", 60)
        assert x["exitCode"] == 0 and x["limit"] is None, x
        out = env.server.output_of("nofile", "stdout").split()
        assert int(out[0]) <= 16 and int(out[1]) == 24, out  # EMFILE
        # A process that ends normally has limit null.
        env.spawn("ok", ["true"], limits={"cpuSeconds": 5, "maxProcesses": 100})
        x = env.server.wait_exit("ok", 60)
        assert x["exitCode"] == 0 and x["limit"] is None, x
    finally:
        env.close()


def test_fork_bomb_root():
    check_fork_bomb(None)


def test_fork_bomb_unprivileged():
    check_fork_bomb(NOBODY)


def test_memory_balloon_root():
    check_balloon(None)


def test_memory_balloon_unprivileged():
    check_balloon(NOBODY)


def test_rlimits_root():
    check_rlimits(None)


def test_rlimits_unprivileged():
    check_rlimits(NOBODY)


def test_defaults_and_config():
    # No limits for an unsandboxed command unless asked; the config file's
    # defaults apply to every spawn; null in the request removes one.
    env = Env(None, config={"limits": {"openFiles": 32, "cpuSeconds": None}})
    try:
        r = env.spawn("free", ["sh", "-c", "ulimit -n"], sandbox={"type": "dangerFullAccess"})
        assert r["limits"] == {"openFiles": {"value": 32, "enforcedBy": "rlimit"}}, r
        env.server.wait_exit("free")
        assert env.server.output_of("free", "stdout").strip() == b"32"
        r = env.spawn("none", ["sh", "-c", "ulimit -n"], sandbox={"type": "dangerFullAccess"},
                      limits={"openFiles": None})
        assert r["limits"] == {}, r
        env.server.wait_exit("none")
        assert env.server.output_of("none", "stdout").strip() != b"32"
        r = env.spawn("sbx", ["true"])
        assert r["limits"]["maxProcesses"]["value"] == 4096, r
        assert "cpuSeconds" not in r["limits"], r
        env.server.wait_exit("sbx")
        # A bad value is refused with a message naming the field.
        e = env.server.request("process/spawn", {"processId": "bad", "argv": ["true"],
                                                 "limits": {"memoryBytes": 0}})
        assert e["error"]["code"] == -32602 and "memoryBytes" in e["error"]["message"], e
    finally:
        env.close()
    # A bad config file is refused at startup, naming the key.
    base = tempfile.mkdtemp()
    cfg = os.path.join(base, "c.json")
    with open(cfg, "w") as f:
        json.dump({"limits": {"maxProcesses": "many"}}, f)
    import subprocess
    p = subprocess.run([WARDEN_BIN, "--config", cfg, "--state-dir", base], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    assert p.returncode != 0 and b"maxProcesses" in p.stderr, p
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
