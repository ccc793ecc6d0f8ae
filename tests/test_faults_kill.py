"""kill -9 under load: nothing acknowledged is lost, nothing is stored twice.

Clients write statements with ids of their own (``PUT /xapi/statements?statementId=`` and
``POST`` batches with ids), retrying what got no answer. Meanwhile every process of
``openxp serve`` (the master and its workers) is killed with SIGKILL, several times, and
started again on the same database. Afterwards every statement that was answered 2xx is
there (GET by id), no statement id is stored twice, and the database opens cleanly
(SQLite: ``PRAGMA integrity_check`` is ``ok``). Both databases.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import Server, backend, drop_database, make_server
from tests.xapi.lrs import VERSION, basic, new_id, statement

KILLS = 3
WRITERS = 6
BATCH = 5
LOAD_BEFORE_KILL = (0.6, 1.5)  # seconds of load between a (re)start and the next kill
REQUEST_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def crash_server() -> Iterator[Server]:
    server = make_server(provision=False)
    server.tenants["a"] = server.cli_json("tenant", "create", "a")["name"]
    server.apikeys["KA"] = server.cli_json("apikey", "create", "--tenant", "a", "--name", "KA")
    try:
        yield server
    finally:
        server.stop()
        drop_database(server.database_url)
        shutil.rmtree(server.data_dir, ignore_errors=True)


class Load:
    """Writers that keep writing, each retrying a write until it is answered 2xx."""

    def __init__(self, server: Server) -> None:
        self.base = server.base_url
        self.auth = basic(server.apikeys["KA"])
        self.stop = threading.Event()
        self.acknowledged: set[str] = set()
        self.attempted: set[str] = set()
        self.unexpected: list[str] = []
        self.lock = threading.Lock()

    def writer(self, number: int) -> None:
        with httpx.Client(base_url=self.base, auth=self.auth, headers=VERSION, timeout=REQUEST_TIMEOUT) as http:
            while not self.stop.is_set():
                if number % 2 == 0:
                    ids = [new_id()]
                    body: Any = statement(id=ids[0])
                else:
                    ids = [new_id() for _ in range(BATCH)]
                    body = [statement(id=i) for i in ids]
                with self.lock:
                    self.attempted.update(ids)
                self._until_answered(http, ids, body)

    def _until_answered(self, http: httpx.Client, ids: list[str], body: Any) -> None:
        # After the stop, a write still unanswered is retried a little longer: a retry of a
        # write that did land must be answered as a success, not stored again.
        deadline = None
        while deadline is None or time.monotonic() < deadline:
            if self.stop.is_set() and deadline is None:
                deadline = time.monotonic() + 20
            try:
                if len(ids) == 1:
                    answer = http.put("/xapi/statements", params={"statementId": ids[0]}, json=body)
                else:
                    answer = http.post("/xapi/statements", json=body)
            except httpx.HTTPError:
                time.sleep(0.05)  # the server is down or died mid-request: try again
                continue
            if answer.status_code < 300:
                with self.lock:
                    self.acknowledged.update(ids)
                return
            if answer.status_code != 503:
                with self.lock:
                    self.unexpected.append(f"{answer.status_code} {answer.text[:200]}")
                return
            time.sleep(0.05)


def test_acknowledged_statements_survive_sigkill_of_every_process(crash_server: Server) -> None:
    server = crash_server
    load = Load(server)
    threads = [threading.Thread(target=load.writer, args=(n,), daemon=True) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(KILLS):
            time.sleep(random.uniform(*LOAD_BEFORE_KILL))
            server.kill()
            server.start()
        time.sleep(random.uniform(*LOAD_BEFORE_KILL))
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not load.unexpected, load.unexpected[:5]
    assert len(load.acknowledged) > WRITERS, "the load hardly ran; the test proves nothing"

    with httpx.Client(base_url=server.base_url, auth=load.auth, headers=VERSION, timeout=30) as http:
        found = {i: http.get("/xapi/statements", params={"statementId": i}).status_code for i in load.acknowledged}
    missing = sorted(i for i, status in found.items() if status != 200)
    print(f"kill -9 x{KILLS}: {len(load.acknowledged)} acknowledged of {len(load.attempted)} attempted")
    assert not missing, f"{len(missing)} acknowledged statements are gone, e.g. {missing[:3]}"

    twice = server.sql(
        "SELECT statement_id, count(*) FROM xapi_statements GROUP BY tenant_id, statement_id HAVING count(*) > 1"
    )
    assert not twice, twice[:5]
    stored = {row[0] for row in server.sql("SELECT statement_id FROM xapi_statements")}
    assert load.acknowledged <= stored <= load.attempted

    if backend() == "sqlite":
        server.stop()
        check = sqlite3.connect(Path(server.database_url.removeprefix("sqlite:///")))
        try:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            check.close()
