"""The network-rules file in the state directory: bad lines (a wildcard, a
bare *, a malformed line) are reported with their line numbers in
sandbox/readiness and sandbox/refresh warnings and skipped; a duplicate is
harmless; the file is re-read on sandbox/refresh."""

import os
import tempfile

from wardenrpc import Server, run_tests

RULES = (
    "# test rules\n"
    "allow https api.example.com 443\n"      # 2
    "allow https *.example.com 443\n"        # 3: wildcard
    "allow https api.example.com\n"          # 4: malformed
    "allow https API.example.com. 443\n"     # 5: duplicate of 2
    "deny http * 80\n"                       # 6: bare *
)


def warnings_for(lines, path):
    return [w for w in lines if w.startswith(path + " line ")]


def test_bad_lines_reported_and_skipped():
    with tempfile.TemporaryDirectory() as state:
        path = os.path.join(state, "network-rules")
        with open(path, "w") as f:
            f.write(RULES)
        with Server("--state-dir", state) as s:
            r = s.call("sandbox/readiness")
            w = warnings_for(r["warnings"], path)
            assert len(w) == 3, r["warnings"]
            assert w[0].startswith(path + " line 3: wildcards are not allowed"), w
            assert w[1].startswith(path + " line 4: expected 4 fields"), w
            assert w[2].startswith(path + " line 6: wildcards are not allowed"), w
            assert all(x.endswith("line skipped") for x in w), w
            # The good line and its duplicate make one rule; nothing wider came in.
            assert s.call("network/policy/get")["approvalRules"] == [
                {"action": "allow", "protocol": "https", "host": "api.example.com", "port": 443}]
            # The file itself is left as it was.
            with open(path) as f:
                assert f.read() == RULES
        s._err_reader.join(5)
        log = "".join(s.stderr_lines)
        for n in (3, 4, 6):
            assert "%s line %d: " % (path, n) in log, log


def test_refresh_reloads():
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as work:
        path = os.path.join(state, "network-rules")
        with Server("--state-dir", state) as s:
            r = s.call("sandbox/readiness")
            assert r["warnings"] == [], r
            with open(path, "w") as f:
                f.write("allow https ok.example 443\nallow https **.bad.example 443\n")
            r = s.call("sandbox/refresh", {"cwd": work, "sandbox": {"type": "readOnly"}})
            w = warnings_for(r["warnings"], path)
            assert len(w) == 1 and " line 2: wildcards" in w[0], r
            assert [x["host"] for x in s.call("network/policy/get")["approvalRules"]] == \
                ["ok.example"]
            r = s.call("sandbox/readiness")
            assert warnings_for(r["warnings"], path) == w, r
            # Fixed file: the warning goes away on the next refresh.
            with open(path, "w") as f:
                f.write("allow https ok.example 443\n")
            r = s.call("sandbox/refresh", {"cwd": work, "sandbox": {"type": "readOnly"}})
            assert warnings_for(r["warnings"], path) == [], r
            assert warnings_for(s.call("sandbox/readiness")["warnings"], path) == []


def test_unreadable_file_loads_nothing():
    with tempfile.TemporaryDirectory() as state:
        path = os.path.join(state, "network-rules")
        os.mkdir(path)  # a directory where the file should be: cannot be read
        with Server("--state-dir", state) as s:
            r = s.call("sandbox/readiness")
            assert any(w.startswith(path + ": ") and "no persisted rules loaded" in w
                       for w in r["warnings"]), r


if __name__ == "__main__":
    run_tests(globals())
