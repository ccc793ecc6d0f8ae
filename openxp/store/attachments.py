"""Attachment bodies of statements (xAPI Data 2.4.11): stored with the statements that carry
them (``xapi.statements``), read for ``attachments=true`` and by forwarding, removed by erasure
and retention when no statement needs them (``removal``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import select

from openxp.store.db import Connection
from openxp.store.models import xapi_attachments as attachments_t

# Attachment bodies are kept once per (hash, supplier): the key is derived from the declared
# sha2 and the authority of the statement that sent the bytes, so a statement that only names
# a sha2 (fileUrl, no part) never reaches bytes another credential uploaded. Rows from before
# this rule are keyed by the bare sha2 (hex, never with the ``by:`` prefix): their supplier
# is unknown.
_SUPPLIED_PREFIX = "by:"
_INSERT_ATTACHMENT = (
    "INSERT INTO xapi_attachments (tenant_id, sha2, content_type, content) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (tenant_id, sha2) DO NOTHING"
)


def supplied_key(sha2: str, supplier: str) -> str:
    return _SUPPLIED_PREFIX + hashlib.sha256(f"{sha2.lower()}\n{supplier}".encode()).hexdigest()


async def save(conn: Connection, tenant_id: int, parts: dict[str, tuple[str, bytes]], supplier: str) -> None:
    """Store attachment bodies (already checked against their sha2) as supplied by ``supplier``
    (the writing statements' authority key). A row already there holds the same bytes."""
    if not parts:
        return
    await conn.run_many(
        _INSERT_ATTACHMENT,
        [(tenant_id, supplied_key(sha2, supplier), ctype, content) for sha2, (ctype, content) in sorted(parts.items())],
    )


async def load(
    conn: Connection, tenant_id: int, wanted: Iterable[tuple[str, str | None]], *, unattributed: bool
) -> dict[str, tuple[str, bytes]]:
    """The bodies for (sha2, writer) pairs: what that writer supplied; with ``unattributed``,
    also rows of unknown supplier stored before suppliers were recorded (by bare sha2)."""
    key_to_sha2: dict[str, str] = {}
    for sha2, writer in set(wanted):
        if writer is not None:
            key_to_sha2[supplied_key(sha2, writer)] = sha2
        if unattributed:
            key_to_sha2.setdefault(sha2, sha2)
    if not key_to_sha2:
        return {}
    rows = await conn.execute(
        select(attachments_t).where(
            attachments_t.c.tenant_id == tenant_id, attachments_t.c.sha2.in_(sorted(key_to_sha2))
        )
    )
    found: dict[str, tuple[str, bytes]] = {}
    for r in rows:
        sha2 = key_to_sha2[r.sha2]
        # A supplied row beats an unattributed one; either way one body per sha2.
        if sha2 not in found or r.sha2.startswith(_SUPPLIED_PREFIX):
            found[sha2] = (r.content_type, bytes(r.content))
    return found
