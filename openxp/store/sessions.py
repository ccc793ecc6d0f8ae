"""Browser sessions and pending authorization requests (interactions).

A session id reaches the browser only in its cookie; we keep its digest. An
interaction is an authorization request that passed validation and waits for
login and consent; it is bound to the session that started it and consumed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from openxp import crypto
from openxp.store.db import Connection, now
from openxp.store.models import interactions, sessions
from openxp.store.rows import deleted


@dataclass(frozen=True)
class Session:
    id_hash: str
    account_id: int | None
    expires_at: float
    # When the admin last typed the password on this session (sign-in or re-authentication);
    # None before sign-in. Only the server writes it: the console's re-auth window reads it (L-10).
    authenticated_at: float | None = None


@dataclass(frozen=True)
class Interaction:
    id_hash: str
    session_hash: str
    client_pk: int
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str | None
    expires_at: float
    used: bool


async def start_session(conn: Connection, account_id: int | None, absolute_ttl: int) -> str:
    token = crypto.random_token(32)
    t = now()
    await conn.execute(
        insert(sessions).values(
            id_hash=crypto.digest(token),
            account_id=account_id,
            created_at=t,
            last_seen_at=t,
            expires_at=t + absolute_ttl,
            # A session made for an account is made by its sign-in: the password was just typed.
            authenticated_at=t if account_id is not None else None,
        )
    )
    return token


async def load_session(conn: Connection, token: str, idle_ttl: int) -> Session | None:
    row = (await conn.execute(select(sessions).where(sessions.c.id_hash == crypto.digest(token)))).first()
    if row is None:
        return None
    t = now()
    if row.expires_at <= t or row.last_seen_at + idle_ttl <= t:
        return None
    return Session(row.id_hash, row.account_id, row.expires_at, row.authenticated_at)


async def touch_session(conn: Connection, id_hash: str) -> None:
    await conn.execute(update(sessions).where(sessions.c.id_hash == id_hash).values(last_seen_at=now()))


async def mark_authenticated(conn: Connection, id_hash: str) -> None:
    """The session's admin typed the right password just now (a console re-authentication)."""
    await conn.execute(update(sessions).where(sessions.c.id_hash == id_hash).values(authenticated_at=now()))


async def end_session(conn: Connection, id_hash: str) -> None:
    await conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash))


async def replace_session(conn: Connection, old_hash: str | None, account_id: int, absolute_ttl: int) -> str:
    """Log in: a fresh session id (no fixation); pending interactions follow it."""
    token = await start_session(conn, account_id, absolute_ttl)
    if old_hash is not None:
        await conn.execute(
            update(interactions)
            .where(interactions.c.session_hash == old_hash)
            .values(session_hash=crypto.digest(token))
        )
        await end_session(conn, old_hash)
    return token


async def create_interaction(
    conn: Connection,
    *,
    session_hash: str,
    client_pk: int,
    redirect_uri: str,
    scope: str,
    state: str | None,
    code_challenge: str | None,
    ttl: int,
) -> str:
    interaction_id = crypto.random_token(24)
    t = now()
    await conn.execute(
        insert(interactions).values(
            id_hash=crypto.digest(interaction_id),
            session_hash=session_hash,
            client_pk=client_pk,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            code_challenge=code_challenge,
            created_at=t,
            expires_at=t + ttl,
        )
    )
    return interaction_id


def _interaction(row: Any) -> Interaction:
    r = row
    return Interaction(
        id_hash=r.id_hash,
        session_hash=r.session_hash,
        client_pk=r.client_pk,
        redirect_uri=r.redirect_uri,
        scope=r.scope,
        state=r.state,
        code_challenge=r.code_challenge,
        expires_at=r.expires_at,
        used=r.used_at is not None,
    )


async def find_interaction(conn: Connection, interaction_id: str) -> Interaction | None:
    row = (
        await conn.execute(select(interactions).where(interactions.c.id_hash == crypto.digest(interaction_id)))
    ).first()
    return _interaction(row) if row else None


async def consume_interaction(conn: Connection, interaction_id: str, session_hash: str) -> Interaction | None:
    """Single use: only the first decision on an interaction counts."""
    row = (
        await conn.execute(
            update(interactions)
            .where(
                and_(
                    interactions.c.id_hash == crypto.digest(interaction_id),
                    interactions.c.session_hash == session_hash,
                    interactions.c.used_at.is_(None),
                    interactions.c.expires_at > now(),
                )
            )
            .values(used_at=now())
            .returning(*interactions.c)
        )
    ).first()
    return _interaction(row) if row else None


async def purge_interactions(conn: Connection, before: float) -> int:
    """Housekeeping: pending authorization requests that expired before ``before``."""
    return deleted(await conn.execute(delete(interactions).where(interactions.c.expires_at < before)))


async def purge_sessions(conn: Connection, before: float) -> int:
    """Housekeeping: browser sessions that expired before ``before``."""
    return deleted(await conn.execute(delete(sessions).where(sessions.c.expires_at < before)))


@dataclass(frozen=True)
class SessionInfo:
    ref: str  # the first 16 hex digits of the digest: names the session on a page, opens nothing
    created_at: float
    last_seen_at: float
    expires_at: float


async def list_for_account(conn: Connection, account_id: int) -> list[tuple[str, SessionInfo]]:
    """The account's live sessions, newest first, each with its full digest (for comparing)."""
    rows = (
        await conn.execute(
            select(sessions)
            .where(and_(sessions.c.account_id == account_id, sessions.c.expires_at > now()))
            .order_by(sessions.c.created_at.desc())
        )
    ).all()
    return [(r.id_hash, SessionInfo(r.id_hash[:16], r.created_at, r.last_seen_at, r.expires_at)) for r in rows]


async def end_session_of_account(conn: Connection, account_id: int, ref: str) -> bool:
    """End the account's session named by ``ref``; another account's is never touched."""
    if len(ref) != 16 or any(ch not in "0123456789abcdef" for ch in ref):
        return False
    result = await conn.execute(
        delete(sessions).where(and_(sessions.c.account_id == account_id, sessions.c.id_hash.startswith(ref)))
    )
    return deleted(result) > 0


async def end_other_sessions(conn: Connection, account_id: int, keep_hash: str) -> int:
    return deleted(
        await conn.execute(
            delete(sessions).where(and_(sessions.c.account_id == account_id, sessions.c.id_hash != keep_hash))
        )
    )
