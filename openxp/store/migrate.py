"""Apply the schema migrations (``openxp migrate``; ``serve`` calls it too)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    """Idempotent: applies only what is pending."""
    from openxp.store.db import sqlite_path

    path = sqlite_path(database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), "head")


def current_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def schema_state(database_url: str) -> tuple[str | None, int | None]:
    """The schema revision of an existing database and its number of tenants (None where there is
    no such table yet), read without changing anything (``openxp status``)."""
    import asyncio

    from sqlalchemy import func, inspect, select
    from sqlalchemy.engine import Connection as SyncConnection

    from openxp.store.db import null_pool_engine
    from openxp.store.models import tenants

    def read(conn: SyncConnection) -> tuple[str | None, int | None]:
        from alembic.runtime.migration import MigrationContext

        revision = MigrationContext.configure(conn).get_current_revision()
        if not inspect(conn).has_table("tenants"):
            return revision, None
        return revision, int(conn.execute(select(func.count()).select_from(tenants)).scalar_one())

    async def run() -> tuple[str | None, int | None]:
        engine = null_pool_engine(database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())
