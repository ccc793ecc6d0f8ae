"""SECURITY.md H-05: failed Basic attempts are throttled per key and per
address (429 + Retry-After), and the lock lifts by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from openxp import crypto
from tests.support.server import Server, destroy_server, make_server
from tests.xapi.lrs import VERSION

LOCKOUT = 2


@pytest.fixture(scope="module")
def tight() -> Iterator[Server]:
    srv = make_server(
        {"OPENXP_RATE_BASIC_PER_KEY": "3", "OPENXP_RATE_BASIC_PER_IP": "6", "OPENXP_RATE_LOCKOUT": str(LOCKOUT)},
        provision=False,
    )
    try:
        srv.cli("tenant", "create", "a")
        yield srv
    finally:
        destroy_server(srv)


def call(server: Server, key: str, secret: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/xapi/statements", params={"limit": "1"}, auth=(key, secret), headers=VERSION, timeout=30
    )


def test_H05_per_key_then_per_ip_lock_lifts(tight: Server) -> None:
    """H-05: 3 wrong secrets lock the key (429, Retry-After) for wrong secrets only: its right secret and
    another key still work; 6 failures lock the address (429 for everything from it); after the lockout the
    right secrets work again (no permanent lockout)."""
    k1 = tight.cli_json("apikey", "create", "--tenant", "a", "--name", "k1")
    k2 = tight.cli_json("apikey", "create", "--tenant", "a", "--name", "k2")
    for _ in range(2):
        assert call(tight, k1["key"], "wrong").status_code == 401
    locked = call(tight, k1["key"], "wrong")
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert call(tight, k1["key"], "wrong again").status_code == 429
    assert call(tight, k1["key"], k1["secret"]).status_code == 200
    assert call(tight, k2["key"], k2["secret"]).status_code == 200
    statuses = [call(tight, crypto.random_token(16), "wrong").status_code for _ in range(2)]
    assert statuses[-1] == 429, statuses
    assert call(tight, k2["key"], k2["secret"]).status_code == 429
    time.sleep(LOCKOUT + 1)
    assert call(tight, k1["key"], k1["secret"]).status_code == 200
    assert call(tight, k2["key"], k2["secret"]).status_code == 200
    assert "basic_auth_failed" in tight.log() and "basic_auth_throttled" in tight.log()
