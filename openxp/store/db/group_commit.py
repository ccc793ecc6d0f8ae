"""Group commit: SQLite write transactions of one process, committed together.

Writes that arrive while one is under way join its transaction, each in its own savepoint
(so one failing undoes only itself), and one COMMIT ends them all: a commit costs more
than a token exchange's statements (docs/benchmarks.md). A member is answered only once
the COMMIT has returned, so what is acknowledged is committed (a claimed code or an issued
token is real only then); and when SQLite itself rolls the whole transaction back, every
member still waiting is told so.

This module knows only the driver connection it is given: it neither opens connections
nor classifies errors (``classify`` does), so it can be read and tested on its own.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from openxp.store.db.trouble import is_locked
from openxp.store.errors import StorageUnavailable

# How long one write may wait for another process's write lock before failing.
WRITE_LOCK_TIMEOUT = 30.0
# A group is committed once a turn of the event loop brings no new writer, after this many
# turns, or at this many writers, whichever comes first.
MAX_GROUP_WAIT_HOPS = 8
MAX_GROUP_MEMBERS = 64


@dataclass
class _CommitGroup:
    committed: asyncio.Future[None]
    members: int = 0
    committer: asyncio.Task[None] | None = None


def _lost() -> StorageUnavailable:
    return StorageUnavailable("the transaction was lost; nothing was written")


class GroupCommit:
    """The write transactions on ``writer``, a connection in autocommit mode
    (``isolation_level=None``) that nothing else writes on.

    ``classify`` turns an error into the ``StorageUnavailable`` members are told (or None:
    the error itself is the answer); ``on_commit`` runs after each successful COMMIT."""

    def __init__(
        self,
        writer: sqlite3.Connection,
        classify: Callable[[BaseException], StorageUnavailable | None],
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._writer = writer
        self._classify = classify
        self._on_commit = on_commit
        self._lock = asyncio.Lock()
        self._group: _CommitGroup | None = None

    @asynccontextmanager
    async def member(self) -> AsyncIterator[sqlite3.Connection]:
        """One write: the block runs in a savepoint of the current group's transaction, and
        returns once that transaction is committed. If the block raises, its savepoint is
        rolled back and the others' work stands."""
        async with self._lock:
            group = self._group
            if group is not None and not self._writer.in_transaction:
                # Belt and braces: a group whose transaction SQLite ended is never joined.
                self._lose_group(group, _lost())
                group = None
            if group is None:
                group = await self._open_group()
            group.members += 1
            self._writer.execute("SAVEPOINT member")
            try:
                yield self._writer
                if not self._writer.in_transaction:
                    # The block swallowed an error after which SQLite rolled everything back.
                    raise _lost()
            except BaseException as exc:
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK TO member")
                    self._writer.execute("RELEASE member")
                else:
                    # SQLite rolled the whole transaction back itself (SQLITE_FULL, SQLITE_IOERR,
                    # ...): the members already done with it lost their rows too. They are told so,
                    # and the next writer begins a transaction of its own instead of running on
                    # in autocommit, where each savepoint would commit alone.
                    lost = self._classify(exc) if isinstance(exc, Exception) else None
                    self._lose_group(group, lost or StorageUnavailable("the transaction was lost"))
                raise
            else:
                self._writer.execute("RELEASE member")
        # Answer only once it is durable.
        await asyncio.shield(group.committed)

    def _lose_group(self, group: _CommitGroup, error: Exception) -> None:
        """The group's transaction is gone: every member still waiting for its commit fails."""
        if self._group is group:
            self._group = None
        if not group.committed.done():
            group.committed.set_exception(error)
            group.committed.exception()  # retrieved: members that were cancelled never will

    async def _open_group(self) -> _CommitGroup:
        await self._begin_immediate()
        group = _CommitGroup(asyncio.get_running_loop().create_future())
        self._group = group
        group.committer = asyncio.create_task(self._commit_when_quiet(group))
        return group

    async def _commit_when_quiet(self, group: _CommitGroup) -> None:
        seen = 0
        for _ in range(MAX_GROUP_WAIT_HOPS):
            if group.members == seen or group.members >= MAX_GROUP_MEMBERS:
                break
            seen = group.members
            await asyncio.sleep(0)  # one turn of the event loop: let waiting writers join
        async with self._lock:
            if group.committed.done():
                return  # lost (_lose_group): any transaction open now is a later group's
            self._group = None
            try:
                self._writer.execute("COMMIT")
            except BaseException as exc:
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                answer = (self._classify(exc) or exc) if isinstance(exc, Exception) else exc
                group.committed.set_exception(answer)
                group.committed.exception()  # retrieved: members that were cancelled never will
                if not isinstance(exc, Exception):
                    raise
            else:
                group.committed.set_result(None)
                if self._on_commit is not None:
                    self._on_commit()

    async def _begin_immediate(self) -> None:
        """Take SQLite's write lock without blocking the event loop: the writer never waits
        inside SQLite (busy timeout 0), it retries here while another process holds the lock."""
        deadline = time.monotonic() + WRITE_LOCK_TIMEOUT
        delay = 0.001
        while True:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_locked(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
