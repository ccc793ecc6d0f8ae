"""A per-worker cache of bearer checks (issue 14, decision 1; docs/decisions.md, "Bearer cache").

A hit skips the database look-up of ``bearer.principal_for``. What keeps it honest:

- **Expiry is exact**: an entry holds its token's ``expires_at`` and is never served at or
  after it.
- **Revocation reaches every worker within a second**: the database bumps the revocation clock
  (migration 0016) with anything that may end a token, and each worker reads the clock every
  POLL_SECONDS. A change empties the cache. Entries are served only while the last successful
  read started less than TRUST_SECONDS ago, so a slow or failing read stops the serving rather
  than stretching the window.
- **Everywhere before the revoking request answers**: store functions that end tokens signal
  it (``store.revocations.ended``). Once that transaction commits, this worker's cache empties
  and the request waits (``revocations.settle``) until every live worker has read the clock
  anew. So a client that revoked and then calls any worker is refused; the CLI waits the same way.
- **No stale refill**: a check that began before an emptying does not put its answer in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from openxp.auth.principal import Principal
from openxp.store import Database, revocations

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
TRUST_SECONDS = 0.75
HEARTBEAT_SECONDS = 2.0
MAX_ENTRIES = 10_000
MAX_AGE_SECONDS = 60.0


def of(conn: HTTPConnection) -> BearerCache | None:
    """This worker's cache (``app.state.bearer_cache``, set by ``openxp.app``), if it has one."""
    cache = getattr(conn.app.state, "bearer_cache", None)
    return cache if isinstance(cache, BearerCache) else None


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    expires_at: float
    cached_at: float


class BearerCache:
    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._generation: int | None = None
        self._trusted_until = 0.0
        self._epoch = 0

    def get(self, token_hash: str, at: float) -> Principal | None:
        if not self.enabled or time.monotonic() >= self._trusted_until:
            return None
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if at >= entry.expires_at or at - entry.cached_at > MAX_AGE_SECONDS:
            del self._entries[token_hash]
            return None
        self._entries.move_to_end(token_hash)
        return entry.principal

    def epoch(self) -> int:
        """Taken before a database check; ``put`` refuses the answer if the cache emptied since."""
        return self._epoch

    def put(self, token_hash: str, principal: Principal, expires_at: float, epoch: int, at: float) -> None:
        if not self.enabled or epoch != self._epoch or self._generation is None:
            return
        self._entries[token_hash] = _Entry(principal, expires_at, at)
        self._entries.move_to_end(token_hash)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
        self._epoch += 1

    def observe(self, generation: int, read_started: float) -> None:
        """A successful read of the revocation clock, begun at ``read_started`` (monotonic)."""
        if generation != self._generation:
            self.clear()
            self._generation = generation
        self._trusted_until = read_started + TRUST_SECONDS

    async def watch(self, db: Database) -> None:
        """Read the revocation clock every POLL_SECONDS, for as long as the worker runs, and record
        each new reading (and one every HEARTBEAT_SECONDS) in ``bearer_cache_workers``, which
        ``revocations.settle`` waits on."""
        worker = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"

        async def settle() -> None:
            # After the commit: a failure to wait must not turn the committed revocation into an
            # error answer. The workers still read the clock within POLL_SECONDS.
            try:
                await revocations.settle(db)
            except Exception as exc:
                log.warning("bearer cache: could not wait for the other workers (%s)", type(exc).__name__)

        revocations.listen(self.clear)
        revocations.listen(settle)
        reported: int | None = None
        reported_at = 0.0
        failing = False
        try:
            while True:
                started = time.monotonic()
                try:
                    async with db.read() as conn:
                        seen = await revocations.generation(conn)
                    self.observe(seen, started)
                    if seen != reported or started - reported_at > HEARTBEAT_SECONDS:
                        await revocations.report(db, worker, seen)
                        reported, reported_at = seen, started
                    failing = False
                except Exception as exc:  # the cache serves nothing until the clock reads again
                    self._trusted_until = 0.0
                    self.clear()
                    if not failing:  # once per outage, not ten times a second
                        log.warning("bearer cache: cannot read the revocation clock (%s)", type(exc).__name__)
                    failing = True
                await asyncio.sleep(POLL_SECONDS)
        finally:
            revocations.unlisten(self.clear)
            revocations.unlisten(settle)
            with contextlib.suppress(Exception):
                await revocations.retire(db, worker)
