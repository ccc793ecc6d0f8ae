"""The PostgreSQL backend of ``Database``: SQLAlchemy's asyncio engine over asyncpg.

The engine runs in autocommit mode and transactions are asyncpg's own, begun on the
driver connection under a pooled SQLAlchemy connection, so Core statements and plain SQL
share them. Connections, pool waits and statements are time-limited: a host that stopped
answering must not hang requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.sql import Executable

from openxp.store.db.protocol import Connection
from openxp.store.db.trouble import storage_trouble
from openxp.store.db.unstorable import check_core_parameters, refuse_unstorable, refuse_unstorable_rows
from openxp.store.db.urls import async_url, asyncpg_options, behind_pooler, connect_args, driver_dsn
from openxp.store.errors import QueryTimeout

log = logging.getLogger("openxp.store")

# How long a new connection, a wait for a pooled one, and one statement may take before the
# request is answered 503.
CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0


class PostgresConnection:
    """A pooled SQLAlchemy connection in autocommit mode; transactions are asyncpg's own
    (``Postgres.write``), so Core statements and plain SQL share them."""

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
        refuse_unstorable_rows(rows)
        await self._raw.executemany(sql, rows)


class Postgres:
    def __init__(self, url: str, pool_size: int) -> None:
        self._url = url
        self._pool_size = pool_size
        self._lookups: Any = None
        self._lookup_lock = asyncio.Lock()
        # Behind a pooler in transaction mode, a statement outside a transaction may be parsed on
        # one server connection and executed on another (asyncpg sends them as two exchanges), so
        # every statement runs inside a transaction, which pins one server connection.
        self._pin_to_transaction = behind_pooler(url)
        self._engine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=False,
            pool_timeout=POOL_TIMEOUT,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "timeout": CONNECT_TIMEOUT,
                "command_timeout": COMMAND_TIMEOUT,
                **connect_args(url),
            },
        )
        event.listen(self._engine.sync_engine, "before_cursor_execute", check_core_parameters)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        if self._pin_to_transaction:
            # Read committed, as autocommit: each statement still sees the latest committed data.
            async with self.write() as conn:
                yield conn
            return
        async with self._engine.connect() as core:
            try:
                yield PostgresConnection(core, await _driver_connection(core))
            except Exception as exc:
                await _discard_if_broken(core, exc)
                raise

    @asynccontextmanager
    async def bounded_read(self, seconds: float) -> AsyncIterator[Connection]:
        async with self._engine.connect() as core:
            raw = await _driver_connection(core)
            transaction = raw.transaction(readonly=True)
            await transaction.start()
            try:
                await raw.execute(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")
                yield PostgresConnection(core, raw)
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
        async with self._engine.connect() as core:
            try:
                raw = await _driver_connection(core)
                transaction = raw.transaction()
                await transaction.start()
                try:
                    yield PostgresConnection(core, raw)
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

    async def fetch_one(self, sql: str, *args: Any) -> Any:
        refuse_unstorable(args)
        pool = self._lookups if self._lookups is not None else await self._lookup_pool()
        if self._pin_to_transaction:
            async with pool.acquire() as raw, raw.transaction():
                return await raw.fetchrow(sql, *args)
        return await pool.fetchrow(sql, *args)

    async def _lookup_pool(self) -> Any:
        """A small asyncpg pool of its own for single look-ups: checking a connection out of
        SQLAlchemy's pool costs three greenlet switches, more than the look-up itself."""
        import asyncpg

        async with self._lookup_lock:
            if self._lookups is None:
                self._lookups = await asyncpg.create_pool(
                    driver_dsn(self._url),
                    **asyncpg_options(self._url),
                    min_size=1,
                    max_size=self._pool_size,
                    timeout=CONNECT_TIMEOUT,
                    command_timeout=COMMAND_TIMEOUT,
                )
        return self._lookups

    async def dispose(self) -> None:
        if self._lookups is not None:
            await self._lookups.close()
        await self._engine.dispose()


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
