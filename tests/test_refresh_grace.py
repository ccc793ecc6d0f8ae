"""Retry-safe refresh: a reuse grace (OPENXP_REFRESH_REUSE_GRACE, `--refresh-reuse-grace`), over
HTTP against the real 2-worker server.

Within the grace, the client that rotated a refresh token may present it again and gets the
*same* answer (the successors are derived from a per-rotation nonce and the presented token), so
a lost response ends with one live chain. After the grace, or once the successor was used, or
when the grant is gone, the re-presentation is reuse exactly as with no grace (E-02, E-03).
Another client never gets tokens (E-05). The strict default is unchanged (E-02). Concurrent
refresh with a grace (E-04) lives in ``test_refresh_grace_races.py``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.asserts import HEX64, assert_dead_token, assert_token_error
from tests.support.flow import Browser, api, exchange, new_code, refresh
from tests.support.provision import dedicated_client
from tests.support.records import digest, wait_for_audit
from tests.support.server import OPENXP, Server, destroy_server, make_server

GRACE = 60


@pytest.fixture(scope="module")
def graced(server: Server) -> str:
    """A tenant-a client with its own reuse grace on the shared (strict by default) server."""
    return dedicated_client(server, "grace", "--refresh-reuse-grace", str(GRACE))


def tokens_for(browser: Browser, client: str) -> dict[str, Any]:
    response = exchange(browser.server, new_code(browser, client), client)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rotate(server: Server, refresh_token: str, client: str) -> dict[str, Any]:
    response = refresh(server, refresh_token, client)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_live(server: Server, access_token: str) -> None:
    response = api(server, access_token)
    assert response.status_code == 200, response.text


def spent_row(server: Server, refresh_token: str) -> Any:
    rows = server.sql(
        "SELECT used_at, rotation_nonce, grant_id FROM refresh_tokens WHERE token_hash = :h",
        {"h": digest(refresh_token)},
    )
    assert len(rows) == 1, rows
    return rows[0]


def age_rotation(server: Server, refresh_token: str, seconds: float) -> None:
    """Move a rotation into the past (the clock, injected through the database)."""
    server.sql(
        "UPDATE refresh_tokens SET used_at = used_at - :s WHERE token_hash = :h",
        {"s": seconds, "h": digest(refresh_token)},
    )


def grant_revoked(server: Server, refresh_token: str) -> str | None:
    grant_id = spent_row(server, refresh_token).grant_id
    row = server.sql("SELECT revoked_at, revoked_reason FROM grants WHERE id = :g", {"g": grant_id})[0]
    return row.revoked_reason if row.revoked_at is not None else None


# ---- within the grace: the same answer ------------------------------------------------------------


def test_E01_retry_after_a_lost_response_gets_the_same_tokens(
    server: Server, admin_browser: Browser, graced: str
) -> None:
    """E-01 with a grace: R0 -> (AT1, R1), the answer is lost; R0 again -> 200 with the very same
    AT1 and R1 (no second chain). Every token either answer handed out works, and the chain goes on."""
    first = tokens_for(admin_browser, graced)
    answer = rotate(server, first["refresh_token"], graced)
    retry = rotate(server, first["refresh_token"], graced)
    assert retry["access_token"] == answer["access_token"]
    assert retry["refresh_token"] == answer["refresh_token"]
    assert retry["scope"] == answer["scope"] and retry["token_type"].lower() == "bearer"
    assert 0 < retry["expires_in"] <= 3600
    assert answer["refresh_token"] != first["refresh_token"]
    assert_live(server, answer["access_token"])
    assert_live(server, first["access_token"])
    third = rotate(server, answer["refresh_token"], graced)
    assert_live(server, third["access_token"])
    assert_live(server, answer["access_token"])
    assert grant_revoked(server, first["refresh_token"]) is None
    grant_id = spent_row(server, first["refresh_token"]).grant_id
    counts = server.sql(
        "SELECT (SELECT count(*) FROM access_tokens WHERE grant_id = :g), "
        "(SELECT count(*) FROM refresh_tokens WHERE grant_id = :g)",
        {"g": grant_id},
    )[0]
    assert tuple(counts) == (3, 3)  # the exchange and two rotations: the retry minted nothing
    event = wait_for_audit(server, "refresh_retry_answered", lambda e: e.get("grant") == grant_id)
    assert event["client_id"] == server.clients[graced]["client_id"] and event["tenant"] == "a"


def test_E12_only_digests_and_a_nonce_are_stored(server: Server, admin_browser: Browser, graced: str) -> None:
    """E-12 with a grace: the successors are stored as digests like any token; the spent row keeps a
    256-bit nonce, which is not a token and derives nothing by itself; a strict client's rows hold none."""
    first = tokens_for(admin_browser, graced)
    answer = rotate(server, first["refresh_token"], graced)
    row = spent_row(server, first["refresh_token"])
    assert row.rotation_nonce is not None and HEX64.fullmatch(row.rotation_nonce)
    for token, table in ((answer["access_token"], "access_tokens"), (answer["refresh_token"], "refresh_tokens")):
        assert server.sql(f"SELECT count(*) FROM {table} WHERE token_hash = :h", {"h": digest(token)})[0][0] == 1
        assert row.rotation_nonce not in token
    assert spent_row(server, answer["refresh_token"]).rotation_nonce is None  # not rotated yet
    strict = tokens_for(admin_browser, "c1")
    rotate(server, strict["refresh_token"], "c1")
    assert spent_row(server, strict["refresh_token"]).rotation_nonce is None


# ---- not a retry: reuse, as with no grace ---------------------------------------------------------


def test_E02_after_the_grace_reuse_revokes_the_family(server: Server, admin_browser: Browser, graced: str) -> None:
    """E-02 once the grace has passed: R0 again is invalid_grant, the grant is revoked (R1 and AT1
    dead), and the nonce is wiped at once."""
    first = tokens_for(admin_browser, graced)
    answer = rotate(server, first["refresh_token"], graced)
    age_rotation(server, first["refresh_token"], GRACE + 5)
    assert_token_error(refresh(server, first["refresh_token"], graced), 400, "invalid_grant")
    assert grant_revoked(server, first["refresh_token"]) == "refresh_reuse"
    assert_dead_token(server, answer["access_token"])
    assert_token_error(refresh(server, answer["refresh_token"], graced), 400, "invalid_grant")
    assert spent_row(server, first["refresh_token"]).rotation_nonce is None


def test_E03_grace_covers_only_the_immediately_preceding_token(
    server: Server, admin_browser: Browser, graced: str
) -> None:
    """E-03 / D4 with a grace: R0 -> R1 -> R2 within seconds; R0 again is reuse (its successor R1 was
    used), so the family is revoked although R0's rotation is inside the grace."""
    first = tokens_for(admin_browser, graced)
    second = rotate(server, first["refresh_token"], graced)
    third = rotate(server, second["refresh_token"], graced)
    assert_token_error(refresh(server, first["refresh_token"], graced), 400, "invalid_grant")
    assert grant_revoked(server, first["refresh_token"]) == "refresh_reuse"
    assert_dead_token(server, third["access_token"])
    assert_token_error(refresh(server, third["refresh_token"], graced), 400, "invalid_grant")


def test_E02_revoked_grant_inside_the_grace(server: Server, admin_browser: Browser, graced: str) -> None:
    """A grant revoked (RFC 7009 on R1) inside the grace: R0 again gets no tokens."""
    first = tokens_for(admin_browser, graced)
    answer = rotate(server, first["refresh_token"], graced)
    c = server.clients[graced]
    revoked = httpx.post(
        f"{server.base_url}/auth/oauth/revoke",
        data={"token": answer["refresh_token"]},
        auth=(c["client_id"], c["client_secret"]),
        timeout=30,
    )
    assert revoked.status_code == 200
    assert_token_error(refresh(server, first["refresh_token"], graced), 400, "invalid_grant")
    assert_dead_token(server, answer["access_token"])


def test_E05_another_client_never_gets_tokens(server: Server, admin_browser: Browser, graced: str) -> None:
    """E-05 inside the grace: another client of the tenant (c2) or of another tenant (cb) presenting
    the rotated R0 gets invalid_grant and no token; so does one presenting the live R1, which stays
    the rightful client's."""
    first = tokens_for(admin_browser, graced)
    answer = rotate(server, first["refresh_token"], graced)
    for thief in ("c2", "cb"):
        assert_token_error(refresh(server, answer["refresh_token"], thief), 400, "invalid_grant")
    assert_live(server, answer["access_token"])
    for thief in ("c2", "cb"):
        assert_token_error(refresh(server, first["refresh_token"], thief), 400, "invalid_grant")
    # A spent token in another client's hands means it leaked: as with no grace, the family ends.
    assert grant_revoked(server, first["refresh_token"]) == "refresh_reuse"
    assert_token_error(refresh(server, first["refresh_token"], graced), 400, "invalid_grant")


def test_E02_strict_default_still_revokes_on_reuse(server: Server, admin_browser: Browser) -> None:
    """E-02 with the default (OPENXP_REFRESH_REUSE_GRACE unset, c1 with no grace of its own): an
    immediate retry is reuse; the family is revoked."""
    first = tokens_for(admin_browser, "c1")
    answer = rotate(server, first["refresh_token"], "c1")
    assert_token_error(refresh(server, first["refresh_token"], "c1"), 400, "invalid_grant")
    assert grant_revoked(server, first["refresh_token"]) == "refresh_reuse"
    assert_dead_token(server, answer["access_token"])


def test_housekeeping_wipes_nonces_only_after_the_longest_grace(
    server: Server, admin_browser: Browser, graced: str
) -> None:
    """`openxp purge` (what serve runs) forgets a rotation's nonce once it is older than the longest
    grace (an hour), even with --grace 0, and keeps a fresh one (a retry inside its grace still works)."""
    old = tokens_for(admin_browser, graced)
    rotate(server, old["refresh_token"], graced)
    fresh = tokens_for(admin_browser, graced)
    fresh_answer = rotate(server, fresh["refresh_token"], graced)
    age_rotation(server, old["refresh_token"], 3600 + 60)
    report = server.cli_json("purge", "--grace", "0")
    assert report["purged"]["refresh_retry_nonces"] >= 1, report
    assert spent_row(server, old["refresh_token"]).rotation_nonce is None
    assert spent_row(server, fresh["refresh_token"]).rotation_nonce is not None
    assert rotate(server, fresh["refresh_token"], graced)["refresh_token"] == fresh_answer["refresh_token"]


def test_registration_of_the_grace(server: Server) -> None:
    """`--refresh-reuse-grace` is printed back; out of range or without the refresh grant is refused."""
    created = server.cli_json(
        "client", "create", "--tenant", "a", "--name", "Graced", "--redirect-uri", "https://g.a.test/cb",
        "--refresh-reuse-grace", "30",
    )  # fmt: skip
    assert created["refresh_reuse_grace"] == 30
    for extra in (
        ["--redirect-uri", "https://g.a.test/cb", "--refresh-reuse-grace", "3601"],
        ["--redirect-uri", "https://g.a.test/cb", "--grant-type", "authorization_code", "--refresh-reuse-grace", "5"],
        ["--grant-type", "client_credentials", "--refresh-reuse-grace", "5"],
    ):
        result = server.cli("client", "create", "--tenant", "a", "--name", "Refused", *extra, check=False)
        assert result.returncode != 0 and "grace" in result.stderr, (extra, result.stderr)


# ---- the server-wide default ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def grace_server() -> Iterator[Server]:
    srv = make_server({"OPENXP_REFRESH_REUSE_GRACE": "30"})
    try:
        yield srv
    finally:
        destroy_server(srv)


def test_server_default_grace_and_a_client_override(grace_server: Server) -> None:
    """OPENXP_REFRESH_REUSE_GRACE=30 gives every client the grace (c1 retries and gets the same
    tokens); a client registered with --refresh-reuse-grace 0 is strict on that server."""
    server = grace_server
    strict = dedicated_client(server, "strict", "--refresh-reuse-grace", "0")
    browser = Browser.open(server)
    try:
        first = tokens_for(browser, "c1")
        answer = rotate(server, first["refresh_token"], "c1")
        assert rotate(server, first["refresh_token"], "c1")["access_token"] == answer["access_token"]
        assert_live(server, answer["access_token"])
        issued = tokens_for(browser, strict)
        renewed = rotate(server, issued["refresh_token"], strict)
        assert_token_error(refresh(server, issued["refresh_token"], strict), 400, "invalid_grant")
        assert_dead_token(server, renewed["access_token"])
    finally:
        browser.close()


def test_setting_out_of_range_is_refused(grace_server: Server) -> None:
    """The setting is checked at start-up like every other one: negative or over an hour is an error."""
    for value in ("-1", "3601", "soon"):
        env = {**grace_server.env, "OPENXP_REFRESH_REUSE_GRACE": value}
        result = subprocess.run(
            [*OPENXP, "status"], env=env, capture_output=True, text=True, timeout=120, cwd=grace_server.data_dir
        )
        assert result.returncode != 0, (value, result.stdout)
        assert "OPENXP_REFRESH_REUSE_GRACE" in result.stderr, (value, result.stderr)
        assert "Traceback" not in result.stderr
