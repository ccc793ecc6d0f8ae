"""RFC 7617 Basic auth with API keys (the deprecated xAPI credential), and with
the short-lived and launch credentials of ``openxp.auth.launch``.

The secret is checked by comparing SHA-256 digests in constant time; an
unknown key is compared against ``crypto.DUMMY_DIGEST`` so it costs the same
as a wrong secret and answers the same 401 (H-02). Failures are counted per
key and per client address in the shared throttle table: a locked address
answers 429 before any look-up; a locked key answers 429 to wrong secrets
only (its secret is 256 random bits, so the lock is about noise, and it must
not let a stranger lock the rightful caller out). Successes cost one indexed read (and a
``last_used_at`` write at most once a minute).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from openxp import audit, crypto, wire
from openxp.auth import launch, tenant
from openxp.auth.errors import InvalidCredentials, Throttled
from openxp.auth.principal import Principal
from openxp.runtime import client_ip, runtime
from openxp.store import apikeys, launches, throttle
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection, now

# RFC 9745 / RFC 8288: Basic still works, but clients should move to OAuth.
# RFC 9745: deprecated since 2025-01-01 (a Structured Field date); the link says what to use instead.
DEPRECATION_HEADERS = {
    "Deprecation": "@1735689600",
    "Link": '</docs/integrating.md>; rel="deprecation"; type="text/markdown"',
}
# Set in the ASGI scope by the guard when an API key authenticated over Basic.
DEPRECATED_FLAG = "openxp.basic_deprecated"
MARK_USED_EVERY = 60.0
MAX_KEY_LENGTH = 64


async def _match(db: Connection, username: str, secret_digest: str, named: str | None) -> tuple[Any, Any]:
    """(API key or short-lived credential whose secret matches, its tenant row), or (None, None).

    The API key of that name is compared first (against a dummy digest when
    there is none, so an unknown key costs the same as a wrong secret); then
    the live short-lived credentials of that name in every tenant (one each at
    most). Every candidate is compared; if two match (two tenants chose the same
    name and password) the tenant the request names decides, and without one
    both are refused. A single match naming another tenant is then 403 (I-11).
    """
    record = await apikeys.find(db, username)
    if crypto.equals(secret_digest, record.secret_hash if record else crypto.DUMMY_DIGEST) and record is not None:
        if record.disabled:
            return None, None
        return record, await tenant_store.standing(db, record.tenant_id)
    candidates = await launches.live_by_username(db, username)
    matches = [
        (c, await tenant_store.standing(db, c.tenant_id))
        for c in candidates
        if crypto.equals(secret_digest, c.secret_hash)
    ]
    if len(matches) > 1 and named is not None:
        matches = [m for m in matches if m[1] is not None and m[1].name == named]
    if len(matches) != 1:
        return None, None
    return matches[0]


async def principal_for(conn: HTTPConnection, header: str) -> Principal:
    rt = runtime(conn)
    limits = rt.settings.rate_limits
    try:
        key, secret = wire.parse_basic(header)
    except wire.WireError:
        raise InvalidCredentials() from None
    key = key[:MAX_KEY_LENGTH]
    # Counted and logged by digest: the username may be a secret pasted into the wrong field.
    key_ref = crypto.digest(key)[:16]
    key_counter = f"basic:key:{key_ref}"
    ip_counter = f"basic:ip:{client_ip(conn, rt.settings)}"
    async with rt.db.read() as db:
        # A locked address is refused before any look-up; a locked key only
        # refuses wrong secrets, so nobody can lock the rightful caller out (H-05).
        wait = await throttle.locked_for(db, ip_counter)
        if wait > 0:
            raise Throttled(wait)
        record, tenant_row = await _match(db, key, crypto.digest(secret), tenant.named_tenant(conn, rt.settings))
    if record is None or tenant_row is None or tenant_row.disabled:
        async with rt.db.write() as db:
            waits = [
                await throttle.record_failure(
                    db, key_counter, limit=limits.basic_auth_per_key, window=limits.window, lockout=limits.lockout
                ),
                await throttle.record_failure(
                    db, ip_counter, limit=limits.basic_auth_per_ip, window=limits.window, lockout=limits.lockout
                ),
            ]
        audit.event("basic_auth_failed", severity="warning", key_ref=key_ref)
        if max(waits) > 0:
            audit.event("basic_auth_throttled", severity="warning", key_ref=key_ref)
            raise Throttled(max(waits))
        raise InvalidCredentials()
    tenant.check(conn, rt.settings, tenant_row.name, required=False)
    if isinstance(record, launches.Credential):
        # Expiry was checked by the look-up (live rows only); no last-used write.
        return launch.principal(record, tenant_row.name)
    if record.last_used_at is None or now() - record.last_used_at > MARK_USED_EVERY:
        async with rt.db.write() as db:
            await apikeys.mark_used(db, record.id)
        # H-10: Basic use is measured per key (at most once a minute) for migration tracking.
        audit.event("basic_auth_used", key=record.key, tenant=tenant_row.name)
    return Principal(
        kind="apikey",
        tenant_id=record.tenant_id,
        tenant=tenant_row.name,
        scopes=frozenset(record.scopes),
        key=record.key,
    )


def mark_deprecated(conn: HTTPConnection) -> None:
    """The response will carry ``DEPRECATION_HEADERS`` (added by ``SecurityHeaders``)."""
    conn.scope[DEPRECATED_FLAG] = True
