"""Forwarding: the targets of a tenant and the outbox of statements still to deliver to them.

The outbox row is written in the transaction that stores the statement (``enqueue``, called by
``statements.insert_many``), so a statement is acknowledged exactly when its rows exist. A worker
of any process or host takes due rows with one conditional UPDATE (``lease``): a row leased by one
is invisible to the others until its lease runs out, so a worker that dies mid-batch only delays
its rows. Delivered rows are deleted; failed ones wait (exponential backoff with jitter) and are
dead after the configured number of attempts, until ``retry`` puts them back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, or_, select, update

from openxp.store.db import Connection, now
from openxp.store.errors import NotFound
from openxp.store.models import forwarding_outbox as outbox_t
from openxp.store.models import forwarding_targets as targets_t
from openxp.store.models import tenants as tenants_t
from openxp.store.models import xapi_statements as statements_t
from openxp.store.rows import deleted

KINDS = ("xapi", "webhook")
# The longest wait between two attempts of one row.
MAX_BACKOFF = 3600.0
# The random factor of a retry's delay (from ``secrets``: openxp imports no ``random``, M-07).
_JITTER = secrets.SystemRandom()


@dataclass(frozen=True)
class Target:
    id: int
    tenant_id: int
    tenant: str
    kind: str
    origin: str
    url_sealed: str
    auth_sealed: str | None
    secret_sealed: str | None
    created_at: float
    enabled: bool


@dataclass(frozen=True)
class Leased:
    id: int
    target_id: int
    seq: int
    attempts: int


@dataclass(frozen=True)
class Backlog:
    target_id: int
    pending: int
    failing: int
    dead: int
    oldest: float | None
    last_error: str | None


def _target(row: Any) -> Target:
    return Target(
        row.id,
        row.tenant_id,
        row.name,
        row.kind,
        row.origin,
        row.url_sealed,
        row.auth_sealed,
        row.secret_sealed,
        row.created_at,
        bool(row.enabled),
    )


def _targets_query() -> Any:
    return select(targets_t, tenants_t.c.name).join(tenants_t, tenants_t.c.id == targets_t.c.tenant_id)


async def create_target(
    conn: Connection,
    tenant_id: int,
    kind: str,
    origin: str,
    url_sealed: str,
    auth_sealed: str | None,
    secret_sealed: str | None,
) -> int:
    result = await conn.execute(
        insert(targets_t)
        .values(
            tenant_id=tenant_id,
            kind=kind,
            origin=origin,
            url_sealed=url_sealed,
            auth_sealed=auth_sealed,
            secret_sealed=secret_sealed,
            created_at=now(),
            enabled=True,
        )
        .returning(targets_t.c.id)
    )
    target_id: int = result.scalar_one()
    return target_id


async def list_targets(conn: Connection, tenant_id: int | None = None) -> list[Target]:
    query = _targets_query().order_by(targets_t.c.id)
    if tenant_id is not None:
        query = query.where(targets_t.c.tenant_id == tenant_id)
    return [_target(r) for r in (await conn.execute(query)).all()]


async def targets(conn: Connection, ids: Iterable[int]) -> dict[int, Target]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (await conn.execute(_targets_query().where(targets_t.c.id.in_(wanted)))).all()
    return {r.id: _target(r) for r in rows}


async def get_target(conn: Connection, tenant_id: int, target_id: int) -> Target:
    found = (await targets(conn, [target_id])).get(target_id)
    if found is None or found.tenant_id != tenant_id:
        raise NotFound(f"no forwarding target {target_id} in this tenant")
    return found


async def remove_target(conn: Connection, tenant_id: int, target_id: int) -> None:
    """The target and its undelivered rows (the outbox rows go with it: ON DELETE CASCADE, and
    explicitly, since SQLite enforces it only with foreign keys on)."""
    await get_target(conn, tenant_id, target_id)
    await conn.execute(delete(outbox_t).where(outbox_t.c.target_id == target_id))
    await conn.execute(delete(targets_t).where(targets_t.c.id == target_id))


# One outbox row per (enabled target of the tenant, new statement), in one statement. With no
# target the SELECT finds nothing in the (tenant_id, enabled) index and inserts nothing.
_ENQUEUE_PG = (
    "INSERT INTO forwarding_outbox (target_id, seq, created_at, attempts, next_attempt_at, dead)"
    " SELECT t.id, u.seq, $2, 0, $2, false FROM forwarding_targets t CROSS JOIN unnest($3::bigint[]) AS u(seq)"
    " WHERE t.tenant_id = $1 AND t.enabled"
)
_ENQUEUE_SQLITE = (
    "INSERT INTO forwarding_outbox (target_id, seq, created_at, attempts, next_attempt_at, dead)"
    " SELECT t.id, j.value, $2, 0, $2, 0 FROM forwarding_targets t, json_each($3) AS j"
    " WHERE t.tenant_id = $1 AND t.enabled"
)


async def enqueue(conn: Connection, tenant_id: int, seqs: Sequence[int]) -> None:
    """Queue the tenant's statements ``seqs`` (just inserted, same transaction) for each of its
    enabled targets."""
    if not seqs:
        return
    at = now()
    if conn.dialect.name == "postgresql":
        await conn.run(_ENQUEUE_PG, tenant_id, at, list(seqs))
    else:
        await conn.run(_ENQUEUE_SQLITE, tenant_id, at, "[" + ",".join(str(int(s)) for s in seqs) + "]")


def _free(at: float) -> Any:
    return and_(outbox_t.c.dead.is_(False), or_(outbox_t.c.lease_until.is_(None), outbox_t.c.lease_until < at))


async def has_due(conn: Connection, at: float) -> bool:
    """Whether any row could be leased now (a read, so an idle worker takes no write lock)."""
    row = (
        await conn.execute(select(outbox_t.c.id).where(_free(at), outbox_t.c.next_attempt_at <= at).limit(1))
    ).first()
    return row is not None


async def lease(conn: Connection, owner: str, at: float, seconds: float, limit: int) -> list[Leased]:
    """Take up to ``limit`` due rows no live lease holds, for ``seconds``, in one UPDATE.

    The condition is in the UPDATE itself, not only in its sub-select: on PostgreSQL a second
    worker whose sub-select saw the same rows waits for the first one's row locks, then
    re-checks ``lease_until`` on the updated rows and skips them (and SKIP LOCKED lets it take
    other rows instead of waiting). SQLite runs one writer at a time."""
    due = (
        select(outbox_t.c.id)
        .where(_free(at), outbox_t.c.next_attempt_at <= at)
        .order_by(outbox_t.c.next_attempt_at, outbox_t.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = await conn.execute(
        update(outbox_t)
        .where(outbox_t.c.id.in_(due.scalar_subquery()), _free(at))
        .values(lease_owner=owner, lease_until=at + seconds)
        .returning(outbox_t.c.id, outbox_t.c.target_id, outbox_t.c.seq, outbox_t.c.attempts)
    )
    return sorted((Leased(r.id, r.target_id, r.seq, r.attempts) for r in rows), key=lambda r: r.id)


async def payloads(conn: Connection, seqs: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    """The statements by seq: (payload, the authority key of their writer, whose attachment bodies
    they carry)."""
    wanted = sorted(set(seqs))
    found: dict[int, tuple[str, str | None]] = {}
    s = statements_t
    for start in range(0, len(wanted), 500):
        rows = await conn.execute(
            select(s.c.seq, s.c.payload, s.c.authority_key).where(s.c.seq.in_(wanted[start : start + 500]))
        )
        found.update((r.seq, (r.payload, r.authority_key)) for r in rows)
    return found


async def delivered(conn: Connection, ids: Iterable[int]) -> None:
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), 500):
        await conn.execute(delete(outbox_t).where(outbox_t.c.id.in_(wanted[start : start + 500])))


def backoff(attempts: int, base: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: doubling from ``base``,
    at most MAX_BACKOFF, scaled by a random factor in [0.5, 1) so that rows failed together do not
    all come back together."""
    delay = min(MAX_BACKOFF, base * 2 ** min(attempts - 1, 30))
    return delay * (0.5 + _JITTER.random() / 2)


async def failed(conn: Connection, rows: Sequence[Leased], error: str, *, max_attempts: int, base_delay: float) -> None:
    """Count a failed attempt on each row, release its lease, and set its next attempt (or dead)."""
    at = now()
    for row in rows:
        attempts = row.attempts + 1
        await conn.execute(
            update(outbox_t)
            .where(outbox_t.c.id == row.id)
            .values(
                attempts=attempts,
                next_attempt_at=at + backoff(attempts, base_delay),
                dead=attempts >= max_attempts,
                lease_owner=None,
                lease_until=None,
                last_error=error[:500],
            )
        )


async def retry(conn: Connection, target_id: int) -> int:
    """Put a target's dead rows back in line, due now, with their attempts reset; how many."""
    result = await conn.execute(
        update(outbox_t)
        .where(outbox_t.c.target_id == target_id, outbox_t.c.dead.is_(True))
        .values(dead=False, attempts=0, next_attempt_at=now(), lease_owner=None, lease_until=None)
    )
    return deleted(result)


async def backlog(conn: Connection, target_ids: Iterable[int]) -> dict[int, Backlog]:
    """Per target: rows pending (not dead), failing (pending with a failed attempt), dead, the
    oldest pending row's creation time (the lag) and the newest error."""
    wanted = sorted(set(target_ids))
    if not wanted:
        return {}
    o = outbox_t
    live = o.c.dead.is_(False)
    rows = await conn.execute(
        select(
            o.c.target_id,
            func.sum(case((live, 1), else_=0)).label("pending"),
            func.sum(case((and_(live, o.c.attempts > 0), 1), else_=0)).label("failing"),
            func.sum(case((live, 0), else_=1)).label("dead"),
            func.min(case((live, o.c.created_at), else_=None)).label("oldest"),
        )
        .where(o.c.target_id.in_(wanted))
        .group_by(o.c.target_id)
    )
    found = {t: Backlog(t, 0, 0, 0, None, None) for t in wanted}
    for r in rows:
        error = (
            await conn.execute(
                select(o.c.last_error)
                .where(o.c.target_id == r.target_id, o.c.last_error.is_not(None))
                .order_by(o.c.id.desc())
                .limit(1)
            )
        ).scalar()
        found[r.target_id] = Backlog(
            r.target_id, int(r.pending or 0), int(r.failing or 0), int(r.dead or 0), r.oldest, error
        )
    return found
