"""RFC 6750: OAuth access tokens in the ``Authorization: Bearer`` header only.

The check is one primary-key look-up of the token's digest, joined to its
grant, client, account and tenant, so disabling any of them ends the token; a
worker keeps its answers in ``bearer_cache``, which every revocation empties
(within a second in every worker). Tokens in the query string or body are not
accepted (RFC 9700 4.3.2).
"""

from __future__ import annotations

from openxp import crypto, scopes
from openxp.auth.bearer_cache import BearerCache
from openxp.auth.errors import InvalidToken
from openxp.auth.principal import Principal
from openxp.store import Database
from openxp.store import grants as grant_store
from openxp.store.db import now

MAX_TOKEN_LENGTH = 256


async def principal_for(db: Database, token: str, cache: BearerCache | None = None) -> Principal:
    if not token.startswith(crypto.ACCESS_TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken()
    token_hash = crypto.digest(token)
    at = now()
    if cache is not None and (hit := cache.get(token_hash, at)) is not None:
        return hit
    epoch = cache.epoch() if cache is not None else 0
    record = await grant_store.find_access_token(db, token_hash)
    if record is None or not record.active:
        raise InvalidToken()
    grant = record.grant
    principal = Principal(
        kind="oauth",
        tenant_id=grant.tenant_id,
        tenant=grant.tenant,
        scopes=frozenset(scopes.parse(record.scope)),
        client_id=grant.client_id,
        account_id=grant.account_id,
    )
    if cache is not None:
        cache.put(token_hash, principal, record.expires_at, epoch, at)
    return principal
