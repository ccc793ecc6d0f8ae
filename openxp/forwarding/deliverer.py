"""The background task of every worker that empties the forwarding outbox.

Each turn: if a row is due (a read), lease up to OPENXP_FORWARDING_BATCH due rows for this
worker (one conditional UPDATE: another worker, process or host never takes a leased row),
read their statements, send each target its rows in one batch, then delete what was delivered
and count a failed attempt on the rest (backoff, dead after OPENXP_FORWARDING_MAX_ATTEMPTS).
A worker killed mid-batch leaves its rows leased; when the lease runs out another worker, or
this one restarted, delivers them again: at least once, never lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections import defaultdict

import httpx

from openxp.config import Settings
from openxp.forwarding import sealing
from openxp.forwarding.delivery import OpenTarget, deliver
from openxp.forwarding.errors import ForwardingError
from openxp.store import Database
from openxp.store import attachments as attachment_store
from openxp.store import forwarding as outbox
from openxp.store.db import now
from openxp.xapi import attachments

log = logging.getLogger("openxp.forwarding")
# Seconds between two looks at the outbox when the last one found less than a full batch.
POLL_INTERVAL = 1.0


def lease_seconds(settings: Settings) -> float:
    """How long a worker holds a batch: its requests (one per version, or one per statement
    after a 409) are stopped before that (``deliver_within``)."""
    return 3.0 * settings.forwarding_timeout + 5.0


class Deliverer:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        # httpx logs each request's full URL at info, and a target's path may be its token.
        for quiet in ("httpx", "httpcore"):
            logging.getLogger(quiet).setLevel(logging.WARNING)
        self._sealer: sealing.Sealer | None = None

    async def run(self) -> None:
        """Turns until cancelled (the app's lifespan runs it as a task)."""
        timeout = httpx.Timeout(float(self.settings.forwarding_timeout))
        # trust_env=False: no proxy from the environment (the SSRF check vets the address we connect to).
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            while True:
                try:
                    taken = await self.turn(client)
                except Exception:
                    log.exception("forwarding turn failed; will retry")
                    taken = 0
                if taken < self.settings.forwarding_batch:
                    await asyncio.sleep(POLL_INTERVAL)

    async def turn(self, client: httpx.AsyncClient) -> int:
        """One lease, delivery and record; how many rows were leased."""
        at = now()
        async with self.db.read() as conn:
            if not await outbox.has_due(conn, at):
                return 0
        hold = lease_seconds(self.settings)
        async with self.db.write() as conn:
            leased = await outbox.lease(conn, self.owner, now(), hold, self.settings.forwarding_batch)
        if not leased:
            return 0
        async with self.db.read() as conn:
            targets = await outbox.targets(conn, {r.target_id for r in leased})
            payloads = await outbox.payloads(conn, {r.seq for r in leased})
        by_target: dict[int, list[outbox.Leased]] = defaultdict(list)
        for row in leased:
            by_target[row.target_id].append(row)
        results = await asyncio.gather(
            *(self._one_target(client, targets.get(t), rows, payloads, hold - 2.0) for t, rows in by_target.items())
        )
        done = [row.id for ok, rows, _ in results if ok for row in rows]
        async with self.db.write() as conn:
            await outbox.delivered(conn, done)
            for ok, rows, error in results:
                if not ok:
                    await outbox.failed(
                        conn,
                        rows,
                        error,
                        max_attempts=self.settings.forwarding_max_attempts,
                        base_delay=float(self.settings.forwarding_backoff),
                    )
        return len(leased)

    async def _one_target(
        self,
        client: httpx.AsyncClient,
        target: outbox.Target | None,
        rows: list[outbox.Leased],
        payloads: dict[int, tuple[str, str | None]],
        within: float,
    ) -> tuple[bool, list[outbox.Leased], str]:
        if target is None:  # removed meanwhile: its rows went with it
            return True, rows, ""
        # A statement erased meanwhile is not sent (its row goes with it).
        chosen = [payloads[r.seq] for r in rows if r.seq in payloads]
        statements = [payload for payload, _ in chosen]
        try:
            async with asyncio.timeout(within):
                files = await self._attachment_bodies(target, chosen)
                opened = self._open(target)
                await deliver(client, opened, statements, self.settings.forwarding_allow_networks, files)
        except TimeoutError:
            error = "the batch took longer than its lease"
        except ForwardingError as exc:
            error = exc.message
        else:
            return True, rows, ""
        log.warning(
            "forwarding to target %d (%s) failed for %d statements: %s", target.id, target.origin, len(rows), error
        )
        return False, rows, error

    async def _attachment_bodies(
        self, target: outbox.Target, chosen: list[tuple[str, str | None]]
    ) -> dict[str, tuple[str, bytes]]:
        """For an LRS: the attachment bodies the statements were sent with (multipart parts), by
        sha2, so the target receives what this LRS accepted. A webhook gets the statements only."""
        if target.kind != "xapi":
            return {}
        need = attachments.wanted(chosen)
        if not need:
            return {}
        async with self.db.read() as conn:
            return await attachment_store.load(conn, target.tenant_id, need, unattributed=True)

    def _open(self, target: outbox.Target) -> OpenTarget:
        if self._sealer is None:
            self._sealer = sealing.sealer(self.settings)
        sealer = self._sealer
        return OpenTarget(
            target.id,
            target.kind,
            sealer.open(target.url_sealed),
            sealer.open(target.auth_sealed) if target.auth_sealed else None,
            sealer.open(target.secret_sealed) if target.secret_sealed else None,
        )
