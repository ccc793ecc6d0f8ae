"""SECURITY.md section G: the resource server's Bearer handling (RFC 6750), G-01..G-12,
on the one protected route that exists now, ``POST /api/import/users``."""

from __future__ import annotations

import base64
import secrets
import socket
import time
from typing import Any

import httpx
import pytest

from openxp import crypto
from tests.support.asserts import after_a_change_behind_openxps_back
from tests.support.flow import api, exchange, get_code, refresh, tokens
from tests.support.provision import dedicated_admin, dedicated_client
from tests.support.server import Server

PATH = "/api/import/users"


def call(server: Server, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("json", {"users": []})
    return httpx.post(
        f"{server.base_url}{PATH}", headers={"X-CXP-Tenant": "a", **(headers or {})}, timeout=30, **kwargs
    )


def assert_invalid_token(response: httpx.Response) -> None:
    """RS-401(invalid_token) of SECURITY.md section 0."""
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="openxp"')
    assert 'error="invalid_token"' in challenge
    assert response.json()["error"] == "invalid_token"
    assert response.headers.get("cache-control") == "no-store"


def assert_no_credentials(response: httpx.Response) -> None:
    """G-01's answer: 401 with a Bearer challenge and no error attribute."""
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge == 'Bearer realm="openxp"'
    assert "error=" not in challenge


@pytest.fixture(scope="module")
def access(server: Server) -> str:
    return str(tokens(server)["access_token"])


def test_G01_no_credentials(server: Server) -> None:
    """G-01: no Authorization header: 401 with WWW-Authenticate: Bearer realm, no error attribute."""
    assert_no_credentials(call(server))
    assert_no_credentials(call(server, headers={"authorization": ""}))


@pytest.mark.parametrize(
    "token",
    ["garbage", "cxa_" + "A" * 43, "cxa_", "cxr_" + "A" * 43, "cxa_" + secrets.token_urlsafe(32), "cxa_%00"],
)
def test_G02_unknown_or_garbage_token(server: Server, token: str) -> None:
    """G-02: an unknown or garbage Bearer token is RS-401(invalid_token)."""
    assert_invalid_token(call(server, headers={"authorization": f"Bearer {token}"}))


def test_G03_expired_token(server: Server) -> None:
    """G-03: a token 1 s past its expiry (row aged in the database) is RS-401(invalid_token)."""
    token = tokens(server)["access_token"]
    assert api(server, token).status_code == 200
    server.sql(
        "UPDATE access_tokens SET expires_at = :t WHERE token_hash = :h",
        {"t": time.time() - 1, "h": crypto.digest(token)},
    )
    assert_invalid_token(after_a_change_behind_openxps_back(lambda: api(server, token)))


def test_G04_revoked_by_revocation_endpoint(server: Server) -> None:
    """G-04: after RFC 7009 revocation of the refresh token, the grant's access token fails on the next call."""
    issued = tokens(server)
    c1 = server.clients["c1"]
    assert api(server, issued["access_token"]).status_code == 200
    response = httpx.post(
        f"{server.base_url}/auth/oauth/revoke",
        data={"token": issued["refresh_token"], "client_id": c1["client_id"], "client_secret": c1["client_secret"]},
        timeout=30,
    )
    assert response.status_code == 200
    assert_invalid_token(api(server, issued["access_token"]))


def test_G04_revoked_by_access_token_revocation(server: Server) -> None:
    """G-04: revoking the access token itself ends it at once."""
    issued = tokens(server)
    c1 = server.clients["c1"]
    response = httpx.post(
        f"{server.base_url}/auth/oauth/revoke",
        data={
            "token": issued["access_token"],
            "token_type_hint": "access_token",
            "client_id": c1["client_id"],
            "client_secret": c1["client_secret"],
        },
        timeout=30,
    )
    assert response.status_code == 200
    assert_invalid_token(api(server, issued["access_token"]))


def test_G04_revoked_by_code_replay(server: Server) -> None:
    """G-04 (with C-03): replaying the code revokes the token the first exchange issued."""
    code = get_code(server)
    first = exchange(server, code)
    assert first.status_code == 200
    token = first.json()["access_token"]
    assert api(server, token).status_code == 200
    assert exchange(server, code).status_code == 400
    assert_invalid_token(api(server, token))


def test_G04_revoked_by_refresh_reuse(server: Server) -> None:
    """G-04 (with E-02): reusing a rotated refresh token revokes the family, including the newest token."""
    issued = tokens(server)
    rotated = refresh(server, issued["refresh_token"])
    assert rotated.status_code == 200
    newest = rotated.json()["access_token"]
    assert api(server, newest).status_code == 200
    assert refresh(server, issued["refresh_token"]).status_code == 400
    assert_invalid_token(api(server, newest))
    assert_invalid_token(api(server, issued["access_token"]))


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("Bearer", 400),
        ("Bearer a b", 400),
        ("Bearer " + "a" * 8192, 401),
        ("Bearer cxa_" + "a" * 8192, 401),
        ("Token abc", 401),
        ("Basic " + base64.b64encode(b"key:secret").decode(), 401),
        ("Bearer\tcxa_x", 401),
    ],
    ids=["bare", "two-parts", "8kb", "8kb-prefixed", "other-scheme", "basic", "tab"],
)
def test_G05_malformed_authorization_header(server: Server, header: str, status: int) -> None:
    """G-05: malformed Bearer credentials are 400 invalid_request or 401, never 5xx."""
    response = call(server, headers={"authorization": header})
    assert response.status_code == status, response.text
    assert response.headers["www-authenticate"].startswith(("Bearer realm=", "Basic realm="))
    if status == 400:
        assert 'error="invalid_request"' in response.headers["www-authenticate"]


def test_G05_bearer_with_only_spaces(server: Server) -> None:
    """G-05: ``Authorization: Bearer`` followed by blanks (sent raw; httpx refuses to) is 400 or 401, not 5xx."""
    host, port = server.base_url.removeprefix("http://").split(":")
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer   \r\nX-CXP-Tenant: a\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        status_line = sock.makefile("rb").readline().decode()
    assert status_line.split(" ")[1] in ("400", "401"), status_line


def test_G05_header_repeated(server: Server, access: str) -> None:
    """G-05: the Authorization header sent twice (even with the same valid token) is 400 invalid_request."""
    headers = [("authorization", f"Bearer {access}"), ("authorization", f"Bearer {access}"), ("X-CXP-Tenant", "a")]
    response = httpx.post(f"{server.base_url}{PATH}", headers=headers, json={"users": []}, timeout=30)
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_G06_scheme_is_case_insensitive(server: Server, access: str, scheme: str) -> None:
    """G-06: the Bearer scheme name is case-insensitive (RFC 9110 11.1)."""
    response = call(server, headers={"authorization": f"{scheme} {access}"})
    assert response.status_code == 200, response.text


def test_G07_token_in_query_or_body_is_not_accepted(server: Server, access: str) -> None:
    """G-07: access_token in the query or in a form body counts as no credentials (401, no error attribute)."""
    response = httpx.post(
        f"{server.base_url}{PATH}",
        params={"access_token": access},
        headers={"X-CXP-Tenant": "a"},
        json={"users": []},
        timeout=30,
    )
    assert_no_credentials(response)
    response = httpx.post(
        f"{server.base_url}{PATH}", data={"access_token": access}, headers={"X-CXP-Tenant": "a"}, timeout=30
    )
    assert_no_credentials(response)
    response = httpx.post(
        f"{server.base_url}{PATH}",
        json={"access_token": access, "users": []},
        headers={"X-CXP-Tenant": "a"},
        timeout=30,
    )
    assert_no_credentials(response)


def test_G08_token_presented_twice(server: Server, access: str) -> None:
    """G-08: a token in the header and in the query is 400 invalid_request."""
    response = httpx.post(
        f"{server.base_url}{PATH}",
        params={"access_token": access},
        headers={"authorization": f"Bearer {access}", "X-CXP-Tenant": "a"},
        json={"users": []},
        timeout=30,
    )
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


def test_G09_insufficient_scope(server: Server) -> None:
    """G-09: client cs with a token for actors/read only cannot import users: 403 insufficient_scope,
    with the needed scope in the challenge; its default-scope token can."""
    narrow = tokens(server, "cs", scope="actors/read")
    assert narrow["scope"] == "actors/read"
    response = api(server, narrow["access_token"])
    assert response.status_code == 403, response.text
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="users/import"' in challenge
    assert response.json()["error"] == "insufficient_scope"
    default = tokens(server, "cs")
    assert default["scope"] == "users/import"
    assert api(server, default["access_token"]).status_code == 200


def test_G10_other_credentials_are_not_bearer_tokens(server: Server) -> None:
    """G-10: a refresh token, an authorization code, an API key/secret (as Bearer or Basic) and a stored
    digest used as a Bearer token are RS-401 (launch credentials: tests/xapi/test_launch.py)."""
    issued = tokens(server)
    code = get_code(server)
    ka = server.apikeys["KA"]
    for credential in (issued["refresh_token"], code, ka["secret"], ka["key"], crypto.digest(issued["access_token"])):
        assert_invalid_token(call(server, headers={"authorization": f"Bearer {credential}"}))
    # As Basic, an API key is a (deprecated) credential of its own here: tests/api/test_credentials.py.
    basic = base64.b64encode(f"{ka['secret']}:{ka['key']}".encode()).decode()
    response = call(server, headers={"authorization": f"Basic {basic}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")
    # The code was a real one and is still unspent: presenting it as a Bearer token did nothing to it.
    assert exchange(server, code).status_code == 200


def test_G11_api_responses_are_not_cacheable(server: Server, access: str) -> None:
    """G-11: tenant data answers (and refusals) carry Cache-Control: no-store."""
    users = {"users": [{"name": "Cache Test", "attributes": {"Email": "cache@example.com"}}], "verify": True}
    ok = api(server, access, json=users)
    assert ok.status_code == 200
    assert ok.headers.get("cache-control") == "no-store"
    assert api(server, access, tenant="b").headers.get("cache-control") == "no-store"
    assert call(server).headers.get("cache-control") == "no-store"


def test_G12_disabled_admin_ends_its_tokens(server: Server) -> None:
    """G-12: disabling the approving admin makes its unexpired access token RS-401 at once, and its
    refresh token invalid_grant; enabling again is not needed for the rest of the suite (own admin)."""
    admin = dedicated_admin(server, "adminG12")
    issued = tokens(server, "c1", admin=admin)
    assert api(server, issued["access_token"]).status_code == 200
    server.cli("admin", "disable", "--tenant", "a", "--email", server.admins[admin]["email"])
    assert_invalid_token(api(server, issued["access_token"]))
    assert refresh(server, issued["refresh_token"]).json()["error"] == "invalid_grant"


def test_G12_disabled_client_ends_its_tokens(server: Server) -> None:
    """G-12: disabling a client makes its unexpired access token RS-401 at once (own client cG12)."""
    client = dedicated_client(server, "cG12", name="Client cG12")
    issued = tokens(server, client)
    assert api(server, issued["access_token"]).status_code == 200
    server.cli("client", "disable", "--tenant", "a", server.clients[client]["client_id"])
    assert_invalid_token(api(server, issued["access_token"]))
    assert refresh(server, issued["refresh_token"], client).json()["error"] == "invalid_client"
