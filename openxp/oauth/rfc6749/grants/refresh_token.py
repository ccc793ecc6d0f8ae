"""RFC 6749 6: refreshing an access token, with rotation (RFC 9700 4.14.2).

Every refresh token is single use and is replaced by a new one. Presenting one
that was already used means two parties hold it: the whole family is revoked.
The one exception is a retry inside the client's reuse grace (OPENXP_REFRESH_REUSE_GRACE,
``--refresh-reuse-grace``): the same client gets the first rotation's answer again, so a
lost response or two workers refreshing at once end with one live chain
(``oauth/refresh_retry.py``).
"""

from __future__ import annotations

from openxp import audit, crypto, scopes
from openxp.config import Settings
from openxp.oauth import refresh_retry, tokens
from openxp.oauth.errors import InvalidGrant, InvalidRequest, InvalidScope, UnauthorizedClient
from openxp.store import grants as grant_store
from openxp.store.clients import Client
from openxp.store.db import Connection, now

GRANT_TYPE = "refresh_token"


async def handle(conn: Connection, settings: Settings, client: Client, params: dict[str, str]) -> tokens.TokenSet:
    if GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient("this client may not use the refresh token grant")
    presented = params.get("refresh_token") or None
    if presented is None:
        raise InvalidRequest("refresh_token is required")
    if len(presented) > 256:
        raise InvalidGrant("refresh token is invalid, expired or revoked")

    token_hash = crypto.digest(presented)
    requested = scopes.parse(params.get("scope", ""))
    if requested:
        # Checked before the claim, so a refused scope leaves the token usable.
        record = await grant_store.find_refresh_token(conn, token_hash)
        if record is not None and record.grant.client_pk == client.id:
            if not scopes.permits_all(scopes.parse(record.grant.scope), requested):
                raise InvalidScope("a refresh cannot widen the scope that was granted")
    grace = refresh_retry.grace_for(settings, client)
    # With a grace, the successors are derived from a per-rotation nonce stored by the claim itself.
    nonce = crypto.new_nonce() if grace > 0 else None
    claimed = await grant_store.claim_refresh(conn, token_hash, client.id, nonce)
    if claimed is None:
        spent = await grant_store.spent_refresh(conn, token_hash)
        if spent is not None:
            again = await refresh_retry.answer_again(conn, client, grace, presented, spent) if grace > 0 else None
            if again is not None:
                return again
            await tokens.revoke_family(
                conn, spent.grant_id, reason="refresh_reuse", event="refresh_reuse_detected", presenter=client.client_id
            )
        raise InvalidGrant("refresh token is invalid, expired or revoked")

    grant = claimed.grant
    t = now()
    if claimed.revoked or not grant.usable or claimed.expires_at <= t or grant.expires_at <= t:
        raise InvalidGrant("refresh token is invalid, expired or revoked")

    granted = scopes.parse(grant.scope)
    if requested and not scopes.permits_all(granted, requested):
        raise InvalidScope("a refresh cannot widen the scope that was granted")
    scope = scopes.join(requested or granted)

    minted = refresh_retry.successors(nonce, presented) if nonce is not None else None
    issued = await tokens.issue(conn, settings, grant, scope, with_refresh=True, minted=minted)
    audit.event("token_refreshed", grant=grant.grant_id, client_id=client.client_id, tenant=grant.tenant)
    return issued
