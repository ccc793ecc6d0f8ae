"""xAPI statements: batched inserts, voiding and the indexed statement query.

A statement is stored once as JSON text (``payload``, exactly what GET returns
with format=exact) plus the few columns the query parameters filter on. Agents
and activities mentioned anywhere in a statement go to two narrow side tables
for related_agents / related_activities. Every query is bounded by tenant_id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, asc, desc, exists, func, literal, or_, select, union, update

from openxp.store import forwarding
from openxp.store.db import Connection
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
        marks = ", ".join(f"${i}" for i in range(2, len(chunk) + 2))
        rows = await conn.fetch_all(
            f"SELECT statement_id, seq FROM xapi_statements WHERE tenant_id = $1 AND statement_id IN ({marks})",  # noqa: S608
            tenant_id,
            *chunk,
        )
        found.update((r["statement_id"], r["seq"]) for r in rows)
    return found


# Both INSERTs skip an id the tenant already holds (or that a concurrent transaction is
# committing: PostgreSQL waits for it), instead of failing; the caller compares those.
_INSERT_STATEMENT = (
    "INSERT INTO xapi_statements (tenant_id, statement_id, stored, voided, verb_id, actor_key, object_activity,"
    " object_agent, object_statement, registration, payload, authority_key)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    " ON CONFLICT (tenant_id, statement_id) DO NOTHING"
)
# PostgreSQL: one statement per table whatever the batch size (column arrays, unnest), returning
# the new seqs. Row by row (executemany) cost PostgreSQL ~35 ms of CPU per 100 statements.
_INSERT_STATEMENTS_UNNEST = (
    "INSERT INTO xapi_statements (tenant_id, statement_id, stored, voided, verb_id, actor_key, object_activity,"
    " object_agent, object_statement, registration, payload, authority_key)"
    " SELECT $1, * FROM unnest($2::varchar[], $3::float8[], $4::bool[], $5::text[], $6::text[], $7::text[],"
    " $8::text[], $9::varchar[], $10::varchar[], $11::text[], $12::text[])"
    " ON CONFLICT (tenant_id, statement_id) DO NOTHING"
    " RETURNING seq, statement_id"
)
_INSERT_LINKS = {
    "agents": "INSERT INTO xapi_statement_agents (seq, agent_key, tenant_id) VALUES ($1, $2, $3)",
    "activities": "INSERT INTO xapi_statement_activities (seq, activity_id, tenant_id) VALUES ($1, $2, $3)",
}
_INSERT_LINKS_UNNEST = {
    "agents": "INSERT INTO xapi_statement_agents (seq, agent_key, tenant_id)"
    " SELECT s, v, $3 FROM unnest($1::bigint[], $2::text[]) AS u(s, v)",
    "activities": "INSERT INTO xapi_statement_activities (seq, activity_id, tenant_id)"
    " SELECT s, v, $3 FROM unnest($1::bigint[], $2::text[]) AS u(s, v)",
}


@dataclass(frozen=True)
class Inserted:
    """What ``insert_many`` did: the ids it inserted, and the payloads of the statements the
    batch voided (stored targets, or its own statements whose voiding statement came first)."""

    ids: set[str]
    voided: list[str]


async def insert_many(conn: Connection, tenant_id: int, batch: Sequence[NewStatement]) -> Inserted:
    """Insert the statements whose ids the tenant does not hold yet.

    The INSERT itself is conditional (ON CONFLICT DO NOTHING), so concurrent writers of one
    id never fail on the unique constraint: the caller compares the ids not inserted with
    what is stored. Then the side tables for the new rows, and voiding.

    Plain SQL (the ingest hot path). SQLite: the driver's executemany (a row costs SQLite
    microseconds), then one look-up of the seqs by id, since SQLite cannot batch an
    INSERT ... RETURNING; a row is new when its seq is above the highest before the INSERT
    (the transaction holds SQLite's write lock, and seqs only grow). PostgreSQL: one
    INSERT ... SELECT FROM unnest per table, returning the rows it inserted. Last, the new
    statements' forwarding outbox rows (``forwarding.enqueue``), one INSERT ... SELECT."""
    if not batch:
        return Inserted(set(), [])
    rows = [
        (
            s.statement_id,
            s.stored,
            False,
            s.verb_id,
            s.actor_key,
            s.object_activity,
            s.object_agent,
            s.object_statement,
            s.registration,
            s.payload,
            s.authority_key,
        )
        for s in batch
    ]
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        columns = [list(column) for column in zip(*rows, strict=True)]
        returned = await conn.fetch_all(_INSERT_STATEMENTS_UNNEST, tenant_id, *columns)
        seq_of = {r["statement_id"]: r["seq"] for r in returned}
    else:
        highest = (await conn.fetch_one("SELECT coalesce(max(seq), 0) AS seq FROM xapi_statements"))["seq"]
        await conn.run_many(_INSERT_STATEMENT, [(tenant_id, *row) for row in rows])
        seq_of = {
            sid: seq
            for sid, seq in (await _seqs(conn, tenant_id, [s.statement_id for s in batch])).items()
            if seq > highest
        }
    new = [s for s in batch if s.statement_id in seq_of]
    links = {
        "agents": [(seq_of[s.statement_id], key) for s in new for key in s.agents],
        "activities": [(seq_of[s.statement_id], a) for s in new for a in s.activities],
    }
    for table, pairs in links.items():
        if not pairs:
            continue
        if postgres:
            await conn.run(_INSERT_LINKS_UNNEST[table], [p[0] for p in pairs], [p[1] for p in pairs], tenant_id)
        else:
            await conn.run_many(_INSERT_LINKS[table], [(seq, value, tenant_id) for seq, value in pairs])
    voided = await apply_voiding(conn, tenant_id, new)
    # In the same transaction: a statement is acknowledged exactly when its outbox rows exist.
    await forwarding.enqueue(conn, tenant_id, list(seq_of.values()))
    return Inserted(set(seq_of), voided)


async def apply_voiding(conn: Connection, tenant_id: int, batch: Sequence[NewStatement]) -> list[str]:
    """Data 2.3.2: a statement is voided iff it is not itself a voiding statement and a voiding
    statement for it is stored, in whichever order the two arrived. One UPDATE over the
    batch's targets and the batch's own (non-voiding) statements.

    Called inside the inserting transaction, and on PostgreSQL once more after it commits: two
    transactions storing a target and its voiding statement at once do not see each other's
    rows, but whichever runs this second after its commit sees the other committed."""
    candidates = sorted({s.voids for s in batch if s.voids} | {s.statement_id for s in batch if not s.voids})
    voided: list[str] = []
    if not candidates:
        return voided
    s, voider = statements_t, statements_t.alias("voider")
    voiding_exists = exists().where(
        voider.c.tenant_id == tenant_id,
        voider.c.object_statement == s.c.statement_id,
        voider.c.verb_id == VOIDED_VERB,
    )
    for start in range(0, len(candidates), 500):
        result = await conn.execute(
            update(s)
            .where(
                s.c.tenant_id == tenant_id,
                s.c.statement_id.in_(candidates[start : start + 500]),
                s.c.voided.is_(False),
                s.c.verb_id != VOIDED_VERB,
                voiding_exists,
            )
            .values(voided=True)
            .returning(s.c.payload)
        )
        voided += [r.payload for r in result]
    return voided


def _target_matches(t: Any, tenant_id: int, f: Filters, *, lookup_only: bool = False) -> list[ColumnElement[bool]]:
    """The filters as conditions on the statement row ``t``. With ``lookup_only`` (the target of
    a StatementRef, found by its unique id) each compared column is wrapped (``|| ''``, and a
    side table probed by a count) so the planner cannot drive the join from a filter's index:
    without statistics PostgreSQL did, reading every matching target to find the few statements
    referring to one."""

    def col(column: Any) -> Any:
        return column.op("||")(literal("")) if lookup_only else column

    def side_row(*where: ColumnElement[bool]) -> ColumnElement[bool]:
        if not lookup_only:
            return exists().where(*where)
        # A count is never turned into a join, so the side table is probed by its primary key
        # (seq, value) for each target; an EXISTS became a semi-join read from the side table's
        # (tenant_id, value, seq) index, i.e. every match.
        return select(func.count()).where(*where).scalar_subquery() > 0

    conds: list[ColumnElement[bool]] = []
    if f.verb is not None:
        conds.append(col(t.c.verb_id) == f.verb)
    if f.registration is not None:
        conds.append(col(t.c.registration) == f.registration)
    if f.activity is not None:
        if f.related_activities:
            conds.append(
                side_row(
                    activities_t.c.seq == t.c.seq,
                    activities_t.c.activity_id == f.activity,
                    activities_t.c.tenant_id == tenant_id,
                )
            )
        else:
            conds.append(col(t.c.object_activity) == f.activity)
    if f.agent is not None:
        if f.related_agents:
            conds.append(
                side_row(agents_t.c.seq == t.c.seq, agents_t.c.agent_key == f.agent, agents_t.c.tenant_id == tenant_id)
            )
        else:
            conds.append(or_(col(t.c.actor_key) == f.agent, col(t.c.object_agent) == f.agent))
    return conds


def _window(stored: Any, f: Filters) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.since is not None:
        conds.append(stored > f.since)
    if f.until is not None:
        conds.append(stored <= f.until)
    return conds


def _page_branches(
    tenant_id: int, f: Filters, rest_of_page: list[ColumnElement[bool]], order: Any, limit: int, parts: str = "all"
) -> list[Select[Any]]:
    """The seqs of at most ``limit`` matching statements per branch, each branch one ordered
    index scan that stops at the page (docs/security.md, Input limits on /xapi).

    A branch is driven by one index on (tenant_id, column, seq): the agent as actor, as object
    or in the related-agents table; else the activity (object, or the related-activities table);
    else the verb or the registration. The other filters are checked on each row it yields, so
    the cost follows the page, not the number of matches (an OR across columns, or a UNION of
    every match, would read them all). The last branch finds statements that refer to a
    matching one (StatementRef, Communication 2.1.3): it walks the statements that refer to
    anything (index on object_statement) and looks each target up by its unique id.
    """
    s = statements_t
    others = _target_matches(s, tenant_id, dataclasses.replace(f, agent=None))
    # ``since``/``until`` checked on each row the branch's own index yields: left indexable,
    # SQLite (no statistics) drove the agent's branch from the (tenant_id, stored) index and
    # read the whole window to find the agent's few statements in it (3.5 s for half of
    # 1,000,000; bench.statement_filters). Only a verb alone, which matches many, leaves the
    # planner the choice.
    page = rest_of_page + _window(s.c.stored + 0, f)
    branches: list[Select[Any]] = []
    if f.agent is not None and f.related_agents:
        a = agents_t
        branches.append(
            select(s.c.seq)
            .select_from(a.join(s, s.c.seq == a.c.seq))
            .where(a.c.tenant_id == tenant_id, a.c.agent_key == f.agent, s.c.tenant_id == tenant_id, *others, *page)
            .order_by(order(a.c.seq))
            .limit(limit)
        )
    elif f.agent is not None:
        for column in (s.c.actor_key, s.c.object_agent):
            branches.append(
                select(s.c.seq)
                .where(s.c.tenant_id == tenant_id, column == f.agent, *others, *page)
                .order_by(order(s.c.seq))
                .limit(limit)
            )
    elif f.activity is not None and f.related_activities:
        a = activities_t
        rest = _target_matches(s, tenant_id, dataclasses.replace(f, activity=None))
        branches.append(
            select(s.c.seq)
            .select_from(a.join(s, s.c.seq == a.c.seq))
            .where(a.c.tenant_id == tenant_id, a.c.activity_id == f.activity, s.c.tenant_id == tenant_id, *rest, *page)
            .order_by(order(a.c.seq))
            .limit(limit)
        )
    else:
        alone = f.activity is None and f.registration is None
        in_page = rest_of_page + _window(s.c.stored, f) if alone else page
        branches.append(
            select(s.c.seq).where(s.c.tenant_id == tenant_id, *others, *in_page).order_by(order(s.c.seq)).limit(limit)
        )
    if parts == "direct":
        return branches
    if parts == "refs":
        branches = []
    referring = s.alias("referring")
    target = s.alias("target")
    referring_page = [_on(referring, c) for c in page]
    branches.append(
        select(referring.c.seq)
        .select_from(
            referring.join(
                target, and_(target.c.tenant_id == tenant_id, target.c.statement_id == referring.c.object_statement)
            )
        )
        .where(
            referring.c.tenant_id == tenant_id,
            referring.c.object_statement.is_not(None),
            *referring_page,
            *_target_matches(target, tenant_id, f, lookup_only=True),
        )
        # ``+ 0``: ordered by seq, SQLite would walk the (tenant_id, seq) index through every
        # statement of the tenant to find the few that refer to one; unordered, it reads only
        # those from the object_statement index and sorts them.
        .order_by(order(referring.c.seq + 0))
        .limit(limit)
    )
    return branches


def _on(table: Any, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """A condition written on xapi_statements, moved onto an alias of it."""
    from sqlalchemy.sql.util import ClauseAdapter

    adapted: ColumnElement[bool] = ClauseAdapter(table).traverse(condition)
    return adapted


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
    rows = await conn.execute(statement_query(tenant_id, f, limit=limit, ascending=ascending, after_seq=after_seq))
    return [_stored(r) for r in rows]


async def walk(conn: Connection, tenant_id: int, f: Filters, *, limit: int, after_seq: int | None) -> list[Stored]:
    """The next page of ``query`` in ascending order (what an export walks), at a cost that
    follows the page, not the position in the walk.

    ``query``'s StatementRef branch reads every statement that refers to anything after the
    cursor and sorts them (it cannot stop at the page: the targets are looked up one by one), so
    walking a filtered tenant page by page read those statements once per page: quadratic in
    their number. Here the direct matches come first; the page can hold nothing past the last of
    them (when they fill it), so the StatementRef branch is bounded to that seq, and only the
    statements referring to something within the page's span are read."""
    if not f.matches_something:
        return await query(conn, tenant_id, f, limit=limit, ascending=True, after_seq=after_seq)
    direct = [
        _stored(r)
        for r in await conn.execute(
            statement_query(tenant_id, f, limit=limit, ascending=True, after_seq=after_seq, parts="direct")
        )
    ]
    upto = direct[-1].seq if len(direct) == limit else None
    refs = await conn.execute(
        statement_query(tenant_id, f, limit=limit, ascending=True, after_seq=after_seq, upto_seq=upto, parts="refs")
    )
    merged = {r.seq: r for r in direct} | {r.seq: _stored(r) for r in refs}
    return [merged[seq] for seq in sorted(merged)[:limit]]


def statement_query(
    tenant_id: int,
    f: Filters,
    *,
    limit: int,
    ascending: bool,
    after_seq: int | None,
    upto_seq: int | None = None,
    parts: str = "all",
) -> Select[Any]:
    """The SELECT behind ``query`` (its own function so that its plan can be inspected).
    ``parts``: "all" the branches, only the "direct" matches, or only the "refs" (StatementRefs
    to a match); ``upto_seq``: no seq above it (ascending walks)."""
    s = statements_t
    # What every statement on the page satisfies besides the filters.
    page: list[ColumnElement[bool]] = [s.c.voided.is_(False)]
    if after_seq is not None:
        page.append(s.c.seq > after_seq if ascending else s.c.seq < after_seq)
    if upto_seq is not None:
        page.append(s.c.seq <= upto_seq)
    if f.authority is not None:
        page.append(s.c.authority_key == f.authority)
    order = asc if ascending else desc
    if f.matches_something:
        branches = [select(b.subquery().c.seq) for b in _page_branches(tenant_id, f, page, order, limit, parts)]
        # At most (branches x limit) seqs: the page is looked up by primary key. Left indexable,
        # ``tenant_id = ?`` lets SQLite's planner walk the tenant's statements instead; ``+ 0``
        # keeps the test and takes it off the planner's list of index keys.
        return (
            select(*_COLUMNS)
            .where((s.c.tenant_id + 0) == tenant_id, s.c.seq.in_(union(*branches)))
            .order_by(order(s.c.seq))
            .limit(limit)
        )
    page += _window(s.c.stored, f)
    if f.since is None and f.until is None:
        # An ordered walk of (tenant_id, seq) that stops at the page.
        return select(*_COLUMNS).where(s.c.tenant_id == tenant_id, *page).order_by(order(s.c.seq)).limit(limit)
    # A time window: the page's seqs first, then the page's rows by primary key. SQLite finds
    # the seqs in the (tenant_id, stored, voided) index alone and sorts integers, not rows with
    # their payloads (it sorted the whole window's rows: 130 ms for a week of 100,000
    # statements). PostgreSQL walks seq backwards from the newest when it expects that to
    # reach the page sooner.
    window = select(s.c.seq).where(s.c.tenant_id == tenant_id, *page).order_by(order(s.c.seq)).limit(limit)
    return (
        select(*_COLUMNS)
        .where((s.c.tenant_id + 0) == tenant_id, s.c.seq.in_(select(window.subquery().c.seq)))
        .order_by(order(s.c.seq))
        .limit(limit)
    )
