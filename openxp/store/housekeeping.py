"""Housekeeping: deleting rows that can never be used again.

``openxp serve`` runs ``purge`` every ``INTERVAL`` seconds and ``openxp purge`` runs it once: one
routine, so that the two delete the same things. ``PURGE_STEPS`` is the list of what is purged;
each step deletes, in one statement, one table's rows that died before the cutoff and returns
how many it deleted. To purge something new, add a step here.

``retention`` is the other half: each tenant's statements and documents older than its retention
period (``openxp tenant set-retention``), deleted in batches of ``OPENXP_RETENTION_BATCH`` rows,
each batch its own short transaction, so that ingest waits at most one batch for the write lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from openxp.store import audit, documents, grants, launches, removal, sessions, staged_imports, tenants, throttle
from openxp.store.db import Connection, Database, now

# How often the server purges, in seconds.
INTERVAL = 600
# Rows are kept this long after they expired, so that a look-up racing the purge (a replayed code,
# a reused refresh token) still finds them and is answered as such.
GRACE = 3600

PurgeStep = Callable[[Connection, float], Awaitable[int]]

PURGE_STEPS: list[tuple[str, PurgeStep]] = [
    ("authorization_codes", grants.purge_codes),
    ("access_tokens", grants.purge_access_tokens),
    ("refresh_tokens", grants.purge_refresh_tokens),
    ("service_grants", grants.purge_service_grants),
    # Not rows deleted but retry nonces wiped: a rotated token's successors can no longer be derived.
    ("refresh_retry_nonces", grants.wipe_rotation_nonces),
    ("interactions", sessions.purge_interactions),
    ("sessions", sessions.purge_sessions),
    ("short_lived_credentials", launches.purge_dead),
    ("staged_imports", staged_imports.purge_expired),
    # Failure counters whose window began before the cutoff and whose lock has lifted (the grace
    # is longer than any sensible OPENXP_RATE_WINDOW, so a counter still counting is kept).
    ("throttles", throttle.purge_stale),
    # Its cutoff is the audit retention (OPENXP_AUDIT_RETENTION_DAYS), not the grace.
    ("audit_events", audit.purge_before),
]
RETENTION_STEPS = frozenset({"audit_events"})
DAY = 24 * 3600


async def purge(conn: Connection, grace: float = GRACE, *, audit_retention_days: int = 365) -> dict[str, int]:
    """Run every step on rows dead for longer than ``grace`` seconds, and the audit log's on events
    older than ``audit_retention_days`` (0: kept forever); rows deleted, by step."""
    before = now() - grace
    kept_from = now() - audit_retention_days * DAY
    counts: dict[str, int] = {}
    for name, step in PURGE_STEPS:
        if name not in RETENTION_STEPS:
            counts[name] = await step(conn, before)
        else:
            counts[name] = await step(conn, kept_from) if audit_retention_days > 0 else 0
    return counts


# Rows per retention transaction (OPENXP_RETENTION_BATCH).
RETENTION_BATCH = 1000


async def retention(db: Database, *, batch: int = RETENTION_BATCH) -> dict[str, int]:
    """Apply every tenant's retention period: statements stored, and documents last updated,
    more than its ``retention_days`` ago go, with attachment bodies no remaining statement needs.
    Batch after batch, each in a transaction of its own; rows deleted, by kind, and transactions run."""
    async with db.read() as conn:
        limited = await tenants.with_retention(conn)
    counts = {"statements": 0, "documents": 0, "attachments": 0, "batches": 0}
    for tenant in limited:
        cutoff = now() - tenant.retention_days * DAY
        while True:
            async with db.write() as conn:
                doomed = await removal.doomed(conn, tenant.id, removal.stored_before(cutoff), limit=batch)
                counts["statements"] += await removal.remove_statements(conn, tenant.id, doomed)
                counts["attachments"] += await removal.remove_unreferenced_attachments(conn, tenant.id, doomed)
            counts["batches"] += 1
            # Let the requests waiting for the write lock in before the next batch.
            await asyncio.sleep(0)
            if len(doomed) < batch:
                break
        while True:
            async with db.write() as conn:
                gone = await documents.purge_older(conn, tenant.id, cutoff, batch)
            counts["documents"] += gone
            counts["batches"] += 1
            await asyncio.sleep(0)
            if gone < batch:
                break
    return counts
