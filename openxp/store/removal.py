"""Removing stored statements for good (a learner's erasure, a tenant's retention period), and the
attachment bodies no remaining statement needs.

A statement's side rows (related agents and activities) go with it. An attachment body is keyed by
its sha2 and the authority that supplied it (``attachments.supplied_key``), or by the bare sha2 for
rows from before suppliers were recorded; it stays while any remaining statement of the tenant
names that sha2 (written by that supplier, for a supplied row). Statements that refer to a removed
one (voiding, StatementRef) stay: their reference no longer resolves, as for a target never sent,
and every read already answers that case (the query's StatementRef branch is a join that finds
nothing; a look-up by id answers 404).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import ColumnElement, delete, func, select

from openxp.store.attachments import supplied_key
from openxp.store.db import Connection
from openxp.store.models import xapi_attachments as attachments_t
from openxp.store.models import xapi_statement_activities as activities_t
from openxp.store.models import xapi_statement_agents as agents_t
from openxp.store.models import xapi_statements as statements_t

# Parameters per IN (...): well under SQLite's and asyncpg's bind limits.
CHUNK = 500


@dataclass(frozen=True)
class Doomed:
    """A statement about to be removed: what its attachments need to be found by."""

    seq: int
    payload: str
    authority_key: str | None


def attachment_hashes(payload: str) -> set[str]:
    """The sha2 of every attachment a stored statement declares (its own and its SubStatement's), lower case."""
    try:
        statement = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return set()
    found: set[str] = set()
    for part in (statement, statement.get("object") if isinstance(statement, dict) else None):
        if isinstance(part, dict):
            for attachment in part.get("attachments") or []:
                if isinstance(attachment, dict) and isinstance(attachment.get("sha2"), str):
                    found.add(attachment["sha2"].lower())
    return found


async def doomed(
    conn: Connection, tenant_id: int, where: ColumnElement[bool], limit: int | None = None
) -> list[Doomed]:
    """The tenant's statements matching ``where``, oldest first (at most ``limit``)."""
    s = statements_t
    query = select(s.c.seq, s.c.payload, s.c.authority_key).where(s.c.tenant_id == tenant_id, where).order_by(s.c.seq)
    if limit is not None:
        query = query.limit(limit)
    return [Doomed(r.seq, r.payload, r.authority_key) for r in await conn.execute(query)]


def stored_before(cutoff: float) -> ColumnElement[bool]:
    """Retention's condition: statements stored before ``cutoff`` (Unix seconds)."""
    return statements_t.c.stored < cutoff


async def remove_statements(conn: Connection, tenant_id: int, rows: Sequence[Doomed]) -> int:
    """Delete these statements and their side rows; how many were deleted."""
    removed = 0
    seqs = [r.seq for r in rows]
    for start in range(0, len(seqs), CHUNK):
        chunk = seqs[start : start + CHUNK]
        for side in (agents_t, activities_t):
            await conn.execute(delete(side).where(side.c.tenant_id == tenant_id, side.c.seq.in_(chunk)))
        result = await conn.execute(
            delete(statements_t)
            .where(statements_t.c.tenant_id == tenant_id, statements_t.c.seq.in_(chunk))
            .returning(statements_t.c.seq)
        )
        removed += len(result.all())
    return removed


def _candidates(rows: Iterable[Doomed]) -> dict[str, tuple[str, str | None]]:
    """Attachment row keys the removed statements may have used: key -> (sha2, supplier or None)."""
    found: dict[str, tuple[str, str | None]] = {}
    for row in rows:
        for sha2 in attachment_hashes(row.payload):
            found[supplied_key(sha2, row.authority_key or "")] = (sha2, row.authority_key or "")
            found.setdefault(sha2, (sha2, None))
    return found


async def _still_named(conn: Connection, tenant_id: int, sha2: str, supplier: str | None) -> bool:
    """Whether a remaining statement of the tenant (by ``supplier``, unless None) declares ``sha2``.
    The text search narrows; the parse decides."""
    s = statements_t
    conds: list[ColumnElement[bool]] = [s.c.tenant_id == tenant_id, func.lower(s.c.payload).contains(sha2)]
    if supplier is not None:
        conds.append(func.coalesce(s.c.authority_key, "") == supplier)
    rows = await conn.execute(select(s.c.payload).where(*conds))
    return any(sha2 in attachment_hashes(row.payload) for row in rows)


async def remove_unreferenced_attachments(conn: Connection, tenant_id: int, removed: Sequence[Doomed]) -> int:
    """After ``removed`` went: delete the attachment bodies they used that no remaining statement
    needs; how many were deleted."""
    candidates = _candidates(removed)
    if not candidates:
        return 0
    keys = sorted(candidates)
    present: list[str] = []
    for start in range(0, len(keys), CHUNK):
        rows = await conn.execute(
            select(attachments_t.c.sha2).where(
                attachments_t.c.tenant_id == tenant_id, attachments_t.c.sha2.in_(keys[start : start + CHUNK])
            )
        )
        present += [r.sha2 for r in rows]
    gone = [key for key in sorted(present) if not await _still_named(conn, tenant_id, *candidates[key])]
    for start in range(0, len(gone), CHUNK):
        await conn.execute(
            delete(attachments_t).where(
                attachments_t.c.tenant_id == tenant_id, attachments_t.c.sha2.in_(gone[start : start + CHUNK])
            )
        )
    return len(gone)
