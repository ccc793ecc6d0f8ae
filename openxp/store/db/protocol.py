"""What repositories may use of a database connection (the one contract every backend keeps)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.engine import Dialect, Result
from sqlalchemy.sql import Executable


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


def now() -> float:
    return time.time()
