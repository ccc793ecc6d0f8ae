"""RFC 6749 2.3: client authentication at the token, revocation and
introspection endpoints.

``client_secret_post`` (body, JSON or form, as in the seed) and
``client_secret_basic``; never both at once (2.3). Public clients send only
``client_id``. Unknown ids and wrong secrets fail identically (F-11), and the
comparison is a constant-time digest comparison.
"""

from __future__ import annotations

from openxp import audit, crypto, wire
from openxp.config import Settings
from openxp.oauth.errors import InvalidClient, InvalidRequest, TooManyRequests
from openxp.store import clients as client_store
from openxp.store import throttle
from openxp.store.clients import Client
from openxp.store.db import Connection

AUTH_METHODS = ["client_secret_post", "client_secret_basic"]
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="openxp"'}


async def authenticate(
    conn: Connection, settings: Settings, params: dict[str, str], authorization: str | None, ip: str
) -> Client:
    # The scheme alone ("Basic" with no credentials) still asks for a Basic challenge (RFC 6749 5.2).
    basic = authorization is not None and authorization.strip().partition(" ")[0].lower() == "basic"
    body_id = params.get("client_id") or None
    body_secret = params.get("client_secret") or None
    challenge = BASIC_CHALLENGE if basic else {}

    if basic:
        if body_secret is not None:
            raise InvalidRequest("use one client authentication method, not Basic and client_secret together")
        try:
            client_id, secret = wire.parse_basic(authorization or "")
        except wire.WireError:
            raise InvalidClient("client authentication failed", headers=challenge) from None
        if body_id is not None and body_id != client_id:
            raise InvalidClient("client_id does not match the authenticated client", headers=challenge)
        presented: str | None = secret
    else:
        if authorization is not None and authorization.strip():
            raise InvalidClient("unsupported Authorization scheme at this endpoint")
        if body_id is None:
            raise InvalidClient("client authentication failed: client_id is missing")
        client_id, presented = body_id, body_secret

    found = await client_store.find_active(conn, client_id) if len(client_id) <= 64 else None
    client, active = found if found is not None else (None, False)
    if client is not None and not client.confidential:
        ok = presented is None
    else:
        ok = client_store.secret_matches(client, presented or "") and presented is not None
    if not ok or not active or client is None:
        await _failed(conn, settings, client_id if client is not None else _reference(client_id), ip)
        raise InvalidClient("client authentication failed", headers=challenge)
    return client


def _reference(presented: str) -> str:
    """What we log and count for an unknown client id: a digest prefix, never the text, which
    may be a secret typed into the wrong field."""
    return "unknown:" + crypto.digest(presented)[:16]


async def _failed(conn: Connection, settings: Settings, client_id: str, ip: str) -> None:
    limits = settings.rate_limits
    ip_key = f"client-ip:{ip}"
    # A locked address is refused before anything is counted: each unknown client id would
    # otherwise add a row, however long the lock (and nothing it sends can succeed meanwhile
    # except a right secret, which never gets here).
    wait = await throttle.locked_for(conn, ip_key)
    if wait > 0:
        raise TooManyRequests(wait)
    audit.event("client_auth_failed", severity="warning", client_id=client_id[:64], ip=ip)
    wait = max(
        await throttle.record_failure(
            conn,
            f"client:{client_id[:64]}",
            limit=limits.client_auth_per_client,
            window=limits.window,
            lockout=limits.lockout,
        ),
        await throttle.record_failure(
            conn,
            ip_key,
            limit=limits.client_auth_per_client * 5,
            window=limits.window,
            lockout=limits.lockout,
        ),
    )
    if wait > 0:
        audit.event("client_auth_throttled", severity="high", client_id=client_id[:64], ip=ip)
        raise TooManyRequests(wait)
