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
import functools
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import Dialect, Engine, Result, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.sql import Executable

from openxp.store.errors import StorageFull, StorageReadOnly, StorageUnavailable, UnstorableText

log = logging.getLogger("openxp.store")

# How long one write may wait for another process's write lock before failing.
WRITE_LOCK_TIMEOUT = 30.0
# Group commit on SQLite: a group is committed once a turn of the event loop brings no
# new writer, after this many turns, or at this many writers, whichever comes first.
MAX_GROUP_WAIT_HOPS = 8
MAX_GROUP_MEMBERS = 64
# The background checkpoint (SQLite): after commits, at most every CHECKPOINT_PAUSE seconds,
# and every CHECKPOINT_INTERVAL seconds regardless.
CHECKPOINT_PAUSE = 0.05
CHECKPOINT_INTERVAL = 5.0
# Readers may, rarely, meet a lock (WAL recovery); they wait this long (ms) in place.
READ_BUSY_TIMEOUT_MS = 200
# PostgreSQL: how long a new connection, a wait for a pooled one, and one statement may take
# before the request is answered 503 (a host that stopped answering must not hang requests).
CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0


class Lookup(Protocol):
    """What a single look-up needs: a ``Connection`` or the ``Database`` itself."""

    async def fetch_one(self, sql: str, *args: Any) -> Any: ...


class Connection(Protocol):
    """What repositories may use of a connection.

    ``execute`` takes SQLAlchemy Core. The hot paths (token grants, the bearer
    check, statement ingest) use plain SQL instead, with ``$1``-style
    parameters on both databases: SQLAlchemy's per-statement work cost ~20x
    the database's own time for a primary-key look-up (docs/benchmarks.md).
    Rows from plain SQL are read by column name (``row["scope"]``).
    """

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]: ...

    async def fetch_one(self, sql: str, *args: Any) -> Any: ...

    async def fetch_all(self, sql: str, *args: Any) -> list[Any]: ...

    async def run(self, sql: str, *args: Any) -> None: ...

    async def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


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


def refuse_unstorable(values: Sequence[Any]) -> None:
    """Raise ``UnstorableText`` if a text parameter holds what the database cannot store.

    Every value bound to SQL passes here (plain SQL and Core alike), so no entry point
    needs its own check for NUL or lone surrogates: headers, Basic credentials, form and
    JSON fields and query parameters all reach the database through this one door."""
    for value in values:
        kind = value.__class__
        if kind is str:
            if "\x00" in value or (not value.isascii() and _unencodable(value)):
                raise UnstorableText()
        elif kind is list or kind is tuple:  # an array parameter (``= ANY($1)``)
            refuse_unstorable(value)


def _unencodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _refuse_unstorable_rows(rows: Sequence[Sequence[Any]]) -> None:
    for row in rows:
        refuse_unstorable(row)


def _check_core_parameters(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """SQLAlchemy Core's hook before the driver runs a statement: the same check on its
    bound parameters (a tuple, a dict, or a list of either for executemany)."""
    for row in parameters if executemany else (parameters,):
        if isinstance(row, dict):
            refuse_unstorable(list(row.values()))
        elif isinstance(row, list | tuple):
            refuse_unstorable(row)
        elif row is not None:
            # SQLAlchemy's batched INSERT ... RETURNING ("insertmanyvalues") hands over one flat
            # parameter list while still flagged executemany: each item is a value, not a row.
            refuse_unstorable((row,))


_NUMBERED = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=256)
def _qmark(sql: str) -> str:
    """``$1`` (asyncpg) -> ``?1`` (SQLite): one spelling of plain SQL for both databases."""
    return _NUMBERED.sub(r"?\1", sql)


def _sqlite_connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return raw


class _SqliteConnection:
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
        return cursor.execute(_qmark(sql), args).fetchone()

    async def fetch_all(self, sql: str, *args: Any) -> list[Any]:
        refuse_unstorable(args)
        cursor = self._raw.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(_qmark(sql), args).fetchall()

    async def run(self, sql: str, *args: Any) -> None:
        refuse_unstorable(args)
        self._raw.execute(_qmark(sql), args)

    async def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        _refuse_unstorable_rows(rows)
        self._raw.executemany(_qmark(sql), rows)

    def close(self) -> None:
        # After our COMMIT or ROLLBACK: SQLAlchemy's reset-on-close then finds no transaction.
        if self._core is not None:
            self._core.close()
            self._core = None


class _SqliteThreadConnection:
    """``Database.bounded_read`` on SQLite: each statement runs in a worker thread."""

    def __init__(self, db: Database, seconds: float) -> None:
        self._db = db
        self._seconds = seconds

    @property
    def dialect(self) -> Dialect:
        return self._db._reader_engine.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        def work(engine: Engine) -> Any:
            with engine.connect() as core:
                result = core.execute(statement, parameters)
                return result.freeze() if result.returns_rows else None

        frozen = await asyncio.to_thread(self._db._run_bounded, self._seconds, work)
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
                return list(cursor.execute(_qmark(sql), args).fetchall())
            finally:
                raw.close()

        return await asyncio.to_thread(self._db._run_bounded, self._seconds, work)

    async def run(self, sql: str, *args: Any) -> None:
        raise ValueError("bounded reads do not write")

    async def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise ValueError("bounded reads do not write")


class _PostgresConnection:
    """A pooled SQLAlchemy connection in autocommit mode; transactions are asyncpg's own
    (``Database.write``), so Core statements and plain SQL share them."""

    def __init__(self, core: AsyncConnection, raw: Any) -> None:
        self._core = core
        self._raw = raw

    @property
    def dialect(self) -> Dialect:
        return self._core.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        return await self._core.execute(statement, parameters)

    async def fetch_one(self, sql: str, *args: Any) -> Any:
        refuse_unstorable(args)
        return await self._raw.fetchrow(sql, *args)

    async def fetch_all(self, sql: str, *args: Any) -> list[Any]:
        refuse_unstorable(args)
        return list(await self._raw.fetch(sql, *args))

    async def run(self, sql: str, *args: Any) -> None:
        refuse_unstorable(args)
        await self._raw.execute(sql, *args)

    async def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        _refuse_unstorable_rows(rows)
        await self._raw.executemany(sql, rows)


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


def _sqlite_engine(url: str, raw: sqlite3.Connection) -> Engine:
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
    event.listen(engine, "before_cursor_execute", _check_core_parameters)
    return engine


class _Checkpointer:
    """Copies the WAL back into the database file on a thread of its own.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, on the
    event loop, and includes an fsync: measured, it took a 100-statement commit from 1.6 ms
    to 4.4 ms on average. Here the writer's automatic checkpoint is off and this thread runs
    a PASSIVE checkpoint (never blocks writers or readers) after commits, while the event
    loop goes on (sqlite3 releases the GIL while SQLite works)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="openxp-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = _sqlite_connect(self._path, READ_BUSY_TIMEOUT_MS)
        try:
            while not self._stopping:
                self._wake.wait(timeout=CHECKPOINT_INTERVAL)
                self._wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    log.warning("SQLite checkpoint failed; will retry", exc_info=True)
                time.sleep(CHECKPOINT_PAUSE)  # at most one checkpoint per pause, however busy
        finally:
            conn.close()


@dataclass
class _CommitGroup:
    committed: asyncio.Future[None]
    members: int = 0
    committer: asyncio.Task[None] | None = None


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc).lower() or "busy" in str(exc).lower()


# SQLite's primary result codes (the low byte of sqlite_errorcode).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26
# PostgreSQL SQLSTATEs (besides classes 08 and 57, connection and operator intervention).
_PG_DISK_FULL, _PG_OUT_OF_MEMORY, _PG_TOO_MANY_CONNECTIONS, _PG_READ_ONLY = "53100", "53200", "53300", "25006"


def storage_trouble(exc: BaseException, sqlite_file: Path | None = None) -> StorageUnavailable | None:
    """The error the request should be answered with when ``exc`` (or what caused it) means
    the database cannot serve right now, rather than a fault of the request or of openxp:
    PostgreSQL down, restarting or unreachable, a statement timed out, SQLite's disk full or
    read-only. ``None`` for anything else, which stays the 500 it is."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        seen += 1
        if isinstance(current, StorageUnavailable):
            return current
        found = _classify_one(current, sqlite_file)
        if found is not None:
            return found
        orig = getattr(current, "orig", None) if isinstance(current, sa_exc.DBAPIError) else None
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return None


def _classify_one(exc: BaseException, sqlite_file: Path | None) -> StorageUnavailable | None:
    if isinstance(exc, sqlite3.Error):
        primary = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # the primary result code
        if primary == _SQLITE_FULL:
            return StorageFull()
        if primary == _SQLITE_READONLY:
            return StorageReadOnly()
        if primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN):
            return _disk_state(sqlite_file)
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StorageUnavailable("the database is busy; try again shortly")
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            log.error("the SQLite database reports corruption: %s", exc)
            return StorageUnavailable("the database cannot be read")
        return None
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled PostgreSQL connection came free in time
        return StorageUnavailable("the database is overloaded; try again shortly")
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return StorageUnavailable()
    module = type(exc).__module__
    if module.startswith("asyncpg"):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        if sqlstate == _PG_DISK_FULL:
            return StorageFull()
        if sqlstate == _PG_READ_ONLY:
            return StorageReadOnly()
        if sqlstate[:2] in ("08", "57") or sqlstate in (_PG_OUT_OF_MEMORY, _PG_TOO_MANY_CONNECTIONS):
            return StorageUnavailable()
        if type(exc).__name__ in ("InterfaceError", "ConnectionDoesNotExistError") and "closed" in str(exc):
            return StorageUnavailable()
    return None


def _disk_state(sqlite_file: Path | None) -> StorageUnavailable:
    """SQLite says only "disk I/O error"; the filesystem says why."""
    if sqlite_file is not None:
        try:
            stat = os.statvfs(sqlite_file.parent)
        except OSError:
            return StorageUnavailable("the database file cannot be reached")
        if stat.f_flag & os.ST_RDONLY:
            return StorageReadOnly()
        if stat.f_bavail == 0:
            return StorageFull()
    return StorageUnavailable("the database file cannot be read or written")


def probe_writable(url: str) -> None:
    """Raise ``StorageUnavailable`` (with a message for the operator) unless the SQLite
    database named by ``url`` can be written: checked at start-up, since a worker that
    cannot open it would otherwise fail on every request. PostgreSQL: nothing to check."""
    path = sqlite_path(url)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = sqlite3.connect(path, isolation_level=None, timeout=1)
        try:
            # A read-only file still grants the write lock; only a write shows it (rolled back).
            probe.execute("BEGIN IMMEDIATE")
            version = int(probe.execute("PRAGMA user_version").fetchone()[0])
            probe.execute(f"PRAGMA user_version = {version}")
            probe.execute("ROLLBACK")
        finally:
            probe.close()
    except (OSError, sqlite3.Error) as exc:
        trouble = storage_trouble(exc, path) if isinstance(exc, sqlite3.Error) else None
        if isinstance(exc, sqlite3.OperationalError) and _is_locked(exc):
            return  # another process is writing: then it is writable
        kind = "full" if isinstance(trouble, StorageFull) else "read-only or not writable"
        refusal: type[StorageUnavailable] = type(trouble) if trouble is not None else StorageReadOnly
        raise refusal(
            f"the database {path} is {kind} ({exc}); openxp must be able to write it and the "
            "files beside it (-wal, -shm): check the file's and its folder's owner, permissions and mount"
        ) from exc


class Database:
    """One per process. On SQLite: one writer connection (writes are serialised per
    process anyway) and one reader connection, both used inline; WAL lets the reader
    and other processes read while a write is under way. On PostgreSQL: a pool."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self._async: AsyncEngine | None = None
        self._sqlite_file: Path | None = None
        if self.is_sqlite:
            path = sqlite_path(url)
            self._sqlite_file = path
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            target = str(path) if path is not None else ":memory:"
            # The writer never waits inside SQLite: it takes the lock with BEGIN IMMEDIATE,
            # retried on the event loop (_begin_immediate), and then nothing else can block it.
            self._writer = _sqlite_connect(target, 0)
            self._checkpointer: _Checkpointer | None = None
            if path is not None:
                self._writer.execute("PRAGMA wal_autocheckpoint=0")
                self._checkpointer = _Checkpointer(target)
            self._reader = _sqlite_connect(target, READ_BUSY_TIMEOUT_MS) if path is not None else self._writer
            self._target = target
            self._bounded: tuple[sqlite3.Connection, Engine] | None = None
            self._bounded_lock = threading.Lock()
            self._writer_engine = _sqlite_engine(url, self._writer)
            self._reader_engine = _sqlite_engine(url, self._reader)
            self._write_lock = asyncio.Lock()
            self._group: _CommitGroup | None = None
        else:
            self._pool_size = pool_size
            self._lookups: Any = None
            self._lookup_lock = asyncio.Lock()
            self._async = create_async_engine(
                async_url(url),
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=False,
                pool_timeout=POOL_TIMEOUT,
                isolation_level="AUTOCOMMIT",
                connect_args={"timeout": CONNECT_TIMEOUT, "command_timeout": COMMAND_TIMEOUT},
            )
            event.listen(self._async.sync_engine, "before_cursor_execute", _check_core_parameters)

    def _unavailable(self, exc: BaseException) -> StorageUnavailable | None:
        return storage_trouble(exc, self._sqlite_file)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """Look-ups. Each statement sees the latest committed data (autocommit): a read that
        needs several statements to agree takes ``write()`` instead."""
        if self._async is None:
            conn = _SqliteConnection(self._reader, self._reader_engine)
            try:
                yield conn
            except StorageUnavailable:
                raise
            except Exception as exc:
                trouble = self._unavailable(exc)
                if trouble is None:
                    raise
                raise trouble from exc
            finally:
                conn.close()
            return
        try:
            async with self._async.connect() as core:
                try:
                    yield _PostgresConnection(core, await _driver_connection(core))
                except Exception as exc:
                    await _discard_if_broken(core, exc)
                    raise
        except StorageUnavailable:
            raise
        except Exception as exc:
            trouble = self._unavailable(exc)
            if trouble is None:
                raise
            raise trouble from exc

    @asynccontextmanager
    async def bounded_read(self, seconds: float) -> AsyncIterator[Connection]:
        """A read whose statements are stopped after ``seconds`` (``QueryTimeout``): for queries
        whose cost the caller's input decides. PostgreSQL: ``statement_timeout`` in a read
        transaction of its own. SQLite: on a connection of its own, in a worker thread (SQLite
        lets go of the GIL while it works, so the event loop keeps serving other requests), with
        a progress handler that interrupts the statement at the deadline."""
        from openxp.store.errors import QueryTimeout

        if self._async is None and self._target == ":memory:":
            async with self.read() as conn:  # nothing else can open an in-memory database
                yield conn
            return
        if self._async is None:
            conn = _SqliteThreadConnection(self, seconds)
            try:
                yield conn
            except DBAPIError as exc:
                if isinstance(exc.orig, sqlite3.OperationalError) and "interrupted" in str(exc.orig):
                    raise QueryTimeout(seconds) from None
                raise
            return
        async with self._async.connect() as core:
            raw = await _driver_connection(core)
            transaction = raw.transaction(readonly=True)
            await transaction.start()
            try:
                await raw.execute(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")
                yield _PostgresConnection(core, raw)
            except DBAPIError as exc:
                await transaction.rollback()
                if getattr(exc.orig, "sqlstate", None) == "57014" or "statement timeout" in str(exc.orig):
                    raise QueryTimeout(seconds) from None
                raise
            except BaseException:
                await transaction.rollback()
                raise
            else:
                await transaction.rollback()  # read only: nothing to commit

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """A transaction: committed when the block ends, rolled back if it raises. A database
        that cannot serve (down, full, read-only) raises ``StorageUnavailable``."""
        if self._async is not None:
            try:
                async with self._async.connect() as core:
                    try:
                        raw = await _driver_connection(core)
                        transaction = raw.transaction()
                        await transaction.start()
                        try:
                            yield _PostgresConnection(core, raw)
                        except BaseException:
                            try:
                                await transaction.rollback()
                            except Exception:
                                # A connection that cannot roll back is gone; the block's own error is the answer.
                                await core.invalidate()
                            raise
                        await transaction.commit()
                    except Exception as exc:
                        await _discard_if_broken(core, exc)
                        raise
            except StorageUnavailable:
                raise
            except Exception as exc:
                trouble = self._unavailable(exc)
                if trouble is None:
                    raise
                raise trouble from exc
            return
        try:
            async with self._write_lock:
                group = self._group
                if group is not None and not self._writer.in_transaction:
                    # Belt and braces: a group whose transaction SQLite ended is never joined.
                    self._lose_group(group, StorageUnavailable("the transaction was lost; nothing was written"))
                    group = None
                if group is None:
                    group = await self._open_group()
                group.members += 1
                self._writer.execute("SAVEPOINT member")
                conn = _SqliteConnection(self._writer, self._writer_engine)
                try:
                    yield conn
                    if not self._writer.in_transaction:
                        # The block swallowed an error after which SQLite rolled everything back.
                        raise StorageUnavailable("the transaction was lost; nothing was written")
                except BaseException as exc:
                    if self._writer.in_transaction:
                        self._writer.execute("ROLLBACK TO member")
                        self._writer.execute("RELEASE member")
                    else:
                        # SQLite rolled the whole transaction back itself (SQLITE_FULL, SQLITE_IOERR,
                        # ...): the members already done with it lost their rows too. They are told so,
                        # and the next writer begins a transaction of its own instead of running on
                        # in autocommit, where each savepoint would commit alone.
                        lost = self._unavailable(exc) if isinstance(exc, Exception) else None
                        self._lose_group(group, lost or StorageUnavailable("the transaction was lost"))
                    raise
                else:
                    self._writer.execute("RELEASE member")
                finally:
                    conn.close()
            # Answer only once it is durable: a claimed code or an issued token is real only then.
            await asyncio.shield(group.committed)
        except StorageUnavailable:
            raise
        except Exception as exc:
            trouble = self._unavailable(exc)
            if trouble is None:
                raise
            raise trouble from exc

    def _lose_group(self, group: _CommitGroup, error: Exception) -> None:
        """The group's transaction is gone: every member still waiting for its commit fails."""
        if self._group is group:
            self._group = None
        if not group.committed.done():
            group.committed.set_exception(error)
            group.committed.exception()  # retrieved: members that were cancelled never will

    async def _open_group(self) -> _CommitGroup:
        """Group commit: writes that arrive while one is under way join its transaction, each
        in its own savepoint (so one failing undoes only itself), and one COMMIT ends them
        all. A commit costs more than a token exchange's statements (docs/benchmarks.md)."""
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
        async with self._write_lock:
            if group.committed.done():
                return  # lost (_lose_group): any transaction open now is a later group's
            self._group = None
            try:
                self._writer.execute("COMMIT")
            except BaseException as exc:
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                answer = (self._unavailable(exc) or exc) if isinstance(exc, Exception) else exc
                group.committed.set_exception(answer)
                group.committed.exception()  # retrieved: members that were cancelled never will
                if not isinstance(exc, Exception):
                    raise
            else:
                group.committed.set_result(None)
                if self._checkpointer is not None:
                    self._checkpointer.nudge()

    async def _begin_immediate(self) -> None:
        """Take SQLite's write lock without blocking the event loop."""
        deadline = time.monotonic() + WRITE_LOCK_TIMEOUT
        delay = 0.001
        while True:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def fetch_one(self, sql: str, *args: Any) -> Any:
        """One look-up outside any transaction, with nothing to set up around it: the
        bearer check's single indexed read."""
        refuse_unstorable(args)
        try:
            if self._async is None:
                cursor = self._reader.cursor()
                cursor.row_factory = sqlite3.Row
                return cursor.execute(_qmark(sql), args).fetchone()
            pool = self._lookups if self._lookups is not None else await self._lookup_pool()
            return await pool.fetchrow(sql, *args)
        except Exception as exc:
            trouble = self._unavailable(exc)
            if trouble is None:
                raise
            raise trouble from exc

    async def _lookup_pool(self) -> Any:
        """A small asyncpg pool of its own for single look-ups: checking a connection out of
        SQLAlchemy's pool costs three greenlet switches, more than the look-up itself."""
        import asyncpg

        async with self._lookup_lock:
            if self._lookups is None:
                dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
                self._lookups = await asyncpg.create_pool(
                    dsn,
                    min_size=1,
                    max_size=self._pool_size,
                    timeout=CONNECT_TIMEOUT,
                    command_timeout=COMMAND_TIMEOUT,
                )
        return self._lookups

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.fetch_one("SELECT 1")
        except Exception:
            return False
        return True

    def _run_bounded(self, seconds: float, work: Any) -> Any:
        """In a worker thread: ``work(engine)`` on the bounded-read connection, one at a time,
        each statement stopped ``seconds`` after it starts."""
        with self._bounded_lock:
            deadline = time.monotonic() + seconds
            if self._bounded is None:
                raw = _sqlite_connect(self._target, READ_BUSY_TIMEOUT_MS)
                self._bounded = (raw, _sqlite_engine(self.url, raw))
            raw, engine = self._bounded
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                return work(engine)
            finally:
                raw.set_progress_handler(None, 0)

    async def dispose(self) -> None:
        if self._async is not None:
            if self._lookups is not None:
                await self._lookups.close()
            await self._async.dispose()
            return
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._writer_engine.dispose()
        self._reader_engine.dispose()
        self._reader.close()
        self._writer.close()
        with self._bounded_lock:
            if self._bounded is not None:
                self._bounded[1].dispose()
                self._bounded[0].close()
                self._bounded = None


async def _discard_if_broken(core: AsyncConnection, exc: BaseException) -> None:
    """A connection that failed because the server went away is not returned to the pool:
    the next request gets a new one (and, while the server is down, a quick 503)."""
    if storage_trouble(exc) is not None and not core.invalidated:
        try:
            await core.invalidate()
        except Exception:
            log.debug("invalidating a broken connection failed", exc_info=True)


async def _driver_connection(core: AsyncConnection) -> Any:
    """asyncpg's own connection under a pooled SQLAlchemy connection."""
    fairy = await core.get_raw_connection()
    return fairy.driver_connection


def null_pool_engine(url: str) -> AsyncEngine:
    """A short-lived engine for one-off work (migrations)."""
    return create_async_engine(async_url(url), poolclass=NullPool)
