"""RFC 7617 Basic auth with API keys (the deprecated xAPI credential).

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

from sqlalchemy import select
from starlette.requests import HTTPConnection

from openxp import audit, crypto, wire
from openxp.auth import tenant
from openxp.auth.errors import InvalidCredentials, Throttled
from openxp.auth.principal import Principal
from openxp.runtime import client_ip, runtime
from openxp.store import apikeys, throttle
from openxp.store.db import now
from openxp.store.models import tenants

# RFC 9745 / RFC 8288: Basic still works, but clients should move to OAuth.
DEPRECATION_HEADERS = {"Deprecation": "true", "Link": '</docs/integrating.md>; rel="deprecation"'}
MARK_USED_EVERY = 60.0
MAX_KEY_LENGTH = 64


async def principal_for(conn: HTTPConnection, header: str) -> Principal:
    rt = runtime(conn)
    limits = rt.settings.rate_limits
    try:
        key, secret = wire.parse_basic(header)
    except wire.WireError:
        raise InvalidCredentials() from None
    key = key[:MAX_KEY_LENGTH]
    key_counter = f"basic:key:{key}"
    ip_counter = f"basic:ip:{client_ip(conn, rt.settings)}"
    async with rt.db.read() as db:
        # A locked address is refused before any look-up; a locked key only
        # refuses wrong secrets, so nobody can lock the rightful caller out (H-05).
        wait = await throttle.locked_for(db, ip_counter)
        if wait > 0:
            raise Throttled(wait)
        record = await apikeys.find(db, key)
        tenant_row = None
        if record is not None:
            tenant_row = (
                await db.execute(select(tenants.c.name, tenants.c.disabled).where(tenants.c.id == record.tenant_id))
            ).first()
    matches = crypto.equals(crypto.digest(secret), record.secret_hash if record else crypto.DUMMY_DIGEST)
    usable = record is not None and not record.disabled and tenant_row is not None and not tenant_row.disabled
    if not (matches and usable):
        async with rt.db.write() as db:
            waits = [
                await throttle.record_failure(
                    db, key_counter, limit=limits.basic_auth_per_key, window=limits.window, lockout=limits.lockout
                ),
                await throttle.record_failure(
                    db, ip_counter, limit=limits.basic_auth_per_ip, window=limits.window, lockout=limits.lockout
                ),
            ]
        audit.event("basic_auth_failed", severity="warning", key=key)
        if max(waits) > 0:
            audit.event("basic_auth_throttled", severity="warning", key=key)
            raise Throttled(max(waits))
        raise InvalidCredentials()
    assert record is not None and tenant_row is not None
    tenant.check(conn, rt.settings, tenant_row.name, required=False)
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
