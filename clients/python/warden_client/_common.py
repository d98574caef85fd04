"""Pieces shared by the blocking and the asyncio client."""

import base64
import collections
import json
import os
import shutil
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

from . import _generated as g
from .approvals import Decision, NetworkApproval, NetworkApprovalHandler
from .errors import ErrorCode, WardenError

__version__ = "0.1.0"

#: Notifications that belong to one process; they are queued per process.
PROCESS_NOTIFICATIONS = frozenset({"process/output", "process/exited"})

#: What an approval handler may return: a Decision, its string or a full result.
ApprovalAnswer = Union[Decision, g.ApprovalDecision, g.ApprovalNetworkResult]
#: Takes a NetworkApproval (the typed ApprovalNetworkParams).
ApprovalHandler = NetworkApprovalHandler

APPROVAL_DECISIONS = frozenset({"allowOnce", "allowForSession", "allowAlways", "deny", "denyAlways"})


class WardenNotFoundError(FileNotFoundError):
    """No warden binary: none was given, $WARDEN_BIN names none, none is on PATH."""


#: Said when none of the three places names a server (the TypeScript client says the same).
NOT_FOUND = ("warden server not found: no `warden` argument was given, $WARDEN_BIN is not set, "
             "and no executable `warden` is on PATH")


def _resolve(value: str, source: str) -> str:
    """``value`` from ``source`` as an absolute path to an executable file: a
    path (with a slash) must be one, a bare name is looked up on PATH."""
    if "/" not in value:
        found = shutil.which(value)
        if not found:
            raise WardenNotFoundError("%s is %r, which is not an executable on PATH" % (source, value))
        return os.path.abspath(found)
    if not (os.path.isfile(value) and os.access(value, os.X_OK)):
        raise WardenNotFoundError("%s is %r, which is not an executable file" % (source, value))
    return os.path.abspath(value)


def find_warden(path: Optional[Union[str, "os.PathLike[str]"]] = None) -> str:
    """The server binary, as an absolute path: ``path`` when given, else
    ``$WARDEN_BIN`` when set and not empty, else ``warden`` on PATH. The first
    of these that is given is the one used: a bad value there is an error,
    not a reason to look further. Raises :class:`WardenNotFoundError` (a
    ``FileNotFoundError``) naming the place it looked at."""
    if path:
        return _resolve(os.fspath(path), "the `warden` argument")
    env = os.environ.get("WARDEN_BIN")
    if env:
        return _resolve(env, "$WARDEN_BIN")
    found = shutil.which("warden")
    if found:
        return os.path.abspath(found)
    raise WardenNotFoundError("%s (PATH=%s)" % (NOT_FOUND, os.environ.get("PATH", "")))


def server_env(env: Optional[Mapping[str, str]]) -> Optional[Dict[str, str]]:
    """The server's environment: ours plus ``env`` (None keeps ours as is)."""
    if env is None:
        return None
    merged = dict(os.environ)
    merged.update(env)
    return merged


class Notification(NamedTuple):
    """A notification from the server: its method and params."""

    method: str
    params: Dict[str, Any]

    @property
    def process_id(self) -> Optional[str]:
        pid = self.params.get("processId")
        return pid if isinstance(pid, str) else None

    @property
    def data(self) -> bytes:
        """The decoded bytes of a ``process/output`` notification (else b"")."""
        if self.method != "process/output":
            return b""
        return base64.b64decode(self.params.get("deltaBase64", ""))


def encode(data: Union[bytes, str]) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def approval_result(answer: Any) -> Dict[str, Any]:
    """Normalise what an approval handler returned into an ApprovalNetworkResult."""
    if isinstance(answer, str):
        answer = {"decision": answer}
    decision = answer.get("decision") if isinstance(answer, Mapping) else None
    if isinstance(decision, Decision):
        decision = decision.value
    if not isinstance(decision, str) or decision not in APPROVAL_DECISIONS:
        raise WardenError(ErrorCode.INTERNAL_ERROR,
                          "approval handler returned no valid decision: %r" % (answer,))
    result = dict(answer)
    result["decision"] = decision
    return result


def approval_request(params: Any) -> NetworkApproval:
    """The typed view of approval/network params handed to a handler."""
    return NetworkApproval(params if isinstance(params, Mapping) else {})


def initialize_params(client_name: str, client_version: str,
                      capabilities: Optional[Mapping[str, Any]],
                      approvals: bool) -> Dict[str, Any]:
    caps = dict(capabilities or {})
    if approvals:
        caps.setdefault("networkApprovals", True)
    params: Dict[str, Any] = {"clientInfo": {"name": client_name, "version": client_version}}
    if caps:
        params["capabilities"] = caps
    return params


def dumps(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def request_message(request_id: int, method: str, params: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    message: Dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification_message(method: str, params: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    if method in g.CLIENT_REQUESTS:
        # warden refuses a request sent without an id (docs/protocol.md).
        raise ValueError("%s is a request, not a notification: use request()" % method)
    message: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def result_message(request_id: Any, result: Any) -> Dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_message(request_id: Any, error: WardenError) -> Dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_error_object()}


def handler_error(exc: BaseException) -> WardenError:
    """The error response for a request handler that raised ``exc``."""
    if isinstance(exc, WardenError):
        return exc
    return WardenError(ErrorCode.INTERNAL_ERROR, "%s: %s" % (type(exc).__name__, exc))


class StderrTail:
    """The last lines the server wrote to stderr (when the client captures it)."""

    def __init__(self, lines: int = 50):
        self._lines: "collections.deque[str]" = collections.deque(maxlen=lines)

    def add(self, raw: bytes) -> None:
        self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def text(self) -> Optional[str]:
        return "\n".join(self._lines) or None


class ProcessState:
    """Output and exit status of one process, filled from its notifications.

    Shared by the blocking ``Process`` and the asyncio ``AsyncProcess``. PTY
    output counts as stdout; ``output`` is every stream in arrival order.
    """

    def __init__(self, process_id: str, spawn_result: Mapping[str, Any]):
        self.process_id = process_id
        self.spawn_result = spawn_result
        self._out = bytearray()
        self._err = bytearray()
        self._all = bytearray()
        self._mark = 0
        self.cap_reached: List[str] = []
        self.exit_status: Optional[g.ProcessExitedNotification] = None

    @property
    def pid(self) -> int:
        return self.spawn_result["pid"]

    @property
    def sandbox(self) -> Dict[str, Any]:
        """``{enforced, backend, network}`` as the server reported at spawn."""
        return self.spawn_result["sandbox"]

    @property
    def stdout(self) -> bytes:
        return bytes(self._out)

    @property
    def stderr(self) -> bytes:
        return bytes(self._err)

    @property
    def output(self) -> bytes:
        return bytes(self._all)

    @property
    def exited(self) -> bool:
        return self.exit_status is not None

    @property
    def exit_code(self) -> Optional[int]:
        return self.exit_status["exitCode"] if self.exit_status else None

    @property
    def signal(self) -> Optional[str]:
        return self.exit_status["signal"] if self.exit_status else None

    @property
    def timed_out(self) -> bool:
        return bool(self.exit_status and self.exit_status["timedOut"])

    def _record(self, note: Notification) -> None:
        if note.method == "process/output":
            data = note.data
            stream = note.params.get("stream")
            (self._err if stream == "stderr" else self._out).extend(data)
            self._all.extend(data)
            if note.params.get("capReached"):
                self.cap_reached.append(stream)
        elif note.method == "process/exited":
            self.exit_status = note.params  # type: ignore[assignment]

    def _take_until(self, needle: bytes) -> Optional[bytes]:
        """Output since the last match up to and including ``needle``, if seen."""
        at = self._all.find(needle, self._mark)
        if at < 0:
            return None
        end = at + len(needle)
        chunk = bytes(self._all[self._mark:end])
        self._mark = end
        return chunk

    def __repr__(self) -> str:
        state = "exited %r" % (self.exit_status,) if self.exit_status else "running"
        return "<%s %s pid=%s %s>" % (type(self).__name__, self.process_id,
                                      self.spawn_result.get("pid"), state)


def as_bytes(needle: Union[bytes, str]) -> bytes:
    return needle.encode("utf-8") if isinstance(needle, str) else needle


def spawn_argv(argv: Union[str, Sequence[str]]) -> List[str]:
    if isinstance(argv, str):
        raise TypeError("argv must be a list of strings, e.g. ['sh', '-c', %r]" % argv)
    return list(argv)
