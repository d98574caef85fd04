"""The typed approval handler: NetworkApproval in, Decision out, with the
blocking and the asyncio client, against tests/fake_warden.py (which sends
approval/network on demand and reports the client's answer)."""

import unittest

from support import fake_client_args

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
        r = ApprovalResolved.from_params({"approvalId": "net-1", "decision": "deny", "waiters": 50})
        self.assertEqual(r, ("net-1", Decision.DENY, 50))
        self.assertIs(r.decision, Decision.DENY)


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


if __name__ == "__main__":
    unittest.main()
