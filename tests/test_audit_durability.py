"""What the audit log keeps when the process ends (issue 14, decision 2; SECURITY.md P-01).

Routine events leave the response path: they are queued and written in batches every
``audit_writer.INTERVAL`` seconds. So a normal exit (SIGTERM) loses none, and a kill -9 loses at
most the events of the last interval: anything older than that is stored. Security-relevant
events (a replayed code, a reused refresh token, a lockout engaging) are written in the
transaction of the change they record, before the answer goes out: a kill -9 right after the
answer keeps them. Both databases, a server of 2 workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from openxp.audit_writer import INTERVAL
from tests.support.flow import Browser, auth_params, exchange, get_code, hidden_fields, refresh, tokens
from tests.support.provision import dedicated_admin
from tests.support.server import Server, destroy_server, make_server

LOGIN_BUDGET = 3


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    server = make_server({"OPENXP_RATE_LOGIN_PER_ACCOUNT": str(LOGIN_BUDGET)})
    try:
        yield server
    finally:
        destroy_server(server)


def stored(server: Server, kind: str, since: float) -> list[tuple[str, str]]:
    """The (type, details) rows of ``kind`` stored since ``since``, read from the database itself."""
    rows = server.sql(
        "SELECT type, details FROM audit_events WHERE type = :kind AND at >= :since", {"kind": kind, "since": since}
    )
    return [(row[0], row[1]) for row in rows]


def restart_after_kill(server: Server) -> None:
    server.kill()
    server.start()


def test_a_reused_refresh_token_is_recorded_before_the_answer(server: Server) -> None:
    since = time.time()
    rt = tokens(server, "c1")["refresh_token"]
    assert refresh(server, rt).status_code == 200
    reused = refresh(server, rt)
    assert reused.status_code == 400
    restart_after_kill(server)
    assert len(stored(server, "refresh_reuse_detected", since)) == 1


def test_a_replayed_code_is_recorded_before_the_answer(server: Server) -> None:
    since = time.time()
    code = get_code(server, "c1")
    assert exchange(server, code).status_code == 200
    assert exchange(server, code).status_code == 400
    restart_after_kill(server)
    assert len(stored(server, "code_replay_detected", since)) == 1


def test_a_lockout_is_recorded_before_the_answer(server: Server) -> None:
    email = server.admins[dedicated_admin(server, "locked")]["email"]
    since = time.time()
    browser = Browser.open(server)
    try:
        answers = []
        for _ in range(LOGIN_BUDGET + 1):
            page = browser.http.get("/auth/oauth/authorize", params=auth_params(server, "c1"))
            answers.append(
                browser.http.post(
                    "/auth/login", data={**hidden_fields(page.text), "email": email, "password": "wrong-password"}
                ).status_code
            )
    finally:
        browser.close()
    assert answers[-1] == 429, answers
    restart_after_kill(server)
    assert len(stored(server, "login_throttled", since)) >= 1


def test_routine_events_older_than_the_interval_survive_kill_9(server: Server) -> None:
    since = time.time()
    issued = [tokens(server, "c1") for _ in range(5)]
    assert all("access_token" in t for t in issued)
    # The stated loss window is one interval; wait it out, with room for a slow machine.
    time.sleep(INTERVAL + 1.5)
    restart_after_kill(server)
    assert len(stored(server, "token_issued", since)) >= len(issued)


def test_a_normal_exit_writes_every_queued_event(server: Server) -> None:
    since = time.time()
    issued = [tokens(server, "c1") for _ in range(5)]
    assert all("access_token" in t for t in issued)
    server.stop()  # SIGTERM at once: the events are still queued
    server.start()
    assert len(stored(server, "token_issued", since)) >= len(issued)
