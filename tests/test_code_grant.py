"""SECURITY.md section C: the authorization code lifecycle (single use,
binding to client, redirect URI, scope, user and tenant, expiry, storage),
C-01..C-15 over HTTP against the real server and its database.

C-04 (concurrent redemption) lives in ``test_races.py``.
"""

from __future__ import annotations

import base64
import collections
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.asserts import HEX64, URLSAFE, assert_dead_token, assert_token_error
from tests.support.flow import (
    Browser,
    api,
    code_body,
    exchange,
    get_code,
    introspect,
    new_code,
    refresh,
    token_post,
)
from tests.support.provision import dedicated_admin, dedicated_client
from tests.support.records import digest, wait_for_audit
from tests.support.server import Server, destroy_server, make_server

CODE_TTL = 600


def code_row(server: Server, code: str) -> Any:
    rows = server.sql(
        "SELECT code_hash, grant_id, used_at, expires_at FROM authorization_codes WHERE code_hash = :h",
        {"h": digest(code)},
    )
    assert len(rows) == 1, rows
    return rows[0]


def access_token_count(server: Server, grant_id: int) -> int:
    return int(server.sql("SELECT count(*) FROM access_tokens WHERE grant_id = :g", {"g": grant_id})[0][0])


def age_code(server: Server, code: str, seconds: int) -> None:
    server.sql(
        "UPDATE authorization_codes SET expires_at = expires_at - :s, created_at = created_at - :s"
        " WHERE code_hash = :h",
        {"s": seconds, "h": digest(code)},
    )


def account_id(server: Server, admin: str) -> int:
    rows = server.sql("SELECT id FROM accounts WHERE email = :e", {"e": server.admins[admin]["email"]})
    assert len(rows) == 1
    return int(rows[0][0])


# ---- C-01 -------------------------------------------------------------------------------------


def test_C01_code_quality(server: Server, admin_browser: Browser) -> None:
    """C-01: codes carry >= 256 bits of URL-safe randomness, never repeat, embed nothing.

    The catalogue says 1,000 codes; 300 (set OPENXP_C01_CODES for more) keep this under
    ~10 s on a loaded machine and already give 12,600 characters for the distribution check."""
    count = int(os.environ.get("OPENXP_C01_CODES", "300"))
    codes = [new_code(admin_browser) for _ in range(count)]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert URLSAFE.fullmatch(code), code
        # secrets.token_urlsafe(32): 43 characters, 256 bits (RFC 6749 10.10 asks for >= 128).
        assert len(code) >= 43, code
        raw = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4))
        assert len(raw) >= 16
    # Nothing about the client, user or tenant leaks into a code.
    c1 = server.clients["c1"]["client_id"]
    email = server.admins["adminA"]["email"]
    for code in codes:
        assert c1 not in code and email not in code
    # No shared prefix or suffix (a counter or timestamp would make one).
    assert len({code[:4] for code in codes}) > 0.95 * count
    assert len({code[-4:] for code in codes}) > 0.95 * count
    # The whole alphabet, used evenly (the 43rd character carries only 4 bits, so it is left out).
    body = "".join(code[:42] for code in codes)
    counts = collections.Counter(body)
    assert len(counts) == 64, sorted(counts)
    expected = len(body) / 64
    chi2 = sum((n - expected) ** 2 / expected for n in counts.values())
    assert chi2 < 150, chi2  # 63 degrees of freedom: p < 1e-8 above this


# ---- C-02, C-03, C-15 -------------------------------------------------------------------------


def test_C02_sequential_replay_refused(server: Server, admin_browser: Browser) -> None:
    """C-02: a code redeems once; repeats after 1 s and after 30 s are invalid_grant."""
    code = new_code(admin_browser)
    first = exchange(server, code, form=True)
    assert first.status_code == 200, first.text
    time.sleep(1)
    assert_token_error(exchange(server, code, form=True), 400, "invalid_grant")
    # "After 30 s", without waiting: move the code's history 30 s into the past.
    server.sql(
        "UPDATE authorization_codes SET used_at = used_at - 30, created_at = created_at - 30 WHERE code_hash = :h",
        {"h": digest(code)},
    )
    assert_token_error(exchange(server, code, form=True), 400, "invalid_grant")
    assert_token_error(exchange(server, code), 400, "invalid_grant")


def test_C03_replay_revokes_what_the_code_produced(server: Server, admin_browser: Browser) -> None:
    """C-03: after a replay, the first exchange's access token is RS-401 and its refresh token invalid_grant."""
    code = new_code(admin_browser)
    first = exchange(server, code)
    assert first.status_code == 200, first.text
    issued = first.json()
    assert api(server, issued["access_token"]).status_code == 200
    assert_token_error(exchange(server, code), 400, "invalid_grant")
    assert_dead_token(server, issued["access_token"])
    assert_token_error(refresh(server, issued["refresh_token"]), 400, "invalid_grant")
    grant_id = code_row(server, code).grant_id
    revoked = server.sql("SELECT revoked_at, revoked_reason FROM grants WHERE id = :g", {"g": grant_id})
    assert revoked[0].revoked_at is not None and revoked[0].revoked_reason == "code_replay"


def test_C03_replay_is_an_audit_event(server: Server, admin_browser: Browser) -> None:
    """C-03: the replay is logged as `code_replay_detected`, high severity, naming client, user and tenant."""
    code = new_code(admin_browser)
    assert exchange(server, code).status_code == 200
    assert_token_error(exchange(server, code), 400, "invalid_grant")
    grant_id = code_row(server, code).grant_id
    event = wait_for_audit(server, "code_replay_detected", lambda e: e.get("grant") == grant_id)
    assert event["severity"] == "high"
    assert event["client_id"] == server.clients["c1"]["client_id"]
    assert event["tenant"] == "a"
    assert event["account"] == account_id(server, "adminA")
    assert code not in server.log()


def test_C15_codes_stored_as_digests_only(server: Server, admin_browser: Browser) -> None:
    """C-15: the codes table holds SHA-256 digests and metadata, never a code."""
    code = new_code(admin_browser)
    assert exchange(server, code).status_code == 200
    row = code_row(server, code)
    assert row.code_hash == digest(code)
    assert server.sql("SELECT count(*) FROM authorization_codes WHERE code_hash = :c", {"c": code})[0][0] == 0
    columns = "code_hash, grant_id, redirect_uri, code_challenge, created_at, expires_at, used_at"
    rows = server.sql(f"SELECT {columns} FROM authorization_codes")
    assert len(rows) > 0
    for stored in rows:
        assert HEX64.fullmatch(stored.code_hash), stored.code_hash
        assert code not in " ".join(str(v) for v in stored)
    # Nor does the grant row (or anything else joined to it) carry the code.
    grant = server.sql("SELECT * FROM grants WHERE id = :g", {"g": row.grant_id})
    assert code not in " ".join(str(v) for v in grant[0])


# ---- C-05 .. C-09: bindings -------------------------------------------------------------------


def test_C05_code_bound_to_its_client_same_tenant(server: Server, admin_browser: Browser) -> None:
    """C-05: c1's code redeemed with c2's valid credentials is invalid_grant, and the code is burnt."""
    code = new_code(admin_browser)
    stolen = token_post(server, json=code_body(server, code, "c2", redirect_uri="https://app.a.test/cb"))
    assert_token_error(stolen, 400, "invalid_grant")
    assert_token_error(exchange(server, code), 400, "invalid_grant")


def test_C05_code_bound_to_its_client_other_tenant(server: Server, admin_browser: Browser) -> None:
    """C-05: c1's code redeemed with tenant B's client cb is invalid_grant, and the code is burnt."""
    code = new_code(admin_browser)
    stolen = token_post(server, json=code_body(server, code, "cb", redirect_uri="https://app.a.test/cb"))
    assert_token_error(stolen, 400, "invalid_grant")
    assert_token_error(exchange(server, code), 400, "invalid_grant")
    assert code_row(server, code).used_at is not None


def test_C06_client_id_disagrees_with_authenticated_client(server: Server, admin_browser: Browser) -> None:
    """C-06: client_id=c2 with c1's secret, or Basic c1 with body client_id=c2: invalid_client, no tokens."""
    code = new_code(admin_browser)
    c1, c2 = server.clients["c1"], server.clients["c2"]
    mixed = token_post(server, json=code_body(server, code, client_id=c2["client_id"]))
    assert_token_error(mixed, 401, "invalid_client", "invalid_grant")
    basic = base64.b64encode(f"{c1['client_id']}:{c1['client_secret']}".encode()).decode()
    body = code_body(server, code, client_id=c2["client_id"])
    del body["client_secret"]
    with_basic = token_post(server, json=body, headers={"authorization": f"Basic {basic}"})
    assert_token_error(with_basic, 401, "invalid_client", "invalid_grant")
    # Neither attempt authenticated a client, so neither could spend c1's code.
    assert code_row(server, code).used_at is None
    assert exchange(server, code).status_code == 200


def test_C07_code_bound_to_redirect_uri(server: Server, admin_browser: Browser) -> None:
    """C-07: cm's code issued for .../cb, redeemed with .../cb2 (also registered): invalid_grant."""
    code = new_code(admin_browser, "cm", redirect_uri="https://app.a.test/cb")
    other = exchange(server, code, "cm", redirect_uri="https://app.a.test/cb2")
    assert_token_error(other, 400, "invalid_grant")
    assert_token_error(exchange(server, code, "cm", redirect_uri="https://app.a.test/cb"), 400, "invalid_grant")


def test_C08_redirect_uri_omitted_at_token_endpoint(server: Server, admin_browser: Browser) -> None:
    """C-08: redeeming without redirect_uri is invalid_grant (invalid_request acceptable)."""
    for omitted in (None, ""):
        code = new_code(admin_browser)
        body = code_body(server, code)
        if omitted is None:
            del body["redirect_uri"]
        else:
            body["redirect_uri"] = omitted
        assert_token_error(token_post(server, json=body), 400, "invalid_grant", "invalid_request")


@pytest.mark.parametrize(
    "variant",
    [
        "https://app.a.test/cb/",
        "https://APP.a.test/cb",
        "HTTPS://app.a.test/cb",
        "https://app.a.test/CB",
        "https://app.a.test/%63b",
        "https://app.a.test:443/cb",
        "https://app.a.test/cb?",
        "https://app.a.test/cb#",
        "https://app.a.test/cb ",
        " https://app.a.test/cb",
        "https://app.a.test/cb\u200b",
    ],
)
def test_C09_redirect_uri_must_be_identical(server: Server, admin_browser: Browser, variant: str) -> None:
    """C-09: a redirect_uri differing by slash, case, encoding or port is invalid_grant."""
    code = new_code(admin_browser)
    assert_token_error(exchange(server, code, redirect_uri=variant), 400, "invalid_grant", "invalid_request")


# ---- C-10: expiry -----------------------------------------------------------------------------


def test_C10_code_expires_after_ten_minutes(server: Server, admin_browser: Browser) -> None:
    """C-10: a code 9 min 59 s old redeems; one 10 min 1 s old is invalid_grant."""
    young = new_code(admin_browser)
    age_code(server, young, CODE_TTL - 1)
    ok = exchange(server, young)
    assert ok.status_code == 200, ok.text
    old = new_code(admin_browser)
    age_code(server, old, CODE_TTL + 1)
    assert_token_error(exchange(server, old), 400, "invalid_grant")
    assert access_token_count(server, code_row(server, old).grant_id) == 0


def test_C10_expired_codes_are_purged(server: Server, admin_browser: Browser) -> None:
    """C-10: housekeeping (`openxp purge`, also run by serve) deletes long-expired codes."""
    expired = new_code(admin_browser)
    live = new_code(admin_browser)
    age_code(server, expired, CODE_TTL + 3601)
    server.cli("purge")
    purged = server.sql("SELECT count(*) FROM authorization_codes WHERE code_hash = :h", {"h": digest(expired)})
    assert purged[0][0] == 0
    code_row(server, live)
    assert_token_error(exchange(server, expired), 400, "invalid_grant")
    assert exchange(server, live).status_code == 200


# ---- C-11: unknown, malformed, foreign ---------------------------------------------------------


def test_C11_unknown_malformed_or_foreign_code(server: Server, admin_browser: Browser) -> None:
    """C-11: random, huge, foreign-tenant codes and tokens-as-codes are invalid_grant; empty is invalid_request."""
    issued = exchange(server, new_code(admin_browser)).json()
    foreign = get_code(server, "cb", "adminB")
    values = [
        secrets.token_urlsafe(32),
        "x" * 10_000,
        "\u00e9" * 100,
        "' OR '1'='1",
        foreign,
        issued["refresh_token"],
        issued["access_token"],
    ]
    for value in values:
        assert_token_error(exchange(server, value), 400, "invalid_grant")
        assert_token_error(exchange(server, value, form=True), 400, "invalid_grant")
    for value in ("", None):
        body = code_body(server, "x")
        if value is None:
            del body["code"]
        else:
            body["code"] = value
        assert_token_error(token_post(server, json=body), 400, "invalid_request", "invalid_grant")
    # The tokens sent as codes are untouched; tenant B's code was spent by the attempt (as in C-05).
    assert api(server, issued["access_token"]).status_code == 200
    assert refresh(server, issued["refresh_token"]).status_code == 200
    assert_token_error(exchange(server, foreign, "cb"), 400, "invalid_grant")


# ---- C-12: what a code carries ------------------------------------------------------------------


def test_C12_code_carries_approved_scope_user_and_tenant(server: Server, admin_browser: Browser) -> None:
    """C-12: a scope parameter at the token endpoint cannot change the approved scope, user or tenant."""
    code = new_code(admin_browser, "cs", scope="users/import")
    response = exchange(server, code, "cs", scope="all actors/read actors/write")
    if response.status_code == 400:
        assert_token_error(response, 400, "invalid_scope")
        return
    assert response.status_code == 200, response.text
    issued = response.json()
    assert issued["scope"] == "users/import"
    seen = introspect(server, issued["access_token"], "cs")
    assert seen["active"] is True
    assert seen["scope"] == "users/import"
    assert seen["sub"] == str(account_id(server, "adminA"))
    assert seen["tenant"] == "a"
    assert seen["client_id"] == server.clients["cs"]["client_id"]
    assert api(server, issued["access_token"]).status_code == 200
    denied = api(server, issued["access_token"], tenant="b")
    assert denied.status_code == 403, denied.text


# ---- C-13: state changes between authorization and redemption ------------------------------------


def test_C13a_client_disabled_before_redemption(server: Server, admin_browser: Browser) -> None:
    """C-13: (a) the client is disabled between authorization and redemption: 401 invalid_client."""
    label = dedicated_client(server, "c13a")
    client = server.clients[label]
    code = new_code(admin_browser, label)
    server.cli("client", "disable", "--tenant", "a", client["client_id"])
    assert_token_error(exchange(server, code, label), 401, "invalid_client")
    # Enabling it again does not revive the code's grant: disabling revoked it.
    server.cli("client", "enable", "--tenant", "a", client["client_id"])
    assert_token_error(exchange(server, code, label), 400, "invalid_grant")


def test_C13b_admin_disabled_before_redemption(server: Server) -> None:
    """C-13: (b) the approving admin is disabled before redemption: 400 invalid_grant."""
    admin = dedicated_admin(server, "c13b")
    code = get_code(server, "c1", admin)
    server.cli("admin", "disable", "--tenant", "a", "--email", server.admins[admin]["email"])
    assert_token_error(exchange(server, code), 400, "invalid_grant")
    assert access_token_count(server, code_row(server, code).grant_id) == 0


def test_C13c_secret_rotated_before_redemption(server: Server, admin_browser: Browser) -> None:
    """C-13: (c) the client's secret is rotated: the old secret is 401 invalid_client; the new one redeems."""
    label = dedicated_client(server, "c13c")
    client = server.clients[label]
    code = new_code(admin_browser, label)
    rotated = server.cli_json("client", "rotate-secret", "--tenant", "a", client["client_id"])
    assert rotated["client_secret"] != client["client_secret"]
    assert_token_error(exchange(server, code, label), 401, "invalid_client")
    server.clients[label]["client_secret"] = rotated["client_secret"]
    response = exchange(server, code, label)
    assert response.status_code == 200, response.text


# ---- C-14: online guessing ----------------------------------------------------------------------

GUESS_LIMIT = 10


@pytest.fixture(scope="module")
def low_limit_server() -> Iterator[Server]:
    srv = make_server(extra_env={"OPENXP_RATE_GRANT_FAILURES": str(GUESS_LIMIT)})
    try:
        yield srv
    finally:
        destroy_server(srv)


def guess_until_throttled(srv: Server, client: str) -> tuple[httpx.Response, list[int]]:
    statuses = []
    for _ in range(3 * GUESS_LIMIT):
        response = exchange(srv, secrets.token_urlsafe(32), client)
        statuses.append(response.status_code)
        if response.status_code == 429:
            return response, statuses
        assert_token_error(response, 400, "invalid_grant")
    raise AssertionError(f"no 429 after {len(statuses)} wrong codes: {statuses}")


def test_C14_code_guessing_is_throttled(low_limit_server: Server) -> None:
    """C-14: random codes with valid client auth: invalid_grant until the budget is spent, then 429 with
    Retry-After; while locked no guess is evaluated (not even a right one), and nothing is spent."""
    srv = low_limit_server
    browser = Browser.open(srv)
    try:
        real = new_code(browser)
    finally:
        browser.close()
    throttled, statuses = guess_until_throttled(srv, "c1")
    assert len(statuses) <= GUESS_LIMIT + 1, statuses
    assert int(throttled.headers["retry-after"]) > 0
    assert throttled.headers.get("cache-control") == "no-store"
    assert throttled.json()["error"] == "too_many_requests"
    again = exchange(srv, secrets.token_urlsafe(32))
    assert again.status_code == 429 and int(again.headers["retry-after"]) > 0
    # While locked, even the right code is not evaluated (else the lock would not slow guessing)...
    locked = exchange(srv, real)
    assert locked.status_code == 429, locked.text
    # ... and it is not spent: it is still there, unused, for when the lock lifts.
    assert code_row(srv, real).used_at is None
    # The lock is per client: c2 still gets answers.
    assert_token_error(exchange(srv, secrets.token_urlsafe(32), "c2"), 400, "invalid_grant")


def test_C14_throttling_is_an_audit_event(low_limit_server: Server) -> None:
    """C-14: reaching the guessing limit logs `grant_guessing_throttled` (high severity) for the client."""
    srv = low_limit_server
    guess_until_throttled(srv, "cm")
    event = wait_for_audit(
        srv, "grant_guessing_throttled", lambda e: e.get("client_id") == srv.clients["cm"]["client_id"]
    )
    assert event["severity"] == "high"
