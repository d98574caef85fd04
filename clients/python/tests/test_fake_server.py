"""Client behaviour the real server cannot be made to show on demand, against
tests/fake_warden.py: notification floods, server requests answered through the
callback API, error objects, and a server that dies mid-request."""

import asyncio
import threading
import unittest

from support import fake_client_args

from warden_client import AsyncWardenClient, ServerExitedError, WardenClient, WardenError

FLOOD = 5000  # ~3.5 MB of notifications: far more than a pipe buffer holds


class BlockingFakeServerTest(unittest.TestCase):
    def client(self, **kwargs):
        client = WardenClient(**fake_client_args(), request_timeout=30, **kwargs)
        self.addCleanup(client.close)
        return client

    def test_handshake(self):
        client = self.client()
        self.assertEqual(client.server_info["serverInfo"]["version"], "0.0.0-fake")

    def test_flood_of_notifications_does_not_block_a_pending_request(self):
        client = self.client()
        # The response comes after FLOOD notifications nobody reads yet.
        proc = client.spawn(["flood", str(FLOOD)], process_id="f1")
        events = list(proc.events(timeout=60))
        self.assertEqual(len(events), FLOOD + 1)
        self.assertEqual([e.params["seq"] for e in events], list(range(1, FLOOD + 2)))
        self.assertEqual(events[-1].method, "process/exited")
        self.assertEqual(events[0].data, b"x" * 512)
        self.assertEqual(proc.stdout, b"x" * 512 * FLOOD)
        self.assertEqual(proc.exit_code, 0)

    def test_concurrent_requests_during_a_flood(self):
        client = self.client()
        futures = [client.send_request("test/flood", {"processId": "c%d" % i, "count": 300})
                   for i in range(10)]
        self.assertEqual([f.result(20) for f in futures], [{"sent": 300}] * 10)
        notes = [client.next_notification(timeout=30) for _ in range(10 * 301)]
        self.assertEqual(sum(n.method == "process/exited" for n in notes), 10)

    def test_unrouted_notifications_go_to_the_general_queue(self):
        client = self.client()
        client.request("test/flood", {"processId": "elsewhere", "count": 3})
        notes = [client.next_notification(timeout=30) for _ in range(4)]
        self.assertEqual([n.method for n in notes], ["process/output"] * 3 + ["process/exited"])

    def test_error_carries_code_message_and_data(self):
        client = self.client()
        with self.assertRaises(WardenError) as caught:
            client.request("test/fail")
        self.assertEqual(caught.exception.code, -32003)
        self.assertEqual(caught.exception.message, "sandbox cannot be enforced")
        self.assertEqual(caught.exception.data, {"reason": "no landlock"})

    def test_approval_callback_answers_the_server_request(self):
        seen = []

        def on_approval(params):
            seen.append((params["host"], threading.current_thread().name))
            return "allowOnce"

        client = self.client(on_approval=on_approval)
        answer = client.request("test/ask", {"host": "example.com"})["answer"]
        self.assertEqual(answer, {"decision": "allowOnce"})
        self.assertEqual(seen[0][0], "example.com")
        self.assertNotEqual(seen[0][1], "warden-reader")  # user code never runs on the reader

    def test_approval_callback_may_return_the_full_result(self):
        client = self.client(on_approval=lambda params: {"decision": "denyAlways"})
        self.assertEqual(client.request("test/ask", {"host": "x.example"})["answer"],
                         {"decision": "denyAlways"})

    def test_approval_callback_that_raises_sends_an_error(self):
        def on_approval(params):
            raise RuntimeError("user closed the dialog")

        client = self.client(on_approval=on_approval)
        answer = client.request("test/ask", {"host": "x.example"})["answer"]
        self.assertEqual(answer["code"], -32603)
        self.assertIn("user closed the dialog", answer["message"])

    def test_invalid_decision_is_an_error_not_a_silent_allow(self):
        client = self.client(on_approval=lambda params: "yes please")
        answer = client.request("test/ask", {"host": "x.example"})["answer"]
        self.assertEqual(answer["code"], -32603)

    def test_server_request_without_handler_gets_method_not_found(self):
        client = self.client()
        self.assertEqual(client.request("test/ask", {"host": "x.example"})["answer"]["code"], -32601)

    def test_approval_capability_is_announced_with_a_handler(self):
        with_handler = self.client(on_approval=lambda params: "deny")
        self.assertEqual(with_handler.server_info["received"]["capabilities"],
                         {"networkApprovals": True})
        without = self.client()
        self.assertEqual(without.server_info["received"],
                         {"clientInfo": {"name": "warden_client", "version": "0.1.0"}})

    def test_server_death_mid_request_raises_promptly(self):
        client = self.client()
        hanging = client.send_request("test/hang")
        client._process_queue("never")  # a process queue registered before the death
        # ServerExitedError, not a timeout: the death is noticed, not waited out
        with self.assertRaises(ServerExitedError) as caught:
            client.request("test/die", timeout=30)
        self.assertEqual(caught.exception.code, -32603)
        self.assertIn(caught.exception.data["returncode"], (3, None))
        with self.assertRaises(ServerExitedError):
            hanging.result(20)
        with self.assertRaises(ServerExitedError):
            next(client.process_events("never", timeout=20))
        with self.assertRaises(ServerExitedError):
            client.request("shutdown")
        self.assertFalse(client.connected)

    def test_request_timeout(self):
        client = self.client()
        with self.assertRaises(TimeoutError):
            client.request("test/hang", timeout=0.2)

    def test_a_server_that_cannot_start_or_exits_at_once(self):
        with self.assertRaises(FileNotFoundError):
            WardenClient("/nonexistent/warden")
        with self.assertRaises(ServerExitedError) as caught:
            WardenClient("/bin/false", request_timeout=30)
        self.assertEqual(caught.exception.data["returncode"], 1)

    def test_close_shuts_the_server_down(self):
        client = WardenClient(**fake_client_args())
        self.assertEqual(client.close(), 0)
        self.assertEqual(client.close(), 0)


class AsyncFakeServerTest(unittest.IsolatedAsyncioTestCase):
    async def client(self, **kwargs):
        client = await AsyncWardenClient.start(**fake_client_args(), request_timeout=30, **kwargs)
        self.addAsyncCleanup(client.close)
        return client

    async def test_flood_of_notifications_does_not_block_a_pending_request(self):
        client = await self.client()
        proc = await client.spawn(["flood", str(FLOOD)], process_id="f1")
        events = [e async for e in proc.events(timeout=60)]
        self.assertEqual(len(events), FLOOD + 1)
        self.assertEqual(events[-1].method, "process/exited")
        self.assertEqual(len(proc.stdout), 512 * FLOOD)

    async def test_error_carries_code_message_and_data(self):
        client = await self.client()
        with self.assertRaises(WardenError) as caught:
            await client.request("test/fail")
        self.assertEqual((caught.exception.code, caught.exception.data),
                         (-32003, {"reason": "no landlock"}))

    async def test_async_approval_callback(self):
        async def on_approval(params):
            await asyncio.sleep(0.01)
            return "allowForSession" if params["host"] == "ok.example" else "deny"

        client = await self.client(on_approval=on_approval)
        ok = await client.request("test/ask", {"host": "ok.example"})
        bad = await client.request("test/ask", {"host": "bad.example"})
        self.assertEqual(ok["answer"], {"decision": "allowForSession"})
        self.assertEqual(bad["answer"], {"decision": "deny"})

    async def test_plain_function_approval_callback(self):
        client = await self.client(on_approval=lambda params: "allowOnce")
        self.assertEqual((await client.request("test/ask", {"host": "a"}))["answer"],
                         {"decision": "allowOnce"})

    async def test_server_death_mid_request_raises_promptly(self):
        client = await self.client()
        hanging = asyncio.ensure_future(client.request("test/hang"))
        events = client.process_events("never", timeout=30)
        waiter = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.05)
        with self.assertRaises(ServerExitedError):
            await asyncio.wait_for(client.request("test/die"), 20)
        with self.assertRaises(ServerExitedError):
            await asyncio.wait_for(hanging, 20)
        with self.assertRaises(ServerExitedError):
            await asyncio.wait_for(waiter, 20)
        self.assertFalse(client.connected)


if __name__ == "__main__":
    unittest.main()
