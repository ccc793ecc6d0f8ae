"""Retry-safe refresh: within a reuse grace, the client that rotated a refresh token may present
it again and gets the same answer (docs/decisions.md, "Retry-safe refresh"; RFC 9700 4.14.2).

A rotation with a grace stores a random nonce on the spent token's row and *derives* the
successor tokens from it and the presented token (``successors``); only their digests are
stored, as always. A retry re-derives the same two tokens, finds them stored, still unused and
alive, and answers them again: there is never a second chain, and the database holds no token
in clear (the nonce derives nothing without the presented token, stored only as a digest).
Anything else (another client, the grace over, the successor already used, the grant
revoked) is not a retry: the caller treats it as reuse, exactly as with no grace.
"""

from __future__ import annotations

import math

from openxp import audit, crypto
from openxp.config import Settings
from openxp.oauth.tokens import TokenSet
from openxp.store import grants as grant_store
from openxp.store.clients import Client
from openxp.store.db import Connection, now
from openxp.store.grants import SpentRefresh


def grace_for(settings: Settings, client: Client) -> int:
    """The client's own grace when it has one, else the server's (0: strict)."""
    return client.refresh_reuse_grace if client.refresh_reuse_grace is not None else settings.refresh_reuse_grace


def successors(nonce: str, presented: str) -> tuple[str, str]:
    """The (access, refresh) tokens a rotation of ``presented`` with this nonce hands out."""
    return (
        crypto.derived_credential(crypto.ACCESS_TOKEN_PREFIX, nonce, "access", presented),
        crypto.derived_credential(crypto.REFRESH_TOKEN_PREFIX, nonce, "refresh", presented),
    )


async def answer_again(
    conn: Connection, client: Client, grace: int, presented: str, spent: SpentRefresh
) -> TokenSet | None:
    """The first rotation's answer, if this presentation is a retry inside the grace; else None."""
    if spent.client_pk != client.id or spent.rotation_nonce is None:
        return None
    if now() - spent.used_at > grace:
        # The grace is over: the nonce can never serve again, so it goes now.
        await grant_store.wipe_rotation_nonce(conn, crypto.digest(presented))
        return None
    access, refresh = successors(spent.rotation_nonce, presented)
    issued_access = await grant_store.find_access_token(conn, crypto.digest(access))
    issued_refresh = await grant_store.find_refresh_token(conn, crypto.digest(refresh))
    if issued_access is None or issued_refresh is None:
        return None  # the first rotation failed after its claim: it handed out nothing
    if not (issued_access.active and issued_refresh.active):
        return None  # successor used (the chain moved on), revoked, expired, or the grant ended
    if issued_access.grant.grant_id != spent.grant_id or issued_refresh.grant.grant_id != spent.grant_id:
        return None
    grant = issued_access.grant
    audit.event(
        "refresh_retry_answered",
        severity="warning",
        grant=grant.grant_id,
        client_id=client.client_id,
        tenant=grant.tenant,
        seconds_after_rotation=round(now() - spent.used_at, 3),
    )
    return TokenSet(access, refresh, max(1, math.ceil(issued_access.expires_at - now())), issued_access.scope)
