"""PostgreSQL administration for the benchmark: throw-away databases on the shared server."""

from __future__ import annotations

import asyncio
import os
from typing import Any

POSTGRES_ADMIN_URL = os.environ.get("OPENXP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def pg_fetch(sql: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def pg_execute(url: str, sql: str) -> None:
    """One statement on its own connection (also used by bench.profile)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_admin(sql: str) -> None:
    await pg_execute(POSTGRES_ADMIN_URL, sql)


def pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        asyncio.run(pg_admin("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable: {exc}"
    return None


def pg_url(name: str) -> str:
    return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def pg_version() -> str:
    async def run() -> str:
        import asyncpg

        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except Exception:
        return "unavailable"
