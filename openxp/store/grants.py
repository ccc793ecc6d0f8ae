"""Grants and everything descended from them: codes, access and refresh tokens.

The storage side of single use: a code or refresh token is *claimed* with one
conditional UPDATE ... RETURNING, so that of any number of concurrent requests,
in any number of processes, exactly one gets the row back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, select, update

from openxp.store.db import Connection, now
from openxp.store.models import (
    access_tokens,
    accounts,
    authorization_codes,
    clients,
    grants,
    refresh_tokens,
    tenants,
)


@dataclass(frozen=True)
class GrantInfo:
    """What a grant says about who may do what; joined in one look-up."""

    grant_id: int
    tenant_id: int
    tenant: str
    client_pk: int
    client_id: str
    account_id: int
    scope: str
    expires_at: float
    revoked: bool
    usable: bool  # grant not revoked, client and account and tenant not disabled


@dataclass(frozen=True)
class ClaimedCode:
    grant: GrantInfo
    redirect_uri: str
    code_challenge: str | None
    expires_at: float


@dataclass(frozen=True)
class ClaimedRefresh:
    grant: GrantInfo
    expires_at: float
    revoked: bool


_GRANT_COLUMNS = (
    grants.c.id.label("grant_id"),
    grants.c.tenant_id,
    tenants.c.name.label("tenant"),
    grants.c.client_pk,
    clients.c.client_id,
    grants.c.account_id,
    grants.c.scope,
    grants.c.expires_at.label("grant_expires_at"),
    grants.c.revoked_at.label("grant_revoked_at"),
    clients.c.disabled.label("client_disabled"),
    accounts.c.disabled.label("account_disabled"),
    tenants.c.disabled.label("tenant_disabled"),
)
_GRANT_JOIN = (
    grants.join(clients, clients.c.id == grants.c.client_pk)
    .join(accounts, accounts.c.id == grants.c.account_id)
    .join(tenants, tenants.c.id == grants.c.tenant_id)
)


def _grant_info(row: Any) -> GrantInfo:
    r = row
    revoked = r.grant_revoked_at is not None
    usable = not (revoked or r.client_disabled or r.account_disabled or r.tenant_disabled)
    return GrantInfo(
        grant_id=r.grant_id,
        tenant_id=r.tenant_id,
        tenant=r.tenant,
        client_pk=r.client_pk,
        client_id=r.client_id,
        account_id=r.account_id,
        scope=r.scope,
        expires_at=r.grant_expires_at,
        revoked=revoked,
        usable=usable,
    )


async def create_grant(
    conn: Connection, *, tenant_id: int, client_pk: int, account_id: int, scope: str, lifetime: int
) -> int:
    t = now()
    result = await conn.execute(
        insert(grants)
        .values(
            tenant_id=tenant_id,
            client_pk=client_pk,
            account_id=account_id,
            scope=scope,
            created_at=t,
            expires_at=t + lifetime,
        )
        .returning(grants.c.id)
    )
    return int(result.scalar_one())


async def store_code(
    conn: Connection,
    *,
    code_hash: str,
    grant_id: int,
    redirect_uri: str,
    code_challenge: str | None,
    ttl: int,
) -> None:
    t = now()
    await conn.execute(
        insert(authorization_codes).values(
            code_hash=code_hash,
            grant_id=grant_id,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            created_at=t,
            expires_at=t + ttl,
        )
    )


async def grant_info(conn: Connection, grant_id: int) -> GrantInfo | None:
    row = (await conn.execute(select(*_GRANT_COLUMNS).select_from(_GRANT_JOIN).where(grants.c.id == grant_id))).first()
    return _grant_info(row) if row else None


async def claim_code(conn: Connection, code_hash: str) -> ClaimedCode | None:
    """Mark the code used; only the first caller ever gets it back."""
    row = (
        await conn.execute(
            update(authorization_codes)
            .where(and_(authorization_codes.c.code_hash == code_hash, authorization_codes.c.used_at.is_(None)))
            .values(used_at=now())
            .returning(
                authorization_codes.c.grant_id,
                authorization_codes.c.redirect_uri,
                authorization_codes.c.code_challenge,
                authorization_codes.c.expires_at,
            )
        )
    ).first()
    if row is None:
        return None
    info = await grant_info(conn, row.grant_id)
    if info is None:
        return None
    return ClaimedCode(info, row.redirect_uri, row.code_challenge, row.expires_at)


async def spent_code_grant(conn: Connection, code_hash: str) -> int | None:
    """The grant of a code that exists but was already used (a replay)."""
    row = (
        await conn.execute(
            select(authorization_codes.c.grant_id).where(
                and_(authorization_codes.c.code_hash == code_hash, authorization_codes.c.used_at.is_not(None))
            )
        )
    ).first()
    return int(row.grant_id) if row else None


async def claim_refresh(conn: Connection, token_hash: str, client_pk: int) -> ClaimedRefresh | None:
    """Claim for this client only: another client's attempt leaves the token as it was."""
    of_client = (
        select(grants.c.id)
        .where(and_(grants.c.id == refresh_tokens.c.grant_id, grants.c.client_pk == client_pk))
        .exists()
    )
    row = (
        await conn.execute(
            update(refresh_tokens)
            .where(
                and_(
                    refresh_tokens.c.token_hash == token_hash,
                    refresh_tokens.c.used_at.is_(None),
                    of_client,
                )
            )
            .values(used_at=now())
            .returning(refresh_tokens.c.grant_id, refresh_tokens.c.expires_at, refresh_tokens.c.revoked_at)
        )
    ).first()
    if row is None:
        return None
    info = await grant_info(conn, row.grant_id)
    if info is None:
        return None
    return ClaimedRefresh(info, row.expires_at, row.revoked_at is not None)


async def spent_refresh_grant(conn: Connection, token_hash: str) -> int | None:
    row = (
        await conn.execute(
            select(refresh_tokens.c.grant_id).where(
                and_(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_not(None))
            )
        )
    ).first()
    return int(row.grant_id) if row else None


async def issue_tokens(
    conn: Connection,
    *,
    grant_id: int,
    access_hash: str,
    access_scope: str,
    access_ttl: int,
    refresh_hash: str | None,
    refresh_ttl: int,
    refresh_limit: float,
) -> None:
    t = now()
    await conn.execute(
        insert(access_tokens).values(
            token_hash=access_hash, grant_id=grant_id, scope=access_scope, created_at=t, expires_at=t + access_ttl
        )
    )
    if refresh_hash is not None:
        await conn.execute(
            insert(refresh_tokens).values(
                token_hash=refresh_hash,
                grant_id=grant_id,
                created_at=t,
                expires_at=min(t + refresh_ttl, refresh_limit),
            )
        )


async def revoke_grant(conn: Connection, grant_id: int, reason: str) -> None:
    await conn.execute(
        update(grants)
        .where(and_(grants.c.id == grant_id, grants.c.revoked_at.is_(None)))
        .values(revoked_at=now(), revoked_reason=reason)
    )


async def revoke_grants_of_account(conn: Connection, account_id: int, reason: str) -> None:
    await conn.execute(
        update(grants)
        .where(and_(grants.c.account_id == account_id, grants.c.revoked_at.is_(None)))
        .values(revoked_at=now(), revoked_reason=reason)
    )


async def revoke_grants_of_client(conn: Connection, client_pk: int, reason: str) -> None:
    await conn.execute(
        update(grants)
        .where(and_(grants.c.client_pk == client_pk, grants.c.revoked_at.is_(None)))
        .values(revoked_at=now(), revoked_reason=reason)
    )


async def revoke_access_token(conn: Connection, token_hash: str) -> None:
    await conn.execute(
        update(access_tokens)
        .where(and_(access_tokens.c.token_hash == token_hash, access_tokens.c.revoked_at.is_(None)))
        .values(revoked_at=now())
    )


@dataclass(frozen=True)
class TokenRecord:
    kind: str  # "access_token" | "refresh_token"
    grant: GrantInfo
    scope: str
    created_at: float
    expires_at: float
    active: bool


async def find_access_token(conn: Connection, token_hash: str) -> TokenRecord | None:
    """The bearer check: one look-up by primary key, joined to its grant."""
    row = (
        await conn.execute(
            select(
                access_tokens.c.scope.label("token_scope"),
                access_tokens.c.created_at,
                access_tokens.c.expires_at,
                access_tokens.c.revoked_at,
                *_GRANT_COLUMNS,
            )
            .select_from(access_tokens.join(_GRANT_JOIN, grants.c.id == access_tokens.c.grant_id))
            .where(access_tokens.c.token_hash == token_hash)
        )
    ).first()
    if row is None:
        return None
    info = _grant_info(row)
    active = info.usable and row.revoked_at is None and row.expires_at > now()
    return TokenRecord("access_token", info, row.token_scope, row.created_at, row.expires_at, active)


async def find_refresh_token(conn: Connection, token_hash: str) -> TokenRecord | None:
    row = (
        await conn.execute(
            select(
                refresh_tokens.c.created_at,
                refresh_tokens.c.expires_at,
                refresh_tokens.c.revoked_at,
                refresh_tokens.c.used_at,
                *_GRANT_COLUMNS,
            )
            .select_from(refresh_tokens.join(_GRANT_JOIN, grants.c.id == refresh_tokens.c.grant_id))
            .where(refresh_tokens.c.token_hash == token_hash)
        )
    ).first()
    if row is None:
        return None
    info = _grant_info(row)
    t = now()
    active = (
        info.usable and row.revoked_at is None and row.used_at is None and row.expires_at > t and info.expires_at > t
    )
    return TokenRecord("refresh_token", info, info.scope, row.created_at, row.expires_at, active)


async def purge_expired(conn: Connection, before: float) -> None:
    """Housekeeping: drop codes and tokens that can never be used again."""
    from sqlalchemy import delete

    await conn.execute(delete(authorization_codes).where(authorization_codes.c.expires_at < before))
    await conn.execute(delete(access_tokens).where(access_tokens.c.expires_at < before))
    await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.expires_at < before))
