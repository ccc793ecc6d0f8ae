"""RFC 6749 3.2: the token endpoint, independent of the web framework.

``exchange`` runs in one write transaction that is committed whatever the
outcome (``committed``): a spent code, a revoked family or a counted failure
must persist even when the answer is an error. Tokens are inserted only after every check
passed, so an error never leaves a usable token behind.
"""

from __future__ import annotations

from openxp import audit
from openxp.config import Settings
from openxp.oauth import committed
from openxp.oauth.errors import InvalidGrant, InvalidRequest, TooManyRequests, UnsupportedGrantType
from openxp.oauth.rfc6749 import client_auth
from openxp.oauth.rfc6749.grants import authorization_code, client_credentials, refresh_token
from openxp.store import Database, throttle
from openxp.store.clients import Client

GRANTS = {
    authorization_code.GRANT_TYPE: authorization_code.handle,
    refresh_token.GRANT_TYPE: refresh_token.handle,
    client_credentials.GRANT_TYPE: client_credentials.handle,
}
GRANT_TYPES_SUPPORTED = list(GRANTS)


def grant_throttle_key(client: Client, ip: str) -> str:
    """What grant failures are counted against. Guessing for a confidential client needs its
    secret, so the whole client is locked (C-14). A public client has no secret: anyone can
    name it, so its failures count per presenting address, and a guesser locks only itself
    out, never the rightful client elsewhere (N-02)."""
    if client.confidential:
        return f"grant:{client.client_id}"
    return f"grant:{client.client_id}:ip:{ip}"


async def exchange(
    db: Database, settings: Settings, params: dict[str, str], authorization: str | None, ip: str
) -> dict[str, object]:
    grant_type = params.get("grant_type") or None
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    async with committed.write(db) as conn:
        client = await client_auth.authenticate(conn, settings, params, authorization, ip)
        handler = GRANTS.get(grant_type)
        if handler is None:
            raise UnsupportedGrantType("supported grant types: " + ", ".join(GRANT_TYPES_SUPPORTED))
        throttle_key = grant_throttle_key(client, ip)
        # A locked client gets no answer about any code or token: were guesses still
        # evaluated during the lock, a right one would succeed and the lock would not
        # slow guessing at all (C-14). Nothing is claimed, so a real code survives it.
        wait = await throttle.locked_for(conn, throttle_key)
        if wait > 0:
            raise TooManyRequests(wait)
        try:
            issued = await handler(conn, settings, client, params)
        except InvalidGrant:
            limits = settings.rate_limits
            wait = await throttle.record_failure(
                conn,
                throttle_key,
                limit=limits.grant_failures_per_client,
                window=limits.window,
                lockout=limits.lockout,
            )
            if wait > 0:
                audit.event(
                    "grant_guessing_throttled",
                    severity="high",
                    client_id=client.client_id,
                    tenant_id=client.tenant_id,
                    ip=ip,
                    public=not client.confidential,
                )
                raise TooManyRequests(wait) from None
            raise
    return issued.response()
