"""Load tests: 20,000 pipelined requests of every kind (valid, invalid,
unknown, spawns) each answered exactly once, and 1,000 concurrent sessions
that all keep echoing. Each prints the server's peak RSS (VmHWM) and p50/p99
request latency; speed itself is never asserted here (bench/ measures it)."""

import base64
import json
import os
import resource
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from wardenrpc import WARDEN_BIN, hwm_kib, pct, run_tests  # noqa: E402

FULL = {"type": "dangerFullAccess"}


class Timed:
    """Raw pipes plus a reader thread that timestamps every answer."""

    def __init__(self, preexec=None):
        env = dict(os.environ)
        env.setdefault("WARDEN_LOG", "warn")
        self.p = subprocess.Popen([WARDEN_BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, preexec_fn=preexec, env=env)
        self.sent = {}
        self.answers = {}
        self.notes = []
        self.exits = 0
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.p.stdout:
            m = json.loads(raw)
            now = time.time()
            with self.cond:
                if "id" in m and "method" not in m:
                    self.answers.setdefault(json.dumps(m["id"]), []).append((now, m))
                else:
                    self.notes.append(m)
                    self.exits += m.get("method") == "process/exited"
                self.cond.notify_all()

    def write(self, msgs):
        data = "".join(json.dumps(m) + "\n" for m in msgs).encode()
        now = time.time()
        for m in msgs:
            if "id" in m:
                self.sent[json.dumps(m["id"])] = now
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def wait(self, pred, timeout=300):
        deadline = time.time() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.time()
                assert left > 0, "timed out waiting"
                self.cond.wait(left)

    def latencies(self, ids):
        return [self.answers[k][0][0] - self.sent[k] for k in ids if k in self.answers]

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(120)
        self.t.join(10)
        return rc


def test_20000_pipelined_requests_each_answered_once():
    s = Timed()
    try:
        s.write([{"id": "init", "method": "initialize", "params": {"clientInfo": {"name": "load"}}}])
        s.wait(lambda: '"init"' in s.answers)
        kinds = [
            lambda i: {"method": "process/list"},
            lambda i: {"method": "policy/resolve", "params": {"sandbox": {"type": "readOnly"},
                                                              "cwd": "/"}},
            lambda i: {"method": "process/read", "params": {"processId": "nope"}},  # -32002
            lambda i: {"method": "no/such/method"},                                   # -32601
            lambda i: {"method": "process/resize", "params": {"processId": 5}},      # -32602
            lambda i: {"method": "sandbox/readiness"},
        ]
        spawn = lambda i: {"method": "process/spawn", "params": {  # noqa: E731
            "processId": "p%d" % i, "argv": ["true"], "sandbox": FULL}}
        msgs = []
        for i in range(20000):
            m = {"jsonrpc": "2.0", "id": i}
            # One in 50 is a spawn (each exited process stays listed for 60 s,
            # so process/list answers grow with them).
            m.update(spawn(i) if i % 50 == 7 else kinds[i % len(kinds)](i))
            msgs.append(m)
        # Written in slices from a thread: the server may stop reading while
        # its replies are not read fast enough, and that must not deadlock.
        def writer():
            for k in range(0, len(msgs), 500):
                s.write(msgs[k:k + 500])
        w = threading.Thread(target=writer)
        w.start()
        s.wait(lambda: len(s.answers) >= 20001, 600)  # + initialize
        w.join()
        n_spawn = sum(1 for m in msgs if m["method"] == "process/spawn")
        s.wait(lambda: s.exits >= n_spawn)
        time.sleep(0.2)
        with s.cond:
            for i in range(20000):
                got = s.answers[json.dumps(i)]
                assert len(got) == 1, (i, got)
                m, kind = got[0][1], msgs[i]["method"]
                if kind in ("process/list", "policy/resolve", "process/spawn",
                            "sandbox/readiness"):
                    assert "result" in m, m
                else:
                    assert m["error"]["code"] in (-32002, -32601, -32602), m
        lat = s.latencies([json.dumps(i) for i in range(20000)])
        peak = hwm_kib(s.p.pid)
        print("20,000 pipelined requests (%d spawns): peak RSS %d KiB, latency p50 %.1f ms, "
              "p99 %.1f ms (queueing included)" % (n_spawn, peak, pct(lat, 0.5), pct(lat, 0.99)))
        assert s.close() == 0
    finally:
        if s.p.poll() is None:
            s.p.kill()
            s.p.wait()


def test_1000_concurrent_sessions():
    """1,000 cat sessions at once (pipes, stdin streamed); each echoes its own
    token; process/list sees all of them; every one exits when its stdin
    closes."""
    n = 1000

    def more_fds():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    s = Timed(preexec=more_fds)
    try:
        s.write([{"id": "init", "method": "initialize", "params": {"clientInfo": {"name": "load"}}}])
        s.wait(lambda: '"init"' in s.answers)
        s.write([{"id": "s%d" % i, "method": "process/spawn", "params": {
            "processId": "c%d" % i, "argv": ["cat"], "streamStdin": True, "sandbox": FULL}}
            for i in range(n)])
        s.wait(lambda: len(s.answers) >= n + 1)
        for i in range(n):
            assert "result" in s.answers['"s%d"' % i][0][1], s.answers['"s%d"' % i]
        s.write([{"id": "list", "method": "process/list"}])
        s.wait(lambda: '"list"' in s.answers)
        running = [p for p in s.answers['"list"'][0][1]["result"]["processes"] if p["running"]]
        assert len(running) == n, len(running)
        s.write([{"id": "w%d" % i, "method": "process/write", "params": {
            "processId": "c%d" % i, "deltaBase64": base64.b64encode(b"token-%d\n" % i).decode()}}
            for i in range(n)])
        s.wait(lambda: len(s.answers) >= 2 * n + 2)

        def echoed():
            outs = sum(1 for m in s.notes if m.get("method") == "process/output")
            if outs < n:
                return False
            seen = set()
            for m in s.notes:
                if m.get("method") == "process/output":
                    seen.add((m["params"]["processId"], base64.b64decode(m["params"]["deltaBase64"])))
            return all(("c%d" % i, b"token-%d\n" % i) in seen for i in range(n))
        s.wait(echoed)
        s.write([{"id": "x%d" % i, "method": "process/write", "params": {
            "processId": "c%d" % i, "closeStdin": True}} for i in range(n)])
        s.wait(lambda: s.exits >= n)
        exits = [m["params"] for m in s.notes if m.get("method") == "process/exited"]
        assert all(x["exitCode"] == 0 for x in exits), [x for x in exits if x["exitCode"] != 0][:3]
        spawn_lat = s.latencies(['"s%d"' % i for i in range(n)])
        write_lat = s.latencies(['"w%d"' % i for i in range(n)])
        peak = hwm_kib(s.p.pid)
        print("1,000 concurrent sessions: peak RSS %d KiB; spawn p50 %.1f ms p99 %.1f ms; "
              "write p50 %.1f ms p99 %.1f ms (all sent at once, queueing included)" % (
                  peak, pct(spawn_lat, 0.5), pct(spawn_lat, 0.99), pct(write_lat, 0.5),
                  pct(write_lat, 0.99)))
        assert s.close() == 0
    finally:
        if s.p.poll() is None:
            s.p.kill()
            s.p.wait()


if __name__ == "__main__":
    run_tests(globals())
