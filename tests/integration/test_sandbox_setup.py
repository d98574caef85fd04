"""sandbox/readiness, sandbox/setup (and sandbox/setupCompleted), sandbox/refresh
against a state directory of the test's own."""
import json
import os
import shutil
import tempfile

from wardenrpc import Server, run_tests

FEATURE_KEYS = {"landlockAbi", "userNamespaces", "networkNamespaces", "seccomp", "limits", "cgroups"}


def completed(s, n=1):
    """The n-th sandbox/setupCompleted notification's params."""
    def pred(m):
        if m.get("method") != "sandbox/setupCompleted":
            return False
        pred.count += 1
        return pred.count == n
    pred.count = 0
    return s.wait_for(pred, timeout=60)["params"]


def marker_path(state):
    return os.path.join(state, "v1", "setup.json")


def test_setup_then_ready_then_drift():
    state = tempfile.mkdtemp(prefix="warden-state-")
    try:
        with Server("--state-dir", state) as s:
            r = s.call("sandbox/readiness")
            assert r["status"] == "notConfigured", r
            assert set(r["features"]) == FEATURE_KEYS and r["setupVersion"] == 1
            assert s.call("sandbox/setup") == {"started": True}
            done = completed(s)
            assert done["success"] is True and done["error"] is None, done
            names = [st["name"] for st in done["steps"]]
            assert names[0] == "state directory" and names[-1] == "write marker", names
            assert "sandboxed self-check" in names and "kernel features" in names
            check = [st for st in done["steps"] if st["name"] == "sandboxed self-check"][0]
            assert check["ok"] and "--version" in check["detail"], check
            assert all(set(st) == {"name", "ok", "detail"} for st in done["steps"])
            assert os.stat(os.path.join(state, "v1")).st_mode & 0o777 == 0o700
            with open(marker_path(state)) as f:
                marker = json.load(f)
            # The marker records the kernel's features (limits and cgroups are
            # not part of what setup checks).
            kernel = {k: v for k, v in r["features"].items() if k not in ("limits", "cgroups")}
            assert marker["setupVersion"] == 1 and marker["features"] == kernel
            assert s.call("sandbox/readiness")["status"] == "ready"
            # Drift: a marker written by another version wants an update.
            marker["version"] = "0.0.0-old"
            with open(marker_path(state), "w") as f:
                json.dump(marker, f)
            assert s.call("sandbox/readiness")["status"] == "updateRequired"
            # A kernel that changed under the marker, too.
            with open(marker_path(state)) as f:
                marker = json.load(f)
            marker["features"]["landlockAbi"] = 99
            with open(marker_path(state), "w") as f:
                json.dump(marker, f)
            assert s.call("sandbox/readiness")["status"] == "updateRequired"
            # A corrupt marker is no marker.
            with open(marker_path(state), "w") as f:
                f.write("{not json")
            assert s.call("sandbox/readiness")["status"] == "notConfigured"
            # Setup again repairs it.
            s.call("sandbox/setup")
            assert completed(s, 2)["success"] is True
            assert s.call("sandbox/readiness")["status"] == "ready"
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_failed_setup_leaves_no_marker():
    state = tempfile.mkdtemp(prefix="warden-state-")
    try:
        with Server("--state-dir", state) as s:
            s.call("sandbox/setup")
            assert completed(s)["success"] is True
            assert os.path.exists(marker_path(state))
            # The workspace step fails (cwd does not exist): the old marker was
            # removed before anything else, so a failed setup is never "ready".
            s.call("sandbox/setup", {"cwd": "/nonexistent/warden-test/ws"})
            done = completed(s, 2)
            assert done["success"] is False, done
            assert "workspace policy" in done["error"], done
            assert not os.path.exists(marker_path(state))
            assert s.call("sandbox/readiness")["status"] == "notConfigured"
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_unusable_state_dir_is_reported():
    with Server("--state-dir", "/etc/hostname/warden") as s:
        s.call("sandbox/setup")
        done = completed(s)
        assert done["success"] is False
        assert done["error"].startswith("state directory: /etc/hostname/warden"), done
        assert done["steps"][0] == {"name": "state directory", "ok": False,
                                    "detail": done["error"][len("state directory: "):]}


def test_setup_with_workspace_and_concurrent_requests():
    state = tempfile.mkdtemp(prefix="warden-state-")
    ws = tempfile.mkdtemp(prefix="warden-ws-")
    try:
        with Server("--state-dir", state) as s:
            a = s.request_async("sandbox/setup", {"cwd": ws})
            b = s.request_async("sandbox/setup")
            assert s.wait_response(a)["result"] == {"started": True}
            assert s.wait_response(b)["result"] == {"started": True}
            first, second = completed(s, 1), completed(s, 2)  # one report per request
            assert first["success"] and second["success"], (first, second)
            step = [st for st in first["steps"] if st["name"] == "workspace policy"][0]
            assert step["ok"] and ws in step["detail"] and "network proxy" in step["detail"], step
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(ws, ignore_errors=True)


def test_refresh_is_idempotent_and_checks_the_policy():
    state = tempfile.mkdtemp(prefix="warden-state-")
    ws = tempfile.mkdtemp(prefix="warden-ws-")
    try:
        with Server("--state-dir", state) as s:
            pol = {"type": "workspaceWrite"}
            r = s.call("sandbox/refresh", {"cwd": ws, "sandbox": pol})
            assert any("created state directory" in c for c in r["changes"]), r
            assert any(ws in c and "backend namespaces" in c for c in r["changes"]), r
            assert any("run sandbox/setup" in w for w in r["warnings"]), r
            # Nothing is mounted or created in the workspace by a refresh.
            assert os.listdir(ws) == []
            r = s.call("sandbox/refresh", {"cwd": ws, "sandbox": pol})
            assert r["changes"] == [], r
            s.call("sandbox/setup")
            assert completed(s)["success"]
            r = s.call("sandbox/refresh", {"cwd": ws, "sandbox": pol})
            assert r == {"changes": [], "warnings": []}, r
            # A different policy for the same workspace is a change.
            r = s.call("sandbox/refresh", {"cwd": ws, "sandbox": {"type": "readOnly"}})
            assert len(r["changes"]) == 1 and "network proxy" in r["changes"][0], r
            # Bad input names the field.
            r = s.request("sandbox/refresh", {"cwd": ws, "sandbox": {"type": "split"}})
            assert r["error"]["code"] == -32602 and r["error"]["data"]["path"].startswith(
                "params.sandbox"), r
            r = s.request("sandbox/refresh", {"cwd": "relative", "sandbox": pol})
            assert r["error"]["code"] == -32602 and r["error"]["data"]["path"] == "params.cwd"
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(ws, ignore_errors=True)


def test_setup_as_unprivileged_user():
    state = tempfile.mkdtemp(prefix="warden-state-", dir="/var/tmp")
    os.chown(state, 65534, 65534)
    binary = os.path.join(state, "warden")
    shutil.copy(os.environ["WARDEN_BIN"], binary)
    os.chmod(binary, 0o755)
    import wardenrpc
    saved = wardenrpc.WARDEN_BIN
    wardenrpc.WARDEN_BIN = binary
    try:
        with Server("--state-dir", os.path.join(state, "st"), user=(65534, 65534), cwd=state,
                    env={"HOME": state, "PATH": "/usr/bin:/bin"}) as s:
            s.call("sandbox/setup")
            done = completed(s)
            assert done["success"] is True, done
            assert s.call("sandbox/readiness")["status"] == "ready"
        assert os.stat(os.path.join(state, "st", "v1", "setup.json")).st_uid == 65534
    finally:
        wardenrpc.WARDEN_BIN = saved
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
