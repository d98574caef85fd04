"""The wire: framing, envelope, ids, lifecycle and every error code of the
foundation, against the real binary."""

import json
import shutil
import os
import signal
import subprocess
import tempfile
import threading
import time

from wardenrpc import WARDEN_BIN, Server, run_tests


def test_initialize_result_shape():
    with Server(init=False) as s:
        r = s.request("initialize", {"clientInfo": {"name": "t", "version": "1"}})
        res = r["result"]
        assert r["jsonrpc"] == "2.0"
        assert res["serverInfo"]["name"] == "warden"
        assert res["protocolVersion"] == 1
        assert res["platform"]["os"] == "Linux"
        f = res["sandbox"]
        assert set(f) == {"landlockAbi", "userNamespaces", "networkNamespaces", "seccomp",
                          "limits", "cgroups"}
        assert isinstance(f["landlockAbi"], int)


def test_request_before_initialize_and_second_initialize():
    with Server(init=False) as s:
        r = s.request("process/list")
        assert r["error"]["code"] == -32600 and "not initialized" in r["error"]["message"]
        s.call("initialize", {"clientInfo": {"name": "t"}})
        r = s.request("initialize", {"clientInfo": {"name": "t"}})
        assert r["error"]["code"] == -32600 and "already" in r["error"]["message"]


def test_ids_echoed_with_type():
    with Server() as s:
        r = s.request("process/list", id="abc")
        assert r["id"] == "abc"
        r = s.request("process/list", id=7)
        assert r["id"] == 7 and isinstance(r["id"], int)
        # The same string and integer spelled alike stay distinct.
        s.send({"id": "8", "method": "process/list"})
        s.send({"id": 8, "method": "process/list"})
        assert s.wait_response("8")["id"] == "8"
        assert s.wait_response(8)["id"] == 8


def test_without_jsonrpc_field_accepted_and_always_written():
    with Server() as s:
        s.send({"id": 1000, "method": "process/list"})
        r = s.wait_response(1000)
        assert r["jsonrpc"] == "2.0" and "result" in r
        s.send({"jsonrpc": "1.0", "id": 1001, "method": "process/list"})
        assert s.wait_response(1001)["error"]["code"] == -32600


def test_parse_error_then_keeps_serving():
    with Server() as s:
        s.send_raw('{"id": 5, "method": \n')
        s.send_raw(b'{"id": 6, "method": "process/list", "x": "\xff\xfe"}\n')  # invalid UTF-8
        s.send_raw("[" * 100000 + "\n")  # deep nesting
        s.send_raw('{"id": 9, "method": "process/list"}\n')
        assert s.wait_response(9)["result"] == {"processes": []}
        errors = [json.loads(l) for l in s.lines if '"error"' in l]
        parse = [e for e in errors if e["error"]["code"] == -32700]
        assert len(parse) == 3, errors
        assert all(e["id"] is None for e in parse)


def test_invalid_requests():
    with Server() as s:
        s.send_raw("42\n")
        s.send_raw("[]\n")
        s.send({"id": 3.5, "method": "process/list"})
        s.send({"id": 11, "method": 5})
        s.send({"id": 12})
        s.send({"id": 13, "method": "process/list"})
        s.wait_response(13)  # answered in order: every earlier line's answer is in
        codes = [json.loads(l)["error"]["code"] for l in s.lines if '"error"' in l]
        assert codes.count(-32600) == 5, codes


def test_method_not_found_and_unbuilt_methods():
    with Server() as s:
        r = s.request("nope/nothing")
        assert r["error"]["code"] == -32601 and "nope/nothing" in r["error"]["message"]
        # Described in the protocol (the schema has it) but not a client method.
        r = s.request("approval/network", {})
        assert r["error"]["code"] == -32601


def test_invalid_params_carry_path():
    with Server() as s:
        r = s.request("process/spawn", {"processId": "p", "argv": []})
        e = r["error"]
        assert e["code"] == -32602 and e["data"]["path"] == "params.argv", e
        r = s.request("process/spawn", {"processId": "p", "argv": ["true"], "tty": True,
                                        "size": {"rows": 0, "cols": 80}})
        assert r["error"]["data"]["path"] == "params.size.rows"
        assert r["error"]["data"]["expected"] == "integer 1..65535"
        r = s.request("process/spawn", {"processId": "p", "argv": ["true"], "bogus": 1})
        assert r["error"]["data"]["path"] == "params.bogus"
        r = s.request("process/spawn", {"argv": ["true"]})
        assert r["error"]["data"]["path"] == "params.processId"
        r = s.request("process/spawn", {"processId": "p", "argv": ["true"],
                                        "sandbox": {"type": "nope"}})
        assert r["error"]["data"]["path"] == "params.sandbox.type"
        r = s.request("process/list", [1, 2])
        assert r["error"]["code"] == -32602


def test_oversize_line_skipped():
    with Server("--max-line-bytes", "1024") as s:
        s.send_raw('{"id": 1, "method": "process/list", "pad": "' + "x" * 5000 + '"}\n')
        s.send_raw('{"id": 2, "method": "process/list"}\n')
        assert "result" in s.wait_response(2)
        over = [json.loads(l) for l in s.lines if "exceeds" in l]
        assert len(over) == 1 and over[0]["error"]["code"] == -32600
        assert over[0]["id"] is None
        # A line exactly at the limit is fine.
        body = '{"id": 3, "method": "process/list"}'
        s.send_raw(body + " " * (1024 - len(body)) + "\n")
        assert "result" in s.wait_response(3)


def test_split_and_joined_writes():
    with Server() as s:
        msg = json.dumps({"id": 21, "method": "process/list"}) + "\n"
        for ch in msg:
            s.send_raw(ch)
        joined = "".join(json.dumps({"id": i, "method": "process/list"}) + "\n"
                         for i in range(22, 30))
        s.send_raw(joined)
        for i in range(21, 30):
            assert "result" in s.wait_response(i)


def test_partial_line_at_eof_and_exit_code():
    p = subprocess.Popen([WARDEN_BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    out, _ = p.communicate(b'{"id":1,"method":"initialize","params":{"clientInfo":{"name":"x"}}}\n'
                           b'{"id":2,"method":"process/list"}', timeout=30)
    assert p.returncode == 0
    ids = [json.loads(l)["id"] for l in out.decode().splitlines()]
    assert ids == [1, 2]


def test_stdin_regular_file():
    with tempfile.NamedTemporaryFile("w", suffix=".ndjson") as f:
        f.write('{"id":1,"method":"initialize","params":{"clientInfo":{"name":"x"}}}\n')
        for i in range(2, 50):
            f.write('{"id":%d,"method":"process/list"}\n' % i)
        f.flush()
        with open(f.name, "rb") as fin:
            p = subprocess.run([WARDEN_BIN], stdin=fin, capture_output=True, timeout=30)
        assert p.returncode == 0
        assert len(p.stdout.decode().splitlines()) == 49


def test_pipelined_10000_each_answered_once():
    with Server() as s:
        # ids from 1000: the handshake used small ones
        ids = range(1000, 11000)
        payload = "".join(json.dumps({"jsonrpc": "2.0", "id": i, "method": "process/list"}) + "\n"
                          for i in ids)
        writer = threading.Thread(target=s.send_raw, args=(payload,))
        writer.start()
        s.wait_response(ids[-1], timeout=120)
        writer.join()
        s.request("process/list")  # a request behind them all: any duplicate came first
        with s.cond:
            counts = {k: len(v) for k, v in s.responses.items()}
        for i in ids:
            assert counts.get(json.dumps(i)) == 1, i


def test_sigterm_exits_cleanly():
    s = Server()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(30) == 0


def test_opt_out_notifications():
    with Server(init=False) as s:
        s.call("initialize", {"clientInfo": {"name": "t"}, "capabilities": {
            "optOutNotificationMethods": ["process/output"]}})
        s.call("process/spawn", {"processId": "a", "argv": ["echo", "hi"],
                                 "sandbox": {"type": "dangerFullAccess"}})
        s.wait_exit("a")
        assert not [n for n in s.notifications if n["method"] == "process/output"]


def test_overloaded_when_inflight_full():
    with tempfile.NamedTemporaryFile("w", suffix=".json") as cfg:
        json.dump({"maxInflight": 2}, cfg)
        cfg.flush()
        with Server("--config", cfg.name) as s:
            s.call("process/spawn", {"processId": "slow", "argv": ["sleep", "30"],
                                     "sandbox": {"type": "dangerFullAccess"}})
            a = s.request_async("process/read", {"processId": "slow", "waitMs": 1500})
            b = s.request_async("process/read", {"processId": "slow", "waitMs": 1500})
            r = s.request("process/list")
            assert r["error"]["code"] == -32001, r
            assert r["error"]["data"]["maxInflight"] == 2
            # The parked reads time out and are answered; then there is room.
            assert s.wait_response(a)["result"]["exited"] is False
            assert s.wait_response(b)["result"]["exited"] is False
            s.call("process/terminate", {"processId": "slow", "signal": "KILL"})
            assert "result" in s.request("process/list")


def test_config_errors_and_cli():
    with tempfile.NamedTemporaryFile("w", suffix=".json") as cfg:
        json.dump({"maxInflight": 2, "bogusKey": 1}, cfg)
        cfg.flush()
        p = subprocess.run([WARDEN_BIN, "--config", cfg.name], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
        assert p.returncode == 2 and b"bogusKey" in p.stderr
    p = subprocess.run([WARDEN_BIN, "--max-line-bytes", "ten"], capture_output=True, timeout=10)
    assert p.returncode == 2 and b"--max-line-bytes" in p.stderr
    p = subprocess.run([WARDEN_BIN, "--version"], capture_output=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith(b"warden ")
    p = subprocess.run([WARDEN_BIN, "--help"], capture_output=True, timeout=10)
    assert p.returncode == 0 and b"generate-json-schema" in p.stdout
    p = subprocess.run([WARDEN_BIN, "--frobnicate"], capture_output=True, timeout=10)
    assert p.returncode == 2 and b"--frobnicate" in p.stderr


def test_config_from_env():
    with tempfile.NamedTemporaryFile("w", suffix=".json") as cfg:
        json.dump({"maxLineBytes": 256}, cfg)
        cfg.flush()
        with Server(env={"WARDEN_CONFIG": cfg.name}) as s:
            s.send_raw('{"id": 1, "method": "process/list", "pad": "' + "x" * 400 + '"}\n')
            s.send_raw('{"id": 2, "method": "process/list"}\n')
            s.wait_response(2)
            assert any("exceeds" in l for l in s.lines)


def test_json_logs():
    with Server(env={"WARDEN_LOG": "info", "WARDEN_LOG_FORMAT": "json"}) as s:
        s.call("process/list")
    lines = [l for l in s.stderr_lines if l.strip()]
    assert lines, "expected info logs"
    for l in lines:
        obj = json.loads(l)
        assert {"ts", "level", "module", "msg"} <= set(obj)


def test_server_to_client_response_for_unknown_id_is_ignored():
    with Server() as s:
        s.send({"jsonrpc": "2.0", "id": 999, "result": {}})
        s.send({"jsonrpc": "2.0", "id": "x", "error": {"code": 1, "message": "m"}})
        assert "result" in s.request("process/list")


def errors_with_null_id(s):
    with s.cond:
        return [json.loads(l) for l in s.lines
                if '"error"' in l and json.loads(l).get("id") is None]


def test_valid_json_is_never_a_parse_error():
    with Server() as s:
        cases = [
            (101, '{"id":101,"method":"process/spawn","params":{"processId":"a\\u0000b",'
                  '"argv":["true"]}}', "params.processId"),
            (102, '{"id":102,"method":"process/spawn","params":{"processId":"p",'
                  '"argv":["a\\u0000b"]}}', "params.argv[0]"),
            (103, '{"id":103,"method":"process/read","params":{"processId":"x",'
                  '"afterSeq":123456789012345678901234567890}}', "params.afterSeq"),
            (104, '{"id":104,"method":"process/read","params":{"processId":"x",'
                  '"waitMs":1e400}}', "params.waitMs"),
            (105, '{"id":105,"method":"process/read","params":{"processId":"x",'
                  '"maxBytes":-1e400}}', "params.maxBytes"),
            (106, '{"id":106,"method":"process/list","params":{"a\\u0000b":1}}', None),
            ("s\u00e9", '{"id":"s\\u00e9","method":"process/read","params":{"processId":"x",'
                        '"afterSeq":99999999999999999999}}', "params.afterSeq"),
        ]
        for rid, line, path in cases:
            s.send_raw(line + "\n")
            e = s.wait_response(rid)["error"]
            assert e["code"] == -32602, (line, e)
            if path:
                assert e["data"]["path"] == path, (line, e)
            else:
                assert e["data"]["path"].startswith("params."), (line, e)
        # The out-of-range number is named.
        e = s.wait_response(104)["error"]
        assert "1e400" in e["message"] and "out of range" in e["message"], e
        # A method name with NUL in it is not a method; an id beyond 64 bits
        # cannot be echoed: -32600 with a null id. Neither is a parse error.
        s.send_raw('{"id":107,"method":"process/list\\u0000x"}\n')
        assert s.wait_response(107)["error"]["code"] == -32601
        s.send_raw('{"id":123456789012345678901234567890,"method":"process/list"}\n')
        s.send_raw('{"id":108,"method":"process/list"}\n')
        assert "result" in s.wait_response(108)
        nulls = errors_with_null_id(s)
        assert [e["error"]["code"] for e in nulls] == [-32600], nulls
        # A line that is not JSON is still -32700.
        s.send_raw('{"id":109,\n')
        s.send_raw('{"id":110,"method":"process/list"}\n')
        s.wait_response(110)
        assert errors_with_null_id(s)[-1]["error"]["code"] == -32700


def test_batches_refused_as_a_whole():
    with Server() as s:
        s.send_raw(json.dumps([{"jsonrpc": "2.0", "id": 201, "method": "process/list"},
                               {"jsonrpc": "2.0", "id": 202, "method": "process/spawn",
                                "params": {"processId": "b", "argv": ["true"]}}]) + "\n")
        s.send({"id": 203, "method": "process/list"})
        assert s.wait_response(203)["result"] == {"processes": []}  # nothing ran
        assert "201" not in s.responses and "202" not in s.responses
        e = errors_with_null_id(s)
        assert len(e) == 1 and e[0]["error"]["code"] == -32600, e
        assert e[0]["error"]["data"] == {"batch": True}
        assert "batches are not supported" in e[0]["error"]["message"]


def test_request_sent_as_notification_is_refused_not_dropped():
    with Server() as s:
        s.notify("process/spawn", {"processId": "n", "argv": ["touch", "/nonexistent-x"]})
        s.notify("no/such/method")
        s.notify("initialized")  # a real notification: no answer
        s.send({"id": 301, "method": "process/list"})
        assert s.wait_response(301)["result"] == {"processes": []}  # the spawn did not run
        time.sleep(0.2)
        e = errors_with_null_id(s)
        assert [x["error"]["code"] for x in e] == [-32600, -32601], e
        assert e[0]["error"]["data"] == {"method": "process/spawn"}
        assert "needs an id" in e[0]["error"]["message"]
        assert e[1]["error"]["data"] == {"method": "no/such/method"}


def test_shutdown_always_answered():
    # Before initialize.
    s = Server(init=False)
    assert s.request("shutdown") == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert s.proc.wait(30) == 0
    # At the in-flight limit: never -32001.
    with tempfile.NamedTemporaryFile("w", suffix=".json") as cfg:
        json.dump({"maxInflight": 1}, cfg)
        cfg.flush()
        s = Server("--config", cfg.name)
        s.call("process/spawn", {"processId": "slow", "argv": ["sleep", "30"],
                                 "sandbox": {"type": "dangerFullAccess"}})
        s.request_async("process/read", {"processId": "slow", "waitMs": 60000})
        r = s.request("process/list")
        assert r["error"]["code"] == -32001, r
        a = s.request_async("shutdown")
        b = s.request_async("shutdown")
        assert s.wait_response(a)["result"] == {}
        assert s.wait_response(b)["result"] == {}
        assert s.proc.wait(30) == 0


def test_contract_decisions_in_schema_and_binary():
    from schemacheck import Checker
    c = Checker()
    defs = c.bundle["definitions"]
    spawn = defs["ProcessSpawnParams"]["properties"]
    # null for an optional field means absent: the schema accepts it, so does the binary.
    assert "null" in spawn["cwd"]["type"], spawn["cwd"]
    assert {"type": "null"} in spawn["sandbox"]["anyOf"], spawn["sandbox"]
    assert None in defs["EnvPolicy"]["properties"]["inherit"]["enum"]
    # the deltaBase64 pattern requires padding, as the binary does
    import re
    pattern = defs["ProcessOutputNotification"]["properties"]["deltaBase64"]["pattern"]
    for good in ["", "aGk=", "aGkh", "aA=="]:
        assert re.match(pattern, good), good
    for bad in ["aGk", "a", "aA=", "aA=a", "===="]:
        assert not re.match(pattern, bad), bad
    with Server() as s:
        r = s.request("process/spawn", {"processId": "n", "argv": ["true"], "cwd": None,
                                        "env": None, "tty": None, "size": None,
                                        "sandbox": {"type": "dangerFullAccess"},
                                        "arg0": None, "streamStdin": None})
        assert "result" in r, r
        s.wait_exit("n")
        for bad in ["aGk", "aA=a"]:
            r = s.request("process/write", {"processId": "n", "deltaBase64": bad})
            assert r["error"]["code"] == -32602, (bad, r)
            assert r["error"]["data"]["path"] == "params.deltaBase64"
        # processId length in characters: 256 three-byte characters are fine, 257 are not
        ok = "\u20ac" * 256
        r = s.request("process/spawn", {"processId": ok, "argv": ["true"],
                                        "sandbox": {"type": "dangerFullAccess"}})
        assert "result" in r, r["error"]
        s.wait_exit(ok)
        r = s.request("process/spawn", {"processId": ok + "x", "argv": ["true"]})
        assert r["error"]["data"]["path"] == "params.processId", r
        assert "257 characters" in r["error"]["message"], r


def test_python_client_refuses_a_request_as_notification():
    from warden_client import _common
    try:
        _common.notification_message("process/spawn", {"processId": "x", "argv": ["true"]})
    except ValueError as e:
        assert "is a request" in str(e)
    else:
        raise AssertionError("sent a request as a notification")
    assert _common.notification_message("initialized", None)["method"] == "initialized"


def test_retain_bytes_zero_keeps_nothing():
    with tempfile.NamedTemporaryFile("w", suffix=".json") as cfg:
        json.dump({"retainBytes": 0}, cfg)
        cfg.flush()
        for args in (["--retain-bytes", "0"], ["--config", cfg.name]):
            with Server(*args) as s:
                s.call("process/spawn", {"processId": "r", "argv": ["echo", "hello"],
                                         "sandbox": {"type": "dangerFullAccess"}})
                s.wait_exit("r")
                assert s.output_of("r") == b"hello\n"  # streamed, just not kept
                r = s.call("process/read", {"processId": "r"})
                assert r["chunks"] == [] and r["exited"] is True, (args, r)
    with Server("--retain-bytes", "3") as s:  # a small ring still keeps something
        s.call("process/spawn", {"processId": "r", "argv": ["echo", "hello"],
                                 "sandbox": {"type": "dangerFullAccess"}})
        s.wait_exit("r")
        assert s.call("process/read", {"processId": "r"})["chunks"], "a 3-byte ring kept nothing"


def test_missing_cwd_is_a_warning():
    missing = "/nonexistent-warden-cwd-%d" % os.getpid()
    state = tempfile.mkdtemp(prefix="warden-state-")
    try:
        with Server("--state-dir", state) as s:
            r = s.call("policy/resolve", {"sandbox": {"type": "workspaceWrite"}, "cwd": missing})
            assert any(missing in w for w in r["warnings"]), r
            r = s.call("policy/resolve", {"sandbox": {"type": "workspaceWrite"}, "cwd": "/tmp"})
            assert r["warnings"] == [], r
            r = s.call("sandbox/refresh", {"sandbox": {"type": "workspaceWrite"}, "cwd": missing})
            assert any(missing in w for w in r["warnings"]), r
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_queued_setup_keeps_its_cwd():
    state = tempfile.mkdtemp(prefix="warden-state-")
    missing = "/nonexistent-warden-ws-%d" % os.getpid()
    try:
        with Server("--state-dir", state) as s:
            # The second setup is queued behind the first; its cwd does not
            # exist, so its workspace step must fail and it writes no marker.
            a, b = s.request_async("sandbox/setup"), s.request_async("sandbox/setup",
                                                                     {"cwd": missing})
            assert s.wait_response(a)["result"] == {"started": True}
            assert s.wait_response(b)["result"] == {"started": True}
            def setups():
                return [m["params"] for m in s.notifications
                        if m.get("method") == "sandbox/setupCompleted"]
            s.wait_for(lambda m: len(setups()) >= 2, timeout=60)
            done = setups()
            first, second = done
            if not first["success"]:
                # This host cannot set up a sandbox at all (e.g. under valgrind,
                # which has no landlock or seccomp): the workspace step is never
                # reached, so there is nothing to compare.
                assert second["success"] is False, second
                return
            steps = {st["name"]: st for st in second["steps"]}
            assert "workspace policy" in steps, second
            assert steps["workspace policy"]["ok"] is False and missing in steps[
                "workspace policy"]["detail"], second
            assert second["success"] is False and "write marker" not in steps, second
    finally:
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
