"""Learners: a tenant's users, created and updated by ClearXP's user import."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from openxp.store.db import now
from openxp.store.models import learners


@dataclass(frozen=True)
class LearnerRow:
    identifier: str
    name: str
    attributes: dict[str, Any]


async def existing_identifiers(conn: AsyncConnection, tenant_id: int, identifiers: Iterable[str]) -> set[str]:
    wanted = list(set(identifiers))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await conn.execute(
            select(learners.c.identifier).where(
                and_(learners.c.tenant_id == tenant_id, learners.c.identifier.in_(chunk))
            )
        )
        found.update(r.identifier for r in rows)
    return found


async def upsert_many(conn: AsyncConnection, tenant_id: int, rows: list[LearnerRow], existing: set[str]) -> None:
    """Insert new learners in one batch; update the existing ones, merging attributes."""
    t = now()
    fresh = [r for r in rows if r.identifier not in existing]
    if fresh:
        await conn.execute(
            insert(learners),
            [
                dict(
                    tenant_id=tenant_id,
                    identifier=r.identifier,
                    name=r.name,
                    attributes=r.attributes,
                    created_at=t,
                    updated_at=t,
                )
                for r in fresh
            ],
        )
    for r in rows:
        if r.identifier in existing:
            current = (
                await conn.execute(
                    select(learners.c.attributes).where(
                        and_(learners.c.tenant_id == tenant_id, learners.c.identifier == r.identifier)
                    )
                )
            ).scalar_one()
            merged = {**(current or {}), **r.attributes}
            await conn.execute(
                update(learners)
                .where(and_(learners.c.tenant_id == tenant_id, learners.c.identifier == r.identifier))
                .values(name=r.name, attributes=merged, updated_at=t)
            )


async def find(conn: AsyncConnection, tenant_id: int, identifier: str) -> LearnerRow | None:
    row = (
        await conn.execute(
            select(learners).where(and_(learners.c.tenant_id == tenant_id, learners.c.identifier == identifier))
        )
    ).first()
    return LearnerRow(row.identifier, row.name, dict(row.attributes)) if row else None


async def list_for_tenant(conn: AsyncConnection, tenant_id: int, limit: int = 100, skip: int = 0) -> list[LearnerRow]:
    rows = await conn.execute(
        select(learners).where(learners.c.tenant_id == tenant_id).order_by(learners.c.id).limit(limit).offset(skip)
    )
    return [LearnerRow(r.identifier, r.name, dict(r.attributes)) for r in rows]
