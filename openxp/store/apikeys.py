"""API keys: the deprecated Basic-auth credentials (key + secret) of a tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from openxp import crypto, scopes
from openxp.store import scope_lists
from openxp.store.db import Connection, now
from openxp.store.errors import Invalid, NotFound
from openxp.store.models import api_keys


@dataclass(frozen=True)
class ApiKey:
    id: int
    key: str
    tenant_id: int
    name: str
    secret_hash: str
    scopes: list[str]
    disabled: bool
    last_used_at: float | None


def _key(row: Any) -> ApiKey:
    r = row
    return ApiKey(
        r.id,
        r.key,
        r.tenant_id,
        r.name,
        r.secret_hash,
        list(r.scopes),
        bool(r.disabled),
        r.last_used_at,
    )


async def create(
    conn: Connection, tenant_id: int, name: str = "", key_scopes: list[str] | None = None
) -> tuple[ApiKey, str]:
    label = name.strip() or "API key"
    if len(label) > 200:
        raise Invalid("a key name must be at most 200 characters")
    granted = scope_lists.validate(key_scopes or [scopes.ALL])
    key = crypto.random_token(16)
    secret = crypto.new_credential()
    result = await conn.execute(
        insert(api_keys)
        .values(
            key=key,
            tenant_id=tenant_id,
            name=label,
            secret_hash=crypto.digest(secret),
            scopes=granted,
            disabled=False,
            created_at=now(),
        )
        .returning(api_keys.c.id)
    )
    return ApiKey(result.scalar_one(), key, tenant_id, label, crypto.digest(secret), granted, False, None), secret


async def find(conn: Connection, key: str) -> ApiKey | None:
    row = (await conn.execute(select(api_keys).where(api_keys.c.key == key))).first()
    return _key(row) if row else None


async def get(conn: Connection, key: str, tenant_id: int) -> ApiKey:
    found = await find(conn, key)
    if found is None or found.tenant_id != tenant_id:
        raise NotFound(f"no API key {key!r} in this tenant")
    return found


async def list_for_tenant(conn: Connection, tenant_id: int) -> list[ApiKey]:
    rows = (await conn.execute(select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(api_keys.c.id))).all()
    return [_key(r) for r in rows]


async def set_disabled(conn: Connection, key_id: int, disabled: bool) -> None:
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(disabled=disabled))


async def rotate(conn: Connection, key_id: int) -> str:
    secret = crypto.new_credential()
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(secret_hash=crypto.digest(secret)))
    return secret


async def mark_used(conn: Connection, key_id: int) -> None:
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now()))
