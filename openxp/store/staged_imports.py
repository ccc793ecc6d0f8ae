"""CSV files the console's learner import keeps between the preview and the confirm.

The browser holds only a random token; we keep its digest, bound to one tenant and one console
session. ``take`` hands the file back once (it deletes the row in the same transaction), so a
confirm form posted twice imports once.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from openxp import crypto
from openxp.store.db import Connection, now
from openxp.store.models import staged_imports
from openxp.store.rows import deleted

TTL = 3600


async def stage(conn: Connection, tenant_id: int, session_hash: str, content: bytes) -> str:
    token = crypto.random_token(32)
    t = now()
    await conn.execute(
        insert(staged_imports).values(
            id=crypto.digest(token),
            tenant_id=tenant_id,
            session_hash=session_hash,
            created_at=t,
            expires_at=t + TTL,
            content=content,
        )
    )
    return token


async def take(conn: Connection, token: str, tenant_id: int, session_hash: str) -> bytes | None:
    """The staged file of this tenant and this session, removed as it is read; None when there
    is none (never staged, already taken, expired, or another tenant's or session's)."""
    row = (await conn.execute(select(staged_imports).where(staged_imports.c.id == crypto.digest(token)))).first()
    if row is None or row.tenant_id != tenant_id or not crypto.equals(row.session_hash, session_hash):
        return None
    if row.expires_at <= now():
        return None
    if not deleted(await conn.execute(delete(staged_imports).where(staged_imports.c.id == row.id))):
        return None  # another request took it first
    return bytes(row.content)


async def purge_expired(conn: Connection, before: float) -> int:
    """Housekeeping: staged files that expired before ``before``."""
    return deleted(await conn.execute(delete(staged_imports).where(staged_imports.c.expires_at < before)))
