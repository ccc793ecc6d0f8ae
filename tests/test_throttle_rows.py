"""Throttling that a stranger cannot turn against the rightful client, and throttle rows that
neither grow from a locked address nor live for ever.

SECURITY.md C-14 (online guessing of codes is throttled, with an alert-level audit event),
N-02 (no attacker-driven lockout), N-04 (client authentication guessing), N-05 (addresses come
from X-Forwarded-For only behind a trusted proxy; this server trusts 127.0.0.1, so each test
request names its address in that header) and N-06 (bounded storage).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import httpx
import pytest

from openxp.store import Database, now, throttle
from tests.support.flow import get_code, pkce_pair, token_post
from tests.support.records import wait_for_audit
from tests.support.server import Server, destroy_server, make_server

GRANT_LIMIT = 5
CLIENT_AUTH_LIMIT = 4  # per client id; an address may fail 5 x this many times
ATTACKER = "203.0.113.7"
RIGHTFUL = "198.51.100.9"


@pytest.fixture(scope="module")
def guarded() -> Iterator[Server]:
    srv = make_server(
        extra_env={
            "OPENXP_RATE_GRANT_FAILURES": str(GRANT_LIMIT),
            "OPENXP_RATE_CLIENT_AUTH": str(CLIENT_AUTH_LIMIT),
            "OPENXP_TRUSTED_PROXIES": "127.0.0.1",
        }
    )
    try:
        yield srv
    finally:
        destroy_server(srv)


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def public_exchange(server: Server, code: str, verifier: str, address: str) -> httpx.Response:
    cp = server.clients["cp"]
    body = {
        "grant_type": "authorization_code",
        "client_id": cp["client_id"],
        "code": code,
        "redirect_uri": cp["redirect_uris"][0],
        "code_verifier": verifier,
    }
    return token_post(server, data=body, headers=from_address(address))


def pending_code(server: Server) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    return get_code(server, "cp", code_challenge=challenge, code_challenge_method="S256"), verifier


def throttle_rows(server: Server) -> int:
    return int(server.sql("SELECT COUNT(*) FROM throttles")[0][0])


def test_C14_N02_guessing_codes_of_a_public_client_throttles_the_guesser_only(guarded: Server) -> None:
    """C-14, N-02: anyone can name a public client (it has no secret), so bogus codes for it must not lock
    the client for everybody. The guessing address gets 429 + Retry-After after the budget (and an
    alert-level audit event), even for a right code, which stays unspent; the rightful client, from
    another address, still redeems its code."""
    real, verifier = pending_code(guarded)
    spare, spare_verifier = pending_code(guarded)
    statuses = []
    for _ in range(GRANT_LIMIT + 3):
        statuses.append(public_exchange(guarded, secrets.token_urlsafe(32), "x" * 43, ATTACKER).status_code)
    assert statuses[: GRANT_LIMIT - 1] == [400] * (GRANT_LIMIT - 1), statuses
    assert statuses[-1] == 429, statuses
    locked = public_exchange(guarded, spare, spare_verifier, ATTACKER)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0, locked.text
    wait_for_audit(
        guarded,
        "grant_guessing_throttled",
        lambda e: e.get("client_id") == guarded.clients["cp"]["client_id"] and e.get("ip") == ATTACKER,
    )

    redeemed = public_exchange(guarded, real, verifier, RIGHTFUL)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["access_token"].startswith("cxa_")
    # The code refused during the attacker's lock was not spent.
    assert public_exchange(guarded, spare, spare_verifier, RIGHTFUL).status_code == 200


def test_C14_a_confidential_client_guessing_with_its_secret_is_still_locked_everywhere(guarded: Server) -> None:
    """C-14: guessing needs a confidential client's secret, so its lock stays per client (from any
    address), as docs/decisions.md reasons."""
    c2 = guarded.clients["c2"]
    body = {
        "grant_type": "authorization_code",
        "client_id": c2["client_id"],
        "client_secret": c2["client_secret"],
        "redirect_uri": c2["redirect_uris"][0],
    }
    statuses = [
        token_post(guarded, data={**body, "code": secrets.token_urlsafe(32)}, headers=from_address(ATTACKER))
        for _ in range(GRANT_LIMIT + 1)
    ]
    assert statuses[-1].status_code == 429, [r.status_code for r in statuses]
    elsewhere = token_post(guarded, data={**body, "code": "x"}, headers=from_address(RIGHTFUL))
    assert elsewhere.status_code == 429


def test_N04_N06_a_locked_address_adds_no_throttle_rows(guarded: Server) -> None:
    """N-04, N-06: an address that used up its client-authentication budget gets 429 before anything is
    counted, so 300 requests with random client ids from it add no rows (before: one row each)."""
    address = "192.0.2.50"
    statuses = []
    for _ in range(5 * CLIENT_AUTH_LIMIT + 1):
        body = {"grant_type": "authorization_code", "client_id": secrets.token_urlsafe(16), "code": "x"}
        statuses.append(token_post(guarded, data=body, headers=from_address(address)).status_code)
    assert statuses[-1] == 429, statuses
    before = throttle_rows(guarded)
    for _ in range(300):
        body = {"grant_type": "authorization_code", "client_id": secrets.token_urlsafe(16), "code": "x"}
        response = token_post(guarded, data=body, headers=from_address(address))
        assert response.status_code == 429, response.text
    assert throttle_rows(guarded) == before
    # Another address still gets the ordinary answer.
    other = token_post(guarded, data={"grant_type": "authorization_code", "client_id": "nope", "code": "x"})
    assert other.status_code == 401


def test_N06_stale_throttle_rows_are_purged_and_live_locks_kept(guarded: Server) -> None:
    """N-06: ``throttle.purge_stale`` (run by the server's housekeeping) deletes rows whose window ended
    and whose lock, if any, lifted; it keeps a row that is still locked or still counting."""
    for i in range(3):
        body = {"grant_type": "authorization_code", "client_id": f"stale-{secrets.token_hex(4)}", "code": "x"}
        assert token_post(guarded, data=body, headers=from_address(f"192.0.2.{100 + i}")).status_code == 401
    t = now()
    old = t - 7200
    guarded.sql("UPDATE throttles SET window_start = :old WHERE key LIKE 'client:unknown:%'", {"old": old})
    age = "UPDATE throttles SET window_start = :old, locked_until = :until WHERE key = :key"
    guarded.sql(age, {"old": old, "until": t + 600, "key": "client-ip:192.0.2.100"})  # still locked
    guarded.sql(age, {"old": old, "until": t - 4000, "key": "client-ip:192.0.2.101"})  # lock long over
    before = {row[0] for row in guarded.sql("SELECT key FROM throttles")}
    assert {"client-ip:192.0.2.100", "client-ip:192.0.2.101", "client-ip:192.0.2.102"} <= before

    async def purge() -> None:
        db = Database(guarded.database_url)
        try:
            async with db.write() as conn:
                await throttle.purge_stale(conn, now() - 3600)
        finally:
            await db.dispose()

    asyncio.run(purge())
    after = {row[0] for row in guarded.sql("SELECT key FROM throttles")}
    assert not any(key.startswith("client:unknown:") for key in after), after
    assert "client-ip:192.0.2.101" not in after
    assert {"client-ip:192.0.2.100", "client-ip:192.0.2.102"} <= after
    kept = {key for key in before if not key.startswith("client:unknown:") and key != "client-ip:192.0.2.101"}
    assert after == kept
