"""openxp behind PgBouncer in transaction pooling mode (issue 14, scale-out), PostgreSQL pass.

Production deployments put PgBouncer in front of PostgreSQL; there, consecutive transactions of
one client connection run on different server connections, so named prepared statements, session
state and LISTEN do not carry over. The database URL says so (``?pgbouncer=true``,
``store/db/urls.py``). Here a private PgBouncer (Debian's package, a free port) stands in front of
the shared PostgreSQL, and the 20-way races (SECURITY.md C-04, E-04) run through it against a
2-worker server, unchanged. With CI=true a missing pgbouncer fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support import pgbouncer
from tests.support.flow import tokens
from tests.support.server import Server, backend, create_database, drop_database, make_server
from tests.support.statements import post_statements
from tests.test_races import racers
from tests.test_races import test_C04_concurrent_code_exchange_one_winner as test_C04_through_pgbouncer
from tests.test_races import test_E04_concurrent_refresh_one_winner as test_E04_through_pgbouncer

__all__ = ["racers", "test_C04_through_pgbouncer", "test_E04_through_pgbouncer"]

XAPI = {"X-Experience-API-Version": "1.0.3"}

pytestmark = pytest.mark.skipif(backend() != "postgresql", reason="PgBouncer fronts PostgreSQL (PostgreSQL pass)")


@pytest.fixture(scope="module")
def bouncer() -> Iterator[pgbouncer.Bouncer]:
    if not pgbouncer.available():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and Debian's pgbouncer is not installed (scripts/setup-env installs it)")
        pytest.skip("pgbouncer is not installed")
    started = pgbouncer.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def server(bouncer: pgbouncer.Bouncer) -> Iterator[Server]:
    """A 2-worker server whose every connection goes through the pooler (this module's own)."""
    direct = create_database(Path(tempfile.mkdtemp(prefix="openxp-pgb-db-")))
    srv = make_server(database_url=bouncer.url_for(direct) + "?pgbouncer=true")
    try:
        yield srv
    finally:
        srv.stop()
        drop_database(direct)
        shutil.rmtree(srv.data_dir, ignore_errors=True)


def pooler_transactions(bouncer: pgbouncer.Bouncer, database: str) -> int:
    """Transactions PgBouncer has passed on for ``database`` (its admin console's SHOW STATS)."""
    shown = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(bouncer.port), "-U", "postgres", "-At", "-F", "|", "pgbouncer",
         "-c", "SHOW STATS"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    for line in shown.splitlines():
        fields = line.split("|")
        if fields[0] == database:
            return int(fields[1])
    return 0


def test_requests_reach_postgresql_through_the_pooler(server: Server, bouncer: pgbouncer.Bouncer) -> None:
    database = server.database_url.rsplit("/", 1)[1].split("?")[0]
    before = pooler_transactions(bouncer, database)
    token = tokens(server, "c1")["access_token"]
    for _ in range(20):
        me = httpx.get(
            f"{server.base_url}/api/auth/me",
            headers={"authorization": f"Bearer {token}", "X-CXP-Tenant": "a"},
            timeout=30,
        )
        assert me.status_code == 200, me.text
    assert pooler_transactions(bouncer, database) > before
    assert "prepared statement" not in server.log()


def test_concurrent_reads_through_the_pooler_never_lose_their_statement(server: Server) -> None:
    """Reads outside a write run in a transaction of their own behind the pooler: asyncpg parses
    and executes in two exchanges, and between them PgBouncer (1.18, transaction mode) may hand
    the client another server connection, which knows nothing of the parsed statement. Sixteen
    concurrent clients make that switch happen (it did in the benchmark: 101 failed GETs)."""
    key = server.apikeys["KA"]
    agent = '{"mbox": "mailto:pooled@example.com"}'
    post_statements(
        server,
        "a",
        [{"actor": {"mbox": "mailto:pooled@example.com"}, "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
          "object": {"id": "http://example.com/pooled"}}],
    )  # fmt: skip

    def reads(_: int) -> list[int]:
        with httpx.Client(base_url=server.base_url, auth=(key["key"], key["secret"]), timeout=30) as client:
            return [
                client.get("/xapi/statements", params={"agent": agent}, headers=XAPI).status_code for _ in range(15)
            ]

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = [status for batch in pool.map(reads, range(16)) for status in batch]
    assert statuses == [200] * len(statuses)
    assert "prepared statement" not in server.log()
