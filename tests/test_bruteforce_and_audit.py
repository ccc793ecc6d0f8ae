"""SECURITY.md N (brute force), P (audit), and the rest of L, M, O and Q that the
authorization server answers for, on a server with small failure budgets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from argon2 import PasswordHasher

from tests.support.flow import Browser, auth_params, hidden_fields, query_of, refresh, token_post, tokens
from tests.support.provision import create_client, dedicated_admin
from tests.support.records import audit_events, digest, wait_for_audit
from tests.support.server import PASSWORD, Server, destroy_server, make_server

LIMITS = {
    "OPENXP_RATE_LOGIN_PER_ACCOUNT": "4",
    "OPENXP_RATE_LOGIN_PER_IP": "12",
    "OPENXP_RATE_CLIENT_AUTH": "5",
    "OPENXP_RATE_GRANT_FAILURES": "1000",
    "OPENXP_RATE_LOCKOUT": "300",
}


@pytest.fixture(scope="module")
def strict() -> Iterator[Server]:
    srv = make_server(extra_env=LIMITS)
    try:
        yield srv
    finally:
        destroy_server(srv)


def login_page(server: Server, http: httpx.Client, client: str = "c1") -> httpx.Response:
    page = http.get("/auth/oauth/authorize", params=auth_params(server, client))
    assert page.status_code == 200 and 'action="/auth/login"' in page.text, page.text
    return page


def try_login(server: Server, email: str, password: str, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        fields = hidden_fields(login_page(server, http).text)
        return http.post("/auth/login", data={**fields, "email": email, "password": password}, headers=headers or {})


def unlock_all(server: Server) -> None:
    """Let every lock run out (as if its lockout period had passed)."""
    server.sql("UPDATE throttles SET locked_until = 0, failures = 0")


def test_N01_N02_N07_password_guessing_locks_the_account_for_a_while(strict: Server) -> None:
    """N-01: after the budget of wrong passwords the account is locked (429 with Retry-After), the
    right password is refused during the lock, and the lock lifts by itself. N-02: the lock is
    temporary, so an attacker cannot lock an admin out for good. N-07: the lock is audited."""
    admin = strict.admins[dedicated_admin(strict, "n01")]
    statuses = [try_login(strict, admin["email"], f"wrong password {i}").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 200]  # the same "Incorrect email or password." page
    locked = try_login(strict, admin["email"], PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "Too many failed sign-in attempts" in locked.text
    wait_for_audit(strict, "login_throttled", lambda e: True)

    unlock_all(strict)
    after = try_login(strict, admin["email"], PASSWORD)
    assert after.status_code == 303, after.text
    assert after.headers["location"].startswith("/auth/oauth/consent")


def test_N03_N05_one_address_trying_many_accounts_is_throttled_whatever_it_claims(strict: Server) -> None:
    """N-03: one address trying one password each on many usernames meets the per-address budget.
    N-05: a new X-Forwarded-For or X-Real-IP on every request does not reset it (no trusted proxy
    is configured, so the header is not believed)."""
    unlock_all(strict)
    statuses = []
    for i in range(14):
        spoof = {"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"198.51.100.{i}"}
        statuses.append(try_login(strict, f"user{i}@example.com", "guess", headers=spoof).status_code)
    assert 429 in statuses, statuses
    assert statuses.index(429) <= 12
    unlock_all(strict)


def test_N04_client_secret_guessing_is_throttled_and_the_rightful_client_keeps_working(strict: Server) -> None:
    """N-04: wrong secrets for a client are throttled (429 + Retry-After) and logged; the rightful
    client, which knows the secret, is not locked out by someone else's guessing (N-02 spirit)."""
    unlock_all(strict)
    c1 = strict.clients["c1"]
    wrong = {"grant_type": "refresh_token", "refresh_token": "cxr_x", "client_id": c1["client_id"]}
    statuses = [token_post(strict, json={**wrong, "client_secret": f"guess-{i}"}).status_code for i in range(7)]
    assert statuses[0] == 401 and 429 in statuses, statuses
    throttled = token_post(strict, json={**wrong, "client_secret": "guess-again"})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    wait_for_audit(strict, "client_auth_throttled", lambda e: e.get("client_id") == c1["client_id"])
    issued = tokens(strict)
    assert refresh(strict, issued["refresh_token"]).status_code == 200
    unlock_all(strict)


def test_O04_look_alike_email_does_not_sign_in_as_the_account(strict: Server) -> None:
    """O-04: an address differing by Unicode compatibility (full-width letters) or a zero-width joiner
    is another address: it does not sign in to the account it resembles."""
    unlock_all(strict)
    admin = strict.admins[dedicated_admin(strict, "o04")]
    local, domain = admin["email"].split("@")
    fullwidth = "".join(chr(ord(ch) + 0xFEE0) if "a" <= ch <= "z" else ch for ch in local) + "@" + domain
    for email in (fullwidth, local + "\u200d@" + domain):
        assert try_login(strict, email, PASSWORD).status_code == 200  # the failure page, not a 303
    assert try_login(strict, admin["email"], PASSWORD).status_code == 303
    unlock_all(strict)


def test_L05_O06_client_names_are_shown_literally(strict: Server) -> None:
    """L-05, O-06: a client named with markup, template syntax or format strings is shown as text on
    the consent page: escaped, never evaluated."""
    unlock_all(strict)
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(1)> {{7*7}} ${7*7} %s%s%n'
    created = create_client(strict, "xss", name=hostile)
    strict.clients["xss"] = created
    browser = Browser.open(strict)
    try:
        page = browser.authorize(auth_params(strict, "xss"))
        assert page.status_code == 200
        consent = browser.consent_page(browser.login(page, "adminA"))
    finally:
        browser.close()
    for html in (page.text, consent.text):
        assert "<script>alert(1)</script>" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "{{7*7}}" in html and "${7*7}" in html and "%s%s%n" in html
        assert "49" not in html.split("{{7*7}}")[0][-20:]


def test_L07_login_ignores_return_to_parameters(strict: Server) -> None:
    """L-07: the login form's destination is built by the server; a `next` or `return_to` parameter
    pointing elsewhere is never followed."""
    unlock_all(strict)
    with httpx.Client(base_url=strict.base_url, timeout=30) as http:
        fields = hidden_fields(login_page(strict, http).text)
        for target in ("https://evil.test", "//evil.test", "/\\evil.test", "https:evil.test"):
            response = http.post(
                f"/auth/login?next={target}",
                data={**fields, "email": strict.admins["adminA"]["email"], "password": PASSWORD, "next": target},
            )
            if response.status_code == 303:
                assert response.headers["location"].startswith("/auth/oauth/consent?interaction=")
                break
            assert "evil.test" not in response.headers.get("location", "")


def test_M02_weaker_password_hashes_are_upgraded_at_login(strict: Server) -> None:
    """M-02: a hash made with weaker argon2 parameters is replaced at the next successful login."""
    unlock_all(strict)
    admin = strict.admins[dedicated_admin(strict, "m02")]
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    strict.sql("UPDATE accounts SET password_hash = :h WHERE email = :e", {"h": weak, "e": admin["email"]})
    assert try_login(strict, admin["email"], PASSWORD).status_code == 303
    stored = strict.sql("SELECT password_hash FROM accounts WHERE email = :e", {"e": admin["email"]})[0][0]
    assert stored != weak
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_P01_security_events_are_recorded(strict: Server) -> None:
    """P-01: login success and failure, consent approve and deny, code issued, token issued, refresh,
    refresh reuse, revocation, client-auth failure and tenant mismatch each leave a structured
    record with a timestamp and the actor's ids."""
    unlock_all(strict)
    issued = tokens(strict)
    second = refresh(strict, issued["refresh_token"])
    assert second.status_code == 200
    assert refresh(strict, issued["refresh_token"]).status_code == 400  # reuse
    c1 = strict.clients["c1"]
    revoked = token_post(strict, json={"token": "cxa_x"}, auth=(c1["client_id"], "wrong"))
    assert revoked.status_code in (400, 401)
    httpx.post(
        f"{strict.base_url}/auth/oauth/revoke",
        data={"token": second.json()["refresh_token"]},
        auth=(c1["client_id"], c1["client_secret"]),
        timeout=30,
    )
    assert try_login(strict, strict.admins["adminA"]["email"], "not the password").status_code == 200
    browser = Browser.open(strict)
    try:
        denied = browser.approve(auth_params(strict), decision="deny")
        assert query_of(denied.headers["location"])["error"] == ["access_denied"]
    finally:
        browser.close()
    httpx.post(
        f"{strict.base_url}/api/import/users",
        json={"users": []},
        headers={"authorization": f"Bearer {tokens(strict)['access_token']}", "X-CXP-Tenant": "b"},
        timeout=30,
    )
    expected = [
        "login_succeeded",
        "login_failed",
        "code_issued",
        "consent_denied",
        "token_issued",
        "token_refreshed",
        "refresh_reuse_detected",
        "token_revoked",
        "client_auth_failed",
        "tenant_mismatch",
    ]
    for name in expected:
        wait_for_audit(strict, name, lambda e: True)
        record = audit_events(strict, name)[-1]
        assert isinstance(record["ts"], float) and record["severity"] in ("info", "warning", "high")
    assert audit_events(strict, "refresh_reuse_detected")[-1]["severity"] == "high"


def test_P03_hostile_values_cannot_forge_log_lines(strict: Server) -> None:
    """P-03, P-02: a hostile client id with CR/LF in a failed client authentication cannot forge a log
    line (an unknown id is logged as a digest reference, never as its text, which may be a secret
    typed into the wrong field)."""
    unlock_all(strict)
    forged = "nobody\n2026-01-01 INFO openxp.audit login success user=root"
    token_post(strict, json={"grant_type": "refresh_token", "refresh_token": "x", "client_id": forged,
                             "client_secret": "x"})  # fmt: skip
    wait_for_audit(strict, "client_auth_failed", lambda e: e.get("client_id", "").startswith("unknown:"))
    assert not any(line.startswith("2026-01-01 INFO openxp.audit") for line in strict.log().splitlines())
    assert "login success user=root" not in strict.log()
    unlock_all(strict)


def test_Q06_deleting_a_client_ends_its_codes_and_tokens(strict: Server) -> None:
    """Q-06: after `openxp client delete`, the client's tokens are dead and its authorization
    requests get the error page."""
    unlock_all(strict)
    created = create_client(strict, "q06")
    strict.clients["q06"] = created
    issued = tokens(strict, "q06")
    strict.cli("client", "delete", "--tenant", "a", created["client_id"])
    after = httpx.post(
        f"{strict.base_url}/api/import/users",
        json={"users": []},
        headers={"authorization": f"Bearer {issued['access_token']}", "X-CXP-Tenant": "a"},
        timeout=30,
    )
    assert after.status_code == 401
    assert strict.sql("SELECT COUNT(*) FROM access_tokens WHERE token_hash = :h",
                      {"h": digest(issued["access_token"])})[0][0] == 0  # fmt: skip
    page = httpx.get(f"{strict.base_url}/auth/oauth/authorize", params=auth_params(strict, "q06"), timeout=30)
    assert page.status_code == 400 and "location" not in page.headers
