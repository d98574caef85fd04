"""Defence in depth, one layer at a time.

The sandbox's own view (probe.py view: /proc/self/status capability sets,
NoNewPrivs and Seccomp, a write only Landlock refuses, a read-only root,
the namespaces' inode numbers against this host's) must show every layer,
as root and as an unprivileged uid. Then, in a build with the test hooks
(cmake -DWARDEN_TEST_HOOKS=ON, as scripts/test.sh builds), each layer is
switched off in turn (WARDEN_TEST_DISABLE) the way a bug would drop it:
the view must notice exactly that layer (so the view test can fail), or the
spawn is refused with -32003 (never a weaker run); and every escape attempt
of test_escape.py that another layer also stops must still be stopped."""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
sys.path.insert(0, os.path.dirname(__file__))
from schemacheck import assert_error  # noqa: E402
from wardenrpc import WARDEN_BIN, Server, Skip, run_tests  # noqa: E402
from test_escape import ESCAPES, NOBODY, PY, WORKSPACE, Env  # noqa: E402

LAYERS = ["landlock", "seccomp", "caps", "nnp", "mounts", "userns", "pidns", "netns", "ipcns"]
# Layers whose loss the suite must be able to run past (not only refuse):
# without them a disabled-layer run proves nothing about the view test.
MUST_RUN_WITHOUT = {"landlock", "seccomp", "caps", "mounts", "netns", "ipcns"}
HOST_NS = {ns: os.readlink("/proc/self/ns/" + ns) for ns in ("user", "mnt", "pid", "net", "ipc")}


def hooks_compiled():
    """A hook build refuses an unknown layer name at startup (exit 2)."""
    p = subprocess.run([WARDEN_BIN, "--version"], env=dict(os.environ, WARDEN_TEST_DISABLE="x"),
                       capture_output=True, timeout=60)
    return p.returncode == 2 and b"WARDEN_TEST_DISABLE" in p.stderr


def require_hooks():
    if not hooks_compiled():
        raise Skip("built without -DWARDEN_TEST_HOOKS=ON (scripts/test.sh builds with it)")


# A root server may run its commands without a user namespace, keeping
# CAP_DAC_OVERRIDE and CAP_FOWNER only (to write a workspace another uid
# owns); the read-only mounts and Landlock still bound what they reach.
ROOT_KEEPABLE_CAPS = (1 << 1) | (1 << 3)
ROOT_OPTIONAL_LAYERS = {"userns"}


def missing_layers(v, root=False):
    """The layers the view shows missing (empty: all present). root: the
    server runs as root (see ROOT_KEEPABLE_CAPS)."""
    miss = set()
    keep = ROOT_KEEPABLE_CAPS if root else 0
    if any(int(v[k], 16) & ~keep for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")):
        miss.add("caps")
    if v["NoNewPrivs"] != "1":
        miss.add("nnp")
    if v["Seccomp"] != "2":
        miss.add("seccomp")
    if v["procWrite"] != "EACCES":
        miss.add("landlock")
    if not v["rootReadOnly"]:
        miss.add("mounts")
    for ns, layer in (("user", "userns"), ("pid", "pidns"), ("net", "netns"), ("ipc", "ipcns"),
                      ("mnt", "mounts")):
        if root and layer in ROOT_OPTIONAL_LAYERS:
            continue
        if v["ns"][ns] == HOST_NS[ns] or not v["ns"][ns].startswith(ns + ":["):
            miss.add(layer)
    return miss


def view(server, cwd, pid="view"):
    """Spawn the view probe under workspace-write; returns (view, None) or
    (None, error response)."""
    probe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")
    r = server.request("process/spawn", {"processId": pid, "argv": [PY, probe, "view"],
                                         "cwd": cwd, "sandbox": WORKSPACE})
    if "error" in r:
        return None, r
    x = server.wait_exit(pid, timeout=60)
    out = server.output_of(pid).decode()
    assert x["exitCode"] == 0, out
    return json.loads(out), None


def check_all_present(user, env=None):
    """The view under workspace-write (namespaces backend); returns the
    missing layers and the view."""
    e = Env(user, server_env=env)
    try:
        r = e.server.request("process/spawn", {"processId": "view",
                                               "argv": [PY, e.probe, "view"],
                                               "cwd": e.ws, "sandbox": WORKSPACE})
        assert "result" in r, r
        x = e.server.wait_exit("view", timeout=60)
        out = e.server.output_of("view").decode()
        assert x["exitCode"] == 0, out
        v = json.loads(out)
        return missing_layers(v, root=user is None), v
    finally:
        e.close()


def test_every_layer_present_as_root():
    miss, v = check_all_present(None)
    assert not miss, (miss, v)


def test_every_layer_present_unprivileged():
    miss, v = check_all_present(NOBODY)
    assert not miss, (miss, v)


def test_view_sees_each_disabled_layer():
    require_hooks()
    ran = set()
    for layer in LAYERS:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
            with Server(env={"WARDEN_TEST_DISABLE": layer}) as s:
                v, err = view(s, d)
                if err is not None:
                    # a refusal is allowed (never a weaker run), with its reason
                    e = assert_error(err, -32003)
                    assert layer not in MUST_RUN_WITHOUT, (layer, e)
                    continue
                ran.add(layer)
                want = {layer} - ROOT_OPTIONAL_LAYERS
                assert missing_layers(v, root=True) == want, (layer, missing_layers(v, True), v)
    assert MUST_RUN_WITHOUT <= ran, ran


def test_view_sees_disabled_layers_unprivileged():
    require_hooks()
    for layer in ["landlock", "seccomp", "caps", "mounts", "netns"]:
        miss, v = check_all_present(NOBODY, {"WARDEN_TEST_DISABLE": layer})
        assert miss == {layer}, (layer, miss, v)


def landlock_backend_view(env=None):
    """The Landlock-only backend (read-only, full network): no namespaces,
    so Landlock, seccomp, no_new_privs and the capability drop are all
    there is. It serves only where user namespaces are unavailable, which
    the test hook pretends."""
    env = dict(env or {}, WARDEN_TEST_FEATURES="userns=0")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        probe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")
        with Server(env=env) as s:
            r = s.call("process/spawn", {"processId": "v", "argv": [PY, probe, "view"], "cwd": d,
                                         "sandbox": {"type": "readOnly", "networkAccess": True}})
            assert r["sandbox"]["backend"] == "landlock", r
            x = s.wait_exit("v", timeout=60)
            out = s.output_of("v").decode()
            assert x["exitCode"] == 0, out
            v = json.loads(out)
    return missing_layers(v, root=True) - {"mounts", "userns", "pidns", "netns", "ipcns"}, v


def test_landlock_backend_layers_present():
    miss, v = landlock_backend_view()
    assert not miss, (miss, v)


def test_landlock_backend_sees_disabled_landlock():
    require_hooks()
    for layer in ["landlock", "seccomp", "caps"]:
        miss, v = landlock_backend_view({"WARDEN_TEST_DISABLE": layer})
        assert miss == {layer}, (layer, miss, v)


def test_escapes_hold_with_each_layer_disabled():
    require_hooks()
    for layer in LAYERS:
        e = Env(None, server_env={"WARDEN_TEST_DISABLE": layer})
        try:
            r = e.server.request("process/spawn", {"processId": "first", "argv": ["true"],
                                                   "cwd": e.ws, "sandbox": WORKSPACE})
            if "error" in r:
                assert_error(r, -32003)
                assert layer not in MUST_RUN_WITHOUT, (layer, r)
                continue
            e.server.wait_exit("first")
            checked = 0
            for check, blockers in ESCAPES:
                if blockers - {layer}:
                    try:
                        check(e)
                    except AssertionError as x:
                        raise AssertionError("%s with %s off: %s" % (check.__name__, layer, x))
                    checked += 1
            assert checked > 0
        finally:
            e.close()


if __name__ == "__main__":
    run_tests(globals())
