#!/usr/bin/env python3
"""Spawn latency with telemetry off, with a live OTLP collector, with a dead
one (nothing listens) and with a hanging one (accepts, never answers),
printed with ratios to "off". Standard library only; the collectors are
loopback servers in this process (tests/integration/otlp_receiver.py).

Each sample is one process/spawn of /bin/true (sandbox dangerFullAccess, so
the number is warden's own path, not the sandbox's) from request to answer,
plus the wait for its process/exited; requests go one at a time, round robin over the four servers.

Usage: bench/telemetry.py [--quick] [--runs N] [--json FILE]
Environment: WARDEN_BIN (default build/server/warden), WARDEN_BENCH_QUICK=1.
Speed never makes this fail; it fails only when a configuration produced no
number."""

import json
import os
import statistics
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
import wardenrpc  # noqa: E402
from otlp_receiver import Hanging, Receiver, dead_endpoint  # noqa: E402

OTEL_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
             "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
             "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION")


def start(endpoint, tmp, name):
    cfg = os.path.join(tmp, name + ".json")
    tele = {"endpoint": endpoint, "batchDelayMs": 100} if endpoint else {"enabled": False}
    with open(cfg, "w") as f:
        json.dump({"telemetry": tele}, f)
    env = {k: "" for k in OTEL_VARS}
    return wardenrpc.Server("--config", cfg, "--state-dir", os.path.join(tmp, "state-" + name),
                            env=env)


def sample(s, pid):
    t0 = time.perf_counter()
    r = s.request("process/spawn", {"processId": pid, "argv": ["/bin/true"],
                                    "sandbox": {"type": "dangerFullAccess"}})
    t1 = time.perf_counter()
    assert "result" in r, r
    s.wait_exit(pid)
    s.request("process/release", {"processId": pid})
    return (t1 - t0) * 1e6


def main():
    quick = os.environ.get("WARDEN_BENCH_QUICK") == "1" or "--quick" in sys.argv
    runs = 30 if quick else 300
    if "--runs" in sys.argv:
        runs = int(sys.argv[sys.argv.index("--runs") + 1])
    live, hang = Receiver(), Hanging()
    configs = (("off", None), ("live collector", live.endpoint),
               ("dead collector", dead_endpoint()), ("hanging collector", hang.endpoint))
    results = {name: ([], None) for name, _ in configs}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            servers = {name: start(ep, tmp, name.split()[0]) for name, ep in configs}
            try:
                # Round robin, one spawn per server in turn: load on the
                # machine hits every configuration alike.
                for i in range(runs + 5):
                    for name, _ in configs:
                        us = sample(servers[name], "b%d" % i)
                        if i >= 5:  # warm-up
                            results[name][0].append(us)
                for name, _ in configs:
                    tel = servers[name].call("sandbox/readiness")["telemetry"]
                    results[name] = (results[name][0], tel)
            finally:
                for s in servers.values():
                    s.close()
    finally:
        live.close()
        hang.close()
    base = statistics.median(results["off"][0])
    print("spawn latency, /bin/true, %d runs each (request to answer, microseconds)" % runs)
    print("| telemetry | median | p90 | ratio to off (median) | spans exported / dropped |")
    print("|---|---|---|---|---|")
    ok = True
    metrics = {}
    for name, (lat, tel) in results.items():
        if not lat:
            ok = False
            print("| %s | no number | | | |" % name)
            continue
        lat.sort()
        med = statistics.median(lat)
        p90 = lat[int(len(lat) * 0.9) - 1]
        print("| %s | %.0f | %.0f | %.2f | %d / %d |" % (
            name, med, p90, med / base, tel["spansExported"], tel["spansDropped"]))
        key = name.split()[0]
        metrics["telemetry.spawn_median_us." + key] = {"value": med, "unit": "us",
                                                       "baseline": base}
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(metrics, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
