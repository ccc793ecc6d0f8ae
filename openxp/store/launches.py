"""Short-lived Basic credentials: ClearXP's ``POST /api/auth/basic`` ("basic")
and content-launch credentials ("launch").

A username is unique per tenant, enforced by a unique index on (tenant, username):
creating one is a single ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the existing
row is dead (expired or revoked), so a dead name is reused in place and a live one is
refused by the database, however many creates race. Tenants never compete for a name.

A Basic look-up finds the live rows of that username in every tenant (at most one
each); the caller tells them apart by the password digest and, when two match, by
the tenant the request names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openxp.store.db import Connection, now
from openxp.store.errors import AlreadyExists
from openxp.store.models import short_lived_credentials as creds
from openxp.store.models import tenants
from openxp.store.rows import deleted


@dataclass(frozen=True)
class Credential:
    id: int
    tenant_id: int
    username: str
    secret_hash: str
    kind: str
    actor: dict[str, Any] | None
    actor_key: str | None
    activity_id: str | None
    registration: str | None
    expires_at: float


def _credential(r: Any) -> Credential:
    return Credential(
        r.id,
        r.tenant_id,
        r.username,
        r.secret_hash,
        r.kind,
        r.actor,
        r.actor_key,
        r.activity_id,
        r.registration,
        r.expires_at,
    )


def _live(at: float) -> Any:
    return and_(creds.c.revoked_at.is_(None), creds.c.expires_at > at)


async def create(
    conn: Connection,
    tenant_id: int,
    *,
    username: str,
    secret_hash: str,
    kind: str,
    ttl: float,
    created_by: str,
    actor: dict[str, Any] | None = None,
    actor_key: str | None = None,
    activity_id: str | None = None,
    registration: str | None = None,
) -> float:
    """Store a credential; returns its expiry. ``AlreadyExists`` if the name is live in this tenant."""
    at = now()
    expires_at = at + ttl
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {
        "tenant_id": tenant_id,
        "username": username,
        "secret_hash": secret_hash,
        "kind": kind,
        "actor": actor,
        "actor_key": actor_key,
        "activity_id": activity_id,
        "registration": registration,
        "created_by": created_by,
        "created_at": at,
        "expires_at": expires_at,
        "revoked_at": None,
    }
    stmt = dialect.insert(creds).values(**values)
    replace_dead = stmt.on_conflict_do_update(
        index_elements=[creds.c.tenant_id, creds.c.username],
        set_={name: stmt.excluded[name] for name in values if name not in ("tenant_id", "username")},
        where=or_(creds.c.revoked_at.is_not(None), creds.c.expires_at <= at),
    ).returning(creds.c.id)
    if (await conn.execute(replace_dead)).first() is None:
        raise AlreadyExists(f"the username {username!r} is in use by a live credential of this tenant")
    return expires_at


async def live_by_username(conn: Connection, username: str, tenant: str | None = None) -> list[Credential]:
    """The live credentials of that name: in ``tenant`` only (one at most) when the request
    named one, else in every tenant (one per tenant at most, by the unique index)."""
    where = [creds.c.username == username, _live(now())]
    if tenant is not None:
        where.append(creds.c.tenant_id == select(tenants.c.id).where(tenants.c.name == tenant).scalar_subquery())
    rows = (await conn.execute(select(creds).where(*where).order_by(creds.c.id))).all()
    return [_credential(r) for r in rows]


async def revoke(conn: Connection, tenant_id: int, username: str) -> bool:
    """Revoke the live credential of that name in this tenant; False if there is none."""
    result = await conn.execute(
        update(creds)
        .where(creds.c.tenant_id == tenant_id, creds.c.username == username, _live(now()))
        .values(revoked_at=now())
        .returning(creds.c.id)
    )
    return result.first() is not None


async def purge_dead(conn: Connection, before: float) -> int:
    """Housekeeping: drop credentials that expired or were revoked before ``before``."""
    result = await conn.execute(
        delete(creds).where(
            or_(creds.c.expires_at < before, and_(creds.c.revoked_at.is_not(None), creds.c.revoked_at < before))
        )
    )
    return deleted(result)
