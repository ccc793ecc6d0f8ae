"""openxp/store/db/group_commit.py on its own: a real SQLite file, concurrent writers.

What is acknowledged is committed and what is refused is not: a writer is answered only
once a fresh connection can read its row; a member that fails (an exception of its own, a
constraint the database refuses) takes back only its own rows; a member after which SQLite
has no transaction any more fails every member of its group still waiting, and the next
writers begin a new one. No Database, no server: the module alone, as the SQLite backend
drives it (tests/test_store_writes.py and tests/test_faults_group_commit.py drive it
through ``Database``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from openxp.store.db.group_commit import GroupCommit
from openxp.store.db.sqlite_driver import sqlite_connect
from openxp.store.errors import StorageUnavailable
from tests.support.server import backend

pytestmark = pytest.mark.skipif(backend() != "sqlite", reason="group commit is SQLite's")

WRITERS = 40


class Refused(Exception):
    pass


def _committed(path: Path) -> set[str]:
    """What a connection of its own reads: only committed rows."""
    reader = sqlite3.connect(path)
    try:
        return {name for (name,) in reader.execute("SELECT name FROM names")}
    finally:
        reader.close()


@pytest.fixture()
def path(tmp_path: Path) -> Path:
    path = tmp_path / "group.sqlite3"
    setup = sqlite_connect(str(path), 0)
    setup.execute("CREATE TABLE names (name TEXT PRIMARY KEY)")
    setup.execute("INSERT INTO names VALUES ('taken')")
    setup.close()
    return path


def test_what_is_acknowledged_is_committed_and_a_failing_member_takes_back_only_itself(path: Path) -> None:
    async def run() -> None:
        writer = sqlite_connect(str(path), 0)
        commits: list[int] = []
        group_commit = GroupCommit(writer, lambda exc: None, lambda: commits.append(1))
        try:

            async def write(i: int) -> str:
                name = f"w{i}"
                async with group_commit.member() as conn:
                    conn.execute("INSERT INTO names VALUES (?)", (name,))
                    if i % 5 == 1:
                        raise Refused(name)  # after its row was written
                    if i % 5 == 2:
                        conn.execute("INSERT INTO names VALUES ('taken')")  # refused by the database
                assert name in _committed(path), f"{name} was answered before its commit"
                return name

            outcomes = await asyncio.gather(*(write(i) for i in range(WRITERS)), return_exceptions=True)
            stored = _committed(path)
            for i, outcome in enumerate(outcomes):
                name = f"w{i}"
                if i % 5 == 1:
                    assert isinstance(outcome, Refused) and name not in stored, (name, outcome)
                elif i % 5 == 2:
                    assert isinstance(outcome, sqlite3.IntegrityError) and name not in stored, (name, outcome)
                else:
                    assert outcome == name and name in stored, (name, outcome)
            # Grouped: fewer commits than acknowledged writers.
            assert 1 <= len(commits) < len([o for o in outcomes if isinstance(o, str)])
            assert not writer.in_transaction
        finally:
            writer.close()

    asyncio.run(run())


def test_a_lost_transaction_fails_every_member_still_waiting_and_the_next_writers_begin_anew(path: Path) -> None:
    async def run() -> None:
        writer = sqlite_connect(str(path), 0)
        group_commit = GroupCommit(writer, lambda exc: None)
        try:

            async def write(name: str, *, end_transaction: bool = False) -> str:
                async with group_commit.member() as conn:
                    conn.execute("INSERT INTO names VALUES (?)", (name,))
                    if end_transaction:
                        # What SQLite does on SQLITE_FULL or SQLITE_IOERR: the whole transaction ends.
                        conn.execute("ROLLBACK")
                return name

            names = ["before1", "before2", "loser", "after1", "after2"]
            work = [write(n, end_transaction=n == "loser") for n in names]
            outcomes = dict(zip(names, await asyncio.gather(*work, return_exceptions=True), strict=True))
            stored = _committed(path)
            for name, outcome in outcomes.items():
                told_ok = outcome == name
                assert told_ok == (name in stored), (name, outcome, sorted(stored))
                if not told_ok:
                    assert isinstance(outcome, StorageUnavailable), (name, outcome)
            assert isinstance(outcomes["loser"], StorageUnavailable)
            assert not {"before1", "before2"} & stored  # their rows went with the transaction
            assert {"after1", "after2"} <= stored  # a transaction of their own, not autocommit

            assert await write("later") == "later"
            assert "later" in _committed(path)
        finally:
            writer.close()

    asyncio.run(run())
