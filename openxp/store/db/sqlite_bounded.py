"""``Database.bounded_read`` on SQLite: statements stopped at a deadline, off the event loop.

A connection of its own, used in a worker thread (SQLite lets go of the GIL while it works,
so the event loop keeps serving other requests), with a progress handler that interrupts
the statement at the deadline; one bounded read runs at a time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.engine import Dialect, Engine, Result
from sqlalchemy.sql import Executable

from openxp.store.db.sqlite_driver import READ_BUSY_TIMEOUT_MS, SqliteHandle, qmark

T = TypeVar("T")


class BoundedReader:
    """The bounded-read connection, opened on first use."""

    def __init__(self, target: str, url: str, dialect: Dialect) -> None:
        self._target = target
        self._url = url
        self.dialect = dialect
        self._handle: SqliteHandle | None = None
        self._lock = threading.Lock()

    def run(self, seconds: float, work: Callable[[Engine], T]) -> T:
        """In a worker thread: ``work(engine)`` on the bounded-read connection, one at a time,
        each statement stopped ``seconds`` after it starts."""
        with self._lock:
            deadline = time.monotonic() + seconds
            if self._handle is None:
                self._handle = SqliteHandle.open(self._target, self._url, READ_BUSY_TIMEOUT_MS)
            raw = self._handle.raw
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                return work(self._handle.engine)
            finally:
                raw.set_progress_handler(None, 0)

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class BoundedConnection:
    """A ``Connection`` whose every statement runs through ``BoundedReader.run``."""

    def __init__(self, reader: BoundedReader, seconds: float) -> None:
        self._reader = reader
        self._seconds = seconds

    @property
    def dialect(self) -> Dialect:
        return self._reader.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        def work(engine: Engine) -> Any:
            with engine.connect() as core:
                result = core.execute(statement, parameters)
                return result.freeze() if result.returns_rows else None

        frozen = await asyncio.to_thread(self._reader.run, self._seconds, work)
        if frozen is None:
            raise ValueError("bounded reads run queries only")
        return frozen()

    async def fetch_one(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch_all(sql, *args)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, *args: Any) -> list[Any]:
        def work(engine: Engine) -> list[Any]:
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.row_factory = sqlite3.Row  # type: ignore[attr-defined]
                return list(cursor.execute(qmark(sql), args).fetchall())
            finally:
                raw.close()

        return await asyncio.to_thread(self._reader.run, self._seconds, work)

    async def run(self, sql: str, *args: Any) -> None:
        raise ValueError("bounded reads do not write")

    async def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise ValueError("bounded reads do not write")
