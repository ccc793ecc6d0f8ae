"""Concurrent writes that succeed and fail together.

On SQLite, writes that arrive together share one transaction and one commit,
each in its own savepoint (openxp/store/db.py); on PostgreSQL each has its
own transaction. Either way, a request that fails must take back only its own
rows, and one that succeeds must be stored once it is answered.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.server import Server
from tests.xapi.lrs import VERSION, basic, new_id, statement

ROUNDS = 3
WRITERS = 24


def _post(server: Server, body: object) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/xapi/statements",
        json=body,
        auth=basic(server.apikeys["KA"]),
        headers=VERSION,
        timeout=60,
    )


def test_failing_writers_take_back_only_their_own_rows(server: Server) -> None:
    for _ in range(ROUNDS):
        taken = new_id()
        assert _post(server, statement(id=taken)).status_code == 200
        # Even writers: a batch of two new statements. Odd writers: a new statement, then a
        # conflicting one (an existing id with other content), so the whole batch is refused,
        # while the transaction it ran in may hold the other writers' rows.
        batches = []
        for i in range(WRITERS):
            first = statement(id=new_id())
            second = statement(id=new_id()) if i % 2 == 0 else statement(id=taken, verb={"id": "http://x.test/other"})
            batches.append([first, second])
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            answers = list(pool.map(lambda batch: _post(server, batch), batches))
        for i, (batch, answer) in enumerate(zip(batches, answers, strict=True)):
            expected = 200 if i % 2 == 0 else 409
            assert answer.status_code == expected, (i, answer.status_code, answer.text)
            for item in batch:
                if item["id"] == taken:
                    continue
                found = httpx.get(
                    f"{server.base_url}/xapi/statements",
                    params={"statementId": item["id"]},
                    auth=basic(server.apikeys["KA"]),
                    headers=VERSION,
                    timeout=30,
                )
                # Stored when the batch was accepted, absent when it was refused.
                assert found.status_code == (200 if expected == 200 else 404), (i, item["id"], found.text)
