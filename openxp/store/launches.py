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

from sqlalchemy import and_, case, delete, or_, select, update
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
    session_id: str | None = None


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
        r.session_id,
    )


@dataclass(frozen=True)
class Session:
    """A cmi5 session a newer launch of the same registration abandons."""

    session_id: str
    actor: dict[str, Any]
    activity_id: str
    registration: str
    created_at: float


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
    fetch_hash: str | None = None,
    session_id: str | None = None,
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
        "fetch_hash": fetch_hash,
        "fetched_at": None,
        "session_id": session_id,
        "terminated_at": None,
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


@dataclass(frozen=True)
class Fetch:
    """What a cmi5 fetch key found: ``redeemed`` (the secret is set now), or ``used`` (redeemed
    before, revoked or expired: cmi5 error 1); ``tenant_id`` None when no credential has it."""

    tenant_id: int | None
    username: str = ""
    redeemed: bool = False


async def redeem_fetch(conn: Connection, fetch_hash: str, secret_hash: str) -> Fetch:
    """cmi5 8.2: give the credential behind a fetch key its Basic secret, once. The condition
    (not yet fetched, live) is in the UPDATE, so of concurrent fetches exactly one wins."""
    at = now()
    won = await conn.execute(
        update(creds)
        .where(creds.c.fetch_hash == fetch_hash, creds.c.fetched_at.is_(None), _live(at))
        .values(secret_hash=secret_hash, fetched_at=at)
        .returning(creds.c.username, creds.c.tenant_id)
    )
    row = won.first()
    if row is not None:
        return Fetch(row.tenant_id, row.username, redeemed=True)
    known = (await conn.execute(select(creds.c.tenant_id).where(creds.c.fetch_hash == fetch_hash))).first()
    return Fetch(known.tenant_id if known is not None else None)


async def end_session(conn: Connection, tenant_id: int, username: str, grace: float) -> bool:
    """cmi5 9.3.8: the AU terminated its session; its credential ends ``grace`` seconds later
    (sooner if it was to expire sooner). False if it had already terminated."""
    at = now()
    ends = at + grace
    result = await conn.execute(
        update(creds)
        .where(creds.c.tenant_id == tenant_id, creds.c.username == username, creds.c.terminated_at.is_(None))
        .values(
            terminated_at=at,
            expires_at=case((creds.c.expires_at > ends, ends), else_=creds.c.expires_at),
        )
        .returning(creds.c.id)
    )
    return result.first() is not None


async def abandon_sessions(
    conn: Connection, tenant_id: int, actor_key: str, activity_id: str, registration: str
) -> list[Session]:
    """cmi5 9.3.6: a new launch of the same registration abandons the sessions still open
    (live, not terminated); their credentials are revoked. The sessions abandoned, oldest first."""
    result = await conn.execute(
        update(creds)
        .where(
            creds.c.tenant_id == tenant_id,
            creds.c.kind == "cmi5",
            creds.c.actor_key == actor_key,
            creds.c.activity_id == activity_id,
            creds.c.registration == registration,
            creds.c.terminated_at.is_(None),
            _live(now()),
        )
        .values(revoked_at=now())
        .returning(creds.c.session_id, creds.c.actor, creds.c.created_at)
    )
    rows = sorted(result.all(), key=lambda r: r.created_at)
    return [Session(r.session_id, r.actor, activity_id, registration, r.created_at) for r in rows]


async def purge_dead(conn: Connection, before: float) -> int:
    """Housekeeping: drop credentials that expired or were revoked before ``before``."""
    result = await conn.execute(
        delete(creds).where(
            or_(creds.c.expires_at < before, and_(creds.c.revoked_at.is_not(None), creds.c.revoked_at < before))
        )
    )
    return deleted(result)
