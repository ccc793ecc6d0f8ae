"""RFC 7009, token revocation.

The client authenticates; a token it does not own, an unknown token and an
already invalid token all answer the same 200 (2.2: no oracle). Revoking a
refresh token revokes its whole grant, and so every access token issued
under it (2.1, SHOULD).
"""

from __future__ import annotations

from openxp import audit, crypto
from openxp.config import Settings
from openxp.oauth import committed
from openxp.oauth.errors import InvalidRequest
from openxp.oauth.rfc6749 import client_auth
from openxp.store import Database
from openxp.store import grants as grant_store


async def revoke(db: Database, settings: Settings, params: dict[str, str], authorization: str | None, ip: str) -> None:
    async with committed.write(db) as conn:
        client = await client_auth.authenticate(conn, settings, params, authorization, ip)
        token = params.get("token") or None
        if token is None:
            raise InvalidRequest("token is required")
        token_hash = crypto.digest(token)
        access = await grant_store.find_access_token(conn, token_hash)
        if access is not None and access.grant.client_pk == client.id:
            await grant_store.revoke_access_token(conn, token_hash)
            audit.event(
                "token_revoked",
                kind="access_token",
                grant=access.grant.grant_id,
                client_id=client.client_id,
                tenant=access.grant.tenant,
            )
        else:
            refresh = await grant_store.find_refresh_token(conn, token_hash)
            if refresh is not None and refresh.grant.client_pk == client.id:
                await grant_store.revoke_grant(conn, refresh.grant.grant_id, "revoked_by_client")
                audit.event(
                    "token_revoked",
                    kind="refresh_token",
                    grant=refresh.grant.grant_id,
                    client_id=client.client_id,
                    tenant=refresh.grant.tenant,
                )
