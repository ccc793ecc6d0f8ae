"""RFC 6749 4.4: the client credentials grant, for service accounts.

A confidential client registered for it (``--grant-type client_credentials``) acts for itself,
not for an admin: each request starts a grant of its own with no account (so revoking or
expiring it ends exactly that token), scoped within what the client may hold, and answers an
access token only (4.4.3: no refresh token; the client simply asks again).
"""

from __future__ import annotations

from openxp import audit, scopes
from openxp.config import Settings
from openxp.oauth import tokens
from openxp.oauth.errors import InvalidClient, InvalidScope, UnauthorizedClient
from openxp.store import grants as grant_store
from openxp.store.clients import Client
from openxp.store.db import Connection

GRANT_TYPE = "client_credentials"


async def handle(conn: Connection, settings: Settings, client: Client, params: dict[str, str]) -> tokens.TokenSet:
    if GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient("this client may not use the client credentials grant")
    if not client.confidential:
        # Registration refuses this; a client that cannot authenticate never acts for itself (4.4).
        raise InvalidClient("the client credentials grant needs client authentication")
    requested = scopes.parse(params.get("scope", ""))
    unknown = [s for s in requested if s not in scopes.SCOPES or not scopes.permits(client.scopes, s)]
    if unknown:
        raise InvalidScope("scope not allowed for this client: " + " ".join(unknown))
    scope = scopes.join(requested or client.scopes)

    grant_id = await grant_store.create_grant(
        conn,
        tenant_id=client.tenant_id,
        client_pk=client.id,
        account_id=None,
        scope=scope,
        lifetime=settings.access_token_ttl,
    )
    grant = await grant_store.grant_info(conn, grant_id)
    if grant is None or not grant.usable:
        # The client and its tenant were checked as active by client authentication just now.
        raise InvalidClient("client authentication failed")
    issued = await tokens.issue(conn, settings, grant, scope, with_refresh=False)
    audit.event("token_issued", grant=grant_id, client_id=client.client_id, tenant=grant.tenant, via=GRANT_TYPE)
    return issued
