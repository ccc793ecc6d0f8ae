"""Grants and everything descended from them: codes, access and refresh tokens.

The storage side of single use: a code or refresh token is *claimed* with one
conditional UPDATE ... RETURNING, so that of any number of concurrent requests,
in any number of processes, exactly one gets the row back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from openxp.config import MAX_REFRESH_REUSE_GRACE
from openxp.store import revocations
from openxp.store.db import Connection, Lookup, now
from openxp.store.models import access_tokens, authorization_codes, grants, refresh_tokens
from openxp.store.rows import deleted


@dataclass(frozen=True)
class GrantInfo:
    """What a grant says about who may do what; joined in one look-up."""

    grant_id: int
    tenant_id: int
    tenant: str
    client_pk: int
    client_id: str
    account_id: int | None  # None: a service grant (client_credentials), for no admin
    scope: str
    expires_at: float
    revoked: bool
    usable: bool  # grant not revoked, client and account and tenant not disabled

    @property
    def subject(self) -> str:
        """Whom the grant acts for: the approving admin's id, or the client itself (RFC 6749 4.4)."""
        return str(self.account_id) if self.account_id is not None else self.client_id


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


@dataclass(frozen=True)
class SpentRefresh:
    """A refresh token that was already rotated: when, for which client's grant, and the
    nonce its successors were derived from (while a reuse grace keeps it)."""

    grant_id: int
    client_pk: int
    used_at: float
    rotation_nonce: str | None


# The grant with everything that can end it; joined, so one look-up answers "is it usable?".
# A service grant has no account: the LEFT JOIN gives NULL, which disables nothing.
# (Interpolated into the queries below: constants, never input; hence the noqa: S608.)
_GRANT_COLUMNS = """
    g.id AS grant_id, g.tenant_id, t.name AS tenant, g.client_pk, c.client_id, g.account_id,
    g.scope, g.expires_at AS grant_expires_at, g.revoked_at AS grant_revoked_at,
    c.disabled AS client_disabled, a.disabled AS account_disabled, t.disabled AS tenant_disabled"""
_GRANT_JOINS = """
    JOIN clients c ON c.id = g.client_pk
    LEFT JOIN accounts a ON a.id = g.account_id
    JOIN tenants t ON t.id = g.tenant_id"""


def _grant_info(r: Any) -> GrantInfo:
    revoked = r["grant_revoked_at"] is not None
    usable = not (revoked or r["client_disabled"] or r["account_disabled"] or r["tenant_disabled"])
    return GrantInfo(
        grant_id=r["grant_id"],
        tenant_id=r["tenant_id"],
        tenant=r["tenant"],
        client_pk=r["client_pk"],
        client_id=r["client_id"],
        account_id=r["account_id"],
        scope=r["scope"],
        expires_at=r["grant_expires_at"],
        revoked=revoked,
        usable=usable,
    )


async def create_grant(
    conn: Connection, *, tenant_id: int, client_pk: int, account_id: int | None, scope: str, lifetime: int
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
    row = await conn.fetch_one(f"SELECT {_GRANT_COLUMNS} FROM grants g {_GRANT_JOINS} WHERE g.id = $1", grant_id)  # noqa: S608
    return _grant_info(row) if row else None


async def client_of_code(conn: Lookup, code_hash: str, redirect_uri: str) -> str | None:
    """The client id a code was issued to, if it was issued for ``redirect_uri`` (the demo page)."""
    row = await conn.fetch_one(
        "SELECT c.client_id FROM authorization_codes x JOIN grants g ON g.id = x.grant_id"
        " JOIN clients c ON c.id = g.client_pk WHERE x.code_hash = $1 AND x.redirect_uri = $2",
        code_hash,
        redirect_uri,
    )
    return str(row["client_id"]) if row else None


_CLAIM_CODE = (
    "UPDATE authorization_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL"
    " RETURNING grant_id, redirect_uri, code_challenge, expires_at"
)
# PostgreSQL claims and joins the grant in one round trip (SQLite has no UPDATE in WITH).
_CLAIM_CODE_JOINED = (
    f"WITH claimed AS ({_CLAIM_CODE}) SELECT claimed.redirect_uri, claimed.code_challenge,"  # noqa: S608
    f" claimed.expires_at, {_GRANT_COLUMNS} FROM claimed JOIN grants g ON g.id = claimed.grant_id {_GRANT_JOINS}"
)


async def _claim(conn: Connection, claim: str, joined: str, *args: Any) -> tuple[Any, GrantInfo] | None:
    """Run a claim (``UPDATE … RETURNING``) and read the claimed row's grant: in the same
    statement on PostgreSQL (``joined``), in a second one on SQLite."""
    if conn.dialect.name == "postgresql":
        row = await conn.fetch_one(joined, *args)
        info = _grant_info(row) if row is not None else None
    else:
        row = await conn.fetch_one(claim, *args)
        info = await grant_info(conn, row["grant_id"]) if row is not None else None
    if row is None or info is None:
        return None
    return row, info


async def claim_code(conn: Connection, code_hash: str) -> ClaimedCode | None:
    """Mark the code used; only the first caller ever gets it back."""
    claimed = await _claim(conn, _CLAIM_CODE, _CLAIM_CODE_JOINED, now(), code_hash)
    if claimed is None:
        return None
    row, info = claimed
    return ClaimedCode(info, row["redirect_uri"], row["code_challenge"], row["expires_at"])


async def spent_code_grant(conn: Connection, code_hash: str) -> int | None:
    """The grant of a code that exists but was already used (a replay)."""
    row = await conn.fetch_one(
        "SELECT grant_id FROM authorization_codes WHERE code_hash = $1 AND used_at IS NOT NULL", code_hash
    )
    return int(row["grant_id"]) if row else None


# ``rotation_nonce`` ($4) is set in the same statement: NULL when the client has no reuse grace.
_CLAIM_REFRESH = (
    "UPDATE refresh_tokens SET used_at = $1, rotation_nonce = $4"
    " WHERE token_hash = $2 AND used_at IS NULL"
    " AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.client_pk = $3)"
    " RETURNING grant_id, expires_at, revoked_at"
)
_CLAIM_REFRESH_JOINED = (
    f"WITH claimed AS ({_CLAIM_REFRESH}) SELECT claimed.expires_at, claimed.revoked_at,"  # noqa: S608
    f" {_GRANT_COLUMNS} FROM claimed JOIN grants g ON g.id = claimed.grant_id {_GRANT_JOINS}"
)


async def claim_refresh(
    conn: Connection, token_hash: str, client_pk: int, rotation_nonce: str | None = None
) -> ClaimedRefresh | None:
    """Claim for this client only: another client's attempt leaves the token as it was."""
    claimed = await _claim(conn, _CLAIM_REFRESH, _CLAIM_REFRESH_JOINED, now(), token_hash, client_pk, rotation_nonce)
    if claimed is None:
        return None
    row, info = claimed
    return ClaimedRefresh(info, row["expires_at"], row["revoked_at"] is not None)


async def spent_refresh(conn: Connection, token_hash: str) -> SpentRefresh | None:
    """A refresh token that exists but was already used (a retry or a reuse)."""
    row = await conn.fetch_one(
        "SELECT x.grant_id, g.client_pk, x.used_at, x.rotation_nonce FROM refresh_tokens x"
        " JOIN grants g ON g.id = x.grant_id WHERE x.token_hash = $1 AND x.used_at IS NOT NULL",
        token_hash,
    )
    if row is None:
        return None
    return SpentRefresh(int(row["grant_id"]), int(row["client_pk"]), float(row["used_at"]), row["rotation_nonce"])


async def wipe_rotation_nonce(conn: Connection, token_hash: str) -> None:
    await conn.run("UPDATE refresh_tokens SET rotation_nonce = NULL WHERE token_hash = $1", token_hash)


_INSERT_ACCESS = (
    "INSERT INTO access_tokens (token_hash, grant_id, scope, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
)
_INSERT_REFRESH = "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)"
# PostgreSQL runs a data-modifying WITH whether or not the outer statement reads it.
_INSERT_BOTH = (
    f"WITH access AS ({_INSERT_ACCESS})"  # noqa: S608
    " INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES ($6, $2, $4, $7)"
)


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
    access = (access_hash, grant_id, access_scope, t, t + access_ttl)
    if refresh_hash is None:
        await conn.run(_INSERT_ACCESS, *access)
        return
    refresh_expires = min(t + refresh_ttl, refresh_limit)
    if conn.dialect.name == "postgresql":
        await conn.run(_INSERT_BOTH, *access, refresh_hash, refresh_expires)  # one round trip
        return
    await conn.run(_INSERT_ACCESS, *access)
    await conn.run(_INSERT_REFRESH, refresh_hash, grant_id, t, refresh_expires)


async def revoke_grant(conn: Connection, grant_id: int, reason: str) -> None:
    revocations.ended()
    await conn.run(
        "UPDATE grants SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
        now(),
        reason,
        grant_id,
    )


async def revoke_grants_of_account(conn: Connection, account_id: int, reason: str) -> None:
    revocations.ended()
    await conn.execute(
        update(grants)
        .where(and_(grants.c.account_id == account_id, grants.c.revoked_at.is_(None)))
        .values(revoked_at=now(), revoked_reason=reason)
    )


async def revoke_grants_of_client(conn: Connection, client_pk: int, reason: str) -> None:
    revocations.ended()
    await conn.execute(
        update(grants)
        .where(and_(grants.c.client_pk == client_pk, grants.c.revoked_at.is_(None)))
        .values(revoked_at=now(), revoked_reason=reason)
    )


async def revoke_access_token(conn: Connection, token_hash: str) -> None:
    revocations.ended()
    await conn.run(
        "UPDATE access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL", now(), token_hash
    )


@dataclass(frozen=True)
class TokenRecord:
    kind: str  # "access_token" | "refresh_token"
    grant: GrantInfo
    scope: str
    created_at: float
    expires_at: float
    active: bool


async def find_access_token(conn: Lookup, token_hash: str) -> TokenRecord | None:
    """The bearer check: one look-up by primary key, joined to its grant."""
    row = await conn.fetch_one(
        "SELECT x.scope AS token_scope, x.created_at, x.expires_at, x.revoked_at,"  # noqa: S608
        f" {_GRANT_COLUMNS} FROM access_tokens x JOIN grants g ON g.id = x.grant_id {_GRANT_JOINS}"
        " WHERE x.token_hash = $1",
        token_hash,
    )
    if row is None:
        return None
    info = _grant_info(row)
    active = info.usable and row["revoked_at"] is None and row["expires_at"] > now()
    return TokenRecord("access_token", info, row["token_scope"], row["created_at"], row["expires_at"], active)


async def find_refresh_token(conn: Connection, token_hash: str) -> TokenRecord | None:
    row = await conn.fetch_one(
        "SELECT x.created_at, x.expires_at, x.revoked_at, x.used_at,"  # noqa: S608
        f" {_GRANT_COLUMNS} FROM refresh_tokens x JOIN grants g ON g.id = x.grant_id {_GRANT_JOINS}"
        " WHERE x.token_hash = $1",
        token_hash,
    )
    if row is None:
        return None
    info = _grant_info(row)
    t = now()
    active = (
        info.usable
        and row["revoked_at"] is None
        and row["used_at"] is None
        and row["expires_at"] > t
        and info.expires_at > t
    )
    return TokenRecord("refresh_token", info, info.scope, row["created_at"], row["expires_at"], active)


# Housekeeping steps (store/housekeeping.py): each drops rows that expired before ``before`` and can
# never be used again, and returns how many it dropped.


async def purge_codes(conn: Connection, before: float) -> int:
    result = await conn.execute(delete(authorization_codes).where(authorization_codes.c.expires_at < before))
    return deleted(result)


async def purge_access_tokens(conn: Connection, before: float) -> int:
    return deleted(await conn.execute(delete(access_tokens).where(access_tokens.c.expires_at < before)))


async def purge_refresh_tokens(conn: Connection, before: float) -> int:
    # A used (rotated) refresh token stays until it expires, so that its reuse is still recognised.
    return deleted(await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.expires_at < before)))


async def purge_service_grants(conn: Connection, before: float) -> int:
    """client_credentials grants (one per token request, living as long as their one access
    token) once they expired and no access token of theirs is still alive."""
    alive = (
        select(access_tokens.c.grant_id)
        .where(and_(access_tokens.c.grant_id == grants.c.id, access_tokens.c.expires_at >= before))
        .exists()
    )
    return deleted(
        await conn.execute(
            delete(grants).where(and_(grants.c.account_id.is_(None), grants.c.expires_at < before, ~alive))
        )
    )


async def wipe_rotation_nonces(conn: Connection, before: float) -> int:
    """Forget the retry nonces of tokens rotated before ``before`` and, whatever the cutoff asked
    for, longer ago than the longest reuse grace, so that no retry still inside its grace loses
    its answer. Counted as rows changed; the token rows themselves stay (reuse detection)."""
    cutoff = min(before, now() - MAX_REFRESH_REUSE_GRACE)
    result = await conn.execute(
        update(refresh_tokens)
        .where(and_(refresh_tokens.c.rotation_nonce.is_not(None), refresh_tokens.c.used_at < cutoff))
        .values(rotation_nonce=None)
    )
    return deleted(result)
