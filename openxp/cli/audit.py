"""``openxp audit``: a tenant's audit log, newest first (the same events as ``GET /api/audit``)."""

from __future__ import annotations

from typing import Any

import typer

from openxp import audit as audit_events
from openxp.cli._common import JSON_OPTION, TENANT_OPTION, emit, fail, iso, table, with_db
from openxp.store import audit as audit_store
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection


def _time(raw: str | None, option: str) -> float | None:
    if raw is None:
        return None
    try:
        return audit_events.parse_time(raw)
    except ValueError:
        fail(f"{option} must be an ISO 8601 time, e.g. 2026-12-01T21:15:11Z")
        raise


def audit(
    tenant: str = TENANT_OPTION,
    since: str | None = typer.Option(None, "--since", metavar="ISO", help="Only events at or after this time."),
    until: str | None = typer.Option(None, "--until", metavar="ISO", help="Only events before this time."),
    event_type: list[str] = typer.Option([], "--type", metavar="EVENT", help="Only this event type; repeat."),
    actor: str | None = typer.Option(None, "--actor", metavar="WHO", help="Only events by this actor."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, metavar="N", help="At most this many events."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a tenant's security events (sign-ins, consents, tokens, credentials), newest first."""
    start, end = _time(since, "--since"), _time(until, "--until")

    async def work(conn: Connection) -> list[audit_store.StoredEvent]:
        found = await tenant_store.get(conn, tenant)
        return await audit_store.list_events(
            conn, found.name, since=start, until=end, types=event_type, actor=actor, limit=limit
        )

    events = with_db(work)
    rows: list[list[Any]] = [[iso(e.at), e.type, e.actor, e.ip, _summary(e.details)] for e in events]
    emit(
        as_json,
        {"events": [e.as_dict() for e in events]},
        table(["AT", "EVENT", "ACTOR", "IP", "DETAILS"], rows, "(no events)"),
    )


def _summary(details: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in details.items())[:120]
