"""The one exception type of the client, and the protocol's error codes."""

import enum
from typing import Any, Mapping, Optional


class ErrorCode(enum.IntEnum):
    """Error codes of the warden protocol (JSON-RPC 2.0 plus warden's own)."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    OVERLOADED = -32001
    UNKNOWN_PROCESS = -32002
    SANDBOX_UNENFORCEABLE = -32003
    SPAWN_FAILED = -32004


class WardenError(Exception):
    """An error response from the server, or the connection failing.

    ``code``, ``message`` and ``data`` are those of the JSON-RPC error object;
    ``data`` is None when the server sent none.
    """

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    @classmethod
    def from_error_object(cls, error: Any) -> "WardenError":
        if not isinstance(error, Mapping):
            return cls(ErrorCode.INTERNAL_ERROR, "malformed error object: %r" % (error,))
        code = error.get("code")
        if not isinstance(code, int):
            code = ErrorCode.INTERNAL_ERROR
        return cls(code, str(error.get("message", "")), error.get("data"))

    def to_error_object(self) -> dict:
        error = {"code": int(self.code), "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    def __str__(self) -> str:
        text = "%s (%d)" % (self.message, self.code)
        if self.data is not None:
            text += ": %r" % (self.data,)
        return text

    def __repr__(self) -> str:
        return "%s(%d, %r, %r)" % (type(self).__name__, self.code, self.message, self.data)


class ServerExitedError(WardenError):
    """The server went away (exited, was killed, or closed its stdout) while
    the caller was waiting on it. ``data`` holds ``returncode`` (None when it
    is not known yet) and, when the client captures stderr, ``stderr``."""

    def __init__(self, returncode: Optional[int], stderr: Optional[str] = None,
                 message: str = "server exited"):
        data = {"returncode": returncode}
        if stderr:
            data["stderr"] = stderr
        super().__init__(ErrorCode.INTERNAL_ERROR, message, data)
        self.returncode = returncode
