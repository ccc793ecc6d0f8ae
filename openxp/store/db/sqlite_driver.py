"""SQLite through the standard ``sqlite3`` driver, used inline on the event loop's thread.

Plain SQL runs on the driver's connection; SQLAlchemy Core, when asked for, on a SQLAlchemy
engine over the *same* driver connection, so both share one transaction. Transactions are
begun and ended by openxp (``Database.write``, group commit), never by SQLAlchemy.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import Dialect, Engine, Result, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable

from openxp.store.db.unstorable import check_core_parameters, refuse_unstorable, refuse_unstorable_rows

# Readers may, rarely, meet a lock (WAL recovery); they wait this long (ms) in place.
READ_BUSY_TIMEOUT_MS = 200

_NUMBERED = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=256)
def qmark(sql: str) -> str:
    """``$1`` (asyncpg) -> ``?1`` (SQLite): one spelling of plain SQL for both databases."""
    return _NUMBERED.sub(r"?\1", sql)


def sqlite_connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return raw


@dataclass(frozen=True)
class SqliteHandle:
    """A driver connection and the SQLAlchemy engine over it: how every SQLite connection of
    openxp's is opened (the writer, the reader, the bounded reader)."""

    raw: sqlite3.Connection
    engine: Engine

    @classmethod
    def open(cls, target: str, url: str, busy_timeout_ms: int) -> SqliteHandle:
        raw = sqlite_connect(target, busy_timeout_ms)
        return cls(raw, sqlite_engine(url, raw))

    @classmethod
    def over(cls, raw: sqlite3.Connection, url: str) -> SqliteHandle:
        """Another engine over a connection already open (in-memory: the reader is the writer)."""
        return cls(raw, sqlite_engine(url, raw))

    def connection(self) -> SqliteConnection:
        return SqliteConnection(self.raw, self.engine)

    def close(self) -> None:
        self.engine.dispose()
        self.raw.close()


class SqliteConnection:
    """A SQLite connection used inline: plain SQL on the driver's connection, and SQLAlchemy
    Core, when asked for, on a SQLAlchemy connection over the *same* driver connection
    (made lazily: checking one out costs more than a look-up)."""

    def __init__(self, raw: sqlite3.Connection, engine: Engine) -> None:
        self._raw = raw
        self._engine = engine
        self._core: SyncConnection | None = None

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        if self._core is None:
            self._core = self._engine.connect()
        result = self._core.execute(statement, parameters)
        # Buffer rows, as the asyncio engine does, so a result outlives its connection.
        return result.freeze()() if result.returns_rows else result

    async def fetch_one(self, sql: str, *args: Any) -> Any:
        refuse_unstorable(args)
        cursor = self._raw.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(qmark(sql), args).fetchone()

    async def fetch_all(self, sql: str, *args: Any) -> list[Any]:
        refuse_unstorable(args)
        cursor = self._raw.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(qmark(sql), args).fetchall()

    async def run(self, sql: str, *args: Any) -> None:
        refuse_unstorable(args)
        self._raw.execute(qmark(sql), args)

    async def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        refuse_unstorable_rows(rows)
        self._raw.executemany(qmark(sql), rows)

    def close(self) -> None:
        # After our COMMIT or ROLLBACK: SQLAlchemy's reset-on-close then finds no transaction.
        if self._core is not None:
            self._core.close()
            self._core = None


class _NoTransactionControl:
    """The driver connection as SQLAlchemy sees it: its commit and rollback do nothing, since
    transactions (and group commits) are ``Database``'s to begin and end."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass  # closed by Database.dispose

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def sqlite_engine(url: str, raw: sqlite3.Connection) -> Engine:
    """SQLAlchemy over a connection openxp made itself (a StaticPool: one per engine)."""
    shared = _NoTransactionControl(raw)
    engine = create_engine(
        str(make_url(url).set(drivername="sqlite+pysqlite")),
        creator=lambda: shared,
        poolclass=StaticPool,
        pool_reset_on_return=None,
    )
    # SQLAlchemy's first connect initialises the dialect and then rolls back: done now,
    # before any transaction of ours could be open on the connection.
    with engine.connect():
        pass
    event.listen(engine, "before_cursor_execute", check_core_parameters)
    return engine
