"""xAPI documents (State, Activity Profile, Agent Profile): one row per document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, update

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


async def put(conn: Connection, tenant_id: int, key: Key, doc: Document, *, exists: bool) -> None:
    values = {"content_type": doc.content_type, "content": doc.content, "etag": doc.etag, "updated": doc.updated}
    if exists:
        await conn.execute(update(docs_t).where(*_where(tenant_id, key), docs_t.c.doc_id == doc.doc_id).values(values))
    else:
        await conn.execute(
            insert(docs_t).values(
                tenant_id=tenant_id,
                kind=key.kind,
                activity_id=key.activity_id,
                agent_key=key.agent_key,
                registration=key.registration,
                doc_id=doc.doc_id,
                **values,
            )
        )


async def remove(conn: Connection, tenant_id: int, key: Key, doc_id: str | None) -> None:
    conds = _where(tenant_id, key)
    if doc_id is not None:
        conds.append(docs_t.c.doc_id == doc_id)
    await conn.execute(delete(docs_t).where(*conds))
