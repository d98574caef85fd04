"""The asyncio client: asyncio subprocess streams, one reader task."""

import asyncio
import inspect
import itertools
import json
import subprocess
import sys
from typing import Any, AsyncIterator, Callable, Dict, List, Mapping, Optional, Sequence, Union

from . import _generated as g
from ._common import (
    PROCESS_NOTIFICATIONS, ApprovalHandler, Notification, ProcessState, StderrTail, __version__,
    approval_request, approval_result, as_bytes, dumps, encode, error_message, find_warden,
    handler_error,
    initialize_params, notification_message, request_message, result_message, server_env,
    spawn_argv)
from .errors import ErrorCode, ServerExitedError, WardenError

_CLOSED = object()  # queue sentinel: the connection is gone
_READ_SIZE = 1 << 16


class AsyncWardenClient(g.AsyncRequestMethods):
    """The asyncio twin of ``WardenClient``, with the same arguments.

    Start it with ``async with AsyncWardenClient(...) as client`` or
    ``client = await AsyncWardenClient.start(...)``; both perform the
    handshake. A reader task dispatches responses to futures and
    notifications to per-process and general queues, so a flood of
    notifications never stalls a pending request. Request handlers
    (``on_approval``) may be coroutine functions; plain functions run in the
    default executor so they cannot block the loop.
    """

    def __init__(
            self,
            warden: Optional[str] = None,
            *,
            args: Sequence[str] = (),
            env: Optional[Mapping[str, str]] = None,
            cwd: Optional[str] = None,
            client_name: str = "warden_client",
            client_version: str = __version__,
            capabilities: Optional[g.ClientCapabilities] = None,
            on_approval: Optional[ApprovalHandler] = None,
            request_timeout: Optional[float] = None,
            stderr: Any = None,
    ):
        self.request_timeout = request_timeout
        self.server_info: Optional[g.InitializeResult] = None
        self._argv = [find_warden(warden), *args]
        self._env = server_env(env)
        self._cwd = cwd
        self._stderr = stderr
        self._init_params = initialize_params(client_name, client_version, capabilities,
                                              on_approval is not None)
        self._ids = itertools.count(1)
        self._spawned = itertools.count(1)
        self._pending: Dict[int, "asyncio.Future[Any]"] = {}
        self._process_queues: Dict[str, "asyncio.Queue[Any]"] = {}
        self._general: "Optional[asyncio.Queue[Any]]" = None
        self._handlers: Dict[str, Callable[[Any], Any]] = {}
        self._tasks: List["asyncio.Task[Any]"] = []
        self._handler_tasks: "set[asyncio.Task[Any]]" = set()
        self._closed: Optional[ServerExitedError] = None
        self._closing = False
        self._write_lock: Optional[asyncio.Lock] = None
        self._stderr_tail = StderrTail() if stderr == subprocess.PIPE else None
        self._proc: Optional[asyncio.subprocess.Process] = None
        if on_approval is not None:
            self.set_approval_handler(on_approval)

    @classmethod
    async def start(cls, *args: Any, **kwargs: Any) -> "AsyncWardenClient":
        """Create a client, start the server and perform the handshake."""
        client = cls(*args, **kwargs)
        await client._start()
        return client

    async def _start(self) -> None:
        self._general = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=self._env, cwd=self._cwd)
        self._tasks.append(asyncio.ensure_future(self._read_loop()))
        self._tasks.append(asyncio.ensure_future(self._watch_exit()))
        if self._stderr_tail is not None:
            self._tasks.append(asyncio.ensure_future(self._read_stderr()))
        try:
            self.server_info = await self.request("initialize", self._init_params)
            await self.notify("initialized")
        except BaseException:
            await self._kill()
            raise

    async def __aenter__(self) -> "AsyncWardenClient":
        if self._proc is None:
            await self._start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def returncode(self) -> Optional[int]:
        return self._proc.returncode if self._proc else None

    @property
    def server_pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    @property
    def connected(self) -> bool:
        return self._proc is not None and self._closed is None

    async def close(self, timeout: float = 10.0) -> Optional[int]:
        """Shut the server down and wait for it (kill after ``timeout``)."""
        if self._proc is None:
            return None
        if self._closed is None and not self._closing:
            self._closing = True
            try:
                await self.request("shutdown", timeout=timeout)
            except (WardenError, TimeoutError):
                pass
        self._closing = True
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            await asyncio.wait_for(self._proc.wait(), timeout)
        except asyncio.TimeoutError:
            await self._kill()
        await asyncio.wait(self._tasks, timeout=timeout)
        self._server_gone()
        return self._proc.returncode

    async def _kill(self) -> None:
        if self._proc.returncode is None:
            try:
                self._proc.kill()
            except ProcessLookupError:
                pass
        await self._proc.wait()
        self._server_gone()

    # -- requests -------------------------------------------------------------

    async def request(self, method: str, params: Optional[Mapping[str, Any]] = None,
                      timeout: Optional[float] = None) -> Any:
        """Send a request and await its result; see ``WardenClient.request``."""
        if self._closed is not None:
            raise self._closed
        request_id = next(self._ids)
        future: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        process_id = params.get("processId") if method == "process/spawn" and params else None
        new_queue = None
        if isinstance(process_id, str) and process_id not in self._process_queues:
            # Before the request goes out, so no notification can miss it.
            new_queue = self._process_queue(process_id)
        try:
            await self._write(request_message(request_id, method, params))
            wait = self.request_timeout if timeout is None else timeout
            try:
                return await asyncio.wait_for(asyncio.shield(future), wait)
            except asyncio.TimeoutError:
                raise TimeoutError("%s: no response within %ss" % (method, wait)) from None
        except WardenError:
            if new_queue is not None and self._process_queues.get(process_id) is new_queue:
                del self._process_queues[process_id]  # the spawn failed: no events will come
            raise
        finally:
            self._pending.pop(request_id, None)

    async def notify(self, method: str, params: Optional[Mapping[str, Any]] = None) -> None:
        await self._write(notification_message(method, params))

    async def _write(self, message: Mapping[str, Any]) -> None:
        data = dumps(message)
        async with self._write_lock:
            if self._closed is not None:
                raise self._closed
            try:
                self._proc.stdin.write(data)
                await self._proc.stdin.drain()
            except (OSError, RuntimeError):
                # RuntimeError: the transport is already closed.
                raise ServerExitedError(self._proc.returncode, self._stderr_text(),
                                        "server is not reading (exited?)") from None

    # -- server requests --------------------------------------------------------

    def set_request_handler(self, method: str, handler: Optional[Callable[[Any], Any]]) -> None:
        """See ``WardenClient.set_request_handler``; ``handler`` may be async."""
        if handler is None:
            self._handlers.pop(method, None)
        else:
            self._handlers[method] = handler

    def set_approval_handler(self, handler: Optional[ApprovalHandler]) -> None:
        """See ``WardenClient.set_approval_handler``; ``handler`` may be async."""
        if handler is None:
            self.set_request_handler("approval/network", None)
            return

        async def answer(params: Any) -> Any:
            return approval_result(await _call(handler, approval_request(params)))
        self.set_request_handler("approval/network", answer)

    async def _answer(self, message: Dict[str, Any]) -> None:
        method, request_id = message["method"], message["id"]
        handler = self._handlers.get(method)
        if handler is None:
            reply = error_message(request_id, WardenError(
                ErrorCode.METHOD_NOT_FOUND, "client has no handler for %s" % method))
        else:
            try:
                reply = result_message(request_id, await _call(handler, message.get("params")))
            except Exception as exc:
                reply = error_message(request_id, handler_error(exc))
        try:
            await self._write(reply)
        except WardenError:
            pass

    # -- notifications ----------------------------------------------------------

    async def next_notification(self, timeout: Optional[float] = None) -> Notification:
        """See ``WardenClient.next_notification``."""
        try:
            item = await asyncio.wait_for(self._general.get(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("no notification within %ss" % timeout) from None
        if item is _CLOSED:
            self._general.put_nowait(_CLOSED)
            raise self._closed  # type: ignore[misc]
        return item

    async def notifications(self, timeout: Optional[float] = None) -> AsyncIterator[Notification]:
        """See ``WardenClient.notifications``."""
        while True:
            try:
                yield await self.next_notification(timeout)
            except ServerExitedError:
                return

    async def process_events(self, process_id: str, timeout: Optional[float] = None
                             ) -> AsyncIterator[Notification]:
        """See ``WardenClient.process_events``."""
        q = self._process_queue(process_id)
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while True:
            item = await self._take_event(process_id, q, deadline)
            yield item
            if item.method == "process/exited":
                return

    def _process_queue(self, process_id: Any) -> "asyncio.Queue[Any]":
        q = self._process_queues.get(process_id)
        if q is None:
            q = asyncio.Queue()
            if self._closed is not None:
                q.put_nowait(_CLOSED)
            if isinstance(process_id, str):
                self._process_queues[process_id] = q
        return q

    async def _take_event(self, process_id: str, q: "asyncio.Queue[Any]",
                          deadline: Optional[float]) -> Notification:
        remaining = None
        if deadline is not None:
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            item = await asyncio.wait_for(q.get(), remaining)
        except asyncio.TimeoutError:
            raise TimeoutError("process %s: still running" % process_id) from None
        if item is _CLOSED:
            q.put_nowait(_CLOSED)
            raise self._closed  # type: ignore[misc]
        if item.method == "process/exited" and self._process_queues.get(process_id) is q:
            del self._process_queues[process_id]
        return item

    # -- processes ---------------------------------------------------------------

    async def spawn(self, argv: Sequence[str], *, process_id: Optional[str] = None,
                    **options: Any) -> "AsyncProcess":
        """See ``WardenClient.spawn``."""
        process_id = process_id or "p%d" % next(self._spawned)
        result = await self.process_spawn(process_id=process_id, argv=spawn_argv(argv), **options)
        return AsyncProcess(self, process_id, result)

    async def run(self, argv: Sequence[str], *, timeout: Optional[float] = None,
                  **options: Any) -> "AsyncProcess":
        """See ``WardenClient.run``."""
        process = await self.spawn(argv, **options)
        await process.wait(timeout)
        return process

    # -- reader side ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        buffer = bytearray()
        try:
            while True:
                chunk = await self._proc.stdout.read(_READ_SIZE)
                if not chunk:
                    break
                buffer.extend(chunk)
                start = 0
                while True:
                    end = buffer.find(b"\n", start)
                    if end < 0:
                        break
                    line = bytes(buffer[start:end])
                    start = end + 1
                    if line.strip():
                        self._dispatch_line(line)
                del buffer[:start]
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._server_gone()

    def _dispatch_line(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            sys.stderr.write("warden_client: unparsable line from server: %r\n" % line[:200])
            return
        self._dispatch(message)

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, list):
            for item in message:
                self._dispatch(item)
            return
        if not isinstance(message, dict):
            return
        if "method" in message and "id" in message:
            task = asyncio.ensure_future(self._answer(message))
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)
        elif "method" in message:
            params = message.get("params")
            note = Notification(message["method"], params if isinstance(params, dict) else {})
            target = None
            if note.method in PROCESS_NOTIFICATIONS:
                target = self._process_queues.get(note.process_id)
            (target or self._general).put_nowait(note)
        elif "id" in message:
            future = self._pending.pop(message["id"], None)
            if future is None or future.done():
                return
            if "error" in message:
                future.set_exception(WardenError.from_error_object(message["error"]))
            else:
                future.set_result(message.get("result"))

    async def _watch_exit(self) -> None:
        await self._proc.wait()
        for _ in range(20):
            if self._closed is not None:
                return
            await asyncio.sleep(0.1)
        self._server_gone()

    async def _read_stderr(self) -> None:
        while True:
            line = await self._proc.stderr.readline()
            if not line:
                return
            self._stderr_tail.add(line)

    def _stderr_text(self) -> Optional[str]:
        return self._stderr_tail.text() if self._stderr_tail else None

    def _server_gone(self) -> None:
        if self._closed is not None:
            return
        message = "client closed the connection" if self._closing else "server exited"
        self._closed = ServerExitedError(self._proc.returncode, self._stderr_text(), message)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._closed)
                future.exception()  # a waiter that already timed out must not warn
        self._pending.clear()
        for q in list(self._process_queues.values()) + [self._general]:
            q.put_nowait(_CLOSED)


class AsyncProcess(ProcessState):
    """A process started by ``AsyncWardenClient.spawn``; see ``Process``."""

    def __init__(self, client: AsyncWardenClient, process_id: str,
                 spawn_result: g.ProcessSpawnResult):
        super().__init__(process_id, spawn_result)
        self.client = client
        self._queue = client._process_queue(process_id)

    async def write(self, data: Union[bytes, str], *, close_stdin: bool = False) -> int:
        result = await self.client.process_write(
            process_id=self.process_id, delta_base64=encode(data), close_stdin=close_stdin or None)
        return result["bytesWritten"]

    async def close_stdin(self) -> None:
        await self.client.process_write(process_id=self.process_id, close_stdin=True)

    async def resize(self, rows: int, cols: int) -> None:
        await self.client.process_resize(process_id=self.process_id,
                                         size={"rows": rows, "cols": cols})

    async def terminate(self, signal: Optional[str] = None, grace_ms: Optional[int] = None) -> bool:
        result = await self.client.process_terminate(process_id=self.process_id, signal=signal,
                                                     grace_ms=grace_ms)
        return result["running"]

    async def release(self) -> None:
        await self.client.process_release(process_id=self.process_id)

    async def events(self, timeout: Optional[float] = None) -> AsyncIterator[Notification]:
        deadline = self._deadline(timeout)
        while not self.exited:
            yield await self._next(deadline)

    async def read_until(self, needle: Union[bytes, str], timeout: Optional[float] = None) -> bytes:
        needle = as_bytes(needle)
        deadline = self._deadline(timeout)
        while True:
            chunk = self._take_until(needle)
            if chunk is not None:
                return chunk
            if self.exited:
                raise EOFError("process %s exited before %r appeared; output: %r"
                               % (self.process_id, needle, self.output[-500:]))
            await self._next(deadline)

    async def wait(self, timeout: Optional[float] = None) -> g.ProcessExitedNotification:
        deadline = self._deadline(timeout)
        while not self.exited:
            await self._next(deadline)
        return self.exit_status  # type: ignore[return-value]

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        return None if timeout is None else asyncio.get_running_loop().time() + timeout

    async def _next(self, deadline: Optional[float]) -> Notification:
        note = await self.client._take_event(self.process_id, self._queue, deadline)
        self._record(note)
        return note


async def _call(handler: Callable[[Any], Any], params: Any) -> Any:
    """Await a coroutine handler; run a plain one in the default executor."""
    if inspect.iscoroutinefunction(handler):
        return await handler(params)
    result = await asyncio.get_running_loop().run_in_executor(None, handler, params)
    if inspect.isawaitable(result):
        result = await result
    return result
