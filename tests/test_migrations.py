"""The schema changes only through migrations: the migrated database must equal
the models, and migrating again changes nothing."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from openxp.store.db import null_pool_engine
from openxp.store.migrate import current_head
from openxp.store.models import metadata
from tests.support.server import Server


def _compare(sync_conn: object) -> list[object]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
    return list(compare_metadata(context, metadata))


def _diff(url: str) -> list[object]:
    async def run() -> list[object]:
        engine = null_pool_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_migrated_schema_matches_the_models(server: Server) -> None:
    assert _diff(server.database_url) == []


def test_migrate_is_idempotent_and_at_head(server: Server) -> None:
    server.cli("migrate")
    server.cli("migrate")
    version = server.sql("SELECT version_num FROM alembic_version")
    assert [row[0] for row in version] == [current_head()]
    assert _diff(server.database_url) == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(server: Server) -> None:
    if not server.database_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    assert server.sql("PRAGMA journal_mode")[0][0] == "wal"

    async def foreign_keys() -> int:
        from openxp.store import Database

        db = Database(server.database_url, pool_size=1)
        try:
            async with db.read() as conn:
                return int((await conn.execute(text("PRAGMA foreign_keys"))).scalar_one())
        finally:
            await db.dispose()

    assert asyncio.run(foreign_keys()) == 1
