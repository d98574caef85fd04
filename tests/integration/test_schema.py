"""schema/ and clients/ts/src/generated/ are exactly what the binary
generates, and real messages conform to the schema."""

import filecmp
import json
import os
import subprocess
import tempfile

from schemacheck import Checker
from wardenrpc import WARDEN_BIN, Server, run_tests

SRC = os.environ.get("WARDEN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    problems = cmp.left_only + cmp.right_only + cmp.diff_files
    # dircmp compares shallowly by stat; compare contents for certainty.
    for name in cmp.common_files:
        with open(os.path.join(a, name), "rb") as x, open(os.path.join(b, name), "rb") as y:
            if x.read() != y.read():
                problems.append(name)
    return sorted(set(problems))


def test_schema_matches_binary():
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([WARDEN_BIN, "generate-json-schema", "--out", d], check=True)
        drift = same_tree(d, os.path.join(SRC, "schema"))
        assert not drift, "schema/ drifted from the binary (regenerate): %s" % drift


def test_typescript_matches_binary():
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([WARDEN_BIN, "generate-ts", "--out", d], check=True)
        drift = same_tree(d, os.path.join(SRC, "clients", "ts", "src", "generated"))
        assert not drift, "clients/ts/src/generated drifted (regenerate): %s" % drift


def test_docs_reference_matches_binary():
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([WARDEN_BIN, "generate-docs", "--out", d], check=True)
        with open(os.path.join(d, "reference.md"), "rb") as f:
            generated = f.read()
        with open(os.path.join(SRC, "docs", "reference.md"), "rb") as f:
            committed = f.read()
        assert generated == committed, \
            "docs/reference.md drifted from the binary (run: warden generate-docs --out docs)"


def test_docs_reference_covers_every_method_and_type():
    with open(os.path.join(SRC, "docs", "reference.md")) as f:
        ref = f.read()
    c = Checker()
    for name in c.methods:
        assert "### `%s`" % name in ref, name
    for name, d in c.bundle["definitions"].items():
        if name in c.bundle["x-methods"] or name.endswith(("Params", "Result", "Notification")):
            continue
        assert "### %s\n" % name in ref, name


def test_readme_links_the_contract_in_the_repository():
    with open(os.path.join(SRC, "README.md")) as f:
        readme = f.read()
    assert "(docs/protocol.md)" in readme
    # (that nothing points outside the repository: test_build.py)
    with open(os.path.join(SRC, "docs", "protocol.md")) as f:
        contract = f.read()
    assert "reference.md" in contract


def test_every_method_has_schemas():
    c = Checker()
    for name, m in c.methods.items():
        if m["direction"] in ("clientRequest", "serverRequest"):
            assert "result" in m, name
            assert m["result"] in c.bundle["definitions"], name
        if "params" in m:
            assert m["params"] in c.bundle["definitions"], name
    for needed in ["process/spawn", "process/output", "process/exited", "policy/resolve",
                   "sandbox/setup", "network/policy/set", "approval/network",
                   "approval/resolved", "network/decision"]:
        assert needed in c.methods, needed


def test_generate_needs_out():
    p = subprocess.run([WARDEN_BIN, "generate-json-schema"], capture_output=True)
    assert p.returncode == 2 and b"--out" in p.stderr


def test_real_session_conforms():
    c = Checker()
    pending = {}
    with Server(init=False) as s:
        def req(method, params=None):
            i = s.request_async(method, params)
            pending[json.dumps(i)] = method
            return s.wait_response(i)
        req("initialize", {"clientInfo": {"name": "schema-test"}})
        req("process/spawn", {"processId": "a", "argv": ["sh", "-c", "echo out; echo err >&2; exit 3"],
                              "sandbox": {"type": "dangerFullAccess"}})
        s.wait_exit("a")
        req("process/spawn", {"processId": "t", "argv": ["sh", "-c", "echo hi"], "tty": True,
                              "sandbox": {"type": "dangerFullAccess"}})
        s.wait_exit("t")
        req("process/read", {"processId": "a"})
        req("process/list")
        req("policy/resolve", {"sandbox": {"type": "workspaceWrite"}, "cwd": "/tmp"})
        req("policy/transform", {"sandbox": {"type": "readOnly"}, "cwd": "/tmp", "to": "split"})
        req("sandbox/readiness")
        req("process/release", {"processId": "a"})
        req("shutdown")
    problems = []
    for line in s.lines:
        msg = json.loads(line)
        problems += c.check_server_message(msg, pending)
    assert not problems, problems
    assert len(s.lines) > 10


if __name__ == "__main__":
    run_tests(globals())
