"""Security events: one JSON object per line on the ``openxp.audit`` logger, and a record for
the persisted audit log (``openxp.audit_writer`` stores them; ``GET /api/audit`` reads them).

Callers pass ids and outcomes, never secrets: a credential is referred to by its
public id or by the first 8 hex digits of its digest. JSON encoding escapes
CR/LF, so a hostile value cannot forge a log line (P-03).

Every event names, where known, its ``tenant`` (a name, or ``tenant_id``), its ``actor`` (who:
an admin's email, a client id, an API key, ``operator:<user>`` for the command line) and the
caller's ``ip``. Without ``actor`` the first of ``by``, ``key``, ``client_id`` is taken; without
``ip`` the address of the request being served (``RequestAddress``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("openxp.audit")

# The address of the request this task serves; set by ``RequestAddress``.
_address: ContextVar[str | None] = ContextVar("openxp_audit_address", default=None)
# Security events raised inside a transaction that keeps them (``holding``), to be written with it.
_held: ContextVar[list[Record] | None] = ContextVar("openxp_audit_held", default=None)
_ACTOR_FIELDS = ("by", "key", "client_id")


class Record(NamedTuple):
    """One event as the persisted log takes it (a tuple: made on every token request, cheaply)."""

    at: float
    type: str
    severity: str
    tenant: str | None
    tenant_id: int | None
    actor: str | None
    ip: str | None
    fields: dict[str, Any]


Sink = Callable[[Record], None]
_sink: Sink | None = None


# Events that must not wait in the queue: a kill -9 right after the answer keeps them (decision 2).
SYNCHRONOUS = frozenset({"high"})


def install(sink: Sink | None) -> None:
    """Where records go besides the log (the server's writer, a command's buffer); None: nowhere."""
    global _sink
    _sink = sink


def event(
    name: str,
    *,
    severity: str = "info",
    tenant: str | None = None,
    tenant_id: int | None = None,
    actor: str | None = None,
    ip: str | None = None,
    **fields: Any,
) -> None:
    values = {k: v for k, v in fields.items() if v is not None}
    if actor is None:
        for who in _ACTOR_FIELDS:
            if who in values:
                actor = str(values[who])
                break
    if ip is None:
        ip = _address.get()
    record = Record(time.time(), name, severity, tenant, tenant_id, actor, ip, values)
    held = _held.get() if severity in SYNCHRONOUS else None
    if held is not None:
        held.append(record)
    elif _sink is not None:
        _sink(record)
    if logger.isEnabledFor(logging.INFO):
        line = {"ts": round(record.at, 3), "event": name, "severity": severity}
        extra = {"tenant": tenant, "tenant_id": tenant_id, "actor": actor, "ip": ip}
        line.update({k: v for k, v in extra.items() if v is not None})
        line.update(values)
        level = logging.WARNING if severity in {"high", "warning"} else logging.INFO
        logger.log(level, orjson.dumps(line, default=str).decode())


@contextlib.contextmanager
def holding() -> Iterator[list[Record]]:
    """Collect the security events raised inside, instead of queueing them, so that the caller
    writes them in its transaction (``audit_writer.kept_with``)."""
    held: list[Record] = []
    token = _held.set(held)
    try:
        yield held
    finally:
        _held.reset(token)


def parse_time(text: str) -> float:
    """An ISO 8601 time (``2026-12-01T21:15:11Z``, or a date) as Unix seconds; without a zone, UTC.
    Raises ``ValueError``."""
    if not text or len(text) > 64:
        raise ValueError("empty or too long")
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def ref(digest: str) -> str:
    """A short, non-secret reference to a stored credential."""
    return digest[:8]


class RequestAddress:
    """Plain ASGI: remembers the caller's address for the events the request raises, so that
    code far from the request (the token grants, client authentication) records where from.
    X-Forwarded-For counts only from a trusted proxy (N-05), as ``runtime.client_ip``."""

    def __init__(self, app: ASGIApp, trusted_proxies: Collection[str] = ()) -> None:
        self.app = app
        self.trusted = frozenset(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            _address.set(self._address(scope))
        await self.app(scope, receive, send)

    def _address(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = client[0] if client else "unknown"
        if peer in self.trusted:
            for name, value in scope.get("headers", ()):
                if name == b"x-forwarded-for":
                    hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
                    if hops:
                        return hops[-1][:64]
        return peer
