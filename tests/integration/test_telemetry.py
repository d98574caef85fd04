"""OpenTelemetry export through the real binary: a loopback OTLP/HTTP receiver
(otlp_receiver.py, standard library) checks the spans and log records warden
sends, their ids and parent links, the configured attributes and tracestate;
params._meta on every method; bad telemetry settings refused at start."""

import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import wardenrpc  # noqa: E402
from otlp_receiver import Receiver, attrs  # noqa: E402

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = "00-%s-%s-01" % (CALLER_TRACE, CALLER_SPAN)
FULL = {"type": "dangerFullAccess"}
# The environment of the test runner may carry OTEL_* settings of its own.
CLEAN_ENV = {k: "" for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                             "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
                             "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION",
                             "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES")}


def config_file(tmp, telemetry):
    path = os.path.join(tmp, "config.json")
    with open(path, "w") as f:
        json.dump({"telemetry": telemetry}, f)
    return path


def server(tmp, telemetry=None, env=None):
    args = ["--state-dir", os.path.join(tmp, "state")]
    if telemetry is not None:
        args += ["--config", config_file(tmp, telemetry)]
    e = dict(CLEAN_ENV)
    e.update(env or {})
    return wardenrpc.Server(*args, env=e)


def is_hex_id(s, n):
    return isinstance(s, str) and re.fullmatch("[0-9a-f]{%d}" % n, s) and s != "0" * n


def by_name(spans, name):
    return [s for (_, _, s) in spans if s["name"] == name]


def test_spans_parent_links_attributes_tracestate():
    rx = Receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            with server(tmp, {
                "endpoint": rx.endpoint,
                "serviceName": "warden-under-test",
                "resourceAttributes": {"deployment.environment": "test", "host.id": 7},
                "spanAttributes": {"team": "sandbox", "tier": 2},
                "tracestate": {"warden": "t1", "vendor@sys": "v"},
                "batchDelayMs": 20,
            }) as s:
                r = s.call("process/spawn", {
                    "processId": "p1", "argv": ["/bin/sh", "-c", "exit 3"], "sandbox": FULL,
                    "_meta": {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE,warden=old"}})
                assert r["processId"] == "p1"
                s.wait_exit("p1")
                err = s.request("process/write", {"processId": "nope", "deltaBase64": ""})
                assert err["error"]["code"] == -32002, err
                bad = s.request("process/list", {"bogus": 1})
                assert bad["error"]["code"] == -32602, bad
                s.close()
            spans = rx.spans()
            assert spans, "no spans received"
            resource, scope, _ = spans[0]
            ra = attrs(resource)
            assert ra["service.name"] == "warden-under-test", ra
            assert ra["deployment.environment"] == "test" and ra["host.id"] == 7, ra
            assert scope["name"] == "warden", scope

            for _, _, sp in spans:
                assert is_hex_id(sp["traceId"], 32), sp
                assert is_hex_id(sp["spanId"], 16), sp
                assert int(sp["endTimeUnixNano"]) >= int(sp["startTimeUnixNano"]) > 0, sp
                a = attrs(sp)
                assert a["team"] == "sandbox" and a["tier"] == 2, a   # static span attributes

            spawn = by_name(spans, "process/spawn")
            assert len(spawn) == 1, spawn
            spawn = spawn[0]
            assert spawn["traceId"] == CALLER_TRACE, spawn
            assert spawn["parentSpanId"] == CALLER_SPAN, spawn
            assert spawn["kind"] == 2, spawn
            # the configured members upserted (first, replacing "warden"), the caller's kept
            assert spawn["traceState"] == "warden=t1,vendor@sys=v,congo=t61rcWkgMzE", spawn
            sa = attrs(spawn)
            assert sa["rpc.method"] == "process/spawn" and sa["warden.outcome"] == "ok", sa

            proc = by_name(spans, "process")
            assert len(proc) == 1, proc
            proc = proc[0]
            assert proc["traceId"] == CALLER_TRACE and proc["parentSpanId"] == spawn["spanId"], proc
            pa = attrs(proc)
            assert pa["process.executable.name"] == "/bin/sh", pa
            assert pa["process.exit.code"] == 3, pa
            assert pa["warden.sandbox.backend"] == "none", pa
            assert pa["warden.network.mode"] == "full", pa
            assert pa["warden.process.id"] == "p1", pa
            assert int(proc["startTimeUnixNano"]) == int(spawn["startTimeUnixNano"]), (proc, spawn)
            assert int(proc["endTimeUnixNano"]) >= int(spawn["endTimeUnixNano"]), (proc, spawn)

            write = by_name(spans, "process/write")[0]
            wa = attrs(write)
            assert wa["warden.outcome"] == "error" and wa["rpc.jsonrpc.error_code"] == -32002, wa
            assert write["status"]["code"] == 2, write
            assert write["traceId"] != CALLER_TRACE and "parentSpanId" not in write, write
            assert write["traceState"] == "warden=t1,vendor@sys=v", write
            lst = by_name(spans, "process/list")[0]
            assert attrs(lst)["rpc.jsonrpc.error_code"] == -32602, lst
            assert by_name(spans, "initialize"), "the initialize request has a span too"
            # one span per request: ids are unique
            ids = [sp["spanId"] for _, _, sp in spans]
            assert len(ids) == len(set(ids)), ids
    finally:
        rx.close()


def test_signal_and_spawn_failure():
    rx = Receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            with server(tmp, {"endpoint": rx.endpoint, "batchDelayMs": 20}) as s:
                s.call("process/spawn", {"processId": "sl", "argv": ["sleep", "30"], "sandbox": FULL})
                s.call("process/terminate", {"processId": "sl", "signal": "KILL"})
                s.wait_exit("sl")
                r = s.request("process/spawn", {"processId": "nx", "argv": ["/nonexistent/warden-test"],
                                                "sandbox": FULL})
                assert r["error"]["code"] == -32004, r
                s.close()
            proc = by_name(rx.spans(), "process")[0]
            pa = attrs(proc)
            assert pa["warden.process.signal"] == "KILL", pa
            assert "process.exit.code" not in pa, pa
            assert proc["status"]["code"] == 2, proc
            recs = [r for (_, _, r) in rx.log_records() if r["eventName"] == "warden.process.spawn_failed"]
            assert len(recs) == 1, rx.log_records()
            rec = recs[0]
            ra = attrs(rec)
            assert ra["warden.process.id"] == "nx", ra
            assert ra["process.executable.name"] == "/nonexistent/warden-test", ra
            assert ra["rpc.jsonrpc.error_code"] == -32004, ra
            assert ra["warden.spawn.errno"] == 2, ra          # ENOENT
            assert rec["severityText"] == "ERROR", rec
            # linked to the refused request's span
            failed = [sp for sp in by_name(rx.spans(), "process/spawn")
                      if attrs(sp).get("rpc.jsonrpc.error_code") == -32004]
            assert len(failed) == 1, failed
            assert rec["traceId"] == failed[0]["traceId"] and rec["spanId"] == failed[0]["spanId"], rec
    finally:
        rx.close()


def test_command_environment_carries_the_trace():
    rx = Receiver()
    show = ["/bin/sh", "-c", 'printf "%s|%s" "$TRACEPARENT" "$TRACESTATE"']
    try:
        with tempfile.TemporaryDirectory() as tmp:
            with server(tmp, {"endpoint": rx.endpoint, "tracestate": {"warden": "t1"}}) as s:
                s.call("process/spawn", {"processId": "e", "argv": show, "sandbox": FULL,
                                         "_meta": {"traceparent": TRACEPARENT,
                                                   "tracestate": "congo=x"}})
                s.wait_exit("e")
                got = s.output_of("e").decode()
                # the client's own values win
                s.call("process/spawn", {"processId": "mine", "argv": show, "sandbox": FULL,
                                         "env": {"TRACEPARENT": "00-mine", "TRACESTATE": "a=b"}})
                s.wait_exit("mine")
                assert s.output_of("mine").decode() == "00-mine|a=b", s.output_of("mine")
                s.close()
            spawn = [sp for sp in by_name(rx.spans(), "process/spawn")
                     if attrs(sp).get("warden.outcome") == "ok"][0]
            assert got == "00-%s-%s-01|warden=t1,congo=x" % (CALLER_TRACE, spawn["spanId"]), (got, spawn)
        with tempfile.TemporaryDirectory() as tmp:
            with server(tmp) as s:  # off: nothing added
                s.call("process/spawn", {"processId": "off", "argv": show, "sandbox": FULL,
                                         "_meta": {"traceparent": TRACEPARENT}})
                s.wait_exit("off")
                assert s.output_of("off").decode() == "|", s.output_of("off")
    finally:
        rx.close()


def test_meta_accepted_on_every_method():
    with tempfile.TemporaryDirectory() as tmp:
        with server(tmp) as s:
            meta = {"traceparent": TRACEPARENT, "progressToken": 1}
            # no-params methods, object params, nested: _meta never reaches validation
            assert "processes" in s.call("process/list", {"_meta": meta})
            assert "status" in s.call("sandbox/readiness", {"_meta": meta})
            r = s.call("process/spawn", {"processId": "m", "argv": ["true"], "sandbox": FULL,
                                         "_meta": {"traceparent": "garbage"}})
            assert r["processId"] == "m"
            # _meta must be an object, and other unknown fields are still refused
            r = s.request("process/list", {"_meta": "x"})
            assert r["error"]["code"] == -32602 and r["error"]["data"]["path"] == "params._meta", r
            r = s.request("process/list", {"_meta": {}, "meta": {}})
            assert r["error"]["code"] == -32602 and r["error"]["data"]["path"] == "params.meta", r


def test_off_reports_disabled():
    with tempfile.TemporaryDirectory() as tmp:
        with server(tmp) as s:
            t = s.call("sandbox/readiness")["telemetry"]
            assert t == {"enabled": False, "spansExported": 0, "logRecordsExported": 0,
                         "spansDropped": 0, "logRecordsDropped": 0, "exportFailures": 0,
                         "retries": 0, "queuedBytes": 0}, t


def test_environment_and_gzip():
    rx = Receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rx.endpoint + "/v1/traces",
                   "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc,x-team=a",
                   "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                   "OTEL_SERVICE_NAME": "from-env",
                   "OTEL_RESOURCE_ATTRIBUTES": "k=v%2Cw"}
            with server(tmp, env=env) as s:
                s.call("process/list")
                t = s.call("sandbox/readiness")["telemetry"]
                assert t["enabled"] is True, t
                s.close()
            reqs = [r for r in rx.requests if r["path"] == "/v1/traces"]
            assert reqs, rx.requests
            h = {k.lower(): v for k, v in reqs[0]["headers"].items()}
            assert h["authorization"] == "Bearer abc", h
            assert h["x-team"] == "a", h
            assert h["content-encoding"] == "gzip" and h["content-type"] == "application/json", h
            assert reqs[0]["raw"][:2] == b"\x1f\x8b", "body is gzip"
            ra = attrs(rx.spans()[0][0])
            assert ra["service.name"] == "from-env" and ra["k"] == "v,w", ra
            # logs endpoint not configured: nothing posted there
            assert not [r for r in rx.requests if r["path"] != "/v1/traces"], rx.requests
    finally:
        rx.close()


def refused(tmp, telemetry=None, env=None):
    args = [wardenrpc.WARDEN_BIN, "--state-dir", os.path.join(tmp, "state")]
    if telemetry is not None:
        args += ["--config", config_file(tmp, telemetry)]
    e = dict(os.environ)
    e.update(CLEAN_ENV)
    e.update(env or {})
    p = subprocess.run(args, input=b"", capture_output=True, env=e, timeout=30)
    return p.returncode, p.stderr.decode()


def test_invalid_settings_refused_at_start():
    with tempfile.TemporaryDirectory() as tmp:
        ep = "http://127.0.0.1:9"
        cases = [
            ({"endpoint": ep, "tracestate": {"Upper": "x"}}, None, 'tracestate member "Upper=x"'),
            ({"endpoint": ep, "tracestate": {"ok": "a,b"}}, None, 'tracestate member "ok=a,b"'),
            ({"endpoint": ep, "tracestate": {"ok": "a\r\nx: y"}}, None, "tracestate member"),
            ({"endpoint": ep, "headers": {"x-a": "1\r\nevil: 1"}}, None, 'header "x-a"'),
            ({"endpoint": ep, "headers": {"bad name": "1"}}, None, 'header name "bad name"'),
            ({"endpoint": "localhost:4318"}, None, "telemetry.endpoint"),
            ({"endpoint": ep, "compression": "br"}, None, "telemetry.compression"),
            ({"endpoint": ep, "nope": 1}, None, 'unknown key "nope"'),
            (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": ep,
                    "OTEL_EXPORTER_OTLP_HEADERS": "x-a=1%0D%0Aevil: 1"}, "OTEL_EXPORTER_OTLP_HEADERS"),
            (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "file:///tmp/x"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
            (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_EXPORTER_OTLP_TIMEOUT": "5s"},
             "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ]
        for telemetry, env, needle in cases:
            rc, err = refused(tmp, telemetry, env)
            assert rc == 2, (telemetry, env, rc, err)
            assert needle in err and "telemetry" in err, (needle, err)
        # and a valid one starts (stdin at EOF: it exits 0)
        rc, err = refused(tmp, {"endpoint": ep, "tracestate": {"a@b": "x y"}})
        assert rc == 0, err




def test_network_decisions_are_log_records():
    """Each egress-proxy decision is an audit record: a domain rule's refusal
    is warden.network.domain_policy_decision, a local destination's refusal
    warden.network.block_decision, with the NetworkDecision fields."""
    import socket
    import time
    rx = Receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "config.json")
            with open(cfg, "w") as f:
                json.dump({"telemetry": {"endpoint": rx.endpoint, "batchDelayMs": 20},
                           "network": {"allowedDomains": ["allowed.example"]}}, f)
            e = dict(CLEAN_ENV)
            with wardenrpc.Server("--state-dir", os.path.join(tmp, "state"), "--config", cfg,
                                  "--proxy-listen", "127.0.0.1:0", env=e) as s:
                port = None
                while port is None:
                    for line in list(s.stderr_lines):
                        if "proxy listening on 127.0.0.1:" in line:
                            port = int(line.split("127.0.0.1:")[1].split()[0])
                    if port is None:
                        s.call("process/list", {})  # a round trip, then look again
                for target in (b"blocked.example:443", b"127.0.0.1:9"):
                    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
                        c.sendall(b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + target + b"\r\n\r\n")
                        head = c.recv(4096)
                        assert head.startswith(b"HTTP/1.1 403"), head
                s.close()
            recs = {}
            for (_, _, r) in rx.log_records():
                recs.setdefault(r["eventName"], []).append(attrs(r))
            dom = recs.get("warden.network.domain_policy_decision", [])
            blk = recs.get("warden.network.block_decision", [])
            assert any(a["server.address"] == "blocked.example" and a["server.port"] == 443
                       and a["network.policy.decision"] == "deny" for a in dom), recs
            assert any(a["server.address"] == "127.0.0.1" and a["server.port"] == 9
                       and a["network.policy.reason"] == "not_allowed_local" for a in blk), recs
    finally:
        rx.close()


def test_libcurl_is_loaded_only_for_export():
    """The binary does not link libcurl (it would cost every start ~30 shared
    objects); export loads it. Where it cannot be loaded, the server says so
    on stderr, naming the library, and serves without telemetry."""
    needed = subprocess.run(["readelf", "-d", wardenrpc.WARDEN_BIN], capture_output=True,
                            text=True, check=True).stdout
    assert "libcurl" not in needed, needed
    if os.geteuid() != 0:
        return  # hiding the library takes a mount namespace of our own
    lib = subprocess.run(["sh", "-c", "ldconfig -p | awk '/libcurl.so.4 /{print $NF; exit}'"],
                         capture_output=True, text=True).stdout.strip()
    assert lib, "libcurl.so.4 is not installed (scripts/deps.sh installs it)"
    rx = Receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = config_file(tmp, {"endpoint": rx.endpoint})
            lines = [
                {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"clientInfo": {"name": "t"}}},
                {"jsonrpc": "2.0", "method": "initialized"},
                {"jsonrpc": "2.0", "id": 2, "method": "process/spawn",
                 "params": {"processId": "p", "argv": ["echo", "served"]}},
            ]
            env = dict(os.environ, **CLEAN_ENV, WARDEN_LOG="warn")
            p = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c",
                 'mount --bind /dev/null "$0" && exec "$@"', lib, wardenrpc.WARDEN_BIN,
                 "--state-dir", os.path.join(tmp, "state"), "--config", cfg],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            p.stdin.write("".join(json.dumps(m) + "\n" for m in lines).encode())
            p.stdin.flush()
            got = []
            for raw in p.stdout:
                m = json.loads(raw)
                got.append(m)
                if m.get("method") == "process/exited":
                    break
            p.stdin.close()
            err = p.stderr.read().decode()
            assert p.wait(30) == 0, err
            assert any(m.get("id") == 2 and "result" in m for m in got), got
            assert "cannot load libcurl.so.4" in err and "telemetry off" in err, err
            assert rx.requests == [], rx.requests
    finally:
        rx.close()


if __name__ == "__main__":
    wardenrpc.run_tests(globals())
