"""Both Python clients against the real warden binary ($WARDEN_BIN)."""

import asyncio
import os
import signal
import subprocess
import tempfile
import unittest

from support import UNSANDBOXED, real_warden

from warden_client import (AsyncWardenClient, ErrorCode, ServerExitedError, WardenClient,
                           WardenError)

TIMEOUT = 30


class BlockingRealServerTest(unittest.TestCase):
    def setUp(self):
        self.client = WardenClient(real_warden(), request_timeout=TIMEOUT,
                                   client_name="python-tests", stderr=subprocess.PIPE)
        self.addCleanup(self.client.close)

    def test_handshake(self):
        info = self.client.server_info
        self.assertEqual(info["serverInfo"]["name"], "warden")
        self.assertEqual(info["protocolVersion"], 1)
        self.assertEqual(info["platform"]["os"], "Linux")
        self.assertIn("userNamespaces", info["sandbox"])

    def test_run_collects_output_and_exit(self):
        proc = self.client.run(["sh", "-c", "echo out; echo err >&2; exit 3"],
                               sandbox=UNSANDBOXED, timeout=TIMEOUT)
        self.assertEqual((proc.stdout, proc.stderr), (b"out\n", b"err\n"))
        self.assertEqual((proc.exit_code, proc.signal, proc.timed_out), (3, None, False))

    def test_pty_session(self):
        shell = self.client.spawn(["sh"], tty=True, size={"rows": 24, "cols": 80},
                                  sandbox=UNSANDBOXED)
        # The terminal echoes what is typed: wait for a marker only the shell
        # prints ($((40+2)) is expanded), not for text that is typed.
        shell.write("stty size; tty >/dev/null && echo tty-$((40+2))\n")
        self.assertIn(b"24 80", shell.read_until("tty-42", TIMEOUT))
        shell.resize(40, 120)
        shell.write("stty size\n")
        shell.read_until("40 120", TIMEOUT)
        shell.write("exit 7\n")
        status = shell.wait(TIMEOUT)
        self.assertEqual(status["exitCode"], 7)
        self.assertEqual(shell.stderr, b"")  # a PTY has one stream

    def test_stdin_streaming(self):
        cat = self.client.spawn(["cat"], stream_stdin=True, sandbox=UNSANDBOXED)
        self.assertEqual(cat.write(b"hello\n"), 6)
        self.assertEqual(cat.read_until(b"hello\n", TIMEOUT), b"hello\n")
        cat.write(b"world", close_stdin=True)
        self.assertEqual(cat.wait(TIMEOUT)["exitCode"], 0)
        self.assertEqual(cat.stdout, b"hello\nworld")

    def test_write_without_stdin_is_an_error(self):
        proc = self.client.spawn(["sleep", "5"], sandbox=UNSANDBOXED)
        with self.assertRaises(WardenError) as caught:
            proc.write("x")
        self.assertEqual(caught.exception.code, ErrorCode.INVALID_PARAMS)
        proc.terminate(signal="KILL")
        proc.wait(TIMEOUT)

    def test_terminate(self):
        proc = self.client.spawn(["sleep", "100"], sandbox=UNSANDBOXED)
        self.assertTrue(proc.terminate())
        status = proc.wait(TIMEOUT)
        self.assertEqual((status["exitCode"], status["signal"]), (None, "TERM"))

    def test_timeout(self):
        proc = self.client.run(["sleep", "100"], timeout_ms=200, sandbox=UNSANDBOXED,
                               timeout=TIMEOUT)
        self.assertTrue(proc.timed_out)
        self.assertEqual(proc.signal, "KILL")

    def test_error_carries_its_data(self):
        with self.assertRaises(WardenError) as caught:
            self.client.process_spawn(process_id="bad", argv=["true"], tty=True,
                                      size={"rows": 0, "cols": 80}, sandbox=UNSANDBOXED)
        error = caught.exception
        self.assertEqual(error.code, ErrorCode.INVALID_PARAMS)
        self.assertEqual(error.data["path"], "params.size.rows")
        self.assertTrue(error.message)

        with self.assertRaises(WardenError) as caught:
            self.client.process_terminate(process_id="no-such-process")
        self.assertEqual(caught.exception.code, ErrorCode.UNKNOWN_PROCESS)

        with self.assertRaises(WardenError) as caught:
            self.client.spawn(["/nonexistent/program"], sandbox=UNSANDBOXED)
        self.assertEqual(caught.exception.code, ErrorCode.SPAWN_FAILED)
        self.assertIn("errno", caught.exception.data)

    def test_requests_answered_while_output_floods_unread(self):
        size = 8 << 20  # ~11 MB of notifications, far past every pipe buffer
        proc = self.client.spawn(["head", "-c", str(size), "/dev/zero"], sandbox=UNSANDBOXED)
        for _ in range(20):  # nobody reads the process's events meanwhile
            listed = self.client.process_list()["processes"]
            self.assertIn(proc.process_id, [p["processId"] for p in listed])
        self.assertEqual(proc.wait(TIMEOUT)["exitCode"], 0)
        self.assertEqual(proc.stdout, bytes(size))

    def test_failed_spawn_leaves_no_event_queue(self):
        with self.assertRaises(WardenError):
            self.client.spawn(["/nonexistent/program"], process_id="gone", sandbox=UNSANDBOXED)
        self.assertNotIn("gone", self.client._process_queues)
        proc = self.client.run(["true"], process_id="gone", sandbox=UNSANDBOXED, timeout=TIMEOUT)
        self.assertEqual(proc.exit_code, 0)

    def test_unknown_method(self):
        with self.assertRaises(WardenError) as caught:
            self.client.request("no/such/method")
        self.assertEqual(caught.exception.code, ErrorCode.METHOD_NOT_FOUND)

    def test_hundred_concurrent_processes(self):
        futures = [self.client.send_request("process/spawn", {
            "processId": "c%d" % i, "argv": ["sh", "-c", "echo hello-$1", "sh", str(i)],
            "sandbox": UNSANDBOXED}) for i in range(100)]
        results = [f.result(TIMEOUT) for f in futures]
        self.assertEqual(len({r["pid"] for r in results}), 100)
        for i in range(100):
            events = list(self.client.process_events("c%d" % i, timeout=TIMEOUT))
            output = b"".join(e.data for e in events)
            self.assertEqual(output, b"hello-%d\n" % i)
            self.assertEqual(events[-1].params["exitCode"], 0)
        # every one is still listed (exited, retained until released)
        listed = {p["processId"] for p in self.client.process_list()["processes"]}
        self.assertEqual(listed, {"c%d" % i for i in range(100)})

    def test_read_replays_output(self):
        proc = self.client.run(["printf", "abc"], sandbox=UNSANDBOXED, timeout=TIMEOUT)
        replay = self.client.process_read(process_id=proc.process_id)
        self.assertTrue(replay["exited"])
        self.assertEqual(replay["exitCode"], 0)
        self.assertEqual(replay["chunks"][0]["deltaBase64"], "YWJj")
        self.client.process_release(process_id=proc.process_id)

    def test_policy_resolve(self):
        with tempfile.TemporaryDirectory() as cwd:
            result = self.client.policy_resolve(sandbox={"type": "workspaceWrite"}, cwd=cwd)
        roots = [r["root"] for r in result["plan"]["writableRoots"]]
        self.assertTrue(any(os.path.realpath(cwd) == os.path.realpath(r) for r in roots), roots)

    def test_sandboxed_write_outside_the_workspace_is_refused(self):
        with tempfile.TemporaryDirectory() as cwd:
            outside = os.path.join(os.path.expanduser("~"), "warden-client-test-%d" % os.getpid())
            # The test machine enforces sandboxes (the sandbox tests need
            # it): a -32003 here is a failure, not a skip.
            proc = self.client.run(
                ["sh", "-c", 'echo in > inside.txt && echo out > "$1"', "sh", outside],
                cwd=cwd, timeout=TIMEOUT)
            try:
                self.assertTrue(proc.sandbox["enforced"])
                self.assertTrue(os.path.exists(os.path.join(cwd, "inside.txt")))
                self.assertNotEqual(proc.exit_code, 0)
                self.assertFalse(os.path.exists(outside))
                self.assertTrue(proc.stderr)
            finally:
                if os.path.exists(outside):
                    os.unlink(outside)

    def test_server_killed_mid_request(self):
        proc = self.client.spawn(["sleep", "100"], sandbox=UNSANDBOXED)
        pending = self.client.send_request("process/read", {
            "processId": proc.process_id, "afterSeq": 0, "waitMs": 60000})
        # requests are handled in order: once this is answered, the read is
        # waiting in the server
        self.client.process_list()
        os.kill(self.client.server_pid, signal.SIGKILL)
        with self.assertRaises(ServerExitedError) as caught:
            pending.result(TIMEOUT)
        self.assertEqual(caught.exception.code, ErrorCode.INTERNAL_ERROR)
        with self.assertRaises(ServerExitedError):
            proc.wait(TIMEOUT)
        with self.assertRaises(ServerExitedError):
            self.client.process_list()

    def test_shutdown_exits_zero(self):
        self.client.spawn(["sleep", "100"], sandbox=UNSANDBOXED)
        self.assertEqual(self.client.close(), 0)


class AsyncRealServerTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.client = await AsyncWardenClient.start(real_warden(), request_timeout=TIMEOUT,
                                                    client_name="python-tests-async",
                                                    stderr=subprocess.PIPE)
        self.addAsyncCleanup(self.client.close)

    async def test_handshake(self):
        self.assertEqual(self.client.server_info["serverInfo"]["name"], "warden")

    async def test_pty_session(self):
        shell = await self.client.spawn(["sh"], tty=True, sandbox=UNSANDBOXED)
        await shell.write("stty size\n")
        await shell.read_until("24 80", TIMEOUT)
        await shell.resize(50, 132)
        await shell.write("stty size\n")
        await shell.read_until("50 132", TIMEOUT)
        await shell.write("exit\n")
        self.assertEqual((await shell.wait(TIMEOUT))["exitCode"], 0)

    async def test_stdin_streaming_and_terminate(self):
        cat = await self.client.spawn(["cat"], stream_stdin=True, sandbox=UNSANDBOXED)
        await cat.write("ping\n")
        await cat.read_until("ping\n", TIMEOUT)
        self.assertTrue(await cat.terminate(signal="KILL"))
        status = await cat.wait(TIMEOUT)
        self.assertEqual(status["signal"], "KILL")

    async def test_error_carries_its_data(self):
        with self.assertRaises(WardenError) as caught:
            await self.client.process_spawn(process_id="bad", argv=["true"], tty=True,
                                            size={"rows": 1, "cols": 0}, sandbox=UNSANDBOXED)
        self.assertEqual(caught.exception.code, ErrorCode.INVALID_PARAMS)
        self.assertEqual(caught.exception.data["path"], "params.size.cols")

    async def test_hundred_concurrent_processes(self):
        procs = await asyncio.gather(*[
            self.client.spawn(["sh", "-c", "echo async-$1", "sh", str(i)], process_id="a%d" % i,
                              sandbox=UNSANDBOXED) for i in range(100)])
        await asyncio.gather(*[p.wait(TIMEOUT) for p in procs])
        for i, proc in enumerate(procs):
            self.assertEqual(proc.stdout, b"async-%d\n" % i)
            self.assertEqual(proc.exit_code, 0)

    async def test_server_killed_mid_request(self):
        proc = await self.client.spawn(["sleep", "100"], sandbox=UNSANDBOXED)
        pending = asyncio.ensure_future(self.client.process_read(
            process_id=proc.process_id, after_seq=0, wait_ms=60000))
        await asyncio.sleep(0)  # let the read be sent; then one request behind it
        await self.client.process_list()
        os.kill(self.client.server_pid, signal.SIGKILL)
        with self.assertRaises(ServerExitedError):
            await asyncio.wait_for(pending, 20)
        with self.assertRaises(ServerExitedError):
            await asyncio.wait_for(proc.wait(), 20)


if __name__ == "__main__":
    unittest.main()
