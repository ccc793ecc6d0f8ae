"""Admin accounts: the people who sign in to approve an integration.

A role decides what an account may do. Only roles holding
``AUTHORIZE_INTEGRATIONS`` may approve an OAuth client (the seed's "admin
account with appropriate permissions").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from openxp import crypto
from openxp.store import grants as grant_store
from openxp.store import sessions as session_store
from openxp.store.db import Connection, now
from openxp.store.errors import AlreadyExists, Invalid, NotFound
from openxp.store.models import accounts, sessions

AUTHORIZE_INTEGRATIONS = "integrations:authorize"
MANAGE_TENANT = "tenant:manage"

ROLES: dict[str, frozenset[str]] = {
    "owner": frozenset({AUTHORIZE_INTEGRATIONS, MANAGE_TENANT}),
    "admin": frozenset({AUTHORIZE_INTEGRATIONS}),
    "viewer": frozenset(),
}
DEFAULT_ROLE = "admin"
MIN_PASSWORD_LENGTH = 12
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


@dataclass(frozen=True)
class Account:
    id: int
    tenant_id: int
    email: str
    role: str
    disabled: bool
    password_hash: str

    def may(self, permission: str) -> bool:
        return not self.disabled and permission in ROLES.get(self.role, frozenset())


def _account(row: Any) -> Account:
    r = row
    return Account(r.id, r.tenant_id, r.email, r.role, bool(r.disabled), r.password_hash)


def normalize_email(email: str) -> str:
    # Lower-case only; no Unicode folding, so look-alike addresses stay distinct accounts.
    return email.strip().lower()


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > crypto.MAX_PASSWORD_LENGTH:
        raise Invalid(f"passwords may have at most {crypto.MAX_PASSWORD_LENGTH} characters")


async def create(
    conn: Connection,
    tenant_id: int,
    email: str,
    password: str,
    role: str = DEFAULT_ROLE,
    *,
    password_hash: str | None = None,
) -> Account:
    """``password_hash``: the password already hashed by the caller (off the event loop and
    outside the write transaction, as the console does); it must be of ``password``."""
    email = normalize_email(email)
    if not _EMAIL.fullmatch(email):
        raise Invalid(f"{email!r} is not an email address")
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}; roles: {', '.join(sorted(ROLES))}")
    validate_password(password)
    password_hash = password_hash or crypto.hash_password(password)
    t = now()
    try:
        result = await conn.execute(
            insert(accounts)
            .values(
                tenant_id=tenant_id,
                email=email,
                password_hash=password_hash,
                role=role,
                disabled=False,
                created_at=t,
                password_changed_at=t,
            )
            .returning(accounts.c.id)
        )
    except IntegrityError:
        raise AlreadyExists(f"{email} is already an account of this tenant") from None
    return Account(result.scalar_one(), tenant_id, email, role, False, password_hash)


async def find(conn: Connection, tenant_id: int, email: str) -> Account | None:
    row = (
        await conn.execute(
            select(accounts).where(and_(accounts.c.tenant_id == tenant_id, accounts.c.email == normalize_email(email)))
        )
    ).first()
    return _account(row) if row else None


async def get(conn: Connection, tenant_id: int, email: str) -> Account:
    account = await find(conn, tenant_id, email)
    if account is None:
        raise NotFound(f"no account {email!r} in this tenant")
    return account


async def get_by_id(conn: Connection, account_id: int) -> Account | None:
    row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
    return _account(row) if row else None


async def list_for_tenant(conn: Connection, tenant_id: int) -> list[Account]:
    rows = (
        await conn.execute(select(accounts).where(accounts.c.tenant_id == tenant_id).order_by(accounts.c.email))
    ).all()
    return [_account(r) for r in rows]


async def end_everything(conn: Connection, account_id: int, reason: str) -> None:
    """Security event: sessions end and every grant the account approved is revoked."""
    await conn.execute(delete(sessions).where(sessions.c.account_id == account_id))
    await grant_store.revoke_grants_of_account(conn, account_id, reason)


async def set_disabled(conn: Connection, account_id: int, disabled: bool) -> None:
    await conn.execute(update(accounts).where(accounts.c.id == account_id).values(disabled=disabled))
    if disabled:
        await end_everything(conn, account_id, "account_disabled")


async def set_password(conn: Connection, account_id: int, password: str) -> None:
    validate_password(password)
    await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(password_hash=crypto.hash_password(password), password_changed_at=now())
    )
    await end_everything(conn, account_id, "password_changed")


async def set_password_hash(conn: Connection, account_id: int, password_hash: str) -> None:
    """Store a rehash of the same password (stronger parameters); sessions and grants stay."""
    await conn.execute(update(accounts).where(accounts.c.id == account_id).values(password_hash=password_hash))


class LastOwner(Invalid):
    """The change would leave the tenant without an enabled owner."""


async def _lock_owners(conn: Connection, tenant_id: int) -> set[int]:
    # FOR UPDATE on PostgreSQL, so two owners demoting each other at once cannot both pass the
    # check; SQLite serialises writers anyway and ignores the clause.
    rows = (
        await conn.execute(
            select(accounts.c.id)
            .where(and_(accounts.c.tenant_id == tenant_id, accounts.c.role == "owner", accounts.c.disabled.is_(False)))
            .with_for_update()
        )
    ).all()
    return {r.id for r in rows}


async def change_role(conn: Connection, account: Account, role: str) -> None:
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}; roles: {', '.join(sorted(ROLES))}")
    owners = await _lock_owners(conn, account.tenant_id)
    if role != "owner" and owners == {account.id}:
        raise LastOwner("the last owner of a tenant cannot be demoted; make another admin owner first")
    await conn.execute(update(accounts).where(accounts.c.id == account.id).values(role=role))


async def disable_unless_last_owner(conn: Connection, account: Account) -> None:
    owners = await _lock_owners(conn, account.tenant_id)
    if owners == {account.id}:
        raise LastOwner("the last owner of a tenant cannot be disabled; make another admin owner first")
    await set_disabled(conn, account.id, True)


async def change_own_password(conn: Connection, account_id: int, password_hash: str, keep_session: str) -> int:
    """The admin's own change (current password checked by the caller): every other session
    ends; the grants the admin approved stay (they are the tenant's integrations, and the
    operator's ``admin set-password`` remains the reset that revokes everything)."""
    await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(password_hash=password_hash, password_changed_at=now())
    )
    return await session_store.end_other_sessions(conn, account_id, keep_session)
