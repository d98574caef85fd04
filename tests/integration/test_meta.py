"""params._meta on every client request: the schema (schema/), the binary and
the Python client agree. _meta is described once (protocol/meta.c) and the
emitters add it to every client request's params, also to methods without
arguments."""

import base64
import os
import tempfile

from schemacheck import Checker
from wardenrpc import Server, run_tests

from warden_client import _generated as gen

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
META = {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE",
        "progressToken": 7}  # other members are ignored and reserved
FULL = {"type": "dangerFullAccess"}


def examples(tmp):
    """One valid call per client request, in an order the server accepts
    (initialize first, shutdown last). None: the method takes no arguments."""
    return [
        ("initialize", {"clientInfo": {"name": "meta-test"}}),
        ("process/spawn", {"processId": "cat", "argv": ["cat"], "streamStdin": True,
                           "sandbox": FULL}),
        ("process/write", {"processId": "cat",
                           "deltaBase64": base64.b64encode(b"hi\n").decode()}),
        ("process/spawn", {"processId": "tty", "argv": ["cat"], "tty": True, "sandbox": FULL}),
        ("process/resize", {"processId": "tty", "size": {"rows": 30, "cols": 100}}),
        ("process/read", {"processId": "cat"}),
        ("process/list", None),
        ("process/terminate", {"processId": "tty", "signal": "KILL"}),
        ("process/release", {"processId": "cat"}),
        ("policy/resolve", {"sandbox": {"type": "workspaceWrite"}, "cwd": tmp}),
        ("policy/transform", {"sandbox": {"type": "readOnly"}, "cwd": tmp, "to": "split"}),
        ("sandbox/readiness", None),
        ("sandbox/setup", {"cwd": tmp}),
        ("sandbox/refresh", {"cwd": tmp, "sandbox": {"type": "workspaceWrite"}}),
        ("network/policy/get", None),
        ("network/policy/set", {"allowedDomains": ["example.com"], "deniedDomains": [],
                                "mode": "full", "allowLocalBinding": False}),
        ("network/blocked/list", {}),
        ("shutdown", None),
    ]


def client_requests(c):
    return sorted(m for m, spec in c.methods.items() if spec["direction"] == "clientRequest")


def with_meta(params, meta=META):
    p = dict(params or {})
    p["_meta"] = meta
    return p


def test_examples_cover_every_client_request():
    c = Checker()
    assert sorted({m for m, _ in examples("/tmp")}) == client_requests(c)


def test_schema_accepts_meta_on_every_client_request():
    c = Checker()
    for method, params in examples("/tmp"):
        ptype = c.methods[method].get("params")
        assert ptype, "%s: no params type, so _meta is not described" % method
        for p in (params or {}, with_meta(params), with_meta(params, {}),
                  with_meta(params, None)):
            assert c.check(ptype, p) == [], (method, p, c.check(ptype, p))
        # not an object: refused, as the binary refuses it
        assert c.check(ptype, with_meta(params, "x")), method
        assert c.check(ptype, with_meta(params, [TRACEPARENT])), method
        # _meta does not open the params to other unknown fields
        assert c.check(ptype, dict(with_meta(params), meta={})), method


def test_schema_describes_request_meta_once():
    c = Checker()
    defs = c.bundle["definitions"]
    meta = defs["RequestMeta"]
    assert set(meta["properties"]) == {"traceparent", "tracestate"}
    assert meta.get("additionalProperties", True) is not False
    for method in client_requests(c):
        prop = defs[c.methods[method]["params"]]["properties"]["_meta"]
        assert {"$ref": "#/definitions/RequestMeta"} in prop.get("anyOf", [prop]), method
    # server-to-client messages do not carry it
    for method, spec in c.methods.items():
        if spec["direction"] != "clientRequest" and "params" in spec:
            assert "_meta" not in defs[spec["params"]].get("properties", {}), method


def test_binary_accepts_meta_on_every_client_request():
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state")
        with Server("--state-dir", state, init=False) as s:
            seen = set()
            for method, params in examples(tmp):
                if method == "process/read":
                    s.wait_for(lambda n: n.get("method") == "process/output"
                               and n["params"]["processId"] == "cat")
                # the first call of a method with _meta, a second (where the
                # method allows it) with _meta null
                meta = META if method not in seen else None
                seen.add(method)
                r = s.request(method, with_meta(params, meta))
                if method.startswith("network/") and r.get("error", {}).get("code") == -32601:
                    # a build without the egress proxy: answered before params
                    assert "not available in this build" in r["error"]["message"], r
                    continue
                assert "result" in r, (method, r)
                if method == "process/release":
                    s.wait_exit("cat")
                if method == "process/terminate":
                    s.wait_exit("tty")
                if method == "initialize":
                    s.notify("initialized")
            # _meta that is not an object: -32602 naming it, on a method
            # without arguments too (after shutdown the server is gone, so
            # use a second server)
        with Server("--state-dir", state) as s:
            for method, params in (("process/list", None), ("policy/resolve",
                                   {"sandbox": FULL, "cwd": tmp})):
                for bad in ("x", 1, [], True):
                    r = s.request(method, with_meta(params, bad))
                    assert r["error"]["code"] == -32602, r
                    assert r["error"]["data"]["path"] == "params._meta", r
                # null means absent, as for every optional field
                assert "result" in s.request(method, with_meta(params, None))


def test_reference_names_meta_for_every_client_request():
    src = os.environ.get("WARDEN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    with open(os.path.join(src, "docs", "reference.md")) as f:
        ref = f.read()
    assert "### RequestMeta" in ref
    for method in client_requests(Checker()):
        section = ref.split("### `%s`" % method, 1)[1].split("\n### ", 1)[0]
        assert "`_meta`" in section and "(#requestmeta)" in section, method


class Recorder(gen.RequestMethods):
    def __init__(self):
        self.sent = []

    def request(self, method, params=None):
        self.sent.append((method, params))
        return {}


def test_python_client_sends_meta_and_no_params_without_it():
    r = Recorder()
    r.process_list()
    r.shutdown(_meta={"traceparent": TRACEPARENT})
    r.process_read(process_id="p", _meta={"traceparent": TRACEPARENT})
    r.process_read(process_id="p")
    assert r.sent == [
        ("process/list", None),
        ("shutdown", {"_meta": {"traceparent": TRACEPARENT}}),
        ("process/read", {"processId": "p", "_meta": {"traceparent": TRACEPARENT}}),
        ("process/read", {"processId": "p"}),
    ], r.sent


if __name__ == "__main__":
    run_tests(globals())
