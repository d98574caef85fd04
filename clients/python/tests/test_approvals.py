"""The typed approval handler: NetworkApproval in, Decision out, with the
blocking and the asyncio client, against tests/fake_warden.py (which sends
approval/network on demand and reports the client's answer)."""

import http.server
import os
import subprocess
import sys
import tempfile
import threading
import unittest

from support import PACKAGE_ROOT, REPO_ROOT, fake_client_args, real_warden

from warden_client import (
    ApprovalResolved, AsyncWardenClient, Decision, NetworkApproval, WardenClient)


class TypedValuesTest(unittest.TestCase):
    def test_network_approval_attributes(self):
        req = NetworkApproval({"approvalId": "net-7", "host": "a.example", "port": 443,
                               "protocol": "https", "processIds": ["p1", "p2"],
                               "reason": "a.example is not in allowedDomains",
                               "startedAtMs": 1700000000000})
        self.assertEqual((req.approval_id, req.host, req.port, req.protocol),
                         ("net-7", "a.example", 443, "https"))
        self.assertEqual(req.process_ids, ("p1", "p2"))
        self.assertEqual(req.key, ("a.example", "https", 443))
        self.assertEqual(req.started_at_ms, 1700000000000)
        self.assertEqual(req["host"], "a.example")  # still the params dict

    def test_decision_is_the_wire_string(self):
        self.assertEqual(Decision.ALLOW_FOR_SESSION, "allowForSession")
        self.assertEqual(str(Decision.DENY_ALWAYS), "denyAlways")
        self.assertTrue(Decision.ALLOW_ALWAYS.allows)
        self.assertFalse(Decision.DENY.allows)
        self.assertEqual([d.value for d in Decision],
                         ["allowOnce", "allowForSession", "allowAlways", "deny", "denyAlways"])

    def test_resolved_from_params(self):
        r = ApprovalResolved.from_params({"approvalId": "net-1", "decision": "deny", "waiters": 50,
                                          "reason": "approval_timeout"})
        self.assertEqual(r, ("net-1", Decision.DENY, 50, "approval_timeout"))
        self.assertIs(r.decision, Decision.DENY)
        ok = ApprovalResolved.from_params({"approvalId": "net-2", "decision": "allowOnce",
                                           "waiters": 1})
        self.assertIsNone(ok.reason)


class BlockingTypedHandlerTest(unittest.TestCase):
    def client(self, **kwargs):
        client = WardenClient(**fake_client_args(), request_timeout=30, **kwargs)
        self.addCleanup(client.close)
        return client

    def test_handler_gets_a_network_approval_and_returns_a_decision(self):
        seen = []

        def on_approval(req: NetworkApproval) -> Decision:
            seen.append(req)
            return Decision.ALLOW_FOR_SESSION if req.host == "ok.example" else Decision.DENY

        client = self.client(on_approval=on_approval)
        self.assertEqual(client.request("test/ask", {"host": "ok.example"})["answer"],
                         {"decision": "allowForSession"})
        self.assertEqual(client.request("test/ask", {"host": "no.example"})["answer"],
                         {"decision": "deny"})
        self.assertIsInstance(seen[0], NetworkApproval)
        self.assertEqual((seen[0].host, seen[0].port, seen[0].protocol, seen[0].process_ids),
                         ("ok.example", 443, "https", ("p1",)))

    def test_a_result_with_a_decision_member(self):
        client = self.client(on_approval=lambda req: {"decision": Decision.DENY_ALWAYS})
        self.assertEqual(client.request("test/ask", {"host": "x"})["answer"],
                         {"decision": "denyAlways"})

    def test_a_handler_that_answers_nothing_valid_sends_an_error(self):
        client = self.client(on_approval=lambda req: None)
        answer = client.request("test/ask", {"host": "x"})["answer"]
        self.assertEqual(answer["code"], -32603)
        self.assertIn("no valid decision", answer["message"])


class AsyncTypedHandlerTest(unittest.IsolatedAsyncioTestCase):
    async def client(self, **kwargs):
        client = await AsyncWardenClient.start(**fake_client_args(), **kwargs)
        self.addAsyncCleanup(client.close)
        return client

    async def test_coroutine_handler(self):
        async def on_approval(req: NetworkApproval) -> Decision:
            return Decision.ALLOW_ONCE if req.port == 443 else Decision.DENY

        client = await self.client(on_approval=on_approval)
        self.assertEqual((await client.request("test/ask", {"host": "a"}))["answer"],
                         {"decision": "allowOnce"})

    async def test_plain_handler_gets_the_typed_request(self):
        seen = []
        client = await self.client(on_approval=lambda req: seen.append(req) or Decision.DENY)
        self.assertEqual((await client.request("test/ask", {"host": "b"}))["answer"],
                         {"decision": "deny"})
        self.assertIsInstance(seen[0], NetworkApproval)
        self.assertEqual(seen[0].approval_id, "a1")


class _RealServer:
    """The handler against the real server: a sandboxed command's request
    through warden's proxy is held until the handler answers."""

    FETCH = ("import http.client, os, sys\n"
             "h, p = os.environ['HTTP_PROXY'].rsplit('/', 1)[1].split(':')\n"
             "c = http.client.HTTPConnection(h, int(p), timeout=60)\n"
             "c.request('GET', sys.argv[1])\n"
             "print(c.getresponse().status)")

    def setUp(self):
        class Hello(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"hi")

            def log_message(self, *args):
                pass
        self.origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
        threading.Thread(target=self.origin.serve_forever, daemon=True).start()
        self.addCleanup(self.origin.server_close)
        self.addCleanup(self.origin.shutdown)
        self.url = "http://127.0.0.1:%d/" % self.origin.server_address[1]
        self.state = tempfile.TemporaryDirectory()
        self.work = tempfile.TemporaryDirectory()
        self.addCleanup(self.state.cleanup)
        self.addCleanup(self.work.cleanup)

    def _blocking_fetch(self, decision):
        seen = []

        def on_approval(req):
            seen.append(req)
            return decision
        with WardenClient(real_warden(), args=["--state-dir", self.state.name],
                          on_approval=on_approval, request_timeout=60) as client:
            client.network_policy_set(allowed_domains=[], denied_domains=[], mode="full",
                                      allow_local_binding=True)
            proc = client.run(["/usr/bin/python3", "-c", self.FETCH, self.url], cwd=self.work.name,
                              sandbox={"type": "workspaceWrite", "networkAccess": False},
                              timeout=60)
            rules = client.network_policy_get().get("approvalRules", [])
        return seen, proc.stdout.decode().strip(), rules



class RealServerBlockingTest(_RealServer, unittest.TestCase):
    def test_the_example_answers_a_prompt(self):
        env = dict(os.environ, WARDEN_BIN=real_warden(), PYTHONPATH=PACKAGE_ROOT)
        proc = subprocess.run([sys.executable, os.path.join(PACKAGE_ROOT, "examples", "approvals.py")],
                              env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        self.assertEqual(proc.stdout.decode().splitlines(), [
            "asked: http 127.0.0.1 True for ['fetch1']",
            "fetch 1: 200 hello",
            "fetch 2: 200 hello",
            "resolved: allowForSession for 1 request(s)"])

    def test_readme_shows_the_example(self):
        with open(os.path.join(PACKAGE_ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        with open(os.path.join(PACKAGE_ROOT, "examples", "approvals.py"), encoding="utf-8") as f:
            self.assertIn("```python\n" + f.read() + "```", readme)

    def test_blocking_handler_allow_always(self):
        seen, out, rules = self._blocking_fetch(Decision.ALLOW_ALWAYS)
        self.assertEqual(out, "200")
        self.assertEqual((seen[0].host, seen[0].protocol, seen[0].process_ids),
                         ("127.0.0.1", "http", ("p1",)))
        self.assertEqual(rules, [{"action": "allow", "protocol": "http", "host": "127.0.0.1",
                                  "port": self.origin.server_address[1]}])

    def test_blocking_handler_deny(self):
        seen, out, rules = self._blocking_fetch(Decision.DENY)
        self.assertEqual((len(seen), out, rules), (1, "403", []))



class RealServerAsyncTest(_RealServer, unittest.IsolatedAsyncioTestCase):
    async def test_async_handler(self):
        seen = []

        async def on_approval(req: NetworkApproval) -> Decision:
            seen.append(req)
            return Decision.ALLOW_ONCE
        client = await AsyncWardenClient.start(real_warden(), args=["--state-dir", self.state.name],
                                               on_approval=on_approval)
        self.addAsyncCleanup(client.close)
        await client.network_policy_set(allowed_domains=[], denied_domains=[], mode="full",
                                        allow_local_binding=True)
        proc = await client.run(["/usr/bin/python3", "-c", self.FETCH, self.url],
                                cwd=self.work.name,
                                sandbox={"type": "workspaceWrite", "networkAccess": False},
                                timeout=60)
        self.assertEqual(proc.stdout.decode().strip(), "200")
        self.assertEqual(len(seen), 1)
        self.assertIsInstance(seen[0], NetworkApproval)


if __name__ == "__main__":
    unittest.main()
