"""RFC 6749 4.1.3: exchanging an authorization code.

The code is claimed first, atomically (``store.grants.claim_code``); every
later check happens on a code that can no longer be used by anyone else. A
code that was already used is a replay: the whole grant it started is revoked,
including the tokens the first exchange issued (RFC 6749 4.1.2, ASVS 10.4.2).
A failed binding check also spends the code.
"""

from __future__ import annotations

from openxp import audit, crypto
from openxp.config import Settings
from openxp.oauth import rfc7636, tokens
from openxp.oauth.errors import InvalidGrant, InvalidRequest
from openxp.store import grants as grant_store
from openxp.store.clients import Client
from openxp.store.db import Connection, now

GRANT_TYPE = "authorization_code"
MAX_CODE_LENGTH = 256


async def handle(conn: Connection, settings: Settings, client: Client, params: dict[str, str]) -> tokens.TokenSet:
    code = params.get("code") or None
    if code is None:
        raise InvalidRequest("code is required")
    redirect_uri = params.get("redirect_uri") or None
    verifier = params.get("code_verifier") or None
    if len(code) > MAX_CODE_LENGTH:
        raise InvalidGrant("authorization code is invalid, expired or already used")

    code_hash = crypto.digest(code)
    claimed = await grant_store.claim_code(conn, code_hash)
    if claimed is None:
        replayed = await grant_store.spent_code_grant(conn, code_hash)
        if replayed is not None:
            await tokens.revoke_family(
                conn, replayed, reason="code_replay", event="code_replay_detected", presenter=client.client_id
            )
        raise InvalidGrant("authorization code is invalid, expired or already used")

    grant = claimed.grant
    if claimed.expires_at <= now():
        raise InvalidGrant("authorization code is invalid, expired or already used")
    if grant.client_pk != client.id:
        audit.event(
            "code_client_mismatch",
            severity="high",
            grant=grant.grant_id,
            client_id=client.client_id,
            tenant=grant.tenant,
        )
        raise InvalidGrant("authorization code was issued to another client")
    if redirect_uri is None or not crypto.equals(redirect_uri, claimed.redirect_uri):
        raise InvalidGrant("redirect_uri does not match the authorization request")
    rfc7636.verify(claimed.code_challenge, verifier)
    if not grant.usable:
        raise InvalidGrant("the authorization is no longer valid")

    issued = await tokens.issue(conn, settings, grant, grant.scope, "refresh_token" in client.grant_types)
    # One record per exchange, not a "code redeemed" beside it: the grant ties it to its
    # ``code_issued``, and a second record would cost the hottest path its price again (issue 12).
    audit.event("token_issued", grant=grant.grant_id, client_id=client.client_id, tenant=grant.tenant, via=GRANT_TYPE)
    return issued
