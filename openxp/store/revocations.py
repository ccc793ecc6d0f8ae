"""The revocation clock (migration 0016): a counter the database's triggers bump in the same
transaction as anything that may end a bearer token. Workers read it to know when to drop the
bearer checks they cached (``openxp.auth.bearer_cache``), and record what they read in
``bearer_cache_workers``.

``ended`` is the signal inside one process: a store function that ends tokens calls it, and
once that transaction has committed (``Database.write``) the process's listeners run before
``write()`` returns. A server worker's listeners empty its own cache and then ``settle``: wait
until every live worker has read the clock as this transaction left it. So the request that
revoked answers only once no worker serves the ended token any more; the CLI settles the same
way. A worker that cannot be waited for (stopped, or not reporting) is waited for at most
SETTLE_SECONDS, and serves nothing from its cache once its reading is TRUST_SECONDS old.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from openxp.store.db import Connection, Database
from openxp.store.db.database import after_commit

SETTLE_SECONDS = 1.5
# A worker that has not reported for this long is taken to have stopped.
LIVE_SECONDS = 5.0

Listener = Callable[[], Awaitable[None] | None]
_listeners: list[Listener] = []


async def generation(conn: Connection) -> int:
    row = await conn.fetch_one("SELECT generation FROM revocation_clock WHERE id = 1")
    return int(row["generation"]) if row is not None else 0


# Rows of workers that stopped without retiring (kill -9) are dropped after this long.
FORGET_SECONDS = 3600.0
# The database's clock, not the host's: hosts whose clocks disagree still agree on who is live.
_REPORT = {
    "postgresql": "INSERT INTO bearer_cache_workers (worker, generation, seen_at)"
    " VALUES ($1, $2, extract(epoch from clock_timestamp()))"
    " ON CONFLICT (worker) DO UPDATE SET generation = excluded.generation, seen_at = excluded.seen_at",
    "sqlite": "INSERT INTO bearer_cache_workers (worker, generation, seen_at)"
    " VALUES ($1, $2, (julianday('now') - 2440587.5) * 86400.0)"
    " ON CONFLICT (worker) DO UPDATE SET generation = excluded.generation, seen_at = excluded.seen_at",
}
_FORGET = {
    "postgresql": "DELETE FROM bearer_cache_workers WHERE seen_at < extract(epoch from clock_timestamp()) - $1",
    "sqlite": "DELETE FROM bearer_cache_workers WHERE seen_at < (julianday('now') - 2440587.5) * 86400.0 - $1",
}
_LIVE = {
    "postgresql": "SELECT generation FROM bearer_cache_workers"
    " WHERE seen_at >= extract(epoch from clock_timestamp()) - $1",
    "sqlite": "SELECT generation FROM bearer_cache_workers"
    " WHERE seen_at >= (julianday('now') - 2440587.5) * 86400.0 - $1",
}


async def report(db: Database, worker: str, seen: int) -> None:
    """The worker ``worker`` has read generation ``seen`` (and emptied its cache if it moved)."""
    async with db.write() as conn:
        dialect = conn.dialect.name
        await conn.run(_REPORT[dialect], worker, seen)
        await conn.run(_FORGET[dialect], FORGET_SECONDS)


async def retire(db: Database, worker: str) -> None:
    async with db.write() as conn:
        await conn.run("DELETE FROM bearer_cache_workers WHERE worker = $1", worker)


async def settle(db: Database) -> None:
    """Wait until every live worker has read the clock at least as it is now."""
    deadline = time.monotonic() + SETTLE_SECONDS
    async with db.read() as conn:
        target = await generation(conn)
    while time.monotonic() < deadline:
        async with db.read() as conn:
            rows = await conn.fetch_all(_LIVE[conn.dialect.name], LIVE_SECONDS)
        if all(r["generation"] >= target for r in rows):
            return
        await asyncio.sleep(0.02)


def listen(listener: Listener) -> None:
    """Run ``listener`` after every commit in this process that ended tokens."""
    _listeners.append(listener)


def unlisten(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def ended() -> None:
    """The current transaction ends tokens: tell this process's listeners once it commits."""
    for listener in list(_listeners):
        after_commit(listener)
