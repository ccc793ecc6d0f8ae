"""Statements stored per day for one tenant (the console's chart of the last 30 days).

One query of one scalar COUNT per day, each a range on the (tenant_id, stored) index: the
database counts index entries and never reads a statement, on SQLite and PostgreSQL alike
(a GROUP BY on a day computed from ``stored`` would need a date function the two spell
differently, and rounds differently when cast).
"""

from __future__ import annotations

from sqlalchemy import func, select

from openxp.store.db import Connection
from openxp.store.models import xapi_statements as statements_t

DAY = 86400
MAX_DAYS = 366


def day_start(t: float) -> int:
    """The UTC midnight at or before ``t``."""
    return int(t // DAY) * DAY


async def per_day(conn: Connection, tenant_id: int, *, first_day: int, days: int) -> list[tuple[int, int]]:
    """(day's start, statements stored that day) for ``days`` UTC days from ``first_day``,
    every statement counted (voided ones and voiding ones too: this is what the LRS took in)."""
    if not 0 < days <= MAX_DAYS:
        raise ValueError("days out of range")
    s = statements_t.c
    starts = [first_day + i * DAY for i in range(days)]
    counts = [
        select(func.count())
        .where(s.tenant_id == tenant_id, s.stored >= start, s.stored < start + DAY)
        .scalar_subquery()
        .label(f"d{i}")
        for i, start in enumerate(starts)
    ]
    row = (await conn.execute(select(*counts))).one()
    return [(start, int(row[i])) for i, start in enumerate(starts)]
