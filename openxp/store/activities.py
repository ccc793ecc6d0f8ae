"""Activities as the LRS knows them: read from the statements that name them."""

from __future__ import annotations

from sqlalchemy import select

from openxp.store.db import Connection
from openxp.store.models import xapi_statements as t


async def definition_payloads(conn: Connection, tenant_id: int, activity_id: str, limit: int) -> list[str]:
    """The payloads of the first ``limit`` statements (oldest first) whose object is the
    Activity: the caller merges their definitions."""
    rows = await conn.execute(
        select(t.c.payload)
        .where(t.c.tenant_id == tenant_id, t.c.object_activity == activity_id)
        .order_by(t.c.seq.asc())
        .limit(limit)
    )
    return [r.payload for r in rows]
