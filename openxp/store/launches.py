"""Short-lived Basic credentials: ClearXP's ``POST /api/auth/basic`` ("basic")
and content-launch credentials ("launch").

A username is unique per tenant among live credentials: creating one drops the
dead rows (expired or revoked) of the same name first, inside the same write
transaction, so a name can be reused once its credential is dead. Basic
requests name no tenant, so a look-up by username may find one live row per
tenant; the caller tells them apart by the password digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update

from openxp.store.db import Connection, now
from openxp.store.errors import AlreadyExists
from openxp.store.models import short_lived_credentials as creds
from openxp.store.rows import deleted

# More live rows of one name than this (across tenants) are not looked at.
MAX_CANDIDATES = 8


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
    """Store a credential; returns its expiry. Conflict if the name is live in this tenant."""
    at = now()
    same_name = and_(creds.c.tenant_id == tenant_id, creds.c.username == username)
    await conn.execute(delete(creds).where(same_name, or_(creds.c.revoked_at.is_not(None), creds.c.expires_at <= at)))
    if (await conn.execute(select(creds.c.id).where(same_name))).first() is not None:
        raise AlreadyExists(f"the username {username!r} is in use by a live credential of this tenant")
    expires_at = at + ttl
    await conn.execute(
        insert(creds).values(
            tenant_id=tenant_id,
            username=username,
            secret_hash=secret_hash,
            kind=kind,
            actor=actor,
            actor_key=actor_key,
            activity_id=activity_id,
            registration=registration,
            created_by=created_by,
            created_at=at,
            expires_at=expires_at,
            revoked_at=None,
        )
    )
    return expires_at


async def live_by_username(conn: Connection, username: str) -> list[Credential]:
    rows = (
        await conn.execute(
            select(creds).where(creds.c.username == username, _live(now())).order_by(creds.c.id).limit(MAX_CANDIDATES)
        )
    ).all()
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
