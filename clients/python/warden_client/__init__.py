"""Python client for warden, the JSON-RPC sandboxed process server.

    from warden_client import WardenClient

    with WardenClient() as client:            # $WARDEN_BIN, or warden on PATH
        proc = client.run(["uname", "-a"], sandbox={"type": "dangerFullAccess"})
        print(proc.stdout.decode())

``WardenClient`` is the blocking API, ``AsyncWardenClient`` the asyncio one.
Both offer ``request(method, params)`` and one typed method per client request
(``process_spawn``, ``process_write``, ``policy_resolve``...), generated with
the protocol types in ``warden_client.types`` from the schema bundle.
Errors are ``WardenError(code, message, data)``.
"""

from . import _generated as types
from ._common import Notification, WardenNotFoundError, __version__, find_warden
from ._generated import (
    CLIENT_NOTIFICATIONS, CLIENT_REQUESTS, METHODS, PROTOCOL_VERSION, SERVER_NOTIFICATIONS,
    SERVER_REQUESTS, MethodSpec)
from .aio import AsyncProcess, AsyncWardenClient
from .approvals import ApprovalResolved, Decision, NetworkApproval, NetworkApprovalHandler
from .client import Process, WardenClient
from .errors import ErrorCode, ServerExitedError, WardenError

__all__ = [
    "ApprovalResolved",
    "Decision",
    "NetworkApproval",
    "NetworkApprovalHandler",
    "AsyncProcess",
    "AsyncWardenClient",
    "CLIENT_NOTIFICATIONS",
    "CLIENT_REQUESTS",
    "ErrorCode",
    "METHODS",
    "MethodSpec",
    "Notification",
    "PROTOCOL_VERSION",
    "Process",
    "SERVER_NOTIFICATIONS",
    "SERVER_REQUESTS",
    "ServerExitedError",
    "WardenClient",
    "WardenError",
    "WardenNotFoundError",
    "__version__",
    "find_warden",
    "types",
]
