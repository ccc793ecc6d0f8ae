"""SECURITY.md E-04 with a reuse grace: 20 simultaneous refreshes with one refresh token by its own
client, against the real 2-worker server (the barrier and racers of ``test_races.py``).

With a grace, the losers of the claim find the token spent inside the grace and get the winner's
answer: all twenty answers are 200 and identical, their tokens work, and the database holds exactly
one rotation (no second chain). The next refresh with the successor works. Without a grace the
same burst is reuse (``test_races.py``), which this file leaves as it was.
"""

from __future__ import annotations

import os

import httpx
import pytest

from tests.support.flow import Browser, api, exchange, new_code, refresh, refresh_body
from tests.support.provision import dedicated_client
from tests.support.records import digest
from tests.support.server import Server
from tests.test_races import race, racers, token_counts

__all__ = ["racers"]  # the fixture, shared with test_races.py

ITERATIONS = int(os.environ.get("OPENXP_RACE_ITERATIONS", "10"))


@pytest.fixture(scope="module")
def graced(server: Server) -> str:
    return dedicated_client(server, "race-grace", "--refresh-reuse-grace", "120")


@pytest.mark.parametrize("iteration", range(ITERATIONS))
def test_E04_concurrent_refresh_with_grace_one_chain(
    server: Server, admin_browser: Browser, racers: list[httpx.Client], graced: str, iteration: int
) -> None:
    """E-04 with a grace: twenty 200s carrying the same access and refresh token, no 5xx; both
    tokens work; one rotation in the database; the grant lives on and the successor rotates."""
    first = exchange(server, new_code(admin_browser, graced), graced)
    assert first.status_code == 200, first.text
    issued = first.json()
    responses = race(racers, refresh_body(server, issued["refresh_token"], graced))
    summary = sorted((r.status_code, r.json().get("error", "")) for r in responses)
    assert all(r.status_code == 200 for r in responses), summary
    answers = {(r.json()["access_token"], r.json()["refresh_token"], r.json()["scope"]) for r in responses}
    assert len(answers) == 1, answers
    access, refresh_token, _ = answers.pop()
    assert refresh_token != issued["refresh_token"]
    assert all(r.headers.get("cache-control") == "no-store" for r in responses)
    assert api(server, access).status_code == 200
    assert api(server, issued["access_token"]).status_code == 200
    grant_id = server.sql(
        "SELECT grant_id FROM refresh_tokens WHERE token_hash = :h", {"h": digest(issued["refresh_token"])}
    )[0][0]
    assert token_counts(server, grant_id) == (2, 2)  # the exchange's set and exactly one rotation
    assert server.sql("SELECT revoked_at FROM grants WHERE id = :g", {"g": grant_id})[0][0] is None
    following = refresh(server, refresh_token, graced)
    assert following.status_code == 200, following.text
    assert api(server, following.json()["access_token"]).status_code == 200
