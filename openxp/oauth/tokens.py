"""Minting access and refresh tokens: ``cxa_`` / ``cxr_`` + 256 random bits,
and revoking a whole family when one of its credentials is replayed."""

from __future__ import annotations

from dataclasses import dataclass

from openxp import audit, crypto
from openxp.config import Settings
from openxp.store import grants as grant_store
from openxp.store.db import Connection
from openxp.store.grants import GrantInfo


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_in: int
    scope: str

    def response(self) -> dict[str, object]:
        """The seed's shape, plus ``scope``."""
        body: dict[str, object] = {"access_token": self.access_token}
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        body["token_type"] = "bearer"
        body["expires_in"] = self.expires_in
        body["scope"] = self.scope
        return body


async def issue(
    conn: Connection,
    settings: Settings,
    grant: GrantInfo,
    scope: str,
    with_refresh: bool,
    *,
    minted: tuple[str, str] | None = None,
) -> TokenSet:
    """Store and return a new token set: random, or ``minted`` (access, refresh) when a
    rotation with a reuse grace derived them (oauth/refresh_retry.py)."""
    if minted is not None:
        access, refresh = minted[0], minted[1] if with_refresh else None
    else:
        access = crypto.new_credential(crypto.ACCESS_TOKEN_PREFIX)
        refresh = crypto.new_credential(crypto.REFRESH_TOKEN_PREFIX) if with_refresh else None
    await grant_store.issue_tokens(
        conn,
        grant_id=grant.grant_id,
        access_hash=crypto.digest(access),
        access_scope=scope,
        access_ttl=settings.access_token_ttl,
        refresh_hash=crypto.digest(refresh) if refresh else None,
        refresh_ttl=settings.refresh_token_ttl,
        refresh_limit=grant.expires_at,
    )
    return TokenSet(access, refresh, settings.access_token_ttl, scope)


async def revoke_family(conn: Connection, grant_id: int, *, reason: str, event: str, presenter: str) -> None:
    """A replayed code or reused refresh token: revoke every token of its grant and
    raise a high-severity event naming the grant's client, user and tenant (C-03, E-02)."""
    await grant_store.revoke_grant(conn, grant_id, reason)
    family = await grant_store.grant_info(conn, grant_id)
    audit.event(
        event,
        severity="high",
        grant=grant_id,
        client_id=family.client_id if family else None,
        account=family.account_id if family else None,
        tenant=family.tenant if family else None,
        presented_by=presenter,
        actor=presenter,
    )
