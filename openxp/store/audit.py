"""The audit log's SQL: batched inserts, the tenant-scoped read, and retention.

Rows are written by ``openxp.audit_writer`` in batches off the request path; they are read by
``GET /api/audit``, ``openxp audit`` and the console. A read always names one tenant: rows with
``tenant`` NULL (events no tenant owns) are never returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, select

from openxp.store.db import Connection
from openxp.store.models import audit_events, clients, tenants
from openxp.store.rows import deleted

# Plain SQL (one statement for the whole batch): the writer runs it every fraction of a second
# under load, beside the token path.
_INSERT = (
    "INSERT INTO audit_events (tenant, at, type, severity, actor, ip, details) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)

# One row as the writer hands it over: tenant, at, type, severity, actor, ip, details (JSON text).
Row = tuple[str | None, float, str, str, str | None, str | None, str]


@dataclass(frozen=True)
class StoredEvent:
    id: int
    tenant: str
    at: float
    type: str
    severity: str
    actor: str | None
    ip: str | None
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The event as ``GET /api/audit`` and ``openxp audit --json`` show it."""
        at = datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {
            "id": self.id,
            "type": self.type,
            "at": at,
            "tenant": self.tenant,
            "actor": self.actor,
            "ip": self.ip,
            "severity": self.severity,
            "details": self.details,
        }


async def insert_many(conn: Connection, rows: Sequence[Row]) -> None:
    if rows:
        await conn.run_many(_INSERT, rows)


async def list_events(
    conn: Connection,
    tenant: str,
    *,
    since: float | None = None,
    until: float | None = None,
    types: Sequence[str] = (),
    actor: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[StoredEvent]:
    """One tenant's events, newest first; ``since`` inclusive, ``until`` exclusive (Unix seconds)."""
    e = audit_events.c
    query = select(audit_events).where(e.tenant == tenant)
    if since is not None:
        query = query.where(e.at >= since)
    if until is not None:
        query = query.where(e.at < until)
    if types:
        query = query.where(e.type.in_(list(types)))
    if actor is not None:
        query = query.where(e.actor == actor)
    query = query.order_by(e.at.desc(), e.id.desc()).limit(limit).offset(offset)
    rows = (await conn.execute(query)).all()
    return [StoredEvent(r.id, r.tenant, r.at, r.type, r.severity, r.actor, r.ip, orjson.loads(r.details)) for r in rows]


async def purge_before(conn: Connection, before: float) -> int:
    """Housekeeping: events older than the retention period (OPENXP_AUDIT_RETENTION_DAYS)."""
    return deleted(await conn.execute(delete(audit_events).where(audit_events.c.at < before)))


async def tenants_of_clients(conn: Connection, client_ids: Iterable[str]) -> dict[str, str]:
    """The owning tenant's name of each known client id (an event names its client, not always its tenant)."""
    wanted = sorted(set(client_ids))
    if not wanted:
        return {}
    query = (
        select(clients.c.client_id, tenants.c.name)
        .join(tenants, tenants.c.id == clients.c.tenant_id)
        .where(clients.c.client_id.in_(wanted))
    )
    return {r.client_id: r.name for r in (await conn.execute(query)).all()}


async def tenant_names(conn: Connection, tenant_ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(tenant_ids))
    if not wanted:
        return {}
    query = select(tenants.c.id, tenants.c.name).where(tenants.c.id.in_(wanted))
    return {r.id: r.name for r in (await conn.execute(query)).all()}
