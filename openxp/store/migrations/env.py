"""Alembic environment: runs migrations over the async engine openxp uses."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from openxp.store.db import null_pool_engine
from openxp.store.models import metadata

config = context.config
# Any fixed 64-bit number: PostgreSQL serialises concurrent `migrate` runs on it.
_ADVISORY_LOCK = 0x6F70656E7870


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
        context.run_migrations()


async def _main() -> None:
    engine = null_pool_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("openxp migrations run online only: use `openxp migrate`")
asyncio.run(_main())
