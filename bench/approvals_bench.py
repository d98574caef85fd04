#!/usr/bin/env python3
"""Approval prompts under a storm: REQUESTS concurrent requests to KEYS keys
(loopback origins, one port each) through warden's proxy (--proxy-listen).

Measures, over ROUNDS rounds (a fresh set of origins each round, so every
round asks again):
  - prompts per round: must be exactly KEYS (one per key, shared by every
    waiter); the run fails otherwise;
  - release latency: from the moment the client's answer is written to the
    first response byte each waiting request reads (p50, p99), and the same
    for the last waiter of each prompt (p50, p99 over KEYS x ROUNDS prompts);
  - the same storm sent straight to the origins from the same client, timed
    from its start: the harness's own cost (Python on both ends) to compare
    the release latency with;
  - RSS per waiting connection: the server's RSS with every request held,
    minus its RSS before, divided by REQUESTS (first round).

    WARDEN_BIN=build/server/warden python3 bench/approvals_bench.py
        [--requests 1000] [--keys 10] [--rounds 5] [--quick]

Standard library only; loopback only. Speed never fails: only a wrong prompt
count or a request that does not get through does.
"""

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time


def percentile(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Rpc:
    """JSON-RPC over the server's stdio, on asyncio."""

    def __init__(self, proc):
        self.proc = proc
        self.next_id = 1
        self.pending = {}
        self.prompts = asyncio.Queue()
        self.resolved = []
        self.asks = 0
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if "method" in msg and "id" in msg:
                await self.prompts.put(msg)
            elif "method" in msg:
                if msg["method"] == "approval/resolved":
                    self.resolved.append(msg["params"])
                elif msg["method"] == "network/decision" and msg["params"]["decision"] == "ask":
                    self.asks += 1
            elif msg.get("id") in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)

    def send(self, msg):
        msg["jsonrpc"] = "2.0"
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())

    async def call(self, method, params=None):
        i = self.next_id
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        self.send({"id": i, "method": method, "params": params or {}})
        await self.proc.stdin.drain()
        r = await asyncio.wait_for(fut, 60)
        if "error" in r:
            raise RuntimeError("%s: %r" % (method, r["error"]))
        return r["result"]


ORIGINS = r"""
import asyncio, sys
async def handle(reader, writer):
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()
async def direct_request(port, t0, out, idx):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                 % (idx, port))
    await writer.drain()
    if await reader.read(1):
        out.append((time.monotonic() - t0) * 1000.0)
    await reader.read()
    writer.close()


async def main():
    servers = [await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
               for _ in range(int(sys.argv[1]))]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""


async def origin_servers(n):
    """n minimal HTTP/1.1 origins in a process of their own (so that serving
    them does not share this process's loop with the measuring clients)."""
    p = await asyncio.create_subprocess_exec(sys.executable, "-c", ORIGINS, str(n),
                                             stdin=asyncio.subprocess.PIPE,
                                             stdout=asyncio.subprocess.PIPE)
    ports = [int(x) for x in (await p.stdout.readline()).split()]
    return p, ports


async def one_request(proxy_port, port, result, idx):
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    writer.write(b"GET http://127.0.0.1:%d/%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 b"Connection: close\r\n\r\n" % (port, idx, port))
    await writer.drain()
    first = await reader.read(1)
    t = time.monotonic()
    rest = await reader.read()
    writer.close()
    result[idx] = (port, t, (first + rest).split(b" ", 2)[1] if first else b"")


async def direct_request(port, t0, out, idx):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                 % (idx, port))
    await writer.drain()
    if await reader.read(1):
        out.append((time.monotonic() - t0) * 1000.0)
    await reader.read()
    writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="100 requests, 4 keys, 1 round")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers to FILE as JSON")
    a = ap.parse_args()
    if a.quick or os.environ.get("WARDEN_BENCH_QUICK"):
        a.requests, a.keys, a.rounds = 100, 4, 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.requests * 4 + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    warden = os.environ.get("WARDEN_BIN") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build", "server", "warden")
    state = tempfile.TemporaryDirectory()
    config = os.path.join(state.name, "config.json")
    with open(config, "w") as f:
        # Enough connections per owner for the whole storm (the proxy's
        # per-listener cap), and an answer timeout far beyond the run.
        json.dump({"approvalTimeoutMs": 600000,
                   "network": {"maxConnectionsPerProcess": a.requests * 2}}, f)
    proc = await asyncio.create_subprocess_exec(
        warden, "--state-dir", state.name, "--proxy-listen", "127.0.0.1:0", "--config", config,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, limit=1 << 24)
    proxy_port = None
    while proxy_port is None:
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        if not line:
            raise SystemExit("warden exited: no proxy port")
        m = re.search(r"proxy listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            proxy_port = int(m.group(1))

    async def drain_stderr():
        while await proc.stderr.readline():
            pass
    asyncio.ensure_future(drain_stderr())
    rpc = Rpc(proc)
    await rpc.call("initialize", {"clientInfo": {"name": "approvals-bench"},
                                  "capabilities": {"networkApprovals": True}})
    rpc.send({"method": "initialized"})
    await rpc.call("network/policy/set", {"allowedDomains": [], "deniedDomains": [],
                                          "mode": "full", "allowLocalBinding": True})
    origins, all_ports = await origin_servers(a.keys * a.rounds)
    per_waiter, per_prompt, prompt_counts, direct = [], [], [], []
    rss_before = rss_held = None
    failures = 0
    for rnd in range(a.rounds):
        ports = all_ports[rnd * a.keys:(rnd + 1) * a.keys]
        asks_before = rpc.asks
        if rnd == 0:
            rss_before = rss_kib(proc.pid)
        result = {}
        tasks = [asyncio.ensure_future(one_request(proxy_port, ports[i % a.keys], result, i))
                 for i in range(a.requests)]
        # Wait until every request is held (asked), then count the prompts.
        deadline = time.monotonic() + 120
        while rpc.asks - asks_before < a.requests:
            if time.monotonic() > deadline:
                raise SystemExit("only %d of %d requests reached the proxy"
                                 % (rpc.asks - asks_before, a.requests))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # a late prompt would show up here
        prompts = []
        while not rpc.prompts.empty():
            prompts.append(rpc.prompts.get_nowait())
        prompt_counts.append(len(prompts))
        if rnd == 0:
            rss_held = rss_kib(proc.pid)
        # Answer every prompt at once; time from the write of each answer.
        answered = {}
        for p in prompts:
            rpc.send({"id": p["id"], "result": {"decision": "allowOnce"}})
            answered[p["params"]["port"]] = time.monotonic()
        await proc.stdin.drain()
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        last = {}
        for port, t, status in result.values():
            if status != b"200" or port not in answered:
                failures += 1
                continue
            d = (t - answered[port]) * 1000.0
            per_waiter.append(d)
            last[port] = max(last.get(port, 0.0), d)
        per_prompt.extend(last.values())
        # The same storm straight to the origins, from the same client: what
        # this harness itself costs (Python on both ends), for comparison.
        t0 = time.monotonic()
        await asyncio.gather(*[direct_request(ports[i % a.keys], t0, direct, i)
                               for i in range(a.requests)])
    origins.stdin.close()
    await origins.wait()
    await rpc.call("shutdown")
    proc.stdin.close()
    await proc.wait()
    state.cleanup()

    print("approvals: %d concurrent requests to %d keys, %d rounds" % (a.requests, a.keys,
                                                                       a.rounds))
    print("  prompts per round          %s (want %d each)" % (prompt_counts, a.keys))
    print("  answer -> first byte, every waiter   p50 %.2f ms  p99 %.2f ms  (n=%d)" % (
        percentile(per_waiter, 50), percentile(per_waiter, 99), len(per_waiter)))
    print("  answer -> first byte, last waiter    p50 %.2f ms  p99 %.2f ms  (n=%d prompts)" % (
        percentile(per_prompt, 50), percentile(per_prompt, 99), len(per_prompt)))
    print("  direct, no proxy (baseline)          p50 %.2f ms  p99 %.2f ms  (n=%d)" % (
        percentile(direct, 50), percentile(direct, 99), len(direct)))
    if rss_before is not None and rss_held is not None:
        print("  server RSS %d KiB idle, %d KiB with %d held: %.2f KiB per waiting connection" % (
            rss_before, rss_held, a.requests, (rss_held - rss_before) / float(a.requests)))
    ok = all(c == a.keys for c in prompt_counts) and failures == 0
    if a.json:
        m = {"approvals.prompts_per_key": {
                 "value": sum(prompt_counts) / float(a.keys * max(1, len(prompt_counts))),
                 "unit": "prompts"},
             "approvals.release_p50_ms": {"value": percentile(per_prompt, 50), "unit": "ms",
                                          "baseline": percentile(direct, 50)},
             "approvals.release_p99_ms": {"value": percentile(per_prompt, 99), "unit": "ms",
                                          "baseline": percentile(direct, 99)}}
        if rss_before is not None and rss_held is not None:
            m["approvals.rss_per_waiter_kib"] = {
                "value": (rss_held - rss_before) / float(a.requests), "unit": "KiB"}
        with open(a.json, "w") as f:
            json.dump(m, f, indent=1)
    if not ok:
        print("FAIL: prompt counts %s, %d requests did not get through" % (prompt_counts, failures))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
