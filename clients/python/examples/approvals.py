"""Answer network approval prompts: sandboxed commands fetch a URL through
warden's proxy, and the handler decides what goes out.

    WARDEN_BIN=build/server/warden python3 clients/python/examples/approvals.py
"""

import http.server
import sys
import tempfile
import threading

from warden_client import ApprovalResolved, Decision, NetworkApproval, WardenClient


class Hello(http.server.BaseHTTPRequestHandler):  # a local origin (loopback only)
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"hello\n")

    def log_message(self, *args):
        pass


origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
threading.Thread(target=origin.serve_forever, daemon=True).start()
port = origin.server_address[1]


def on_approval(req: NetworkApproval) -> Decision:
    # One prompt per (host, protocol, port), however many requests wait on it.
    print("asked:", req.protocol, req.host, req.port == port, "for", list(req.process_ids))
    return Decision.ALLOW_FOR_SESSION if req.port == port else Decision.DENY


# What the sandboxed command runs: a GET through the proxy warden gives it.
FETCH = """import http.client, os, sys
host, p = os.environ["HTTP_PROXY"].rsplit("/", 1)[1].split(":")
conn = http.client.HTTPConnection(host, int(p), timeout=60)
conn.request("GET", sys.argv[1])
r = conn.getresponse()
print(r.status, r.read().decode().strip())"""

with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as workspace, \
        WardenClient(args=["--state-dir", state], on_approval=on_approval) as client:
    # Nothing is allowed outright, so every destination asks; loopback is a
    # local address, which the policy must let through to be asked about.
    client.network_policy_set(allowed_domains=[], denied_domains=[], mode="full",
                              allow_local_binding=True)
    # networkAccess false: no network but through warden's proxy.
    sandbox = {"type": "workspaceWrite", "networkAccess": False}
    for attempt in (1, 2):  # the second one is not asked: allowed for the session
        proc = client.run([sys.executable, "-c", FETCH, "http://127.0.0.1:%d/" % port],
                          process_id="fetch%d" % attempt, cwd=workspace, sandbox=sandbox,
                          timeout=60)
        print("fetch %d:" % attempt, proc.stdout.decode().strip())
    for note in client.notifications(timeout=10):
        if note.method == "approval/resolved":
            resolved = ApprovalResolved.from_params(note.params)
            print("resolved:", resolved.decision.value, "for", resolved.waiters, "request(s)")
            break
origin.shutdown()
