"""xAPI statements: batched inserts, voiding and the indexed statement query.

A statement is stored once as JSON text (``payload``, exactly what GET returns
with format=exact) plus the few columns the query parameters filter on. Agents
and activities mentioned anywhere in a statement go to two narrow side tables
for related_agents / related_activities. Every query is bounded by tenant_id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, insert, select, union, update

from openxp.store.db import Connection
from openxp.store.models import xapi_attachments as attachments_t
from openxp.store.models import xapi_statement_activities as activities_t
from openxp.store.models import xapi_statement_agents as agents_t
from openxp.store.models import xapi_statements as statements_t

VOIDED_VERB = "http://adlnet.gov/expapi/verbs/voided"


@dataclass
class NewStatement:
    statement_id: str
    stored: float
    verb_id: str
    actor_key: str
    payload: str
    object_activity: str | None = None
    object_agent: str | None = None
    object_statement: str | None = None
    registration: str | None = None
    authority_key: str | None = None
    agents: set[str] = field(default_factory=set)
    activities: set[str] = field(default_factory=set)

    @property
    def voids(self) -> str | None:
        return self.object_statement if self.verb_id == VOIDED_VERB else None


@dataclass(frozen=True)
class Stored:
    seq: int
    statement_id: str
    payload: str
    voided: bool
    verb_id: str
    stored: float
    authority_key: str | None = None


@dataclass(frozen=True)
class Filters:
    agent: str | None = None
    verb: str | None = None
    activity: str | None = None
    registration: str | None = None
    related_agents: bool = False
    related_activities: bool = False
    since: float | None = None
    until: float | None = None
    # statements/read/mine: only what this authority wrote.
    authority: str | None = None

    @property
    def matches_something(self) -> bool:
        return any(v is not None for v in (self.agent, self.verb, self.activity, self.registration))


def _stored(row: Any) -> Stored:
    return Stored(row.seq, row.statement_id, row.payload, bool(row.voided), row.verb_id, row.stored, row.authority_key)


_COLUMNS = (
    statements_t.c.seq,
    statements_t.c.statement_id,
    statements_t.c.payload,
    statements_t.c.voided,
    statements_t.c.verb_id,
    statements_t.c.stored,
    statements_t.c.authority_key,
)


async def find_many(conn: Connection, tenant_id: int, ids: Iterable[str]) -> dict[str, Stored]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await conn.execute(
        select(*_COLUMNS).where(statements_t.c.tenant_id == tenant_id, statements_t.c.statement_id.in_(wanted))
    )
    return {r.statement_id: _stored(r) for r in rows}


async def find(conn: Connection, tenant_id: int, statement_id: str) -> Stored | None:
    return (await find_many(conn, tenant_id, [statement_id])).get(statement_id)


async def _seqs(conn: Connection, tenant_id: int, statement_ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(statement_ids), 500):
        chunk = statement_ids[start : start + 500]
        rows = await conn.execute(
            select(statements_t.c.statement_id, statements_t.c.seq).where(
                statements_t.c.tenant_id == tenant_id, statements_t.c.statement_id.in_(chunk)
            )
        )
        found.update((r.statement_id, r.seq) for r in rows)
    return found


async def insert_many(conn: Connection, tenant_id: int, batch: Sequence[NewStatement]) -> None:
    """One multi-row INSERT for the statements and one per side table; then voiding."""
    if not batch:
        return
    rows = [
        {
            "tenant_id": tenant_id,
            "statement_id": s.statement_id,
            "stored": s.stored,
            "voided": False,
            "verb_id": s.verb_id,
            "actor_key": s.actor_key,
            "object_activity": s.object_activity,
            "object_agent": s.object_agent,
            "object_statement": s.object_statement,
            "registration": s.registration,
            "payload": s.payload,
            "authority_key": s.authority_key,
        }
        for s in batch
    ]
    # A plain multi-row INSERT, then one look-up of the new seqs by id: SQLite cannot batch an
    # INSERT ... RETURNING that must keep parameter order, and would run it row by row.
    await conn.execute(insert(statements_t), rows)
    seq_of = await _seqs(conn, tenant_id, [s.statement_id for s in batch])
    seqs = [seq_of[s.statement_id] for s in batch]
    agent_rows = [
        {"seq": seq, "agent_key": key, "tenant_id": tenant_id}
        for seq, s in zip(seqs, batch, strict=True)
        for key in s.agents
    ]
    activity_rows = [
        {"seq": seq, "activity_id": a, "tenant_id": tenant_id}
        for seq, s in zip(seqs, batch, strict=True)
        for a in s.activities
    ]
    if agent_rows:
        await conn.execute(insert(agents_t), agent_rows)
    if activity_rows:
        await conn.execute(insert(activities_t), activity_rows)
    targets = sorted({s.voids for s in batch if s.voids})
    if targets:
        # Voiding a voiding statement has no effect (the caller refuses it up front).
        await conn.execute(
            update(statements_t)
            .where(
                statements_t.c.tenant_id == tenant_id,
                statements_t.c.statement_id.in_(targets),
                statements_t.c.verb_id != VOIDED_VERB,
            )
            .values(voided=True)
        )


def _matching_seqs(tenant_id: int, f: Filters) -> Any:
    """The seqs of statements matching the filters, as a UNION of index searches.

    Each branch pins one indexed column (actor, object agent, related agent, object
    activity, related activity, verb or registration), so the database walks an index
    instead of scanning the tenant's statements (an OR across columns defeats the index).
    """
    s = statements_t
    rest: list[ColumnElement[bool]] = []
    if f.verb is not None:
        rest.append(s.c.verb_id == f.verb)
    if f.registration is not None:
        rest.append(s.c.registration == f.registration)
    if f.activity is not None:
        if f.related_activities:
            rest.append(
                s.c.seq.in_(
                    select(activities_t.c.seq).where(
                        activities_t.c.tenant_id == tenant_id, activities_t.c.activity_id == f.activity
                    )
                )
            )
        else:
            rest.append(s.c.object_activity == f.activity)
    tenant = s.c.tenant_id == tenant_id
    if f.agent is None:
        return select(s.c.seq).where(tenant, *rest)
    if f.related_agents:
        related = select(agents_t.c.seq).where(agents_t.c.tenant_id == tenant_id, agents_t.c.agent_key == f.agent)
        return select(s.c.seq).where(tenant, s.c.seq.in_(related), *rest)
    as_actor = select(s.c.seq).where(tenant, s.c.actor_key == f.agent, *rest)
    as_object = select(s.c.seq).where(tenant, s.c.object_agent == f.agent, *rest)
    return union(as_actor, as_object)


async def query(
    conn: Connection,
    tenant_id: int,
    f: Filters,
    *,
    limit: int,
    ascending: bool,
    after_seq: int | None,
) -> list[Stored]:
    """Up to ``limit`` non-voided statements in stored order, after the cursor.

    A statement also matches when it targets (StatementRef) a statement that
    matches, voided or not (xAPI Communication 2.1.3 filter conditions).
    """
    s = statements_t
    conds: list[ColumnElement[bool]] = [s.c.tenant_id == tenant_id, s.c.voided.is_(False)]
    if f.since is not None:
        conds.append(s.c.stored > f.since)
    if f.until is not None:
        conds.append(s.c.stored <= f.until)
    if after_seq is not None:
        conds.append(s.c.seq > after_seq if ascending else s.c.seq < after_seq)
    if f.authority is not None:
        conds.append(s.c.authority_key == f.authority)
    if f.matches_something:
        matching = _matching_seqs(tenant_id, f).subquery()
        target = s.alias("target")
        # Statements that target (StatementRef) a matching statement match too.
        referring = select(s.c.seq).where(
            s.c.tenant_id == tenant_id,
            s.c.object_statement.in_(select(target.c.statement_id).where(target.c.seq.in_(select(matching.c.seq)))),
        )
        conds.append(s.c.seq.in_(union(select(matching.c.seq), referring)))
    order = s.c.seq.asc() if ascending else s.c.seq.desc()
    rows = await conn.execute(select(*_COLUMNS).where(*conds).order_by(order).limit(limit))
    return [_stored(r) for r in rows]


async def save_attachments(conn: Connection, tenant_id: int, parts: dict[str, tuple[str, bytes]]) -> None:
    """Store attachment bodies by hash; a hash already stored is the same bytes."""
    if not parts:
        return
    known = set(
        (
            await conn.execute(
                select(attachments_t.c.sha2).where(
                    attachments_t.c.tenant_id == tenant_id, attachments_t.c.sha2.in_(sorted(parts))
                )
            )
        ).scalars()
    )
    rows = [
        {"tenant_id": tenant_id, "sha2": sha2, "content_type": ctype, "content": content}
        for sha2, (ctype, content) in parts.items()
        if sha2 not in known
    ]
    if rows:
        await conn.execute(insert(attachments_t), rows)


async def load_attachments(conn: Connection, tenant_id: int, hashes: Iterable[str]) -> dict[str, tuple[str, bytes]]:
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    rows = await conn.execute(
        select(attachments_t).where(attachments_t.c.tenant_id == tenant_id, attachments_t.c.sha2.in_(wanted))
    )
    return {r.sha2: (r.content_type, bytes(r.content)) for r in rows}
