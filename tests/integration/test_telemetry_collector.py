"""Collectors that misbehave: one that answers 503 (with Retry-After) then
200 gets each batch once; one that accepts connections and never answers,
and one that is not there at all, do not hold up the protocol, and the
queue stays within maxQueueBytes (drops are counted in sandbox/readiness and
in the log)."""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import wardenrpc  # noqa: E402
from otlp_receiver import Hanging, Receiver, dead_endpoint  # noqa: E402
from test_telemetry import server  # noqa: E402


def telemetry_of(s):
    return s.call("sandbox/readiness")["telemetry"]


def wait_telemetry(s, pred, timeout=30):
    deadline = time.time() + timeout
    while True:
        t = telemetry_of(s)
        if pred(t):
            return t
        if time.time() > deadline:
            raise AssertionError("telemetry counters never matched: %r" % (t,))
        time.sleep(0.05)


def sanitized():
    with open(wardenrpc.WARDEN_BIN, "rb") as f:
        return b"__asan_init" in f.read()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def pipelined(s, n, method="process/list"):
    ids = [s.request_async(method) for _ in range(n)]
    for i in ids:
        r = s.wait_response(i, timeout=60)
        assert "result" in r, r


def test_503_then_200_delivers_the_batch_once():
    rx = Receiver(statuses=[503], retry_after=1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            with server(tmp, {"tracesEndpoint": rx.endpoint + "/v1/traces", "batchDelayMs": 20}) as s:
                s.call("process/list")
                rx.wait(lambda r: r.accepted("/v1/traces"))
                t = wait_telemetry(s, lambda t: t["spansExported"] >= 2)
                assert t["retries"] == 1 and t["exportFailures"] == 0, t
                assert t["spansDropped"] == 0, t
                s.close()
            first = rx.requests[0]
            assert first["status"] == 503, rx.requests
            refused_ids = {sp["spanId"] for rs in first["body"]["resourceSpans"]
                           for ss in rs["scopeSpans"] for sp in ss["spans"]}
            assert refused_ids
            accepted = [sp["spanId"] for (_, _, sp) in rx.spans()]
            assert len(accepted) == len(set(accepted)), "a span was delivered twice: %r" % accepted
            assert refused_ids <= set(accepted), (refused_ids, accepted)
            # the retry is the same batch, byte for byte
            second = rx.requests[1]
            assert second["status"] == 200 and second["raw"] == first["raw"], rx.requests
    finally:
        rx.close()


def test_hanging_collector_bounded_and_protocol_unaffected():
    hang = Hanging()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bound = 16384
            with server(tmp, {"endpoint": hang.endpoint, "maxQueueBytes": bound,
                              "timeoutMs": 600000, "batchDelayMs": 1}) as s:
                # every request is answered while the collector holds the batch
                pipelined(s, 3000)
                s.call("process/spawn", {"processId": "p", "argv": ["true"],
                                         "sandbox": {"type": "dangerFullAccess"}})
                s.wait_exit("p")
                t = telemetry_of(s)
                assert t["enabled"] and t["spansExported"] == 0, t
                assert t["spansDropped"] > 1000, t
                assert 0 < t["queuedBytes"] <= bound, t
                assert hang.conns, "the exporter never connected"
                # and it keeps being so: 10000 more spans (several MiB encoded)
                # leave the queue, and the server's memory, where they were
                rss0 = rss_kib(s.proc.pid)
                pipelined(s, 10000)
                t2 = telemetry_of(s)
                assert t2["queuedBytes"] <= bound and t2["spansDropped"] >= t["spansDropped"] + 10000, t2
                grown = rss_kib(s.proc.pid) - rss0
                # (AddressSanitizer's quarantine keeps freed memory: no RSS claim there)
                assert grown < 4096 or sanitized(), "RSS grew by %d KiB with the queue full" % grown
                rc = s.close()
                assert rc == 0, rc
            err = "".join(s.stderr_lines)
            assert "queue full" in err and "dropped" in err, err
    finally:
        hang.close()


def test_dead_collector_retries_and_protocol_unaffected():
    with tempfile.TemporaryDirectory() as tmp:
        with server(tmp, {"endpoint": dead_endpoint(), "batchDelayMs": 1}) as s:
            pipelined(s, 500)
            t = wait_telemetry(s, lambda t: t["retries"] >= 1)
            assert t["spansExported"] == 0, t
            pipelined(s, 500)
            assert s.close() == 0


if __name__ == "__main__":
    wardenrpc.run_tests(globals())
