"""The SQLite backend of ``Database``: one writer and one reader connection per process,
both used inline on the event loop's thread.

A SQLite statement costs microseconds, while handing each one to a helper thread
(aiosqlite) cost ~80 us per hop and ~25 hops per token request (measured, see
docs/decisions.md). The one thing that could block is waiting for the write lock, which
group commit takes without a busy wait. WAL lets the reader and other processes read
while a write is under way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from openxp.store.db.checkpoint import Checkpointer
from openxp.store.db.group_commit import GroupCommit
from openxp.store.db.protocol import Connection
from openxp.store.db.sqlite_bounded import BoundedConnection, BoundedReader
from openxp.store.db.sqlite_driver import READ_BUSY_TIMEOUT_MS, SqliteHandle, qmark, sqlite_connect
from openxp.store.db.unstorable import refuse_unstorable
from openxp.store.errors import QueryTimeout, StorageUnavailable


class Sqlite:
    def __init__(
        self, url: str, path: Path | None, classify: Callable[[BaseException], StorageUnavailable | None]
    ) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        target = str(path) if path is not None else ":memory:"
        self._in_memory = path is None
        # The writer never waits inside SQLite: it takes the lock with BEGIN IMMEDIATE,
        # retried on the event loop (group commit), and then nothing else can block it.
        writer = sqlite_connect(target, 0)
        self._checkpointer: Checkpointer | None = None
        if path is not None:
            writer.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = Checkpointer(target)
        self._writer = SqliteHandle.over(writer, url)
        # In memory, nothing else can open the database: the reader is the writer.
        self._reader = (
            SqliteHandle.open(target, url, READ_BUSY_TIMEOUT_MS) if path is not None else SqliteHandle.over(writer, url)
        )
        self._bounded = BoundedReader(target, url, self._reader.engine.dialect)
        self._group_commit = GroupCommit(
            writer, classify, self._checkpointer.nudge if self._checkpointer is not None else None
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        conn = self._reader.connection()
        try:
            yield conn
        finally:
            conn.close()

    @asynccontextmanager
    async def bounded_read(self, seconds: float) -> AsyncIterator[Connection]:
        if self._in_memory:
            async with self.read() as conn:  # nothing else can open an in-memory database
                yield conn
            return
        try:
            yield BoundedConnection(self._bounded, seconds)
        except DBAPIError as exc:
            if isinstance(exc.orig, sqlite3.OperationalError) and "interrupted" in str(exc.orig):
                raise QueryTimeout(seconds) from None
            raise

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        async with self._group_commit.member():
            conn = self._writer.connection()
            try:
                yield conn
            finally:
                conn.close()

    async def fetch_one(self, sql: str, *args: Any) -> Any:
        refuse_unstorable(args)
        cursor = self._reader.raw.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(qmark(sql), args).fetchone()

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._writer.engine.dispose()
        self._reader.engine.dispose()
        self._reader.raw.close()
        self._writer.raw.close()
        self._bounded.close()
