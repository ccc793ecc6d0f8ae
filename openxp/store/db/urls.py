"""The operator's database URL, read for what each part of the store needs of it.

``?pgbouncer=true`` on a PostgreSQL URL says that a pooler in transaction mode (PgBouncer before
1.21, or with ``max_prepared_statements = 0``) stands between openxp and the server: consecutive
transactions of one client connection may run on different server connections, so a named
prepared statement made in one is missing (or already exists) in the next. Then no statement is
prepared under a name that outlives its transaction: asyncpg's statement cache and SQLAlchemy's
are off, and each statement SQLAlchemy prepares gets a name of its own.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

POOLER_OPTION = "pgbouncer"


def behind_pooler(url: str) -> bool:
    value = make_url(url).query.get(POOLER_OPTION)
    return isinstance(value, str) and value.lower() in {"1", "true", "yes", "on"}


def _without_option(parsed: URL) -> URL:
    return parsed.difference_update_query([POOLER_OPTION])


def async_url(url: str) -> str:
    """Map the operator's plain SQLAlchemy URL onto the async drivers we ship."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in {"postgresql", "postgres"}:
        parsed = _without_option(parsed).set(drivername="postgresql+asyncpg")
        if behind_pooler(url):
            parsed = parsed.update_query_dict({"prepared_statement_cache_size": "0"})
        return parsed.render_as_string(hide_password=False)
    raise ValueError(f"unsupported database backend: {backend}")


def driver_dsn(url: str) -> str:
    """The URL as asyncpg itself takes it (the look-up pool, outside SQLAlchemy)."""
    parsed = _without_option(make_url(url)).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def asyncpg_options(url: str) -> dict[str, Any]:
    """Connect arguments for asyncpg that the URL asks for (behind a pooler: no statement cache)."""
    return {"statement_cache_size": 0} if behind_pooler(url) else {}


def connect_args(url: str) -> dict[str, Any]:
    """asyncpg connect arguments through SQLAlchemy that the URL asks for, beyond the URL itself."""
    if not behind_pooler(url):
        return {}
    # Unique names: SQLAlchemy's default counter restarts on each connection, and two client
    # connections share server connections behind the pooler.
    return {**asyncpg_options(url), "prepared_statement_name_func": lambda: f"__openxp_{secrets.token_hex(16)}__"}


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def null_pool_engine(url: str) -> AsyncEngine:
    """A short-lived engine for one-off work (migrations)."""
    return create_async_engine(async_url(url), poolclass=NullPool, connect_args=connect_args(url))
