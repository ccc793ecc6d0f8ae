"""openxp.store.db.Database.write on the real database named by OPENXP_TEST_DB.

Concurrent writers (which on SQLite share one transaction and one commit, each
in its own savepoint) succeed and fail independently; a writer is answered only
after its rows are committed; and on SQLite the commits reach the database file
itself (the background checkpoint), not only the write-ahead log.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openxp.store import tenants
from openxp.store.db import Database
from openxp.store.migrate import upgrade
from tests.support.server import backend, create_database, drop_database


class Refused(Exception):
    pass


@pytest.fixture()
def database_url(tmp_path: Path) -> Iterator[str]:
    url = create_database(tmp_path)
    upgrade(url)
    try:
        yield url
    finally:
        drop_database(url)


async def _names(db: Database) -> set[str]:
    async with db.read() as conn:
        return {t.name for t in await tenants.list_all(conn)}


def test_concurrent_writers_fail_alone_and_are_answered_after_their_commit(database_url: str) -> None:
    async def run() -> None:
        db = Database(database_url)
        try:

            async def writer(i: int) -> str:
                async with db.write() as conn:
                    await tenants.create(conn, f"w{i}")
                    if i % 3 == 0:
                        raise Refused(i)  # after its row was written
                # Answered: the row must be visible to a fresh reader now.
                assert f"w{i}" in await _names(db)
                return f"w{i}"

            results = await asyncio.gather(*(writer(i) for i in range(30)), return_exceptions=True)
            names = await _names(db)
            for i, result in enumerate(results):
                if i % 3 == 0:
                    assert isinstance(result, Refused) and f"w{i}" not in names
                else:
                    assert result == f"w{i}" and f"w{i}" in names
        finally:
            await db.dispose()

    asyncio.run(run())


@pytest.mark.skipif(backend() != "sqlite", reason="SQLite's write-ahead log and checkpoint")
def test_commits_reach_the_database_file(database_url: str, tmp_path: Path) -> None:
    path = Path(database_url.removeprefix("sqlite:///"))

    def in_main_file() -> set[str]:
        # The main file alone, without the -wal beside it: only what was checkpointed.
        copy = tmp_path / "main-file-only.sqlite3"
        shutil.copyfile(path, copy)
        conn = sqlite3.connect(copy)
        try:
            return {row[0] for row in conn.execute("SELECT name FROM tenants")}
        finally:
            conn.close()

    async def run() -> set[str]:
        db = Database(database_url)
        try:
            async with db.write() as conn:
                await tenants.create(conn, "checkpointed")
            deadline = time.monotonic() + 10
            while "checkpointed" not in (found := in_main_file()) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return found
        finally:
            await db.dispose()

    assert "checkpointed" in asyncio.run(run())
