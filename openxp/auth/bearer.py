"""RFC 6750: OAuth access tokens in the ``Authorization: Bearer`` header only.

The check is one primary-key look-up of the token's digest, joined to its
grant, client, account and tenant, so disabling any of them ends the token at
once. Tokens in the query string or body are not accepted (RFC 9700 4.3.2).
"""

from __future__ import annotations

from openxp import crypto, scopes
from openxp.auth.errors import InvalidToken
from openxp.auth.principal import Principal
from openxp.store import Database
from openxp.store import grants as grant_store

MAX_TOKEN_LENGTH = 256


async def principal_for(db: Database, token: str) -> Principal:
    if not token.startswith(crypto.ACCESS_TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken()
    record = await grant_store.find_access_token(db, crypto.digest(token))
    if record is None or not record.active:
        raise InvalidToken()
    grant = record.grant
    return Principal(
        kind="oauth",
        tenant_id=grant.tenant_id,
        tenant=grant.tenant,
        scopes=frozenset(scopes.parse(record.scope)),
        client_id=grant.client_id,
        account_id=grant.account_id,
    )
