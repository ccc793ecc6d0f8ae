"""Completion records: one row per learner, activity and registration, folded from the
learner's statements as they are stored, and the activity tree (``contextActivities.parent``).

A batch's contributions are merged per row first (PostgreSQL's ON CONFLICT may touch a row
once per statement), then written with one INSERT ... ON CONFLICT DO UPDATE (plain SQL: this
runs with every batch the LRS stores) whose SET merges inside the database: ``completed``
or-ed, ``success``/``score``/``last_at`` the greatest, ``first_at``/``completed_at`` the least,
``statements`` summed. Those merges commute, so two workers folding at once, or statements
arriving out of order, leave the same row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
from sqlalchemy import ColumnElement, and_, delete, or_, select, tuple_

from openxp.store.db import Connection
from openxp.store.models import xapi_activity_parents as parents_t
from openxp.store.models import xapi_completions as t
from openxp.store.models import xapi_statements as statements_t
from openxp.store.rows import deleted

STATUSES = ("passed", "failed", "completed", "in-progress")
N = TypeVar("N", int, float)


def _max(a: N | None, b: N | None) -> N | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: N | None, b: N | None) -> N | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True)
class Fold:
    """What some statements say about one learner's activity in one registration."""

    actor_key: str
    activity_id: str
    registration: str
    actor: dict[str, Any]
    completed: bool
    success: int | None
    score: float | None
    first_at: float
    last_at: float
    completed_at: float | None
    statements: int = 1

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.actor_key, self.activity_id, self.registration)

    def merge(self, other: Fold) -> Fold:
        return replace(
            self,
            completed=self.completed or other.completed,
            success=_max(self.success, other.success),
            score=_max(self.score, other.score),
            first_at=min(self.first_at, other.first_at),
            last_at=max(self.last_at, other.last_at),
            completed_at=_min(self.completed_at, other.completed_at),
            statements=self.statements + other.statements,
        )


@dataclass(frozen=True)
class Record(Fold):
    @property
    def status(self) -> str:
        if self.success == 1:
            return "passed"
        if self.success == 0:
            return "failed"
        return "completed" if self.completed else "in-progress"


def merged(folds: Iterable[Fold]) -> list[Fold]:
    by_key: dict[tuple[str, str, str], Fold] = {}
    for fold in folds:
        held = by_key.get(fold.key)
        by_key[fold.key] = fold if held is None else held.merge(fold)
    return list(by_key.values())


_FOLD_SQLITE = (
    "INSERT INTO xapi_completions (tenant_id, actor_key, activity_id, registration, actor, completed, success,"
    " score, first_at, last_at, completed_at, statements)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    " ON CONFLICT (tenant_id, actor_key, activity_id, registration) DO UPDATE SET"
    " completed = xapi_completions.completed OR excluded.completed,"
    # SQLite's two-argument max/min is NULL when either is: coalesce keeps the one there is.
    " success = coalesce(max(xapi_completions.success, excluded.success), xapi_completions.success,"
    " excluded.success),"
    " score = coalesce(max(xapi_completions.score, excluded.score), xapi_completions.score, excluded.score),"
    " first_at = min(xapi_completions.first_at, excluded.first_at),"
    " last_at = max(xapi_completions.last_at, excluded.last_at),"
    " completed_at = coalesce(min(xapi_completions.completed_at, excluded.completed_at),"
    " xapi_completions.completed_at, excluded.completed_at),"
    " statements = xapi_completions.statements + excluded.statements"
)
# PostgreSQL: one statement whatever the batch (column arrays, unnest), as statements.insert_many.
# GREATEST and LEAST ignore NULLs.
_FOLD_POSTGRES = (
    "INSERT INTO xapi_completions (tenant_id, actor_key, activity_id, registration, actor, completed, success,"
    " score, first_at, last_at, completed_at, statements)"
    " SELECT $1, a, b, r, j::json, c, s, sc, f, l, ca, n"
    " FROM unnest($2::text[], $3::text[], $4::varchar[], $5::text[], $6::bool[], $7::int[], $8::float8[],"
    " $9::float8[], $10::float8[], $11::float8[], $12::int[]) AS u(a, b, r, j, c, s, sc, f, l, ca, n)"
    " ON CONFLICT (tenant_id, actor_key, activity_id, registration) DO UPDATE SET"
    " completed = xapi_completions.completed OR excluded.completed,"
    " success = GREATEST(xapi_completions.success, excluded.success),"
    " score = GREATEST(xapi_completions.score, excluded.score),"
    " first_at = LEAST(xapi_completions.first_at, excluded.first_at),"
    " last_at = GREATEST(xapi_completions.last_at, excluded.last_at),"
    " completed_at = LEAST(xapi_completions.completed_at, excluded.completed_at),"
    " statements = xapi_completions.statements + excluded.statements"
)
_LINK_SQLITE = "INSERT INTO xapi_activity_parents (tenant_id, parent, child) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
_LINK_POSTGRES = (
    "INSERT INTO xapi_activity_parents (tenant_id, parent, child)"
    " SELECT $1, p, c FROM unnest($2::text[], $3::text[]) AS u(p, c) ON CONFLICT DO NOTHING"
)


async def fold(conn: Connection, tenant_id: int, folds: Sequence[Fold]) -> None:
    """Merge ``folds`` into the stored records (creating those that are new). Plain SQL: it
    runs with every statement batch the LRS stores."""
    rows = [
        (
            f.actor_key,
            f.activity_id,
            f.registration,
            orjson.dumps(f.actor).decode(),
            f.completed,
            f.success,
            f.score,
            f.first_at,
            f.last_at,
            f.completed_at,
            f.statements,
        )
        # In key order: two batches that share records then lock them in the same order.
        for f in sorted(merged(folds), key=lambda fold: fold.key)
    ]
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        await conn.run(_FOLD_POSTGRES, tenant_id, *(list(column) for column in zip(*rows, strict=True)))
    else:
        await conn.run_many(_FOLD_SQLITE, [(tenant_id, *row) for row in rows])


async def link_parents(conn: Connection, tenant_id: int, pairs: set[tuple[str, str]]) -> None:
    """Record (parent, child) edges of the activity tree; known ones are left as they are."""
    if not pairs:
        return
    ordered = sorted(pairs)
    if conn.dialect.name == "postgresql":
        await conn.run(_LINK_POSTGRES, tenant_id, [p for p, _ in ordered], [c for _, c in ordered])
    else:
        await conn.run_many(_LINK_SQLITE, [(tenant_id, p, c) for p, c in ordered])


def _status(status: str) -> ColumnElement[bool]:
    return {
        "passed": t.c.success == 1,
        "failed": t.c.success == 0,
        "completed": and_(t.c.success.is_(None), t.c.completed.is_(True)),
        "in-progress": and_(t.c.success.is_(None), t.c.completed.is_(False)),
    }[status]


def _record(r: Any) -> Record:
    return Record(
        r.actor_key,
        r.activity_id,
        r.registration,
        r.actor,
        bool(r.completed),
        r.success,
        r.score,
        r.first_at,
        r.last_at,
        r.completed_at,
        r.statements,
    )


async def of_actor(
    conn: Connection,
    tenant_id: int,
    actor_keys: Sequence[str],
    *,
    activity_ids: Sequence[str] | None = None,
    statuses: Sequence[str] = (),
    registration: str | None = None,
    registrations: Sequence[str] | None = None,
    limit: int,
    skip: int = 0,
) -> list[Record]:
    """The learner's records (under any of its identifier's forms), the most recently active first."""
    where = [t.c.tenant_id == tenant_id, t.c.actor_key.in_(list(actor_keys))]
    if activity_ids is not None:
        where.append(t.c.activity_id.in_(list(activity_ids)))
    if statuses:
        where.append(or_(*(_status(s) for s in statuses)))
    if registration is not None:
        where.append(t.c.registration == registration)
    if registrations is not None:
        where.append(t.c.registration.in_(list(registrations)))
    rows = await conn.execute(
        select(t).where(*where).order_by(t.c.last_at.desc(), t.c.id.desc()).limit(limit).offset(skip)
    )
    return [_record(r) for r in rows]


async def children(conn: Connection, tenant_id: int, parents: Sequence[str], limit: int) -> dict[str, list[str]]:
    """Each parent's child activities, in id order; at most ``limit`` edges in all."""
    if not parents or limit <= 0:
        return {}
    rows = await conn.execute(
        select(parents_t.c.parent, parents_t.c.child)
        .where(parents_t.c.tenant_id == tenant_id, parents_t.c.parent.in_(list(parents)))
        .order_by(parents_t.c.parent, parents_t.c.child)
        .limit(limit)
    )
    found: dict[str, list[str]] = {}
    for r in rows:
        found.setdefault(r.parent, []).append(r.child)
    return found


async def lock(conn: Connection, tenant_id: int, keys: Iterable[tuple[str, str, str]]) -> None:
    """PostgreSQL: hold these records for the rest of the transaction (an advisory lock each, in key
    order), so that two folds-again of one record run one after the other: otherwise each could
    miss the other's voiding and write back what it voided. SQLite's writers are serialised."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        await conn.run("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "\x1f".join((str(tenant_id), *key)))


async def forget(conn: Connection, tenant_id: int, keys: Iterable[tuple[str, str, str]]) -> None:
    """Drop these records (before folding them anew from the statements that remain)."""
    wanted = list(keys)
    if wanted:
        await conn.execute(
            delete(t).where(
                t.c.tenant_id == tenant_id, tuple_(t.c.actor_key, t.c.activity_id, t.c.registration).in_(wanted)
            )
        )


async def remaining_payloads(conn: Connection, tenant_id: int, keys: Iterable[tuple[str, str, str]]) -> list[str]:
    """The stored, unvoided statements that feed these records (``statements.insert_many``'s
    columns: the actor, the object activity, the registration)."""
    s = statements_t
    payloads: list[str] = []
    for actor_key, activity_id, registration in sorted(keys):
        rows = await conn.execute(
            select(s.c.payload)
            .where(
                s.c.tenant_id == tenant_id,
                s.c.actor_key == actor_key,
                s.c.object_activity == activity_id,
                s.c.registration == registration if registration else s.c.registration.is_(None),
                s.c.voided.is_(False),
            )
            .order_by(s.c.seq)
        )
        payloads += [r.payload for r in rows]
    return payloads


async def forget_actor(conn: Connection, tenant_id: int, actor_key: str) -> int:
    """Erasure: every record of the learner."""
    result = await conn.execute(delete(t).where(t.c.tenant_id == tenant_id, t.c.actor_key == actor_key))
    return deleted(result)
