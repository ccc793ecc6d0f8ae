"""Storing audit records without slowing the request that raised them.

``submit`` (the sink ``openxp.audit`` calls) only appends to an in-process queue: it never
waits, never touches the database and never raises. A background task writes the queue in
batches, one transaction each, every ``INTERVAL`` seconds or as soon as ``BATCH`` records
wait, and once more on shutdown. The queue is bounded (``CAPACITY``): while the database
cannot take the writes (down, full, locked), records wait in the queue and are retried;
once it is full, new records are dropped and counted, with a warning in the log, and the
requests go on (docs/decisions.md). The JSON log line (``openxp.audit`` logger) is written
either way, so a dropped record is still in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable

import orjson

from openxp import audit
from openxp.audit import Record
from openxp.store import Database
from openxp.store import audit as audit_store
from openxp.store.db import Connection
from openxp.store.errors import StorageUnavailable

log = logging.getLogger("openxp.audit.writer")

CAPACITY = 10_000
BATCH = 500
INTERVAL = 0.5
# Column widths (store.models.audit_events): longer values are cut, never refused.
_WIDTHS = {"tenant": 63, "actor": 320, "ip": 64}


def _text(value: str | None, width: str) -> str | None:
    """A value every database can store: no NUL, no lone surrogate, within the column."""
    if value is None:
        return None
    if value.isascii() and "\x00" not in value:
        return value[: _WIDTHS[width]]
    clean = value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return clean[: _WIDTHS[width]]


def _details(fields: dict[str, object]) -> str:
    try:
        return orjson.dumps(fields, default=str).decode()
    except TypeError:
        # orjson refuses lone surrogates; the standard encoder escapes them (\udxxx is ASCII).
        return json.dumps(fields, default=str)


class Resolver:
    """Names the tenant of records that carry only its id or their client's id; the answers are
    cached (a client never changes tenant, a tenant never changes name)."""

    def __init__(self) -> None:
        self._tenants: dict[int, str] = {}
        self._clients: dict[str, str | None] = {}

    async def rows(self, conn: Connection, records: Iterable[Record]) -> list[audit_store.Row]:
        batch = list(records)
        ids = {r.tenant_id for r in batch if r.tenant is None and r.tenant_id is not None} - set(self._tenants)
        self._tenants.update(await audit_store.tenant_names(conn, {i for i in ids if i is not None}))
        clients = {
            str(r.fields["client_id"])
            for r in batch
            if r.tenant is None and r.tenant_id is None and isinstance(r.fields.get("client_id"), str)
        } - set(self._clients)
        found = await audit_store.tenants_of_clients(conn, clients)
        self._clients.update({c: found.get(c) for c in clients})
        return [self._row(r) for r in batch]

    def _row(self, r: Record) -> audit_store.Row:
        tenant = r.tenant
        if tenant is None and r.tenant_id is not None:
            tenant = self._tenants.get(r.tenant_id)
        if tenant is None and r.tenant_id is None and isinstance(r.fields.get("client_id"), str):
            tenant = self._clients.get(r.fields["client_id"])
        return (
            _text(tenant, "tenant"),
            r.at,
            # The type and severity are names in openxp's own code; the rest may come from outside.
            r.type[:64],
            r.severity[:16],
            _text(r.actor, "actor"),
            _text(r.ip, "ip"),
            _details(r.fields),
        )


class AuditWriter:
    def __init__(self, db: Database, *, capacity: int = CAPACITY, batch: int = BATCH, interval: float = INTERVAL):
        self.db = db
        self.capacity = capacity
        self.batch = batch
        self.interval = interval
        self.dropped = 0
        self._reported = 0
        self._queue: deque[Record] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resolver = Resolver()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(self, record: Record) -> None:
        if len(self._queue) >= self.capacity:
            self.dropped += 1
            return
        self._queue.append(record)
        if len(self._queue) >= self.batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Shutdown: end the loop, then write what is left (one last try)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write what is queued now, batch by batch; on a failure, keep the rest for the next turn.

        Only what is queued when it starts: the requests served while a batch is written add
        records one at a time, and taking those too would write a transaction per request (each
        write yields to them), which cost the code exchange a quarter of its time (issue 12)."""
        due = len(self._queue)
        while due > 0 and self._queue:
            batch = [self._queue.popleft() for _ in range(min(self.batch, due, len(self._queue)))]
            due -= len(batch)
            try:
                async with self.db.write() as conn:
                    await audit_store.insert_many(conn, await self._resolver.rows(conn, batch))
            except StorageUnavailable as exc:
                self._requeue(batch)
                log.warning("audit log: %d events wait for the database (%s)", len(self._queue), exc.code)
                break
            except Exception:
                # Not the database's state but these rows: retrying would stop the queue for good.
                log.exception("audit log: a batch of %d events could not be written; dropped", len(batch))
                self.dropped += len(batch)
        self._report_drops()

    def _requeue(self, batch: list[Record]) -> None:
        """Put a batch that failed back in front, as far as the queue has room (oldest kept)."""
        room = max(0, self.capacity - len(self._queue))
        kept = batch[:room]
        self.dropped += len(batch) - len(kept)
        self._queue.extendleft(reversed(kept))

    def _report_drops(self) -> None:
        if self.dropped > self._reported:
            log.warning(
                "audit log full: %d events dropped since the last report, %d in all (they are in the openxp.audit log)",
                self.dropped - self._reported,
                self.dropped,
            )
            self._reported = self.dropped


@contextlib.asynccontextmanager
async def kept_with(conn: Connection) -> AsyncIterator[None]:
    """Security events (``audit.SYNCHRONOUS``) raised inside are written in ``conn``'s transaction,
    before it commits and so before the answer: they share the fate of the change they record
    (a revoked family, an engaged lock) and outlive a kill -9 that follows the answer. Routine
    events still go to the queue."""
    with audit.holding() as held:
        try:
            yield
        finally:
            if held:
                await write_now(conn, held)


async def write_now(conn: Connection, records: list[Record]) -> None:
    """The command line's way: its records, in the transaction of the change they describe."""
    await audit_store.insert_many(conn, await Resolver().rows(conn, records))
