"""RFC 6749 6: refreshing an access token, with rotation (RFC 9700 4.14.2).

Every refresh token is single use and is replaced by a new one. Presenting one
that was already used means two parties hold it: the whole family is revoked.
"""

from __future__ import annotations

from openxp import audit, crypto, scopes
from openxp.config import Settings
from openxp.oauth import tokens
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
    claimed = await grant_store.claim_refresh(conn, token_hash, client.id)
    if claimed is None:
        reused = await grant_store.spent_refresh_grant(conn, token_hash)
        if reused is not None:
            await tokens.revoke_family(
                conn, reused, reason="refresh_reuse", event="refresh_reuse_detected", presenter=client.client_id
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

    issued = await tokens.issue(conn, settings, grant, scope, with_refresh=True)
    audit.event("token_refreshed", grant=grant.grant_id, client_id=client.client_id, tenant=grant.tenant)
    return issued
