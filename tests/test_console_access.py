"""The tenant console's gate over plain HTTP: sign-in rules, roles, tenants, CSRF and Origin.

Security cases: B-01 (login CSRF), B-11 (fresh session id), B-12 (sign-out ends the session
server-side), L-01/L-03/L-13 (headers), L-05 (names rendered inert), L-08 (CSRF and Origin on
every change), L-09 (no session, another tenant's session, or a bearer token gets no page),
I-series isolation (another tenant's ids are 404).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from tests.support import flow
from tests.support.console import add_admin, csrf_of, sign_in
from tests.support.server import PASSWORD, Server, destroy_server, make_server


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = make_server()
    add_admin(srv, "ownerA", "ownera@example.com", "owner")
    try:
        yield srv
    finally:
        destroy_server(srv)


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[tuple[httpx.Client, str]]:
    http, csrf = sign_in(server, "a", "adminA")
    yield http, csrf
    http.close()


@pytest.fixture(scope="module")
def viewer(server: Server) -> Iterator[tuple[httpx.Client, str]]:
    http, csrf = sign_in(server, "a", "viewerA")
    yield http, csrf
    http.close()


def _client_count(server: Server, tenant: str = "a") -> int:
    return len(server.cli_json("client", "list", "--tenant", tenant)["clients"])


def test_unknown_tenant_is_404_and_no_session_goes_to_sign_in(server: Server) -> None:
    assert httpx.get(f"{server.base_url}/console/nosuch/").status_code == 404
    assert httpx.get(f"{server.base_url}/console/NOT..valid/").status_code == 404
    page = httpx.get(f"{server.base_url}/console/a/integrations")
    assert page.status_code == 303 and page.headers["location"] == "/console/a/"
    bare = httpx.get(f"{server.base_url}/console/a")
    assert bare.status_code == 308 and bare.headers["location"] == "/console/a/"


def test_sign_in_form_uses_the_authorization_flows_fields_and_headers(server: Server) -> None:
    page = httpx.get(f"{server.base_url}/console/a/")
    assert page.status_code == 200
    assert 'name="email"' in page.text and 'name="password"' in page.text
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp  # L-01, L-03: no script at all here
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"  # L-13


def test_wrong_password_gives_the_generic_error_and_no_session(server: Server) -> None:
    with httpx.Client(base_url=server.base_url) as http:
        page = http.get("/console/a/")
        wrong = http.post(
            "/console/a/login",
            data={"csrf_token": csrf_of(page.text), "email": "admina@example.com", "password": "not the password"},
        )
        assert wrong.status_code == 200 and "Incorrect email or password." in wrong.text
        assert http.get("/console/a/integrations").status_code == 303


def test_an_admin_of_another_tenant_does_not_get_in(server: Server) -> None:
    # adminB's credentials at tenant a's form: no such account in a (B-13 generic answer).
    with httpx.Client(base_url=server.base_url) as http:
        page = http.get("/console/a/")
        refused = http.post(
            "/console/a/login",
            data={"csrf_token": csrf_of(page.text), "email": "adminb@example.com", "password": PASSWORD},
        )
        assert refused.status_code == 200 and "Incorrect email or password." in refused.text
    # Signed in at b, the session is no session for a (L-09).
    http_b, _ = sign_in(server, "b", "adminB")
    try:
        assert http_b.get("/console/a/integrations").status_code == 303
        assert http_b.get("/console/b/integrations").status_code == 200
    finally:
        http_b.close()


def test_login_post_without_csrf_or_from_another_origin_is_refused(server: Server) -> None:
    """B-01: the console's sign-in form is CSRF- and Origin-checked like the flow's."""
    with httpx.Client(base_url=server.base_url) as http:
        page = http.get("/console/a/")
        creds = {"email": "admina@example.com", "password": PASSWORD}
        assert http.post("/console/a/login", data=creds).status_code == 403
        foreign = http.post(
            "/console/a/login",
            data={**creds, "csrf_token": csrf_of(page.text)},
            headers={"origin": "https://evil.test"},
        )
        assert foreign.status_code == 403
        assert http.get("/console/a/integrations").status_code == 303


def test_sign_in_gives_a_fresh_session_id(server: Server) -> None:
    """B-11: the cookie before sign-in is not the cookie after."""
    with httpx.Client(base_url=server.base_url) as http:
        page = http.get("/console/a/")
        before = dict(http.cookies)
        done = http.post(
            "/console/a/login",
            data={"csrf_token": csrf_of(page.text), "email": "admina@example.com", "password": PASSWORD},
        )
        assert done.status_code == 303
        assert dict(http.cookies) != before
        stale = httpx.get(f"{server.base_url}/console/a/integrations", cookies=before)
        assert stale.status_code == 303


def test_sign_out_ends_the_session_on_the_server(server: Server) -> None:
    """B-12: the old cookie, replayed after sign-out, is no session."""
    http, csrf = sign_in(server, "a", "adminA")
    try:
        cookies = dict(http.cookies)
        out = http.post("/console/a/logout", data={"csrf_token": csrf})
        assert out.status_code == 200 and "Signed out" in out.text
        replay = httpx.get(f"{server.base_url}/console/a/integrations", cookies=cookies)
        assert replay.status_code == 303
    finally:
        http.close()


def test_viewer_reads_but_every_change_is_403(server: Server, viewer: tuple[httpx.Client, str]) -> None:
    http, csrf = viewer
    for path in ("/console/a/integrations", "/console/a/connected", "/console/a/keys"):
        page = http.get(path)
        assert page.status_code == 200, path
        assert page.text.count('method="post"') == 1, path  # sign-out only: no forms a viewer cannot use
    assert http.get("/console/a/account").status_code == 200
    assert http.get("/console/a/integrations/new").status_code == 403
    assert http.get("/console/a/admins").status_code == 403
    before = _client_count(server)
    client_id = server.clients["c1"]["client_id"]
    key = server.apikeys["KA"]["key"]
    for path, data in (
        ("/console/a/integrations", {"name": "x", "redirect_uris": "https://x.a.test/cb", "scope:all": "on"}),
        (f"/console/a/integrations/{client_id}/disable", {}),
        (f"/console/a/integrations/{client_id}/rotate", {}),
        (f"/console/a/integrations/{client_id}/delete", {}),
        ("/console/a/keys", {"name": "x", "scope:all": "on"}),
        (f"/console/a/keys/{key}/rotate", {}),
        ("/console/a/connected/1/revoke", {}),
    ):
        refused = http.post(path, data={**data, "csrf_token": csrf})
        assert refused.status_code == 403, path
    assert _client_count(server) == before
    assert not server.cli_json("client", "list", "--tenant", "a")["clients"][0]["disabled"]


def test_admin_may_not_manage_admins(admin: tuple[httpx.Client, str]) -> None:
    http, _ = admin
    assert http.get("/console/a/admins").status_code == 403
    assert "/console/a/admins" not in http.get("/console/a/integrations").text


def test_another_tenants_ids_are_404(server: Server, admin: tuple[httpx.Client, str]) -> None:
    http, csrf = admin
    foreign_client = server.clients["cb"]["client_id"]
    foreign_key = server.apikeys["KB"]["key"]
    assert http.get(f"/console/a/integrations/{foreign_client}").status_code == 404
    assert http.get("/console/a/integrations/doesnotexist").status_code == 404
    for path in (
        f"/console/a/integrations/{foreign_client}/disable",
        f"/console/a/integrations/{foreign_client}/delete",
        f"/console/a/keys/{foreign_key}/disable",
        "/console/a/integrations/" + server.clients["c1"]["client_id"] + "/explode",
    ):
        assert http.post(path, data={"csrf_token": csrf}).status_code == 404, path
    # A grant of tenant b, revoked through tenant a's console: 404, and it stays usable.
    b_tokens = flow.tokens(server, "cb", admin="adminB")
    grant_id = server.sql("SELECT grant_id FROM access_tokens ORDER BY created_at DESC LIMIT 1")[0][0]
    assert http.post(f"/console/a/connected/{grant_id}/revoke", data={"csrf_token": csrf}).status_code == 404
    assert flow.api(server, b_tokens["access_token"], tenant="b").status_code != 401
    assert not server.cli_json("client", "list", "--tenant", "b")["clients"][0]["disabled"]


def test_every_change_needs_the_csrf_token_and_our_origin(server: Server, admin: tuple[httpx.Client, str]) -> None:
    """L-08: without a token, with another session's token, and from a hostile Origin: 403, nothing changes."""
    http, csrf = admin
    other, other_csrf = sign_in(server, "a", "ownerA")
    other.close()
    client_id = server.clients["c2"]["client_id"]
    key = server.apikeys["KA"]["key"]
    before = _client_count(server)
    for path, data in (
        ("/console/a/integrations", {"name": "csrf", "redirect_uris": "https://csrf.a.test/cb", "scope:all": "on"}),
        (f"/console/a/integrations/{client_id}/disable", {}),
        (f"/console/a/integrations/{client_id}/rotate", {}),
        ("/console/a/keys", {"name": "csrf", "scope:all": "on"}),
        (f"/console/a/keys/{key}/disable", {}),
        ("/console/a/logout", {}),
    ):
        data = {**data, "confirm": "1"}  # a form body, so only the missing token is wrong
        assert http.post(path, data=data).status_code == 403, path
        assert http.post(path, data={**data, "csrf_token": other_csrf}).status_code == 403, path
        hostile = http.post(path, data={**data, "csrf_token": csrf}, headers={"origin": "https://evil.test"})
        assert hostile.status_code == 403, path
    assert _client_count(server) == before
    assert http.get("/console/a/integrations").status_code == 200  # still signed in
    key_row = next(k for k in server.cli_json("apikey", "list", "--tenant", "a")["keys"] if k["key"] == key)
    assert not key_row["disabled"]


def test_a_bearer_token_is_no_console_session(server: Server) -> None:
    """L-09: an API client's access token opens no console page."""
    token = flow.tokens(server, "c1")["access_token"]
    page = httpx.get(f"{server.base_url}/console/a/integrations", headers={"authorization": f"Bearer {token}"})
    assert page.status_code == 303


def test_malformed_forms_are_a_clear_400(admin: tuple[httpx.Client, str]) -> None:
    http, csrf = admin
    doubled = http.post(
        "/console/a/keys",
        content=f"csrf_token={csrf}&name=a&name=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert doubled.status_code == 400
    assert http.post("/console/a/keys", json={"csrf_token": csrf}).status_code == 400
    nul = http.post("/console/a/keys", data={"csrf_token": csrf, "name": "a\x00b", "scope:all": "on"})
    assert nul.status_code == 400


def test_hostile_names_are_rendered_inert(server: Server, admin: tuple[httpx.Client, str]) -> None:
    """L-05: a client name full of markup shows as text on the list and detail pages."""
    http, csrf = admin
    name = '<script>alert(1)</script>"><img src=x onerror=alert(1)>{{7*7}}'
    made = http.post(
        "/console/a/integrations",
        data={"csrf_token": csrf, "name": name, "redirect_uris": "https://xss.a.test/cb", "scope:all": "on"},
    )
    assert made.status_code == 200
    listing = http.get("/console/a/integrations").text
    assert "<script>alert(1)" not in listing and "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    assert "<img src=x" not in listing and "{{7*7}}" in listing


def test_create_form_errors_sit_next_to_their_fields(admin: tuple[httpx.Client, str]) -> None:
    http, csrf = admin
    bad = http.post(
        "/console/a/integrations",
        data={"csrf_token": csrf, "name": "", "redirect_uris": "http://example.com/cb"},
    )
    assert bad.status_code == 400
    assert 'id="name-error"' in bad.text and 'id="redirect_uris-error"' in bad.text and 'id="scopes-error"' in bad.text
    assert "plain http is allowed only for loopback hosts" in bad.text


def test_owner_manages_admins_and_the_last_owner_stays(server: Server) -> None:
    http, csrf = sign_in(server, "a", "ownerA")
    try:
        page = http.get("/console/a/admins")
        assert page.status_code == 200 and "viewera@example.com" in page.text
        owner_id = server.sql("SELECT id FROM accounts WHERE email = 'ownera@example.com'")[0][0]
        demote = http.post(f"/console/a/admins/{owner_id}/role", data={"csrf_token": csrf, "role": "admin"})
        assert demote.status_code == 400 and "last owner" in demote.text
        disable = http.post(f"/console/a/admins/{owner_id}/disable", data={"csrf_token": csrf})
        assert disable.status_code == 400 and "last owner" in disable.text
        assert server.sql("SELECT role, disabled FROM accounts WHERE id = :i", {"i": owner_id})[0] == ("owner", False)
        made = http.post(
            "/console/a/admins",
            data={"csrf_token": csrf, "email": "new-viewer@example.com", "password": PASSWORD, "role": "viewer"},
        )
        assert made.status_code == 303
        short = http.post(
            "/console/a/admins",
            data={"csrf_token": csrf, "email": "short@example.com", "password": "short", "role": "viewer"},
        )
        assert short.status_code == 400 and 'id="password-error"' in short.text
        new_id = server.sql("SELECT id FROM accounts WHERE email = 'new-viewer@example.com'")[0][0]
        promoted = http.post(f"/console/a/admins/{new_id}/role", data={"csrf_token": csrf, "role": "owner"})
        assert promoted.status_code == 303
        # With a second owner, the first may step down; then the second is the last one.
        assert (
            http.post(f"/console/a/admins/{owner_id}/role", data={"csrf_token": csrf, "role": "owner"}).status_code
            == 303
        )
        bogus = http.post(f"/console/a/admins/{new_id}/role", data={"csrf_token": csrf, "role": "superuser"})
        assert bogus.status_code == 400
        foreign = server.sql("SELECT id FROM accounts WHERE email = 'adminb@example.com'")[0][0]
        assert http.post(f"/console/a/admins/{foreign}/disable", data={"csrf_token": csrf}).status_code == 404
        assert server.sql("SELECT disabled FROM accounts WHERE id = :i", {"i": foreign})[0][0] in (False, 0)
    finally:
        http.close()


def test_changing_the_password_ends_the_other_sessions(server: Server) -> None:
    email = "pw-changer@example.com"
    add_admin(server, "pw", email, "admin")
    first, first_csrf = sign_in(server, "a", "pw")
    second, _ = sign_in(server, "a", "pw")
    try:
        page = first.get("/console/a/account")
        assert page.text.count("(this browser)") == 1 and page.text.count("/end") == 2
        wrong = first.post(
            "/console/a/account/password",
            data={
                "csrf_token": first_csrf,
                "current_password": "nope",
                "new_password": "x" * 14,
                "confirm_password": "x" * 14,
            },
        )
        assert wrong.status_code == 400 and 'id="current_password-error"' in wrong.text
        new = "a brand new passphrase"
        done = first.post(
            "/console/a/account/password",
            data={"csrf_token": first_csrf, "current_password": PASSWORD, "new_password": new, "confirm_password": new},
        )
        assert done.status_code == 303
        assert first.get("/console/a/integrations").status_code == 200
        assert second.get("/console/a/integrations").status_code == 303
        third, _ = sign_in(server, "a", "pw", password=new)
        third.close()
        refs = [
            r[0][:16]
            for r in server.sql(
                "SELECT id_hash FROM sessions WHERE account_id = (SELECT id FROM accounts WHERE email = :e)",
                {"e": email},
            )
        ]
        assert len(refs) == 2
        mine = dict(first.cookies)
        own = hashlib.sha256(next(iter(mine.values())).encode()).hexdigest()[:16]
        (other,) = [ref for ref in refs if ref != own]
        ended = first.post(f"/console/a/account/sessions/{other}/end", data={"csrf_token": first_csrf})
        assert ended.status_code == 303
        assert len(server.sql("SELECT 1 FROM sessions WHERE id_hash LIKE :r", {"r": other + "%"})) == 0
        # Another account's session cannot be named from here: 404.
        stranger = server.sql(
            "SELECT id_hash FROM sessions WHERE account_id <> (SELECT id FROM accounts WHERE email = :e)", {"e": email}
        )[0][0]
        assert (
            first.post(f"/console/a/account/sessions/{stranger[:16]}/end", data={"csrf_token": first_csrf}).status_code
            == 404
        )
        assert first.post(f"/console/a/account/sessions/{own}/end", data={"csrf_token": first_csrf}).status_code == 303
        assert httpx.get(f"{server.base_url}/console/a/integrations", cookies=mine).status_code == 303
    finally:
        first.close()
        second.close()
