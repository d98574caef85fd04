"""Issue 14: initialize answers from the probe record (<state>/v1/probe.json)
when it was written on this kernel by this binary for this uid, instead of
probing namespaces and cgroups first; the probe runs right after the answer
and corrects the record. Nothing is ever enforced from the record: spawns
and sandbox/readiness use the live probe, so a record that claims more than
the kernel can do never makes a sandbox weaker (the test build's
WARDEN_TEST_FEATURES hook plays the kernel that lost a feature)."""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from schemacheck import assert_error  # noqa: E402
from wardenrpc import Server, run_tests  # noqa: E402
from test_refusal import WS, require_hooks  # noqa: E402


def record_path(state):
    return os.path.join(state, "warden", "v1", "probe.json")


def start(state, env=None):
    e = {"XDG_STATE_HOME": state}
    e.update(env or {})
    return Server(env=e, init=False)


def initialize(s):
    r = s.request("initialize", {"clientInfo": {"name": "tests"}})
    assert "result" in r, r
    s.notify("initialized")
    return r["result"]["sandbox"]


def test_record_written_only_into_an_existing_state_dir_then_used():
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        with start(d) as s:
            live = initialize(s)
        assert not os.path.exists(os.path.join(d, "warden")), "initialize created the state dir"
        os.makedirs(os.path.join(d, "warden", "v1"))
        with start(d) as s:
            assert initialize(s) == live
        with open(record_path(d)) as f:
            rec = json.load(f)
        assert rec["sandbox"] == live, rec
        assert rec["key"]["uid"] == os.geteuid() and rec["key"]["kernel"] == os.uname().release
        # The record is what initialize reports: mark it and see the mark.
        rec["sandbox"]["landlockAbi"] = 99
        with open(record_path(d), "w") as f:
            json.dump(rec, f)
        with start(d) as s:
            assert initialize(s)["landlockAbi"] == 99
            # ... corrected right after, and readiness is always live
            assert s.call("sandbox/readiness")["features"]["landlockAbi"] == live["landlockAbi"]
            s.call("process/list")
            assert any("changed since the probe record" in l for l in s.stderr_lines), \
                s.stderr_lines
        with open(record_path(d)) as f:
            assert json.load(f)["sandbox"] == live
        # Another key (another kernel, binary or user): not used.
        rec["key"]["kernel"] = "0.0.0-other"
        with open(record_path(d), "w") as f:
            json.dump(rec, f)
        with start(d) as s:
            assert initialize(s) == live


def test_a_record_claiming_more_never_weakens_a_sandbox():
    require_hooks()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        os.makedirs(os.path.join(d, "warden", "v1"))
        env = {"WARDEN_TEST_FEATURES": "userns=0"}
        with start(d, env) as s:
            assert initialize(s)["userNamespaces"] is False
        with open(record_path(d)) as f:
            rec = json.load(f)
        # The record now says the kernel has user namespaces; it does not.
        rec["sandbox"]["userNamespaces"] = True
        with open(record_path(d), "w") as f:
            json.dump(rec, f)
        with start(d, env) as s:
            assert initialize(s)["userNamespaces"] is True  # what the record said
            r = s.request("process/spawn", {"processId": "p", "cwd": d, "sandbox": WS,
                                            "argv": ["sh", "-c", "echo ran"]})
            e = assert_error(r, -32003)
            assert "namespaces" in e["data"]["reason"], e
            assert s.call("sandbox/readiness")["features"]["userNamespaces"] is False


if __name__ == "__main__":
    run_tests(globals())
