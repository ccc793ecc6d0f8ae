"""Housekeeping: deleting rows that can never be used again.

``openxp serve`` runs ``purge`` every ``INTERVAL`` seconds and ``openxp purge`` runs it once: one
routine, so that the two delete the same things. ``PURGE_STEPS`` is the list of what is purged;
each step deletes, in one statement, one table's rows that died before the cutoff and returns
how many it deleted. To purge something new, add a step here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from openxp.store import audit, grants, launches, sessions, staged_imports, throttle
from openxp.store.db import Connection, now

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
