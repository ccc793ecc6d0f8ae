"""The work a database does for one query, to check that a query's cost follows its page and not
the size of the table: a count, not a time, so a busy machine cannot make the check flaky."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tests.support.server import Server


def compiled(server: Server, query: Any) -> str:
    """``query`` (SQLAlchemy Core) as SQL text with its values inlined, in the server's dialect."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql.dialect() if server.database_url.startswith("postgresql") else sqlite.dialect()
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def database_work(server: Server, sql: str) -> int:
    """SQLite virtual-machine steps (a progress handler called every 100 instructions), or the
    rows handled by all of PostgreSQL's plan nodes (EXPLAIN ANALYZE)."""
    if server.database_url.startswith("postgresql"):
        plan = server.sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)[0][0]
        plan = json.loads(plan) if isinstance(plan, str) else plan

        def rows(node: dict[str, Any]) -> int:
            own = int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1))
            return own + sum(rows(child) for child in node.get("Plans", []))

        return rows(plan[0]["Plan"])
    path = server.database_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    try:
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        conn.set_progress_handler(count, 100)
        conn.execute(sql).fetchall()
        return steps[0]
    finally:
        conn.close()
