"""Signing an admin in: the one place that checks an email and password typed into a page.

The authorization flow's login form and the tenant console's both come here, so both have the
same rules: the lockout per account and per address, one argon2 verification whatever the email
(B-13), the rehash of an old hash, and a fresh session id on success (no fixation, B-11).
Also the form and session reading every page's POST shares.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from openxp import audit, crypto
from openxp.errors import OpenXPError
from openxp.runtime import Runtime, client_ip
from openxp.store import accounts as account_store
from openxp.store import sessions as session_store
from openxp.store import throttle
from openxp.store.accounts import Account

GENERIC_LOGIN_ERROR = "Incorrect email or password."
THROTTLED = "Too many failed sign-in attempts. Wait a few minutes, then try again."


class SignInRefused(OpenXPError):
    """The email and password did not sign anyone in; ``message`` is safe to show. The status
    is the page's (200: the form again with the error; 429 when throttled)."""

    code = "sign_in_refused"

    def __init__(self, message: str, *, status: int = 200, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignedIn:
    account: Account
    token: str  # the new session's cookie value


def _throttled(tenant: str, ip: str, wait: float) -> SignInRefused:
    audit.event("login_throttled", severity="high", tenant=tenant, ip=ip)
    return SignInRefused(THROTTLED, status=429, retry_after=int(wait) + 1)


async def sign_in(
    rt: Runtime,
    request: Request,
    *,
    tenant_id: int,
    tenant: str,
    email: str,
    password: str,
    old_session_hash: str | None,
) -> SignedIn:
    """The account of ``tenant_id`` these credentials name, signed in on a new session that
    replaces ``old_session_hash``; or :class:`SignInRefused`."""
    ip = client_ip(request, rt.settings)
    limits = rt.settings.rate_limits
    # By digest: what was typed as the email may be a password typed into the wrong field.
    account_key = f"login:{tenant_id}:{crypto.digest(account_store.normalize_email(email))[:32]}"
    ip_key = f"login-ip:{ip}"

    async with rt.db.read() as conn:
        wait = max(await throttle.locked_for(conn, account_key), await throttle.locked_for(conn, ip_key))
    if wait > 0:
        raise _throttled(tenant, ip, wait)

    # Every attempt is counted as a failure before the hash (and refunded if it succeeds), so
    # concurrent attempts cannot all pass the lock check above while the first are still
    # hashing: past the budget the answer is 429 and no argon2 runs. The budget is the same as
    # counting afterwards: ``limit`` failures, then the lock.
    async with rt.db.write() as conn:
        wait = max(
            await throttle.record_failure(
                conn, account_key, limit=limits.login_per_account + 1, window=limits.window, lockout=limits.lockout
            ),
            await throttle.record_failure(
                conn, ip_key, limit=limits.login_per_ip + 1, window=limits.window, lockout=limits.lockout
            ),
        )
    if wait > 0:
        raise _throttled(tenant, ip, wait)

    account = None
    if email and password and len(password) <= 1024 and len(email) <= 320:
        async with rt.db.read() as conn:
            account = await account_store.find(conn, tenant_id, email)
    # Always one argon2 verification (a dummy hash for unknown emails), so timing
    # does not tell which accounts exist (B-13).
    # argon2 takes tens of milliseconds of CPU: off the event loop, so other requests go on,
    # and at most OPENXP_ARGON2_CONCURRENCY at once per process (64 MiB each).
    async with rt.password_slots:
        verified = await run_in_threadpool(
            crypto.verify_password, account.password_hash if account else None, password[:1024]
        )
    if not verified or account is None or account.disabled:
        audit.event("login_failed", severity="warning", tenant=tenant, ip=ip, actor=account.email if account else None)
        raise SignInRefused(GENERIC_LOGIN_ERROR)

    rehashed = None
    if crypto.password_needs_rehash(account.password_hash):
        async with rt.password_slots:
            rehashed = await run_in_threadpool(crypto.hash_password, password)
    async with rt.db.write() as conn:
        if rehashed is not None:
            await account_store.set_password_hash(conn, account.id, rehashed)
        await throttle.clear(conn, account_key)
        await throttle.refund(conn, ip_key)
        new_token = await session_store.replace_session(
            conn, old_session_hash, account.id, rt.settings.session_absolute_ttl
        )
    audit.event("login_succeeded", tenant=tenant, account=account.id, actor=account.email, ip=ip)
    return SignedIn(account, new_token)
