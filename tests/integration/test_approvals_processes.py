"""Approvals for sandboxed processes in network mode proxy: 50 concurrent
requests from 5 processes to one key make one prompt, whose processIds name
the waiting processes, and all proceed or all fail; a client that closes
stdin mid-prompt leaves no process blocked."""

import tempfile
import time

from approvals_util import Warden, origin
from wardenrpc import run_tests

PY = "/usr/bin/python3"
PROCS = 5
EACH = 10

# In the sandbox: wait for the go file, then EACH concurrent GETs through the
# in-namespace proxy listener (HTTP_PROXY; NO_PROXY names 127.0.0.1, so no
# urllib); print one status per request.
CLIENT = r'''
import http.client, os, sys, threading, time
url, go = sys.argv[1], sys.argv[2]
proxy = os.environ["HTTP_PROXY"].rsplit("/", 1)[-1].split(":")  # http://127.0.0.1:3128
open(go + "." + os.environ["ME"], "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
out = {}
def one(i):
    try:
        c = http.client.HTTPConnection(proxy[0], int(proxy[1]), timeout=120)
        c.request("GET", url)
        out[i] = c.getresponse().status
        c.close()
    except Exception as e:
        out[i] = "err:%r" % e
ts = [threading.Thread(target=one, args=(i,)) for i in range(int(sys.argv[3]))]
[t.start() for t in ts]
[t.join() for t in ts]
print(" ".join(str(out[i]) for i in sorted(out)))
'''

POLICY = {"type": "split", "network": {"mode": "proxy"}, "fileSystem": {"entries": [
    {"path": ":root", "access": "read"}, {"path": ":cwd", "access": "write"}]}}


def spawn_all(w, work, port):
    go = work + "/go"
    for i in range(PROCS):
        w.s.call("process/spawn", {
            "processId": "p%d" % i, "cwd": work, "sandbox": POLICY, "env": {"ME": str(i)},
            "argv": [PY, "-c", CLIENT, "http://127.0.0.1:%d/" % port, go, str(EACH)]})
    import os
    deadline = time.time() + 60
    while not all(os.path.exists("%s.%d" % (go, i)) for i in range(PROCS)):
        assert time.time() < deadline, "the processes did not start"
        time.sleep(0.01)
    open(go, "w").close()


def asks(w):
    with w.s.cond:
        return [n for n in w.s.notifications if n.get("method") == "network/decision"
                and n["params"]["decision"] == "ask"]


def run(decision, status):
    with tempfile.TemporaryDirectory() as st, tempfile.TemporaryDirectory(dir="/var/tmp") as work, \
            origin() as (o, port), Warden(st) as w:
        spawn_all(w, work, port)
        p = w.wait_prompts(1)
        deadline = time.time() + 60
        while len(asks(w)) < PROCS * EACH:
            assert time.time() < deadline, "%d asks" % len(asks(w))
            time.sleep(0.02)
        assert len(w.prompts()) == 1, w.prompts()
        params = p[0]["params"]
        assert (params["host"], params["port"], params["protocol"]) == ("127.0.0.1", port, "http")
        # Every process waiting when the prompt went out, each once; the
        # others joined later without a new prompt.
        ids = params["processIds"]
        assert ids and len(set(ids)) == len(ids), ids
        assert set(ids) <= {"p%d" % i for i in range(PROCS)}, ids
        assert {a["params"]["processId"] for a in asks(w)} == {"p%d" % i for i in range(PROCS)}
        w.answer(p[0], decision)
        for i in range(PROCS):
            ex = w.s.wait_exit("p%d" % i, timeout=120)
            out = w.s.output_of("p%d" % i).decode().split()
            assert ex["exitCode"] == 0 and out == [str(status)] * EACH, (ex, out)
        r = w.wait_resolved(params["approvalId"])
        assert r["waiters"] == PROCS * EACH and r["decision"] == decision, r
        assert o.hits == (PROCS * EACH if status == 200 else 0)


def test_fifty_requests_from_five_processes_all_proceed():
    run("allowOnce", 200)


def test_fifty_requests_from_five_processes_all_fail():
    run("deny", 403)


def test_stdin_closed_mid_prompt_blocks_no_process():
    with tempfile.TemporaryDirectory() as st, tempfile.TemporaryDirectory(dir="/var/tmp") as work, \
            origin() as (o, port):
        w = Warden(st)
        spawn_all(w, work, port)
        w.wait_prompts(1)
        pids = [p["pid"] for p in w.s.call("process/list")["processes"]]
        w.s.proc.stdin.close()
        assert w.s.proc.wait(60) == 0
        import os
        for pid in pids:  # every supervisor and command is gone
            assert not os.path.exists("/proc/%d" % pid) or \
                open("/proc/%d/stat" % pid).read().split()[2] == "Z", pid
        assert o.hits == 0


if __name__ == "__main__":
    run_tests(globals())
