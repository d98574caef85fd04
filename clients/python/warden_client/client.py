"""The blocking client: one reader thread, futures per request id, queues per process."""

import concurrent.futures
import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Union

from . import _generated as g
from ._common import (
    PROCESS_NOTIFICATIONS, ApprovalHandler, Notification, ProcessState, StderrTail, __version__,
    approval_request, approval_result, as_bytes, dumps, encode, error_message, find_warden,
    handler_error,
    initialize_params, notification_message, request_message, result_message, server_env,
    spawn_argv)
from .errors import ErrorCode, ServerExitedError, WardenError

_CLOSED = object()  # queue sentinel: the connection is gone


class WardenClient(g.RequestMethods):
    """Starts warden as a child process and talks to it over stdio.

    The constructor starts the server and performs the handshake
    (``initialize``, then the ``initialized`` notification); ``server_info``
    holds the initialize result. Use it as a context manager, or call
    ``close()``.

    One reader thread reads the server's stdout and never runs user code:
    responses complete per-id futures, ``process/output`` and
    ``process/exited`` go to a queue per process (registered when this client
    sends ``process/spawn``), everything else to a general queue. Server
    requests (``approval/network``) run their handler on a worker thread.
    Queues are unbounded, so a flood of notifications never stalls a pending
    request; consume them (``process_events``, ``Process.wait``,
    ``notifications``) to bound memory.

    Arguments:
        warden: path of the binary (default ``$WARDEN_BIN``, then PATH).
        args: extra command-line arguments for the server.
        env: variables added to the server's environment.
        cwd: the server's working directory.
        client_name, client_version: sent as ``clientInfo``.
        capabilities: ``ClientCapabilities`` for ``initialize``.
        on_approval: handler for ``approval/network``: takes the params and
            returns a decision string (``"allowOnce"``...) or
            ``{"decision": ...}``. Giving one sets ``networkApprovals``.
        request_timeout: default seconds to wait for a response (None: no
            limit; a dead server still fails the wait at once).
        stderr: the server's stderr: None inherits ours, ``subprocess.DEVNULL``
            drops it, ``subprocess.PIPE`` keeps its last lines for
            ``ServerExitedError.data["stderr"]``.
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
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: Dict[int, concurrent.futures.Future] = {}
        self._process_queues: Dict[str, "queue.Queue[Any]"] = {}
        self._general: "queue.Queue[Any]" = queue.Queue()
        self._handlers: Dict[str, Callable[[Any], Any]] = {}
        self._closed: Optional[ServerExitedError] = None
        self._closing = False
        self._spawned = itertools.count(1)
        self._stderr_tail = StderrTail() if stderr == subprocess.PIPE else None
        self._workers = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="warden-handler")
        if on_approval is not None:
            self.set_approval_handler(on_approval)

        self._proc = subprocess.Popen(
            [find_warden(warden), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=stderr, env=server_env(env), cwd=cwd)
        self._threads = [threading.Thread(target=self._read_loop, name="warden-reader", daemon=True),
                         threading.Thread(target=self._watch_exit, name="warden-watch", daemon=True)]
        if self._stderr_tail is not None:
            self._threads.append(threading.Thread(target=self._read_stderr, name="warden-stderr",
                                                  daemon=True))
        for thread in self._threads:
            thread.start()
        try:
            self.server_info: g.InitializeResult = self.request("initialize", initialize_params(
                client_name, client_version, capabilities, on_approval is not None))
            self.notify("initialized")
        except BaseException:
            self._kill()
            raise

    # -- lifecycle ------------------------------------------------------------

    def __enter__(self) -> "WardenClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def returncode(self) -> Optional[int]:
        """The server's exit status once it has exited."""
        return self._proc.poll()

    @property
    def server_pid(self) -> int:
        return self._proc.pid

    @property
    def connected(self) -> bool:
        return self._closed is None

    def close(self, timeout: float = 10.0) -> Optional[int]:
        """Shut the server down (``shutdown``, then end of stdin) and wait for
        it; kill it if it does not exit within ``timeout``. Returns its exit
        status. Safe to call more than once."""
        if self._closed is None and not self._closing:
            self._closing = True
            try:
                self.request("shutdown", timeout=timeout)
            except (WardenError, TimeoutError):
                pass
        self._closing = True
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        self._workers.shutdown(wait=False)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None and not any(t.is_alive() for t in self._threads):
                stream.close()
        return self._proc.returncode

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._server_gone()

    # -- requests -------------------------------------------------------------

    def send_request(self, method: str, params: Optional[Mapping[str, Any]] = None
                     ) -> "concurrent.futures.Future[Any]":
        """Send a request without waiting: returns a future of its result
        (or of its WardenError). Lets a caller keep many requests in flight."""
        return self._send(method, params)[1]

    def request(self, method: str, params: Optional[Mapping[str, Any]] = None,
                timeout: Optional[float] = None) -> Any:
        """Send a request and wait for its result. Raises WardenError for an
        error response (ServerExitedError when the server is gone) and
        TimeoutError when no answer comes within ``timeout`` seconds
        (default ``request_timeout``)."""
        request_id, future = self._send(method, params)
        wait = self.request_timeout if timeout is None else timeout
        try:
            return future.result(wait)
        except concurrent.futures.TimeoutError:
            with self._lock:
                self._pending.pop(request_id, None)
            raise TimeoutError("%s: no response within %ss" % (method, wait)) from None

    def notify(self, method: str, params: Optional[Mapping[str, Any]] = None) -> None:
        """Send a notification."""
        self._write(notification_message(method, params))

    def _send(self, method: str, params: Optional[Mapping[str, Any]]):
        future: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
        with self._lock:
            if self._closed is not None:
                raise self._closed
            request_id = next(self._ids)
            self._pending[request_id] = future
            process_id = params.get("processId") if method == "process/spawn" and params else None
            if isinstance(process_id, str) and process_id not in self._process_queues:
                # Before the request goes out, so no notification can miss it;
                # forgotten again when the spawn fails.
                q = self._process_queue_locked(process_id)
                future.add_done_callback(lambda f: self._forget_failed_spawn(process_id, q, f))
        try:
            self._write(request_message(request_id, method, params))
        except WardenError as exc:
            with self._lock:
                self._pending.pop(request_id, None)
            _settle(future, exc=exc)
        return request_id, future

    def _forget_failed_spawn(self, process_id: str, q: "queue.Queue[Any]",
                             future: "concurrent.futures.Future[Any]") -> None:
        if future.exception() is not None:
            with self._lock:
                if self._process_queues.get(process_id) is q:
                    del self._process_queues[process_id]

    def _write(self, message: Mapping[str, Any]) -> None:
        data = dumps(message)
        with self._write_lock:
            if self._closed is not None:
                raise self._closed
            try:
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
            except (OSError, ValueError):
                # ValueError: stdin already closed by close(). A server that
                # stopped reading is exiting: wait a moment for its status.
                try:
                    returncode = self._proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    returncode = None
                raise ServerExitedError(returncode, self._stderr_text(),
                                        "server is not reading its stdin") from None

    # -- server requests --------------------------------------------------------

    def set_request_handler(self, method: str, handler: Optional[Callable[[Any], Any]]) -> None:
        """Answer server requests of ``method`` with ``handler(params)``, run on
        a worker thread. Its return value is the result; a WardenError it raises
        is sent as is, any other exception as -32603. None removes it (the
        server then gets -32601)."""
        if handler is None:
            self._handlers.pop(method, None)
        else:
            self._handlers[method] = handler

    def set_approval_handler(self, handler: Optional[ApprovalHandler]) -> None:
        """Answer ``approval/network`` with ``handler(request)``: ``request`` is
        a ``NetworkApproval`` (the params, with typed attributes ``host``,
        ``port``, ``protocol``, ``process_ids``...), and the handler returns a
        ``Decision`` (or its string: ``"allowOnce"``, ``"allowForSession"``,
        ``"allowAlways"``, ``"deny"``, ``"denyAlways"``) or
        ``{"decision": ...}``. An exception or anything else is a deny. The server only
        asks when ``initialize`` announced ``networkApprovals`` (pass
        ``on_approval`` to the constructor)."""
        if handler is None:
            self.set_request_handler("approval/network", None)
        else:
            self.set_request_handler(
                "approval/network", lambda p: approval_result(handler(approval_request(p))))

    def _answer(self, message: Dict[str, Any]) -> None:
        method, request_id = message["method"], message["id"]
        handler = self._handlers.get(method)
        if handler is None:
            reply = error_message(request_id, WardenError(
                ErrorCode.METHOD_NOT_FOUND, "client has no handler for %s" % method))
        else:
            try:
                reply = result_message(request_id, handler(message.get("params")))
            except Exception as exc:  # reported to the server, which treats it as a refusal
                reply = error_message(request_id, handler_error(exc))
        try:
            self._write(reply)
        except WardenError:
            pass  # the server is gone; nobody is waiting for the answer

    # -- notifications ----------------------------------------------------------

    def next_notification(self, timeout: Optional[float] = None) -> Notification:
        """The next notification of the general queue (everything that is not
        routed to a process). Raises TimeoutError, or ServerExitedError once
        the connection is gone and the queue is empty."""
        try:
            item = self._general.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no notification within %ss" % timeout) from None
        if item is _CLOSED:
            self._general.put(_CLOSED)
            raise self._closed  # type: ignore[misc]
        return item

    def notifications(self, timeout: Optional[float] = None) -> Iterator[Notification]:
        """Iterate over the general queue until the connection closes; raises
        TimeoutError when nothing arrives for ``timeout`` seconds."""
        while True:
            try:
                yield self.next_notification(timeout)
            except ServerExitedError:
                return

    def process_events(self, process_id: str, timeout: Optional[float] = None
                       ) -> Iterator[Notification]:
        """Iterate over one process's ``process/output`` and ``process/exited``
        notifications, in order, ending after ``process/exited``. Raises
        TimeoutError when it has not ended ``timeout`` seconds from now, and
        ServerExitedError when the server goes away first."""
        q = self._process_queue(process_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            item = self._take_event(process_id, q, deadline)
            yield item
            if item.method == "process/exited":
                return

    def _process_queue(self, process_id: str) -> "queue.Queue[Any]":
        with self._lock:
            return self._process_queue_locked(process_id)

    def _process_queue_locked(self, process_id: Any) -> "queue.Queue[Any]":
        q = self._process_queues.get(process_id)
        if q is None:
            q = queue.Queue()
            if self._closed is not None:
                q.put(_CLOSED)
            if isinstance(process_id, str):
                self._process_queues[process_id] = q
        return q

    def _take_event(self, process_id: str, q: "queue.Queue[Any]",
                    deadline: Optional[float]) -> Notification:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            item = q.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError("process %s: still running" % process_id) from None
        if item is _CLOSED:
            q.put(_CLOSED)
            raise self._closed  # type: ignore[misc]
        if item.method == "process/exited":
            # The exit is the last event: forget the queue.
            with self._lock:
                if self._process_queues.get(process_id) is q:
                    del self._process_queues[process_id]
        return item

    # -- processes ---------------------------------------------------------------

    def spawn(self, argv: Sequence[str], *, process_id: Optional[str] = None,
              **options: Any) -> "Process":
        """``process/spawn`` returning a Process handle. ``options`` are the
        keyword arguments of ``process_spawn`` (``tty``, ``size``, ``cwd``,
        ``sandbox``, ``stream_stdin``, ``timeout_ms``...). The process id
        defaults to ``p1``, ``p2``..."""
        process_id = process_id or "p%d" % next(self._spawned)
        result = self.process_spawn(process_id=process_id, argv=spawn_argv(argv), **options)
        return Process(self, process_id, result)

    def run(self, argv: Sequence[str], *, timeout: Optional[float] = None,
            **options: Any) -> "Process":
        """Spawn, wait for the exit and return the Process, whose ``stdout``,
        ``stderr``, ``exit_code`` and ``signal`` are then filled in."""
        process = self.spawn(argv, **options)
        process.wait(timeout)
        return process

    # -- reader side ---------------------------------------------------------------

    def _read_loop(self) -> None:
        try:
            for line in self._proc.stdout:
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    sys.stderr.write("warden_client: unparsable line from server: %r\n" % line[:200])
                    continue
                self._dispatch(message)
        except (OSError, ValueError):
            pass
        finally:
            self._server_gone()

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, list):
            for item in message:
                self._dispatch(item)
            return
        if not isinstance(message, dict):
            return
        if "method" in message and "id" in message:
            self._workers.submit(self._answer, message)
        elif "method" in message:
            params = message.get("params")
            note = Notification(message["method"], params if isinstance(params, dict) else {})
            target = None
            if note.method in PROCESS_NOTIFICATIONS:
                with self._lock:
                    target = self._process_queues.get(note.process_id)
            (target or self._general).put(note)
        elif "id" in message:
            with self._lock:
                future = self._pending.pop(message["id"], None)
            if future is None:
                return  # a response to a request that timed out
            if "error" in message:
                _settle(future, exc=WardenError.from_error_object(message["error"]))
            else:
                _settle(future, result=message.get("result"))

    def _watch_exit(self) -> None:
        # A server that died while something else holds its stdout open would
        # leave the reader blocked; fail the waiters shortly after the exit.
        self._proc.wait()
        for _ in range(20):
            if self._closed is not None:
                return
            time.sleep(0.1)
        self._server_gone()

    def _read_stderr(self) -> None:
        for line in self._proc.stderr:
            self._stderr_tail.add(line)

    def _stderr_text(self) -> Optional[str]:
        return self._stderr_tail.text() if self._stderr_tail else None

    def _server_gone(self) -> None:
        with self._lock:
            if self._closed is not None:
                return
            try:
                returncode = self._proc.wait(0.5)
            except subprocess.TimeoutExpired:
                returncode = None
            message = "client closed the connection" if self._closing else "server exited"
            self._closed = ServerExitedError(returncode, self._stderr_text(), message)
            pending = list(self._pending.values())
            self._pending.clear()
            queues = list(self._process_queues.values())
        for future in pending:
            _settle(future, exc=self._closed)
        for q in queues + [self._general]:
            q.put(_CLOSED)


class Process(ProcessState):
    """A process started by ``WardenClient.spawn``.

    Reading its events (``events``, ``read_until``, ``wait``) fills in
    ``stdout``, ``stderr`` (bytes; PTY output counts as stdout), ``output``
    (all streams in order) and, at the end, ``exit_code``, ``signal``,
    ``timed_out``.
    """

    def __init__(self, client: WardenClient, process_id: str, spawn_result: g.ProcessSpawnResult):
        super().__init__(process_id, spawn_result)
        self.client = client
        self._queue = client._process_queue(process_id)

    def write(self, data: Union[bytes, str], *, close_stdin: bool = False) -> int:
        """Write to the PTY or to stdin (``stream_stdin=True``); returns the byte count."""
        result = self.client.process_write(process_id=self.process_id, delta_base64=encode(data),
                                           close_stdin=close_stdin or None)
        return result["bytesWritten"]

    def close_stdin(self) -> None:
        self.client.process_write(process_id=self.process_id, close_stdin=True)

    def resize(self, rows: int, cols: int) -> None:
        self.client.process_resize(process_id=self.process_id, size={"rows": rows, "cols": cols})

    def terminate(self, signal: Optional[str] = None, grace_ms: Optional[int] = None) -> bool:
        """Signal the process group (TERM unless told); returns whether it was running."""
        return self.client.process_terminate(process_id=self.process_id, signal=signal,
                                             grace_ms=grace_ms)["running"]

    def release(self) -> None:
        self.client.process_release(process_id=self.process_id)

    def events(self, timeout: Optional[float] = None) -> Iterator[Notification]:
        """This process's notifications as they arrive, up to ``process/exited``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.exited:
            note = self._next(deadline)
            yield note

    def read_until(self, needle: Union[bytes, str], timeout: Optional[float] = None) -> bytes:
        """Wait until ``needle`` appears in the output after the previous match;
        return the output from there up to and including it. Raises EOFError
        when the process exits first, TimeoutError after ``timeout`` seconds."""
        needle = as_bytes(needle)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            chunk = self._take_until(needle)
            if chunk is not None:
                return chunk
            if self.exited:
                raise EOFError("process %s exited before %r appeared; output: %r"
                               % (self.process_id, needle, self.output[-500:]))
            self._next(deadline)

    def wait(self, timeout: Optional[float] = None) -> g.ProcessExitedNotification:
        """Read the remaining events and return the ``process/exited`` params."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.exited:
            self._next(deadline)
        return self.exit_status  # type: ignore[return-value]

    def _next(self, deadline: Optional[float]) -> Notification:
        note = self.client._take_event(self.process_id, self._queue, deadline)
        self._record(note)
        return note


def _settle(future: "concurrent.futures.Future[Any]", result: Any = None,
            exc: Optional[BaseException] = None) -> None:
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass
