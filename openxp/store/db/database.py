"""``Database``: the one handle per process, over the SQLite or the PostgreSQL backend.

It chooses the backend from the URL and turns every error that means the database cannot
serve right now into ``StorageUnavailable`` (``trouble.storage_trouble``), so each HTTP
surface answers 503 the same way whichever backend and entry point met it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from openxp.store.db.postgres import Postgres
from openxp.store.db.protocol import Connection
from openxp.store.db.sqlite import Sqlite
from openxp.store.db.trouble import storage_trouble
from openxp.store.db.urls import sqlite_path
from openxp.store.errors import StorageUnavailable

AfterCommit = Callable[[], Awaitable[None] | None]
_DETACHED: set[asyncio.Future[None]] = set()
# What to run once the current ``write()`` transaction has committed (``after_commit``).
_AFTER_COMMIT: ContextVar[list[AfterCommit] | None] = ContextVar("openxp_after_commit", default=None)


def after_commit(callback: AfterCommit) -> None:
    """Run ``callback`` when the ``write()`` transaction this code runs in has committed (never
    if it rolls back), before ``write()`` returns; a coroutine it answers is awaited there.
    Outside a ``write()``, at once (a coroutine then runs as a task of its own)."""
    pending = _AFTER_COMMIT.get()
    if pending is not None:
        pending.append(callback)
        return
    result = callback()
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        _DETACHED.add(task)
        task.add_done_callback(_DETACHED.discard)


class Database:
    """One per process. On SQLite: one writer connection (writes are serialised per
    process anyway, and committed in groups) and one reader connection, both used inline;
    WAL lets the reader and other processes read while a write is under way. On
    PostgreSQL: a pool."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self._sqlite_file: Path | None = sqlite_path(url) if self.is_sqlite else None
        self._backend: Sqlite | Postgres = (
            Sqlite(url, self._sqlite_file, self._unavailable) if self.is_sqlite else Postgres(url, pool_size)
        )

    def _unavailable(self, exc: BaseException) -> StorageUnavailable | None:
        return storage_trouble(exc, self._sqlite_file)

    @contextmanager
    def _storage_trouble_answered(self) -> Iterator[None]:
        """Re-raise an error that means the database cannot serve as ``StorageUnavailable``."""
        try:
            yield
        except StorageUnavailable:
            raise
        except Exception as exc:
            trouble = self._unavailable(exc)
            if trouble is None:
                raise
            raise trouble from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """Look-ups. Each statement sees the latest committed data (autocommit): a read that
        needs several statements to agree takes ``write()`` instead."""
        with self._storage_trouble_answered():
            async with self._backend.read() as conn:
                yield conn

    @asynccontextmanager
    async def bounded_read(self, seconds: float) -> AsyncIterator[Connection]:
        """A read whose statements are stopped after ``seconds`` (``QueryTimeout``): for queries
        whose cost the caller's input decides. PostgreSQL: ``statement_timeout`` in a read
        transaction of its own. SQLite: on a connection of its own, in a worker thread
        (``sqlite_bounded``)."""
        async with self._backend.bounded_read(seconds) as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """A transaction: committed when the block ends, rolled back if it raises, and left
        only once committed. A database that cannot serve (down, full, read-only) raises
        ``StorageUnavailable``."""
        pending: list[AfterCommit] = []
        token = _AFTER_COMMIT.set(pending)
        try:
            with self._storage_trouble_answered():
                async with self._backend.write() as conn:
                    yield conn
        finally:
            _AFTER_COMMIT.reset(token)
        for callback in pending:
            result = callback()
            if inspect.isawaitable(result):
                await result

    async def fetch_one(self, sql: str, *args: Any) -> Any:
        """One look-up outside any transaction, with nothing to set up around it: the
        bearer check's single indexed read."""
        with self._storage_trouble_answered():
            return await self._backend.fetch_one(sql, *args)

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.fetch_one("SELECT 1")
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self._backend.dispose()
