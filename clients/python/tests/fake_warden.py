"""A scripted stand-in for warden, for the behaviours the real server cannot
be made to show on demand. Run as ``python3 fake_warden.py``; it speaks NDJSON
JSON-RPC on stdio and answers:

- ``initialize`` (its result also holds the params it ``received``),
  ``shutdown`` (answers, then exits 0), the notification
  ``initialized``;
- ``process/spawn`` with argv ``["flood", COUNT]``: writes COUNT
  process/output notifications for the process, then process/exited, and
  only then the response (a spawn result);
- ``test/flood`` ``{processId, count}``: the same flood, answered with
  ``{"sent": count}``;
- ``test/ask`` ``{host}``: sends the server request ``approval/network``,
  waits for the client's answer and responds with
  ``{"answer": <the client's result or error object>}``;
- ``test/fail``: responds with error -32003 and data ``{"reason": "no landlock"}``;
- ``test/die``: exits with status 3 without responding;
- ``test/hang``: never responds;
- anything else: -32601.
"""

import base64
import json
import os
import sys


def send(message):
    message["jsonrpc"] = "2.0"
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def flood(process_id, count):
    chunk = base64.b64encode(b"x" * 512).decode()
    for seq in range(1, count + 1):
        send({"method": "process/output", "params": {
            "processId": process_id, "seq": seq, "stream": "stdout", "deltaBase64": chunk}})
    send({"method": "process/exited", "params": {
        "processId": process_id, "seq": count + 1, "exitCode": 0, "signal": None,
        "timedOut": False, "durationMs": 1}})


def main():
    next_server_id = 1
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        method, rid, params = message.get("method"), message.get("id"), message.get("params") or {}
        if method is None or rid is None:
            continue  # a notification, or a stray response
        if method == "initialize":
            send({"id": rid, "result": {
                "serverInfo": {"name": "warden", "version": "0.0.0-fake"},
                "protocolVersion": 1,
                "platform": {"os": "Linux", "arch": "x86_64", "kernel": "fake"},
                "sandbox": {"landlockAbi": 0, "userNamespaces": False,
                            "networkNamespaces": False, "seccomp": False},
                "received": params}})
        elif method == "shutdown":
            send({"id": rid, "result": {}})
            return 0
        elif method == "process/spawn" and params["argv"][0] == "flood":
            flood(params["processId"], int(params["argv"][1]))
            send({"id": rid, "result": {
                "processId": params["processId"], "pid": 1,
                "sandbox": {"enforced": False, "backend": "none", "network": "full"}}})
        elif method == "test/flood":
            flood(params["processId"], params["count"])
            send({"id": rid, "result": {"sent": params["count"]}})
        elif method == "test/ask":
            server_id = next_server_id
            next_server_id += 1
            send({"id": server_id, "method": "approval/network", "params": {
                "approvalId": "a%d" % server_id, "host": params["host"], "port": 443,
                "protocol": "https", "processIds": ["p1"], "reason": "not allowlisted",
                "startedAtMs": 0}})
            answer = None
            for reply in sys.stdin:
                reply = json.loads(reply)
                if reply.get("id") == server_id and "method" not in reply:
                    answer = reply.get("result", reply.get("error"))
                    break
            send({"id": rid, "result": {"answer": answer}})
        elif method == "test/fail":
            send({"id": rid, "error": {"code": -32003, "message": "sandbox cannot be enforced",
                                       "data": {"reason": "no landlock"}}})
        elif method == "test/die":
            os._exit(3)
        elif method == "test/hang":
            pass
        else:
            send({"id": rid, "error": {"code": -32601, "message": "method not found"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
