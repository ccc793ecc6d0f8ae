"""SQLite group commit when SQLite itself rolls the whole transaction back.

Writes that arrive together share one transaction (openxp/store/db.py), each in its
own savepoint. SQLITE_FULL (and SQLITE_IOERR) during a statement can end the whole
transaction, taking the savepoints of members already finished with it. Every member
must then be told the truth: one whose rows are gone is told it failed, and one told it
succeeded has its rows stored. Driven on openxp's real SQLite connection, on a real
file in a full tmpfs (tests/support/disk.py).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest

from openxp.store import tenants
from openxp.store.db import Database
from openxp.store.errors import StorageFull
from openxp.store.migrate import upgrade
from tests.support.disk import fill, small_disk
from tests.support.server import backend

pytestmark = pytest.mark.skipif(backend() != "sqlite", reason="SQLite's group commit and SQLITE_FULL")

# More than SQLite's page cache (2 MiB by default) so that it spills into the WAL mid-transaction.
BIG_ROWS = 1200
BIG_ROW = 4000


async def _stored_names(db: Database) -> set[str]:
    async with db.read() as conn:
        return {t.name for t in await tenants.list_all(conn)}


def test_a_transaction_lost_to_a_full_disk_is_reported_to_every_member() -> None:
    with small_disk("6m") as disk:
        url = f"sqlite:///{disk / 'openxp.sqlite3'}"
        upgrade(url)

        async def run() -> None:
            db = Database(url)
            try:
                async with db.write() as conn:
                    await conn.run("CREATE TABLE bulk (v BLOB)")
                filler = fill(disk, leave=256 * 1024)

                async def small(name: str) -> str:
                    async with db.write() as conn:
                        await tenants.create(conn, name)
                    return name

                async def big() -> str:
                    async with db.write() as conn:
                        for _ in range(BIG_ROWS):
                            await conn.run("INSERT INTO bulk (v) VALUES ($1)", os.urandom(BIG_ROW))
                    return "big"

                # Together: they join one group; "before" finishes before the big one fills
                # the disk, "after" joins once SQLite has rolled the transaction back.
                names = ["before1", "before2", "big", "after1", "after2"]
                work = [small(n) if n != "big" else big() for n in names]
                outcomes = dict(zip(names, await asyncio.gather(*work, return_exceptions=True), strict=True))

                stored = await _stored_names(db)
                for name in names:
                    if name == "big":
                        continue
                    told_ok = outcomes[name] == name
                    assert told_ok == (name in stored), (name, outcomes[name], sorted(stored))
                    if not told_ok:
                        assert isinstance(outcomes[name], StorageFull), (name, outcomes[name])
                # The members that came after the loss had a transaction of their own.
                assert {"after1", "after2"} <= stored
                assert isinstance(outcomes["big"], StorageFull), outcomes["big"]

                # With room again, writes work and nothing is left half-done.
                filler.unlink()
                assert await small("later") == "later"
                assert "later" in await _stored_names(db)
            finally:
                await db.dispose()

        asyncio.run(run())
        check = sqlite3.connect(disk / "openxp.sqlite3")
        try:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            check.close()
