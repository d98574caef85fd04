"""A small NDJSON driver for integration tests: starts the real warden
binary and speaks JSON-RPC to it over stdio (standard library only).

Raw on purpose: tests here check the wire itself (framing, ids, error codes),
so the driver does not hide anything the server writes."""

import json
import os
import queue
import subprocess
import sys
import threading
import time

WARDEN_BIN = os.environ.get("WARDEN_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "server", "warden")


class Timeout(Exception):
    pass


class Server:
    def __init__(self, *args, env=None, stdin=subprocess.PIPE, cwd=None, init=True, user=None):
        full_env = dict(os.environ)
        full_env.setdefault("WARDEN_LOG", "warn")
        if env:
            full_env.update(env)
        preexec = None
        if user is not None:
            uid, gid = user

            def preexec():
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
        self.proc = subprocess.Popen(
            [WARDEN_BIN, *args], stdin=stdin, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=full_env, cwd=cwd, preexec_fn=preexec)
        self.messages = queue.Queue()
        self.responses = {}
        self.notifications = []
        self.lines = []
        self.cond = threading.Condition()
        self.next_id = 1
        self.stderr_lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()
        self.eof = False
        if init:
            r = self.request("initialize", {"clientInfo": {"name": "tests"}})
            assert "result" in r, r
            self.notify("initialized")

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8")
            msg = json.loads(line)
            with self.cond:
                self.lines.append(line)
                if "id" in msg and ("result" in msg or "error" in msg):
                    key = json.dumps(msg["id"])
                    self.responses.setdefault(key, []).append(msg)
                else:
                    self.notifications.append(msg)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _read_err(self):
        for raw in self.proc.stderr:
            self.stderr_lines.append(raw.decode("utf-8", "replace"))
            if os.environ.get("WARDEN_TEST_VERBOSE"):
                sys.stderr.write(raw.decode("utf-8", "replace"))

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, msg):
        self.send_raw(json.dumps(msg) + "\n")

    def new_id(self):
        i = self.next_id
        self.next_id += 1
        return i

    def request_async(self, method, params=None, id=None):
        if id is None:
            id = self.new_id()
        msg = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return id

    def wait_response(self, id, timeout=30):
        key = json.dumps(id)
        deadline = time.time() + timeout
        with self.cond:
            while key not in self.responses:
                left = deadline - time.time()
                if left <= 0 or self.eof:
                    raise Timeout("no response to id %r" % (id,))
                self.cond.wait(left)
            msg = self.responses[key][0]
        if "error" in msg:
            # every error answer follows the contract (code, message, data)
            from schemacheck import error_errors
            errs = error_errors(msg)
            assert not errs, ("error response breaks the contract", errs, msg)
        return msg

    def request(self, method, params=None, timeout=30, id=None):
        return self.wait_response(self.request_async(method, params, id=id), timeout)

    def call(self, method, params=None, timeout=30):
        """request() that insists on a result and returns it."""
        r = self.request(method, params, timeout)
        if "error" in r:
            raise AssertionError("%s failed: %r" % (method, r["error"]))
        return r["result"]

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def wait_for(self, pred, timeout=30):
        """Wait for a notification matching pred; returns it."""
        deadline = time.time() + timeout
        seen = 0
        with self.cond:
            while True:
                for n in self.notifications[seen:]:
                    if pred(n):
                        return n
                seen = len(self.notifications)
                left = deadline - time.time()
                if left <= 0 or self.eof:
                    raise Timeout("notification not seen")
                self.cond.wait(left)

    def process_events(self, process_id):
        with self.cond:
            return [n for n in self.notifications
                    if n.get("params", {}).get("processId") == process_id]

    def wait_exit(self, process_id, timeout=30):
        return self.wait_for(lambda n: n.get("method") == "process/exited"
                             and n["params"]["processId"] == process_id, timeout)["params"]

    def output_of(self, process_id, stream=None):
        import base64
        out = b""
        for n in self.process_events(process_id):
            if n["method"] == "process/output" and (stream is None or n["params"]["stream"] == stream):
                out += base64.b64decode(n["params"]["deltaBase64"])
        return out

    def close(self, timeout=30):
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.close()
        self._reader.join(5)


class Skip(Exception):
    """Raised by a test that cannot run in this build or on this host; it is
    reported as skipped, never counted as passed."""


# ---- the process tree, read from /proc ----

def descendants_of(pid, zygote=False):
    """All live processes whose ancestry includes pid (by /proc). The
    server's zygote and its warm supervisors (comm "warden-zygote" and
    "warden-warm", part of the server for its whole life) are left out
    unless zygote is true."""
    parents = {}
    zygotes = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                parents[int(d)] = ppid
                if stat[stat.index("(") + 1:stat.rindex(")")] in ("warden-zygote", "warden-warm"):
                    zygotes.add(int(d))
            except (OSError, ValueError):
                pass
    out = []
    for p in parents:
        if p in zygotes and not zygote:
            continue
        q = p
        while q in parents and q > 1:
            q = parents[q]
            if q == pid:
                out.append(p)
                break
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def hwm_kib(pid):
    """Peak RSS (VmHWM) of pid in KiB; 0 when it is gone."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def pct(values, p):
    """The p-th quantile of seconds, in milliseconds (0 for none)."""
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000 if s else 0.0


def wait_gone(pred, timeout=15):
    """Poll pred until it holds or timeout seconds pass; its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline and not pred():
        time.sleep(0.05)
    return pred()


def janitors(token):
    """Live janitor processes (server/sandbox/janitor.c: the server's binary
    exec'd at its start with argv[0] "warden-janitor", then the server's
    arguments, in the server's environment) whose command line or
    environment holds token."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                text = f.read()
            if not text.startswith(b"warden-janitor\0"):
                continue
            with open("/proc/%s/environ" % d, "rb") as f:
                text += f.read()
        except OSError:
            continue
        if token.encode() in text and alive(int(d)):
            out.append(int(d))
    return out


def run_tests(namespace):
    """Run every function named test_* in namespace (only those whose name
    contains WARDEN_TEST_ONLY, when set); print a summary line and exit
    non-zero on failure, or when nothing ran at all (a filter or a file that
    matches no test must not pass)."""
    import traceback
    names = sorted(k for k, v in namespace.items() if k.startswith("test_") and callable(v))
    only = os.environ.get("WARDEN_TEST_ONLY")
    if only:
        names = [n for n in names if only in n]
    passed = failed = skipped = 0
    for name in names:
        start = time.time()
        try:
            namespace[name]()
            passed += 1
            print("ok   %-50s %.2fs" % (name, time.time() - start), flush=True)
        except Skip as s:
            skipped += 1
            print("skip %-50s %s" % (name, s), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % name, flush=True)
            traceback.print_exc()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if not names:
        print("no test ran%s" % (" (WARDEN_TEST_ONLY=%s matches none)" % only if only else ""))
    sys.exit(1 if failed or not names else 0)
