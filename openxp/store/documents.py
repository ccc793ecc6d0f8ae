"""xAPI documents (State, Activity Profile, Agent Profile): one row per document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update

from openxp.store.db import Connection
from openxp.store.models import xapi_documents as docs_t


@dataclass(frozen=True)
class Key:
    """Where a document lives; unused parts are ''."""

    kind: str
    activity_id: str = ""
    agent_key: str = ""
    registration: str = ""


@dataclass(frozen=True)
class Document:
    doc_id: str
    content_type: str
    content: bytes
    etag: str
    updated: float


def _where(tenant_id: int, key: Key) -> list[ColumnElement[bool]]:
    return [
        docs_t.c.tenant_id == tenant_id,
        docs_t.c.kind == key.kind,
        docs_t.c.activity_id == key.activity_id,
        docs_t.c.agent_key == key.agent_key,
        docs_t.c.registration == key.registration,
    ]


def _doc(row: Any) -> Document:
    return Document(row.doc_id, row.content_type, bytes(row.content), row.etag, row.updated)


async def get(conn: Connection, tenant_id: int, key: Key, doc_id: str) -> Document | None:
    row = (await conn.execute(select(docs_t).where(*_where(tenant_id, key), docs_t.c.doc_id == doc_id))).first()
    return _doc(row) if row else None


async def ids(conn: Connection, tenant_id: int, key: Key, since: float | None) -> list[str]:
    conds = _where(tenant_id, key)
    if since is not None:
        conds.append(docs_t.c.updated > since)
    rows = await conn.execute(select(docs_t.c.doc_id).where(*conds).order_by(docs_t.c.doc_id))
    return [r.doc_id for r in rows]


_INSERT_NEW = (
    "INSERT INTO xapi_documents (tenant_id, kind, activity_id, agent_key, registration, doc_id, content_type,"
    " content, etag, updated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    " ON CONFLICT (tenant_id, kind, activity_id, agent_key, registration, doc_id) DO NOTHING RETURNING id"
)


async def write(conn: Connection, tenant_id: int, key: Key, doc: Document, *, replacing: str | None) -> bool:
    """Store ``doc`` only if the document is still as the caller saw it: absent
    (``replacing=None``) or holding ETag ``replacing``. The condition is part of the INSERT or
    UPDATE, so of concurrent writers that saw the same state exactly one succeeds; False
    means another got there first (look again)."""
    if replacing is None:
        row = await conn.fetch_one(
            _INSERT_NEW,
            tenant_id,
            key.kind,
            key.activity_id,
            key.agent_key,
            key.registration,
            doc.doc_id,
            doc.content_type,
            doc.content,
            doc.etag,
            doc.updated,
        )
        return row is not None
    values = {"content_type": doc.content_type, "content": doc.content, "etag": doc.etag, "updated": doc.updated}
    result = await conn.execute(
        update(docs_t)
        .where(*_where(tenant_id, key), docs_t.c.doc_id == doc.doc_id, docs_t.c.etag == replacing)
        .values(values)
        .returning(docs_t.c.id)
    )
    return result.first() is not None


async def remove_one(conn: Connection, tenant_id: int, key: Key, doc_id: str, *, etag: str) -> bool:
    """Delete the document only if it still holds ``etag``; False if it changed or went meanwhile."""
    result = await conn.execute(
        delete(docs_t)
        .where(*_where(tenant_id, key), docs_t.c.doc_id == doc_id, docs_t.c.etag == etag)
        .returning(docs_t.c.id)
    )
    return result.first() is not None


async def remove(conn: Connection, tenant_id: int, key: Key, doc_id: str | None) -> None:
    conds = _where(tenant_id, key)
    if doc_id is not None:
        conds.append(docs_t.c.doc_id == doc_id)
    await conn.execute(delete(docs_t).where(*conds))


async def purge_older(conn: Connection, tenant_id: int, before: float, limit: int) -> int:
    """Retention: delete at most ``limit`` of the tenant's documents last updated before ``before``."""
    oldest = (
        select(docs_t.c.id)
        .where(docs_t.c.tenant_id == tenant_id, docs_t.c.updated < before)
        .order_by(docs_t.c.id)
        .limit(limit)
    )
    result = await conn.execute(
        delete(docs_t)
        .where(docs_t.c.tenant_id == tenant_id, docs_t.c.id.in_(select(oldest.subquery().c.id)))
        .returning(docs_t.c.id)
    )
    return len(result.all())
