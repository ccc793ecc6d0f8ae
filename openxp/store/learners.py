"""Learners: a tenant's users, created and updated by ClearXP's user import and
the actors API. Every query here filters by ``tenant_id`` (I-04, I-09)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, insert, select, text, update

from openxp.store.db import Connection, now
from openxp.store.models import learners

# Parameters per IN (...) look-up: well under SQLite's and asyncpg's bind limits.
LOOKUP_BATCH = 500


@dataclass(frozen=True)
class LearnerRow:
    identifier: str
    name: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Stored:
    id: int
    name: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Written:
    new: int
    existing: int
    # Identifiers not written: merged with what the learner has, they would pass max_attributes.
    refused: tuple[str, ...] = ()


async def lookup(conn: Connection, tenant_id: int, identifiers: Iterable[str]) -> dict[str, Stored]:
    """The tenant's learners among ``identifiers``, in batched look-ups."""
    wanted = list(set(identifiers))
    found: dict[str, Stored] = {}
    for start in range(0, len(wanted), LOOKUP_BATCH):
        rows = await conn.execute(
            select(learners.c.id, learners.c.identifier, learners.c.name, learners.c.attributes).where(
                and_(learners.c.tenant_id == tenant_id, learners.c.identifier.in_(wanted[start : start + LOOKUP_BATCH]))
            )
        )
        for r in rows:
            found[r.identifier] = Stored(r.id, r.name, dict(r.attributes or {}))
    return found


async def existing_identifiers(conn: Connection, tenant_id: int, identifiers: Iterable[str]) -> set[str]:
    return set(await lookup(conn, tenant_id, identifiers))


async def write_batch(
    conn: Connection, tenant_id: int, rows: list[LearnerRow], max_attributes: int | None = None
) -> Written:
    """Upsert ``rows`` (distinct identifiers) in one batched INSERT and one batched UPDATE.

    Existing learners keep attributes the row does not name (the import merges); a row whose
    merged attributes would number more than ``max_attributes`` is left out and named in
    ``refused``. Run inside a write transaction: the look-up and the writes must see the same rows.
    """
    t = now()
    current = await lookup(conn, tenant_id, (r.identifier for r in rows))
    refused: tuple[str, ...] = ()
    if max_attributes is not None:
        over = {r.identifier for r in rows if merged_attribute_count(current.get(r.identifier), r) > max_attributes}
        if over:
            refused = tuple(r.identifier for r in rows if r.identifier in over)
            rows = [r for r in rows if r.identifier not in over]
    fresh = [r for r in rows if r.identifier not in current]
    if fresh:
        await conn.execute(
            insert(learners),
            [
                {
                    "tenant_id": tenant_id,
                    "identifier": r.identifier,
                    "name": r.name,
                    "attributes": r.attributes,
                    "created_at": t,
                    "updated_at": t,
                }
                for r in fresh
            ],
        )
    changed = [
        {
            "b_id": current[r.identifier].id,
            "b_name": r.name,
            "b_attributes": {**current[r.identifier].attributes, **r.attributes},
        }
        for r in rows
        if r.identifier in current
    ]
    if changed:
        await conn.execute(
            update(learners)
            .where(and_(learners.c.id == bindparam("b_id"), learners.c.tenant_id == tenant_id))
            .values(
                name=bindparam("b_name"),
                attributes=bindparam("b_attributes", type_=learners.c.attributes.type),
                updated_at=t,
            ),
            changed,
        )
    return Written(new=len(fresh), existing=len(changed), refused=refused)


def merged_attribute_count(stored: Stored | None, row: LearnerRow) -> int:
    if stored is None:
        return len(row.attributes)
    return len(stored.attributes.keys() | row.attributes.keys())


async def refresh_statistics(conn: Connection) -> None:
    """PostgreSQL: re-sample the learners table (ANALYZE) after a bulk load.

    Without statistics a table that grew from empty within one import looks tiny, the cached
    generic plan of the batched look-up filters the whole tenant instead of probing the
    (tenant_id, identifier) index, and each look-up costs O(tenant size) (measured: 1.4 s instead
    of 2 ms at 100,000 learners). Autovacuum would get there, but only after the import.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("ANALYZE learners"))


async def find(conn: Connection, tenant_id: int, identifier: str) -> LearnerRow | None:
    row = (
        await conn.execute(
            select(learners).where(and_(learners.c.tenant_id == tenant_id, learners.c.identifier == identifier))
        )
    ).first()
    return LearnerRow(row.identifier, row.name, dict(row.attributes)) if row else None


def _name_contains(text: str) -> ColumnElement[bool]:
    """Learners whose name holds ``text``, ignoring case (``%`` and ``_`` match themselves)."""
    return func.lower(learners.c.name).contains(text.lower(), autoescape=True)


async def list_for_tenant(
    conn: Connection,
    tenant_id: int,
    limit: int = 100,
    skip: int = 0,
    where: ColumnElement[bool] | None = None,
    name: str | None = None,
) -> list[LearnerRow]:
    """One page of the tenant's learners in creation order, optionally filtered by ``where``
    and by a part of the name (the console's search)."""
    rows = await conn.execute(page_query(tenant_id, limit, skip, where, name))
    return [LearnerRow(r.identifier, r.name, dict(r.attributes or {})) for r in rows]


def page_query(
    tenant_id: int, limit: int, skip: int = 0, where: ColumnElement[bool] | None = None, name: str | None = None
) -> Select[Any]:
    """The SELECT behind ``list_for_tenant`` (its own function so that its plan can be inspected):
    a walk of the (tenant_id, id) index that stops once the page is full."""
    condition = learners.c.tenant_id == tenant_id
    if where is not None:
        condition = and_(condition, where)
    if name:
        condition = and_(condition, _name_contains(name))
    return (
        select(learners.c.identifier, learners.c.name, learners.c.attributes)
        .where(condition)
        .order_by(learners.c.id)
        .limit(limit)
        .offset(skip)
    )


# Each attribute name with the JSON types its values have, computed in the database
# (json_each) so the answer costs no memory per learner.
_ATTRIBUTE_TYPES = {
    "sqlite": "SELECT DISTINCT j.key AS key, j.type AS type FROM learners, json_each(learners.attributes) AS j "
    "WHERE learners.tenant_id = :tenant_id",
    "postgresql": "SELECT DISTINCT j.key AS key, json_typeof(j.value) AS type FROM learners, "
    "json_each(learners.attributes) AS j WHERE learners.tenant_id = :tenant_id",
}
_SCHEMA_TYPE = {
    "text": "string",
    "string": "string",
    "integer": "number",
    "real": "number",
    "number": "number",
    "true": "boolean",
    "false": "boolean",
    "boolean": "boolean",
}


_HAS_ATTRIBUTE = {
    # Stops at the first learner that has it: a known name costs a few rows, a new one a scan.
    "sqlite": "SELECT 1 FROM learners WHERE tenant_id = $1 AND json_type(attributes, $2) IS NOT NULL LIMIT 1",
    "postgresql": "SELECT 1 FROM learners WHERE tenant_id = $1 AND (attributes::jsonb) ? $2 LIMIT 1",
}
_ATTRIBUTE_NAMES = {
    "sqlite": "SELECT DISTINCT j.key AS key FROM learners, json_each(learners.attributes) AS j "
    "WHERE learners.tenant_id = $1",
    "postgresql": "SELECT DISTINCT j.key AS key FROM learners, json_object_keys(learners.attributes) AS j(key) "
    "WHERE learners.tenant_id = $1",
}


async def has_attribute(conn: Connection, tenant_id: int, name: str) -> bool:
    if conn.dialect.name == "sqlite":
        # A JSON path quotes the name; a name holding a quote or backslash is probed by json_each.
        if '"' in name or "\\" in name:
            return name in await attribute_names(conn, tenant_id)
        return await conn.fetch_one(_HAS_ATTRIBUTE["sqlite"], tenant_id, '$."' + name + '"') is not None
    return await conn.fetch_one(_HAS_ATTRIBUTE["postgresql"], tenant_id, name) is not None


async def attribute_names(conn: Connection, tenant_id: int) -> set[str]:
    """Every attribute name the tenant's learners have (one pass over their attributes)."""
    return {r["key"] for r in await conn.fetch_all(_ATTRIBUTE_NAMES[conn.dialect.name], tenant_id)}


async def attribute_types(conn: Connection, tenant_id: int) -> dict[str, set[str]]:
    rows = await conn.execute(text(_ATTRIBUTE_TYPES[conn.dialect.name]), {"tenant_id": tenant_id})
    found: dict[str, set[str]] = {}
    for r in rows:
        kinds = found.setdefault(r.key, set())
        if r.type in _SCHEMA_TYPE:
            kinds.add(_SCHEMA_TYPE[r.type])
    return found
