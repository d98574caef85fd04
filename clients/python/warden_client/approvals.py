"""Typed network approvals: what the server asks (``approval/network``), what
the client answers, and how it was settled (``approval/resolved``).

A handler takes a ``NetworkApproval`` and returns a ``Decision`` (or its
string, or a full ``{"decision": ...}`` result)::

    def on_approval(req: NetworkApproval) -> Decision:
        if req.host == "registry.npmjs.org" and req.port == 443:
            return Decision.ALLOW_FOR_SESSION
        return Decision.DENY

The server asks once per (host, protocol, port) at a time; every connection
waiting on that key shares the answer. No answer within its timeout, an
exception in the handler or an unknown decision counts as ``deny``.
"""

import enum
from typing import Any, Awaitable, Callable, Dict, Mapping, NamedTuple, Optional, Tuple, Union

from . import _generated as g


class Decision(str, enum.Enum):
    """An ``ApprovalDecision``. It is a ``str``: ``Decision.DENY == "deny"``."""

    #: Let the waiting connections through; remember nothing.
    ALLOW_ONCE = "allowOnce"
    #: Also allow this (host, protocol, port) until the server exits.
    ALLOW_FOR_SESSION = "allowForSession"
    #: Also persist an allow rule for this exact host, protocol and port.
    ALLOW_ALWAYS = "allowAlways"
    #: Refuse the waiting connections.
    DENY = "deny"
    #: Also persist a deny rule for this exact host, protocol and port.
    DENY_ALWAYS = "denyAlways"

    def __str__(self) -> str:
        return self.value

    @property
    def allows(self) -> bool:
        return self in (Decision.ALLOW_ONCE, Decision.ALLOW_FOR_SESSION, Decision.ALLOW_ALWAYS)


class NetworkApproval(Dict[str, Any]):
    """The params of ``approval/network`` (an ``ApprovalNetworkParams`` dict,
    so ``req["host"]`` works) with typed attributes."""

    @property
    def approval_id(self) -> str:
        return str(self["approvalId"])

    @property
    def host(self) -> str:
        return str(self["host"])

    @property
    def port(self) -> int:
        return int(self["port"])

    @property
    def protocol(self) -> g.NetworkProtocol:
        return self["protocol"]

    @property
    def process_ids(self) -> Tuple[str, ...]:
        """The processes waiting when the prompt went out (later ones join
        without a new prompt)."""
        return tuple(self.get("processIds") or ())

    @property
    def reason(self) -> str:
        return str(self.get("reason", ""))

    @property
    def started_at_ms(self) -> int:
        return int(self.get("startedAtMs", 0))

    @property
    def key(self) -> Tuple[str, str, int]:
        """(host, protocol, port): what one prompt stands for."""
        return (self.host, str(self.protocol), self.port)

    def __repr__(self) -> str:
        return "NetworkApproval(%s %s %s:%d, processes=%r)" % (
            self.approval_id, self.protocol, self.host, self.port, list(self.process_ids))


class ApprovalResolved(NamedTuple):
    """``approval/resolved``: how a prompt was settled and how many waiting
    connections shared it."""

    approval_id: str
    decision: Decision
    waiters: int
    #: Why the group was refused, when it was ("denied_by_user",
    #: "approval_timeout", "approval_error", "approval_unknown_decision",
    #: "approval_client_gone", "server_shutting_down").
    reason: Optional[str] = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "ApprovalResolved":
        return cls(str(params["approvalId"]), Decision(params["decision"]), int(params["waiters"]),
                   params.get("reason"))


#: What a handler may return.
ApprovalAnswer = Union[Decision, g.ApprovalDecision, g.ApprovalNetworkResult]
#: A blocking handler (the asyncio client also takes a coroutine function).
NetworkApprovalHandler = Callable[[NetworkApproval], Union[ApprovalAnswer, Awaitable[ApprovalAnswer]]]
