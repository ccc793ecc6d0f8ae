"""Tenants: the unit of isolation. Every other row belongs to exactly one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from openxp.store.db import Connection, now
from openxp.store.errors import AlreadyExists, Invalid, NotFound
from openxp.store.models import tenants

# A DNS label, so that a tenant can also be named by ``{tenant}.{OPENXP_TENANT_DOMAIN}``.
TENANT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str
    user_id_attributes: list[str]
    disabled: bool
    # Days statements and documents are kept; 0 keeps them forever.
    retention_days: int = 0


def _tenant(row: Any) -> Tenant:
    return Tenant(row.id, row.name, list(row.user_id_attributes), bool(row.disabled), int(row.retention_days or 0))


def validate_name(name: str) -> str:
    if not TENANT_NAME.fullmatch(name):
        raise Invalid("tenant names are 1-63 lower-case letters, digits and inner hyphens (a DNS label), e.g. 'acme'")
    return name


async def create(conn: Connection, name: str, user_id_attributes: list[str] | None = None) -> Tenant:
    validate_name(name)
    attrs = user_id_attributes or ["Email"]
    try:
        result = await conn.execute(
            insert(tenants)
            .values(name=name, user_id_attributes=attrs, disabled=False, created_at=now())
            .returning(tenants.c.id)
        )
    except IntegrityError:
        raise AlreadyExists(f"tenant {name!r} already exists") from None
    return Tenant(result.scalar_one(), name, attrs, False)


async def find(conn: Connection, name: str) -> Tenant | None:
    row = (await conn.execute(select(tenants).where(tenants.c.name == name))).first()
    return _tenant(row) if row else None


async def get(conn: Connection, name: str) -> Tenant:
    tenant = await find(conn, name)
    if tenant is None:
        raise NotFound(f"no tenant named {name!r}")
    return tenant


async def get_by_id(conn: Connection, tenant_id: int) -> Tenant:
    row = (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
    if row is None:
        raise NotFound("no such tenant")
    return _tenant(row)


async def list_all(conn: Connection) -> list[Tenant]:
    rows = (await conn.execute(select(tenants).order_by(tenants.c.name))).all()
    return [_tenant(r) for r in rows]


async def set_user_id_attributes(conn: Connection, tenant_id: int, attributes: list[str]) -> None:
    if not attributes or any(not a.strip() for a in attributes):
        raise Invalid("give at least one non-empty attribute name")
    await conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(user_id_attributes=attributes))


# Ten years: beyond it a retention period is a typo, not a policy.
MAX_RETENTION_DAYS = 3650


async def set_retention(conn: Connection, tenant_id: int, days: int) -> None:
    if not 0 <= days <= MAX_RETENTION_DAYS:
        raise Invalid(f"the retention period is 0 (keep everything) to {MAX_RETENTION_DAYS} days")
    await conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(retention_days=days))


async def with_retention(conn: Connection) -> list[Tenant]:
    """The tenants whose records are kept for a limited time."""
    rows = (await conn.execute(select(tenants).where(tenants.c.retention_days > 0).order_by(tenants.c.id))).all()
    return [_tenant(r) for r in rows]


async def count(conn: Connection) -> int:
    from sqlalchemy import func

    return int((await conn.execute(select(func.count()).select_from(tenants))).scalar_one())


async def standing(conn: Connection, tenant_id: int) -> Any:
    """The tenant's ``name`` and ``disabled`` alone (a row, or None): what a credential
    check needs, read on every Basic request, so nothing more."""
    return (await conn.execute(select(tenants.c.name, tenants.c.disabled).where(tenants.c.id == tenant_id))).first()
