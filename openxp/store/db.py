"""The database handle, and the two ways to use it.

``read()`` gives a connection for look-ups; ``write()`` a transaction. Both yield
a ``Connection``; the one method repositories use is ``await conn.execute(...)``.

PostgreSQL goes through SQLAlchemy's asyncio engine (asyncpg). SQLite runs
*inline*, on the event loop's thread, through the standard ``sqlite3`` driver: a
SQLite statement costs microseconds, while handing each one to a helper thread
(aiosqlite) cost ~80 us per hop and ~25 hops per token request (measured, see
docs/decisions.md). The one thing that could block is waiting for the write
lock, so a write transaction takes a per-process ``asyncio.Lock`` and then
``BEGIN IMMEDIATE`` without a busy wait, retrying after ``asyncio.sleep`` while
another process holds the lock. WAL readers never wait for writers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import Dialect, Engine, Result, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable

# How long one write may wait for another process's write lock before failing.
WRITE_LOCK_TIMEOUT = 30.0
# Readers may, rarely, meet a lock (WAL recovery); they wait this long (ms) in place.
READ_BUSY_TIMEOUT_MS = 200


class Connection(Protocol):
    """What repositories may use of a connection."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]: ...


def async_url(url: str) -> str:
    """Map the operator's plain SQLAlchemy URL onto the async drivers we ship."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database backend: {backend}")


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def now() -> float:
    return time.time()


class _InlineConnection:
    """A synchronous SQLite connection behind the async ``execute`` repositories call."""

    def __init__(self, conn: SyncConnection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        result = self._conn.execute(statement, parameters)
        # Buffer rows, as the asyncio engine does, so a result outlives its connection.
        return result.freeze()() if result.returns_rows else result


def _sqlite_engine(url: str, pool_size: int) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        str(make_url(url).set(drivername="sqlite+pysqlite")),
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"check_same_thread": False, "isolation_level": None},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: SyncConnection) -> None:
        # sqlite3's own implicit transactions are off (isolation_level None): we say BEGIN.
        mode = "IMMEDIATE" if conn.get_execution_options().get("openxp_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _is_locked(exc: OperationalError) -> bool:
    return "locked" in str(exc.orig).lower() or "busy" in str(exc.orig).lower()


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self._sqlite: Engine | None = None
        self._async: AsyncEngine | None = None
        if self.is_sqlite:
            self._sqlite = _sqlite_engine(url, pool_size)
            self._write_lock = asyncio.Lock()
        else:
            self._async = create_async_engine(
                async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False
            )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        if self._sqlite is not None:
            with self._sqlite.connect() as conn:
                yield _InlineConnection(conn)
            return
        assert self._async is not None
        async with self._async.connect() as aconn:
            yield aconn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        if self._sqlite is None:
            assert self._async is not None
            async with self._async.begin() as aconn:
                yield aconn
            return
        async with self._write_lock:
            with self._sqlite.connect() as conn:
                conn = conn.execution_options(openxp_write=True)
                await self._begin_immediate(conn)
                try:
                    yield _InlineConnection(conn)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()

    async def _begin_immediate(self, conn: SyncConnection) -> None:
        """Take SQLite's write lock without blocking the event loop."""
        deadline = time.monotonic() + WRITE_LOCK_TIMEOUT
        delay = 0.001
        # On the driver's connection: through SQLAlchemy this would autobegin.
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA busy_timeout=0")
        try:
            while True:
                try:
                    conn.begin()
                    return
                except OperationalError as exc:
                    if not _is_locked(exc) or time.monotonic() > deadline:
                        raise
                    conn.rollback()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
        finally:
            raw.execute(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        if self._sqlite is not None:
            self._sqlite.dispose()
        if self._async is not None:
            await self._async.dispose()


def null_pool_engine(url: str) -> AsyncEngine:
    """A short-lived engine for one-off work (migrations)."""
    return create_async_engine(async_url(url), poolclass=NullPool)
