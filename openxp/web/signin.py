"""Signing an admin in: the one place that checks an email and password typed into a page.

The authorization flow's login form and the tenant console's both come here, so both have the
same rules: the lockout per account and per address, one argon2 verification whatever the email
(B-13), the rehash of an old hash, and a fresh session id on success (no fixation, B-11). So does
the console's re-authentication before a sensitive action (L-10), under the same lockout.
Also the form and session reading every page's POST shares.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from openxp import audit, crypto
from openxp.audit_writer import kept_with
from openxp.errors import OpenXPError
from openxp.runtime import Runtime, client_ip
from openxp.store import accounts as account_store
from openxp.store import sessions as session_store
from openxp.store import throttle
from openxp.store.accounts import Account
from openxp.store.db import Connection

GENERIC_LOGIN_ERROR = "Incorrect email or password."
THROTTLED = "Too many failed sign-in attempts. Wait a few minutes, then try again."
WRONG_PASSWORD = "That is not your current password."
NO_PASSWORD = "Enter your current password."


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


@dataclass(frozen=True)
class _Budget:
    """The two failure counters a typed password is counted against: the account's (by the
    digest of its email) and the address's. Sign-in and the console's re-authentication share
    them, so a guess on either form spends the same budget and meets the same lockout."""

    account_key: str
    ip_key: str


def _budget(tenant_id: int, email: str, ip: str) -> _Budget:
    # By digest: what was typed as the email may be a password typed into the wrong field.
    return _Budget(f"login:{tenant_id}:{crypto.digest(account_store.normalize_email(email))[:32]}", f"login-ip:{ip}")


def _refused(wait: float) -> SignInRefused:
    return SignInRefused(THROTTLED, status=429, retry_after=int(wait) + 1)


async def _admit(rt: Runtime, budget: _Budget, *, event: str, tenant: str, ip: str, actor: str | None = None) -> None:
    """Let one password attempt through, or raise the 429 (audited as ``event``).

    Every attempt is counted as a failure before the hash (and refunded by :func:`_settle` if it
    succeeds), so concurrent attempts cannot all pass the lock check while the first are still
    hashing: past the budget the answer is 429 and no argon2 runs. The budget is the same as
    counting afterwards: ``limit`` failures, then the lock."""
    limits = rt.settings.rate_limits
    async with rt.db.read() as conn:
        wait = max(await throttle.locked_for(conn, budget.account_key), await throttle.locked_for(conn, budget.ip_key))
    if wait > 0:
        # Refused under a lock that already holds: queued like a routine event, so that hammering a
        # locked account does not buy a write per attempt. The attempt that engages it is below.
        audit.event(event, severity="high", tenant=tenant, ip=ip, actor=actor)
        raise _refused(wait)
    async with rt.db.write() as conn, kept_with(conn):
        wait = max(
            await throttle.record_failure(
                conn,
                budget.account_key,
                limit=limits.login_per_account + 1,
                window=limits.window,
                lockout=limits.lockout,
            ),
            await throttle.record_failure(
                conn, budget.ip_key, limit=limits.login_per_ip + 1, window=limits.window, lockout=limits.lockout
            ),
        )
        if wait > 0:
            # The lock engages: recorded in the transaction that sets it (decision 2).
            audit.event(event, severity="high", tenant=tenant, ip=ip, actor=actor)
    if wait > 0:
        raise _refused(wait)


async def _settle(conn: Connection, budget: _Budget) -> None:
    """The attempt let through by :func:`_admit` was the right password."""
    await throttle.clear(conn, budget.account_key)
    await throttle.refund(conn, budget.ip_key)


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
    budget = _budget(tenant_id, email, ip)
    await _admit(rt, budget, event="login_throttled", tenant=tenant, ip=ip)

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
        await _settle(conn, budget)
        new_token = await session_store.replace_session(
            conn, old_session_hash, account.id, rt.settings.session_absolute_ttl
        )
    audit.event("login_succeeded", tenant=tenant, account=account.id, actor=account.email, ip=ip)
    return SignedIn(account, new_token)


async def reauthenticate(
    rt: Runtime,
    request: Request,
    *,
    tenant_id: int,
    tenant: str,
    account: Account,
    session_hash: str,
    password: str,
    action: str,
) -> None:
    """The signed-in ``account`` typed its password again before the sensitive ``action`` (L-10),
    or raises :class:`SignInRefused` (400 wrong or empty, 429 locked).

    The same budget and lockout as :func:`sign_in` (a wrong password here counts as a failed
    sign-in of the account, and a locked account is refused here too), one argon2 verification,
    and on success the session's re-authentication time, kept in the database, becomes now."""
    ip = client_ip(request, rt.settings)
    if not password:
        raise SignInRefused(NO_PASSWORD, status=400)  # nothing was guessed: nothing to count
    budget = _budget(tenant_id, account.email, ip)
    await _admit(rt, budget, event="reauth_throttled", tenant=tenant, ip=ip, actor=account.email)
    async with rt.password_slots:
        verified = await run_in_threadpool(crypto.verify_password, account.password_hash, password[:1024])
    if not verified or len(password) > 1024:
        audit.event("reauth_failed", severity="warning", tenant=tenant, actor=account.email, ip=ip, action=action)
        raise SignInRefused(WRONG_PASSWORD, status=400)
    async with rt.db.write() as conn:
        await _settle(conn, budget)
        await session_store.mark_authenticated(conn, session_hash)
    audit.event("reauth_succeeded", tenant=tenant, actor=account.email, ip=ip, action=action)
