"""Failure counters shared by every worker process (they live in the database).

Only failures are counted, so a well-behaved caller never pays for this. A key
that collects ``limit`` failures within ``window`` seconds is locked for
``lockout`` seconds; the lock lifts by itself (no permanent lockout an attacker
could trigger).
"""

from __future__ import annotations

from sqlalchemy import case, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from openxp.store.db import Connection, now
from openxp.store.models import throttles
from openxp.store.rows import deleted


async def locked_for(conn: Connection, key: str) -> float:
    """Seconds until ``key`` may try again (0 when it may now)."""
    row = await conn.fetch_one("SELECT locked_until FROM throttles WHERE key = $1", key)
    if row is None or row["locked_until"] is None:
        return 0.0
    return max(0.0, float(row["locked_until"]) - now())


async def record_failure(conn: Connection, key: str, *, limit: int, window: int, lockout: int) -> float:
    """Count one failure; returns the lock's remaining seconds (0 if not locked)."""
    t = now()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(throttles).values(key=key, window_start=t, failures=1, locked_until=None)
    fresh_window = stmt.excluded.window_start - throttles.c.window_start >= window
    upsert = stmt.on_conflict_do_update(
        index_elements=[throttles.c.key],
        set_={
            "failures": case((fresh_window, 1), else_=throttles.c.failures + 1),
            "window_start": case((fresh_window, stmt.excluded.window_start), else_=throttles.c.window_start),
        },
    ).returning(throttles.c.failures, throttles.c.locked_until)
    row = (await conn.execute(upsert)).one()
    if row.locked_until is not None and row.locked_until > t:
        return float(row.locked_until - t)
    if row.failures >= limit:
        await conn.execute(update(throttles).where(throttles.c.key == key).values(locked_until=t + lockout, failures=0))
        return float(lockout)
    return 0.0


async def clear(conn: Connection, key: str) -> None:
    await conn.execute(delete(throttles).where(throttles.c.key == key))


async def refund(conn: Connection, key: str) -> None:
    """Take back one failure counted in advance (an attempt that turned out to succeed)."""
    counted = throttles.c.failures
    await conn.execute(update(throttles).where(throttles.c.key == key, counted > 0).values(failures=counted - 1))


async def purge_stale(conn: Connection, before: float) -> int:
    """Housekeeping: drop counters whose window began before ``before`` and whose lock, if any,
    has lifted. Such a row no longer changes any answer (the next failure would start a fresh
    window), and every failure with a new client id, key or email makes a row."""
    t = now()
    result = await conn.execute(
        delete(throttles).where(
            throttles.c.window_start < before,
            or_(throttles.c.locked_until.is_(None), throttles.c.locked_until <= t),
        )
    )
    return deleted(result)
