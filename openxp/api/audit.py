"""``GET /api/audit``: the tenant's audit log, newest first (../shared/CONTRACT.md, "Audit log").

Query parameters: ``since`` and ``until`` (ISO 8601; since inclusive, until exclusive),
``type`` (an event type; repeat for several), ``actor`` (exact), ``limit`` (1-1000, default
100) and ``skip``. Answers ``{"events": [...]}``. Needs ``audit/read`` (``all/read`` and
``all`` include it); the events are those of the credential's tenant only (I-01).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openxp import audit
from openxp.api.errors import InvalidParameter
from openxp.api.http import endpoint
from openxp.auth import Principal
from openxp.httpio import JSON, NO_STORE
from openxp.runtime import runtime
from openxp.store import audit as audit_store

SCOPE = "audit/read"
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_SKIP = 1_000_000
MAX_TYPES = 50
KNOWN_PARAMETERS = frozenset({"since", "until", "type", "actor", "limit", "skip"})


def _one(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidParameter(f"send {name} once", prop=name)
    return values[0] if values else None


def _time(request: Request, name: str) -> float | None:
    raw = _one(request, name)
    if raw is None:
        return None
    try:
        return audit.parse_time(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be an ISO 8601 time, e.g. 2026-12-01T21:15:11Z", prop=name) from None


def _count(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = _one(request, name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or not minimum <= int(raw) <= maximum:
        raise InvalidParameter(f"{name} must be a whole number from {minimum} to {maximum}", prop=name)
    return int(raw)


@endpoint(SCOPE)
async def list_audit(request: Request, principal: Principal) -> Response:
    unknown = sorted(set(request.query_params) - KNOWN_PARAMETERS)
    if unknown:
        raise InvalidParameter(
            f"unknown parameter {unknown[0]!r}; known: {', '.join(sorted(KNOWN_PARAMETERS))}", prop=unknown[0]
        )
    types = request.query_params.getlist("type")
    if len(types) > MAX_TYPES or any(not t or len(t) > 64 for t in types):
        raise InvalidParameter(f"type names an event type (at most {MAX_TYPES} of them)", prop="type")
    actor = _one(request, "actor")
    if actor is not None and not 1 <= len(actor) <= 320:
        raise InvalidParameter("actor must be 1-320 characters", prop="actor")
    since, until = _time(request, "since"), _time(request, "until")
    limit = _count(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    skip = _count(request, "skip", 0, 0, MAX_SKIP)
    async with runtime(request).db.read() as conn:
        found = await audit_store.list_events(
            conn, principal.tenant, since=since, until=until, types=types, actor=actor, limit=limit, offset=skip
        )
    return JSON({"events": [e.as_dict() for e in found]}, headers=NO_STORE)
