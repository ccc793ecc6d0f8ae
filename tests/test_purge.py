"""`openxp purge` removes what the server's own housekeeping removes (one routine for both),
launch credentials included, and reports how many rows of each kind it deleted.

A server of its own, whose launch credentials live one second (OPENXP_LAUNCH_TOKEN_TTL=1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import Server, destroy_server, make_server

ACTOR = {"objectType": "Agent", "mbox": "mailto:purge-learner@example.com"}


@pytest.fixture(scope="module")
def short_launch_server() -> Iterator[Server]:
    srv = make_server({"OPENXP_LAUNCH_TOKEN_TTL": "1"}, workers=1)
    try:
        yield srv
    finally:
        destroy_server(srv)


def credential_rows(server: Server, username: str) -> int:
    rows = server.sql("SELECT count(*) FROM short_lived_credentials WHERE username = :u", {"u": username})
    return int(rows[0][0])


def test_purge_deletes_expired_launch_credentials_and_reports_counts(short_launch_server: Server) -> None:
    """J-06 (housekeeping side): an expired launch credential is deleted by `openxp purge` (the
    routine `serve` runs every 10 minutes), a live short-lived credential is kept, and `--json` prints
    one object with the number of rows deleted per kind."""
    server = short_launch_server
    key = server.apikeys["KA"]
    launched = httpx.post(
        f"{server.base_url}/api/launch",
        auth=(key["key"], key["secret"]),
        json={"url": "https://content.example.com/a.html", "actor": ACTOR, "activity_id": "https://example.com/a"},
        timeout=30,
    )
    assert launched.status_code == 200, launched.text
    assert launched.json()["expires_in"] == 1
    expired_name = launched.json()["username"]
    live = httpx.post(
        f"{server.base_url}/api/auth/basic",
        auth=(key["key"], key["secret"]),
        json={"username": "purge-live", "ttlMins": 60},
        timeout=30,
    )
    assert live.status_code == 200, live.text
    assert credential_rows(server, expired_name) == 1

    # Wait (bounded) until the database itself holds the credential as expired.
    deadline = time.monotonic() + 10
    while (
        server.sql(
            "SELECT count(*) FROM short_lived_credentials WHERE username = :u AND expires_at < :t",
            {"u": expired_name, "t": time.time() - 0.2},
        )[0][0]
        == 0
    ):
        assert time.monotonic() < deadline
        time.sleep(0.3)

    result = server.cli("purge", "--grace", "0", "--json")
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    report = json.loads(lines[0])
    assert report["purged"]["short_lived_credentials"] == 1, report
    assert set(report["purged"]) >= {"authorization_codes", "access_tokens", "refresh_tokens", "sessions"}
    assert all(isinstance(n, int) and n >= 0 for n in report["purged"].values())
    assert credential_rows(server, expired_name) == 0
    assert credential_rows(server, "purge-live") == 1

    again = json.loads(server.cli("purge", "--grace", "0", "--json").stdout)
    assert again["purged"]["short_lived_credentials"] == 0
    default_grace = server.cli("purge", "--json")
    assert json.loads(default_grace.stdout)["purged"]["short_lived_credentials"] == 0
