"""SECURITY.md section I: tenant isolation, I-01..I-11, as far as it applies to what
exists now: ``POST /api/import/users`` (the one tenant-data route), authorization codes
and refresh tokens. The admin console (I-08) and the xAPI LRS (I-11's Basic/launch
half) do not exist yet: their tests below pin that those surfaces answer nothing but
404/401/403 today, and must be extended when the surfaces land."""

from __future__ import annotations

import base64
import json
import secrets
import socket
from typing import Any

import httpx
import pytest

from tests.support.flow import Browser, api, auth_params, exchange, get_code, query_of, refresh, tokens
from tests.support.server import Server

PATH = "/api/import/users"


@pytest.fixture(scope="module")
def token_a(server: Server) -> str:
    return str(tokens(server, "c1")["access_token"])


@pytest.fixture(scope="module")
def token_b(server: Server) -> str:
    return str(tokens(server, "cb", admin="adminB")["access_token"])


def users(email: str, name: str = "Iso Test", **extra: Any) -> dict[str, Any]:
    return {"users": [{"name": name, "attributes": {"Email": email}, **extra}], "verify": False}


def rows_for(server: Server, email: str) -> list[tuple[str, str]]:
    return [
        (str(r[0]), str(r[1]))
        for r in server.sql(
            "SELECT t.name, l.name FROM learners l JOIN tenants t ON t.id = l.tenant_id WHERE l.identifier = :e",
            {"e": email},
        )
    ]


def unique_email(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.com"


def raw_post(server: Server, header_lines: list[str], body: bytes) -> int:
    """Send a request byte for byte (httpx normalises or refuses some header shapes)."""
    host, port = server.base_url.removeprefix("http://").split(":")
    head = "".join(f"{line}\r\n" for line in header_lines)
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\n{head}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        return int(sock.makefile("rb").readline().split(b" ")[1])


def test_I01_token_for_a_naming_b_is_403_without_side_effects(server: Server, token_a: str) -> None:
    """I-01: AT(tenant a) with X-CXP-Tenant: b is 403 tenant_mismatch, writes nothing, and is audited."""
    email = unique_email("i01")
    for method in ("POST", "PUT"):
        body: Any = users(email) if method == "POST" else users(email)["users"]
        response = api(server, token_a, tenant="b", method=method, json=body)
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "tenant_mismatch"
        assert "rows" not in response.json()
    assert rows_for(server, email) == []
    # The same token naming its own tenant works (the 403 was about the tenant, not the token).
    assert api(server, token_a, tenant="a", json=users(email)).status_code == 200
    assert rows_for(server, email) == [("a", "Iso Test")]


def test_I01_tenant_mismatch_is_audited(server: Server, token_a: str) -> None:
    """I-01: a tenant mismatch leaves a tenant_mismatch audit event in the server log."""
    assert api(server, token_a, tenant="b").status_code == 403
    assert '"event":"tenant_mismatch"' in server.log()


def test_I01_token_for_b_naming_a(server: Server, token_b: str) -> None:
    """I-01: the mirror image, AT(tenant b) naming tenant a, is refused the same way."""
    email = unique_email("i01b")
    response = api(server, token_b, tenant="a", json=users(email))
    assert response.status_code == 403
    assert response.json()["error"] == "tenant_mismatch"
    assert rows_for(server, email) == []


def test_I02_missing_tenant_header_is_400_never_a_default(server: Server, token_a: str) -> None:
    """I-02: no X-CXP-Tenant (and no tenant host): 400 tenant_required; nothing is written anywhere."""
    email = unique_email("i02")
    response = api(server, token_a, tenant=None, json=users(email))
    assert response.status_code == 400
    assert response.json()["error"] == "tenant_required"
    assert rows_for(server, email) == []


@pytest.mark.parametrize(
    "value",
    ["B", "A", "a, b", "b, a", "a%00", "a\x00", "../b", "*", "", "b" * 10240, "\uff41", "a\u200b", "%61", "a;b", "a b"],
    ids=[
        "B",
        "A",
        "list-ab",
        "list-ba",
        "pct-nul",
        "nul",
        "dotdot",
        "star",
        "empty",
        "10kb",
        "fullwidth",
        "zero-width",
        "pct-a",
        "semicolon",
        "space",
    ],
)
def test_I03_header_spelling_games_never_reach_b(server: Server, token_a: str, value: str) -> None:
    """I-03: odd X-CXP-Tenant values either resolve to exactly tenant a or fail (400/403/431); none reaches b."""
    email = unique_email("i03")
    status = (
        raw_post(
            server,
            [f"Authorization: Bearer {token_a}", "X-CXP-Tenant: " + value],
            json.dumps(users(email)).encode(),
        )
        if "\x00" not in value
        else raw_post(server, [f"Authorization: Bearer {token_a}"], json.dumps(users(email)).encode())
    )
    if "\x00" in value:
        # A NUL cannot travel in a header; without the header it is I-02.
        assert status == 400
    else:
        assert status in (400, 403, 431), (value, status)
    assert rows_for(server, email) == []


def test_I03_header_name_case_and_duplicates(server: Server, token_a: str) -> None:
    """I-03: a lower-case header name is the same header (b -> 403); the header twice, in either order,
    is 400; padding around a is tolerated only as exactly a."""
    email = unique_email("i03d")
    body = json.dumps(users(email)).encode()
    auth = f"Authorization: Bearer {token_a}"
    assert raw_post(server, [auth, "x-cxp-tenant: b"], body) == 403
    assert raw_post(server, [auth, "X-CXP-Tenant: a", "X-CXP-Tenant: b"], body) == 400
    assert raw_post(server, [auth, "X-CXP-Tenant: b", "X-CXP-Tenant: a"], body) == 400
    assert raw_post(server, [auth, "X-CXP-Tenant: a", "x-cxp-tenant: a"], body) == 400
    assert rows_for(server, email) == []
    padded = raw_post(server, [auth, "X-CXP-Tenant:   a   "], body)
    assert padded in (200, 400)
    assert rows_for(server, email) in ([], [("a", "Iso Test")])


def test_I04_identifiers_resolve_only_inside_the_callers_tenant(server: Server, token_a: str, token_b: str) -> None:
    """I-04: the import's object id is the identifier attribute; tenant a importing an email that exists
    only in b creates a's own user (counted new, not existing) and leaves b's row untouched. (No
    GET/PUT/DELETE-by-id API routes exist yet.)"""
    email = unique_email("i04")
    assert api(server, token_b, tenant="b", json=users(email, "Owned By B")).status_code == 200
    response = api(server, token_a, tenant="a", json=users(email, "Owned By A"))
    assert response.status_code == 200
    assert response.json()["new"] == 1 and response.json()["existing"] == 0
    assert sorted(rows_for(server, email)) == [("a", "Owned By A"), ("b", "Owned By B")]


def test_I05_tenant_in_the_body_is_ignored(server: Server, token_a: str) -> None:
    """I-05: tenant fields in the body (top level, per row, as attributes) never move the write to b."""
    email = unique_email("i05")
    body = {
        "tenant": "b",
        "tenant_id": 2,
        "users": [
            {
                "name": "Mass Assign",
                "tenant": "b",
                "tenant_id": 2,
                "attributes": {"Email": email, "tenant": "b", "X-CXP-Tenant": "b"},
            }
        ],
    }
    response = api(server, token_a, tenant="a", json=body)
    assert response.status_code in (200, 400), response.text
    assert all(tenant == "a" for tenant, _ in rows_for(server, email))


def test_I06_admin_of_another_tenant_cannot_approve(server: Server) -> None:
    """I-06: adminA cannot approve cb (tenant b) and adminB cannot approve c1: the login is refused
    (login is scoped to the client's tenant) and no code is issued; a session logged in to a does not
    get b's consent page."""
    for client, admin in (("cb", "adminA"), ("c1", "adminB")):
        browser = Browser.open(server)
        try:
            page = browser.authorize(auth_params(server, client))
            assert page.status_code == 200 and 'action="/auth/login"' in page.text
            response = browser.login(page, admin)
            assert "Incorrect email or password." in response.text
            assert "code=" not in response.headers.get("location", "")
        finally:
            browser.close()
    browser = Browser.open(server)
    try:
        assert browser.approve(auth_params(server, "c1")).status_code == 303
        page = browser.authorize(auth_params(server, "cb"))
        assert 'action="/auth/oauth/consent"' not in page.text
        assert 'action="/auth/login"' in page.text
    finally:
        browser.close()


def test_I07_code_of_tenant_a_redeemed_by_b_client(server: Server) -> None:
    """I-07: a tenant-a code redeemed with cb's credentials (and a redirect_uri of either) is invalid_grant."""
    code = get_code(server, "c1")
    response = exchange(server, code, "cb")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    code = get_code(server, "c1")
    response = exchange(server, code, "cb", redirect_uri=server.clients["c1"]["redirect_uris"][0])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.text


def test_I07_refresh_token_of_tenant_a_used_by_b_client(server: Server) -> None:
    """I-07: a tenant-a refresh token presented by cb is invalid_grant and stays usable for c1."""
    issued = tokens(server, "c1")
    response = refresh(server, issued["refresh_token"], "cb")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    again = refresh(server, issued["refresh_token"], "c1")
    assert again.status_code == 200, again.text


@pytest.mark.parametrize("path", ["/admin", "/admin/tenants/b", "/admin/tenants/b/clients", "/admin/audit"])
def test_I08_no_admin_console_surface_yet(server: Server, token_a: str, path: str) -> None:
    """I-08: the admin console does not exist yet; until it does, its paths answer 404 (or 401/403) to
    an adminA session and to a tenant-a token, never tenant-b data. Extend when the console lands."""
    browser = Browser.open(server)
    try:
        assert browser.approve(auth_params(server, "c1")).status_code == 303
        response = browser.http.get(path)
        assert response.status_code in (401, 403, 404), (path, response.status_code)
    finally:
        browser.close()
    response = httpx.get(
        f"{server.base_url}{path}", headers={"authorization": f"Bearer {token_a}", "X-CXP-Tenant": "b"}, timeout=30
    )
    assert response.status_code in (401, 403, 404)
    assert "adminb" not in response.text.lower()


def test_I09_aggregates_do_not_count_other_tenants(server: Server, token_a: str, token_b: str) -> None:
    """I-09: the import report (the only aggregate today) counts b's users as absent from a's view:
    verify=true over emails that exist only in b reports them all new. (Search and export routes do not
    exist yet.)"""
    emails = [unique_email("i09") for _ in range(3)]
    rows = [{"name": "B User", "attributes": {"Email": e}} for e in emails]
    assert api(server, token_b, tenant="b", json={"users": rows}).status_code == 200
    report = api(server, token_a, tenant="a", json={"users": rows, "verify": True})
    assert report.status_code == 200
    assert report.json()["new"] == 3 and report.json()["existing"] == 0
    assert all(tenant == "b" for email in emails for tenant, _ in rows_for(server, email))


def test_I10_tenant_responses_are_not_shared_by_caches(server: Server, token_a: str, token_b: str) -> None:
    """I-10: the same request for two tenants gets Cache-Control: no-store on both answers, so no shared
    cache can serve one tenant's answer to the other."""
    body = {"users": [], "verify": True}
    for token, tenant in ((token_a, "a"), (token_b, "b")):
        response = api(server, token, tenant=tenant, json=body)
        assert response.status_code == 200
        assert response.headers.get("cache-control") == "no-store"
        assert "public" not in response.headers.get("cache-control", "")


def test_I11_lrs_basic_key_does_not_cross_tenants(server: Server) -> None:
    """I-11: the Basic key KA (tenant a) with X-CXP-Tenant: b is refused on /api and on /xapi/statements
    with 403 tenant_mismatch (launch credentials: tests/xapi/test_launch.py)."""
    ka = server.apikeys["KA"]
    header = {"authorization": "Basic " + base64.b64encode(f"{ka['key']}:{ka['secret']}".encode()).decode()}
    response = httpx.post(
        f"{server.base_url}{PATH}", headers={**header, "X-CXP-Tenant": "b"}, json={"users": []}, timeout=30
    )
    assert response.status_code == 403
    assert response.json()["error"] == "tenant_mismatch"
    response = httpx.get(
        f"{server.base_url}/xapi/statements",
        headers={**header, "X-CXP-Tenant": "b", "X-Experience-API-Version": "1.0.3"},
        timeout=30,
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "tenant_mismatch"


def test_I06_viewer_of_the_tenant_cannot_approve(server: Server) -> None:
    """I-06 (role half): viewerA belongs to tenant a but may not approve: access_denied, no code."""
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server, "c1"))
        response = browser.login(page, "viewerA")
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        assert query_of(location).get("error") == ["access_denied"], location
        assert "code" not in query_of(location)
    finally:
        browser.close()
