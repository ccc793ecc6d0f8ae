"""SECURITY.md section E: refresh tokens (rotation, reuse detection, binding,
lifetime, storage), E-01..E-13 over HTTP against the real server.

openxp's decisions: refresh tokens rotate on every use with no grace period;
reuse of a rotated token revokes the whole family; another client's refresh
token is invalid_grant and leaves the token untouched. E-04 (concurrent
refresh) lives in ``test_races.py``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from tests.support.asserts import HEX64, assert_dead_token, assert_token_error
from tests.support.flow import (
    Browser,
    api,
    exchange,
    introspect,
    new_code,
    refresh,
    refresh_body,
    token_post,
)
from tests.support.provision import dedicated_admin, dedicated_client
from tests.support.records import digest, wait_for_audit
from tests.support.server import PASSWORD, Server


def new_tokens(browser: Browser, client: str = "c1", admin: str = "adminA", **overrides: Any) -> dict[str, Any]:
    response = exchange(browser.server, new_code(browser, client, admin, **overrides), client)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def fresh_tokens(server: Server, client: str, admin: str, **overrides: Any) -> dict[str, Any]:
    """Tokens through a browser of its own (for dedicated admins)."""
    browser = Browser.open(server)
    try:
        return new_tokens(browser, client, admin, **overrides)
    finally:
        browser.close()


def rotate(server: Server, refresh_token: str, client: str = "c1", **extra: str) -> dict[str, Any]:
    response = refresh(server, refresh_token, client, **extra)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_live(server: Server, access_token: str, tenant: str = "a") -> None:
    response = api(server, access_token, tenant)
    assert response.status_code == 200, response.text


def grant_of_refresh(server: Server, refresh_token: str) -> int:
    rows = server.sql("SELECT grant_id FROM refresh_tokens WHERE token_hash = :h", {"h": digest(refresh_token)})
    assert len(rows) == 1, rows
    return int(rows[0][0])


# ---- E-01 .. E-03: rotation and reuse -------------------------------------------------------------


def test_E01_rotation(server: Server, admin_browser: Browser) -> None:
    """E-01: R1 -> a new access token and a new refresh token R2 != R1; the seed's response shape."""
    first = new_tokens(admin_browser)
    second = rotate(server, first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"].startswith("cxr_") and second["access_token"].startswith("cxa_")
    assert second["token_type"].lower() == "bearer"
    assert second["expires_in"] == 3600
    assert second["scope"] == first["scope"]
    assert_live(server, second["access_token"])
    # Rotation does not end the access token issued before it (it simply expires).
    assert_live(server, first["access_token"])
    # The rotated token is spent; the new one works (and rotates again).
    third = rotate(server, second["refresh_token"])
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3


def test_E01_form_body_rotation(server: Server, admin_browser: Browser) -> None:
    """E-01: the refresh grant works with an RFC 6749 form body too."""
    first = new_tokens(admin_browser)
    response = token_post(server, data=refresh_body(server, first["refresh_token"]))
    assert response.status_code == 200, response.text
    assert response.headers.get("cache-control") == "no-store"
    assert response.json()["refresh_token"] != first["refresh_token"]


def test_E02_reuse_revokes_family(server: Server, admin_browser: Browser) -> None:
    """E-02: replaying R1 after rotation is invalid_grant, and then R2 is invalid_grant and AT2 is RS-401."""
    first = new_tokens(admin_browser)
    second = rotate(server, first["refresh_token"])
    assert_token_error(refresh(server, first["refresh_token"]), 400, "invalid_grant")
    assert_token_error(refresh(server, second["refresh_token"]), 400, "invalid_grant")
    assert_dead_token(server, second["access_token"])
    assert_dead_token(server, first["access_token"])
    grant_id = grant_of_refresh(server, first["refresh_token"])
    row = server.sql("SELECT revoked_at, revoked_reason FROM grants WHERE id = :g", {"g": grant_id})[0]
    assert row.revoked_at is not None and row.revoked_reason == "refresh_reuse"


def test_E02_reuse_is_an_audit_event(server: Server, admin_browser: Browser) -> None:
    """E-02: reuse is logged as `refresh_reuse_detected`, high severity, naming the client and tenant."""
    first = new_tokens(admin_browser)
    rotate(server, first["refresh_token"])
    assert_token_error(refresh(server, first["refresh_token"]), 400, "invalid_grant")
    grant_id = grant_of_refresh(server, first["refresh_token"])
    event = wait_for_audit(server, "refresh_reuse_detected", lambda e: e.get("grant") == grant_id)
    assert event["severity"] == "high"
    assert event["client_id"] == server.clients["c1"]["client_id"]
    assert event["tenant"] == "a"
    assert first["refresh_token"] not in server.log()


def test_E03_reuse_of_an_older_generation(server: Server, admin_browser: Browser) -> None:
    """E-03: R1 -> R2 -> R3; replaying R1 is invalid_grant and revokes R3 and AT3."""
    first = new_tokens(admin_browser)
    second = rotate(server, first["refresh_token"])
    third = rotate(server, second["refresh_token"])
    assert_live(server, third["access_token"])
    assert_token_error(refresh(server, first["refresh_token"]), 400, "invalid_grant")
    assert_token_error(refresh(server, third["refresh_token"]), 400, "invalid_grant")
    assert_dead_token(server, third["access_token"])
    assert_dead_token(server, second["access_token"])


# ---- E-05, E-06: client binding and authentication -------------------------------------------------


def test_E05_refresh_token_bound_to_its_client(server: Server, admin_browser: Browser) -> None:
    """E-05: c1's refresh token presented by c2 (same tenant) or cb (tenant B) is invalid_grant;
    the token is left untouched and c1 can still use it."""
    issued = new_tokens(admin_browser)
    for thief in ("c2", "cb"):
        assert_token_error(refresh(server, issued["refresh_token"], thief), 400, "invalid_grant")
        assert_token_error(refresh(server, issued["refresh_token"], thief), 400, "invalid_grant")
    assert_live(server, issued["access_token"])
    renewed = rotate(server, issued["refresh_token"])
    assert_live(server, renewed["access_token"])


def test_E06_refresh_without_client_authentication(server: Server, admin_browser: Browser) -> None:
    """E-06: no client_secret, a wrong one, or no client at all: 401 invalid_client; R stays usable."""
    issued = new_tokens(admin_browser)
    c1 = server.clients["c1"]
    base = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    for body in (
        {**base, "client_id": c1["client_id"]},
        {**base, "client_id": c1["client_id"], "client_secret": ""},
        {**base, "client_id": c1["client_id"], "client_secret": secrets.token_urlsafe(32)},
        dict(base),
    ):
        assert_token_error(token_post(server, json=body), 401, "invalid_client")
    rotate(server, issued["refresh_token"])


# ---- E-07: scope ------------------------------------------------------------------------------


def test_E07_scope_cannot_grow(server: Server, admin_browser: Browser) -> None:
    """E-07: a wider scope is invalid_scope (token untouched); a narrower subset gives that scope."""
    issued = new_tokens(admin_browser, "cs", scope="users/import actors/read")
    assert issued["scope"] == "users/import actors/read"
    for wider in ("all", "users/import actors/read actors/write", "statements/write", "admin"):
        assert_token_error(refresh(server, issued["refresh_token"], "cs", scope=wider), 400, "invalid_scope")
    narrower = rotate(server, issued["refresh_token"], "cs", scope="actors/read")
    assert narrower["scope"] == "actors/read"
    assert introspect(server, narrower["access_token"], "cs")["scope"] == "actors/read"
    forbidden = api(server, narrower["access_token"])
    assert forbidden.status_code == 403, forbidden.text
    # Asking for less once does not shrink the grant: omitting scope gives what was consented.
    again = rotate(server, narrower["refresh_token"], "cs")
    assert again["scope"] == "users/import actors/read"
    assert_live(server, again["access_token"])
    # ... but never more than that.
    assert_token_error(refresh(server, again["refresh_token"], "cs", scope="all"), 400, "invalid_scope")


# ---- E-08: lifetime -----------------------------------------------------------------------------


def test_E08_lifetimes_as_configured(server: Server, admin_browser: Browser) -> None:
    """E-08: each refresh token lives 30 days unused (idle limit, OPENXP_REFRESH_TOKEN_TTL); the family
    365 days (absolute limit, OPENXP_REFRESH_ABSOLUTE_TTL); rotation does not move the family's end."""
    issued = new_tokens(admin_browser)
    grant_id = grant_of_refresh(server, issued["refresh_token"])
    family = server.sql("SELECT created_at, expires_at FROM grants WHERE id = :g", {"g": grant_id})[0]
    assert abs((family.expires_at - family.created_at) - 365 * 86400) < 1
    renewed = rotate(server, issued["refresh_token"])
    row = server.sql(
        "SELECT created_at, expires_at FROM refresh_tokens WHERE token_hash = :h",
        {"h": digest(renewed["refresh_token"])},
    )[0]
    assert abs((row.expires_at - row.created_at) - 30 * 86400) < 1
    after = server.sql("SELECT expires_at FROM grants WHERE id = :g", {"g": grant_id})[0][0]
    assert after == family.expires_at


def test_E08_idle_expiry(server: Server, admin_browser: Browser) -> None:
    """E-08: an unused refresh token past its (idle) lifetime is invalid_grant."""
    issued = new_tokens(admin_browser)
    server.sql(
        "UPDATE refresh_tokens SET expires_at = :t WHERE token_hash = :h",
        {"t": time.time() - 1, "h": digest(issued["refresh_token"])},
    )
    assert_token_error(refresh(server, issued["refresh_token"]), 400, "invalid_grant")
    # Just inside the lifetime it still works.
    other = new_tokens(admin_browser)
    server.sql(
        "UPDATE refresh_tokens SET expires_at = :t WHERE token_hash = :h",
        {"t": time.time() + 30, "h": digest(other["refresh_token"])},
    )
    rotate(server, other["refresh_token"])


def test_E08_absolute_expiry(server: Server, admin_browser: Browser) -> None:
    """E-08: once the family (grant) is past its absolute lifetime, even a just-rotated R is invalid_grant."""
    issued = new_tokens(admin_browser)
    fresh = rotate(server, issued["refresh_token"])
    grant_id = grant_of_refresh(server, fresh["refresh_token"])
    server.sql(
        "UPDATE grants SET expires_at = :t, created_at = created_at - 400 * 86400 WHERE id = :g",
        {"t": time.time() - 1, "g": grant_id},
    )
    assert_token_error(refresh(server, fresh["refresh_token"]), 400, "invalid_grant")


def test_E08_rotation_never_outlives_the_family(server: Server, admin_browser: Browser) -> None:
    """E-08: a refresh token minted close to the family's end expires with the family, not 30 days later."""
    issued = new_tokens(admin_browser)
    grant_id = grant_of_refresh(server, issued["refresh_token"])
    limit = time.time() + 120
    server.sql("UPDATE grants SET expires_at = :t WHERE id = :g", {"t": limit, "g": grant_id})
    fresh = rotate(server, issued["refresh_token"])
    rows = server.sql(
        "SELECT expires_at FROM refresh_tokens WHERE token_hash = :h", {"h": digest(fresh["refresh_token"])}
    )
    assert rows[0][0] <= limit + 0.001


# ---- E-09: token type confusion -----------------------------------------------------------------


def test_E09_token_type_confusion(server: Server, admin_browser: Browser) -> None:
    """E-09: an access token or a code as refresh_token is invalid_grant; R as a Bearer is RS-401."""
    issued = new_tokens(admin_browser)
    code = new_code(admin_browser)
    assert_token_error(refresh(server, issued["access_token"]), 400, "invalid_grant")
    assert_token_error(refresh(server, code), 400, "invalid_grant")
    assert_token_error(refresh(server, issued["refresh_token"][4:]), 400, "invalid_grant")
    assert_token_error(refresh(server, "cxr_" + secrets.token_urlsafe(32)), 400, "invalid_grant")
    assert_token_error(refresh(server, "x" * 5000), 400, "invalid_grant")
    response = api(server, issued["refresh_token"])
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers.get("www-authenticate", "")
    # None of that spent or revoked anything.
    assert_live(server, issued["access_token"])
    rotate(server, issued["refresh_token"])
    assert exchange(server, code).status_code == 200


def test_E09_missing_refresh_token(server: Server) -> None:
    """E-09: grant_type=refresh_token without refresh_token is invalid_request."""
    c1 = server.clients["c1"]
    body = {"grant_type": "refresh_token", "client_id": c1["client_id"], "client_secret": c1["client_secret"]}
    response = token_post(server, json=body)
    assert_token_error(response, 400, "invalid_request")


# ---- E-10: security events -----------------------------------------------------------------------


def test_E10_password_change_revokes(server: Server) -> None:
    """E-10: after the admin's password changes, their refresh tokens are invalid_grant and access tokens RS-401."""
    admin = dedicated_admin(server, "e10pw")
    issued = fresh_tokens(server, "c1", admin)
    untouched = fresh_tokens(server, "c1", "adminA")
    assert_live(server, issued["access_token"])
    email = server.admins[admin]["email"]
    server.cli("admin", "set-password", "--tenant", "a", "--email", email, "--password-stdin", stdin=PASSWORD + "!\n")
    assert_token_error(refresh(server, issued["refresh_token"]), 400, "invalid_grant")
    assert_dead_token(server, issued["access_token"])
    # Another admin's tokens are not affected.
    assert_live(server, untouched["access_token"])
    rotate(server, untouched["refresh_token"])


def test_E10_admin_disabled_revokes(server: Server) -> None:
    """E-10: disabling the admin ends their refresh and access tokens, and enabling them again does not revive them."""
    admin = dedicated_admin(server, "e10dis")
    issued = fresh_tokens(server, "c1", admin)
    email = server.admins[admin]["email"]
    server.cli("admin", "disable", "--tenant", "a", "--email", email)
    assert_token_error(refresh(server, issued["refresh_token"]), 400, "invalid_grant")
    assert_dead_token(server, issued["access_token"])
    server.cli("admin", "enable", "--tenant", "a", "--email", email)
    assert_dead_token(server, issued["access_token"])
    assert_token_error(refresh(server, issued["refresh_token"]), 400, "invalid_grant")


def test_E10_client_disabled_revokes(server: Server, admin_browser: Browser) -> None:
    """E-10: disabling the client ends its tokens: refresh is refused (401 invalid_client while disabled,
    invalid_grant after re-enabling) and the access token is RS-401."""
    client = dedicated_client(server, "e10cl")
    issued = new_tokens(admin_browser, client)
    client_id = server.clients[client]["client_id"]
    server.cli("client", "disable", "--tenant", "a", client_id)
    assert_token_error(refresh(server, issued["refresh_token"], client), 401, "invalid_client")
    assert_dead_token(server, issued["access_token"])
    server.cli("client", "enable", "--tenant", "a", client_id)
    assert_token_error(refresh(server, issued["refresh_token"], client), 400, "invalid_grant")
    assert_dead_token(server, issued["access_token"])


def test_E10_secret_rotation_with_revoke_tokens(server: Server, admin_browser: Browser) -> None:
    """E-10: `client rotate-secret --revoke-tokens` ends the client's refresh and access tokens."""
    client = dedicated_client(server, "e10rot")
    issued = new_tokens(admin_browser, client)
    client_id = server.clients[client]["client_id"]
    rotated = server.cli_json("client", "rotate-secret", "--tenant", "a", client_id, "--revoke-tokens")
    server.clients[client]["client_secret"] = rotated["client_secret"]
    assert_token_error(refresh(server, issued["refresh_token"], client), 400, "invalid_grant")
    assert_dead_token(server, issued["access_token"])


# ---- E-11, E-12, E-13 -----------------------------------------------------------------------------


def test_E11_tenant_survives_refresh(server: Server, admin_browser: Browser) -> None:
    """E-11: the refreshed access token is tenant A's; no parameter or header switches it to B."""
    issued = new_tokens(admin_browser)
    body = refresh_body(server, issued["refresh_token"], tenant="b")
    response = token_post(server, json=body, headers={"X-CXP-Tenant": "b"})
    if response.status_code == 400:
        assert response.json()["error"] == "invalid_request"
        renewed = rotate(server, issued["refresh_token"])
    else:
        assert response.status_code == 200, response.text
        renewed = response.json()
    assert introspect(server, renewed["access_token"])["tenant"] == "a"
    assert_live(server, renewed["access_token"], "a")
    mismatch = api(server, renewed["access_token"], "b")
    assert mismatch.status_code == 403, mismatch.text
    assert "tenant_mismatch" in mismatch.text


def test_E12_refresh_tokens_stored_as_digests(server: Server, admin_browser: Browser) -> None:
    """E-12: refresh (and access) tokens are stored only as SHA-256 digests; lookup is by digest."""
    issued = new_tokens(admin_browser)
    renewed = rotate(server, issued["refresh_token"])
    for table in ("refresh_tokens", "access_tokens"):
        rows = server.sql(f"SELECT * FROM {table}")
        assert rows
        for row in rows:
            assert HEX64.fullmatch(row.token_hash), row.token_hash
            text = " ".join(str(v) for v in row)
            for token in (issued, renewed):
                assert token["refresh_token"] not in text and token["access_token"] not in text
                assert token["refresh_token"][4:] not in text and token["access_token"][4:] not in text
    for token, table in ((renewed["refresh_token"], "refresh_tokens"), (renewed["access_token"], "access_tokens")):
        rows = server.sql(f"SELECT count(*) FROM {table} WHERE token_hash = :h", {"h": digest(token)})
        assert rows[0][0] == 1


def test_E13_client_without_refresh_grant(server: Server, admin_browser: Browser) -> None:
    """E-13: cnr (no refresh_token grant) gets no refresh token, and a refresh attempt is unauthorized_client."""
    response = exchange(server, new_code(admin_browser, "cnr"), "cnr")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert body["access_token"].startswith("cxa_")
    assert_live(server, body["access_token"])
    for presented in ("cxr_" + secrets.token_urlsafe(32), new_tokens(admin_browser)["refresh_token"]):
        assert_token_error(refresh(server, presented, "cnr"), 400, "unauthorized_client")
