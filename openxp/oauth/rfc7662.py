"""RFC 7662, token introspection.

A client may introspect the tokens issued to itself. Anything else (unknown,
expired, revoked, another client's or another tenant's token) is
``{"active": false}`` and nothing more (2.2, 4).
"""

from __future__ import annotations

from openxp import crypto
from openxp.config import Settings
from openxp.oauth import committed
from openxp.oauth.errors import InvalidRequest
from openxp.oauth.rfc6749 import client_auth
from openxp.store import Database
from openxp.store import grants as grant_store

INACTIVE: dict[str, object] = {"active": False}


async def introspect(
    db: Database, settings: Settings, params: dict[str, str], authorization: str | None, ip: str
) -> dict[str, object]:
    async with committed.write(db) as conn:
        client = await client_auth.authenticate(conn, settings, params, authorization, ip)
        token = params.get("token") or None
        if token is None:
            raise InvalidRequest("token is required")
        token_hash = crypto.digest(token)
        hint = params.get("token_type_hint")
        finders = [grant_store.find_access_token, grant_store.find_refresh_token]
        if hint == "refresh_token":
            finders.reverse()
        record = None
        for find in finders:
            record = await find(conn, token_hash)
            if record is not None:
                break
    if record is None or not record.active or record.grant.client_pk != client.id:
        return dict(INACTIVE)
    return {
        "active": True,
        "scope": record.scope,
        "client_id": record.grant.client_id,
        "token_type": "bearer" if record.kind == "access_token" else "refresh_token",
        "exp": int(record.expires_at),
        "iat": int(record.created_at),
        "sub": record.grant.subject,
        "tenant": record.grant.tenant,
        "iss": settings.issuer,
    }
