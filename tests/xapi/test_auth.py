"""SECURITY.md section H: deprecated HTTP Basic (API keys) on /xapi, plus the
xAPI version header, /about and CORS."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest

from openxp import crypto
from tests.support.flow import tokens
from tests.support.server import Server
from tests.xapi.lrs import VERSION, new_id, statement, xapi


def raw(server: Server, authorization: str | None, method: str = "GET", **kwargs: Any) -> httpx.Response:
    headers = dict(VERSION)
    if authorization is not None:
        headers["Authorization"] = authorization
    headers.update(kwargs.pop("headers", {}))
    return httpx.request(method, f"{server.base_url}/xapi/statements", headers=headers, timeout=30, **kwargs)


def b64(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return base64.b64encode(data).decode()


def assert_basic_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Basic realm="openxp"'
    assert response.headers["x-experience-api-version"] == "1.0.3"


def test_H01_no_credentials(server: Server) -> None:
    """H-01: no Authorization header -> 401 with a Basic challenge and the version header."""
    assert_basic_401(raw(server, None))
    assert_basic_401(raw(server, ""))


def test_H02_wrong_secret_and_unknown_key_identical(server: Server) -> None:
    """H-02: a wrong secret and an unknown key give the same status, headers and body."""
    ka = server.apikeys["KA"]
    wrong = raw(server, "Basic " + b64(f"{ka['key']}:{crypto.random_token()}"))
    unknown = raw(server, "Basic " + b64(f"{crypto.random_token(16)}:{crypto.random_token()}"))
    assert_basic_401(wrong)
    assert_basic_401(unknown)
    assert wrong.json() == unknown.json()
    drop = {"date", "x-experience-api-consistent-through", "content-length"}
    assert {k: v for k, v in wrong.headers.items() if k not in drop} == {
        k: v for k, v in unknown.headers.items() if k not in drop
    }


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!notbase64",
        "Basic " + b64("nocolon"),
        "Basic " + b64(":secret"),
        "Basic",
        "Basic " + "A" * 16_000,
        "Basic " + b64(b"\xff\xfe:\xff"),
        "Basic:xxxx",
        "Digest abc",
        "Bearer",
        "Bearer a b",
    ],
)
def test_H03_malformed_headers_never_5xx(server: Server, header: str) -> None:
    """H-03: malformed Basic headers answer 401 (or 400), never 5xx."""
    response = raw(server, header)
    assert response.status_code in {400, 401}, response.text
    assert response.json()["error"]


def test_H04_colon_in_secret_splits_on_first_colon(server: Server) -> None:
    """H-04: a secret `ab:cd` works: the credential is split on the first colon only."""
    key = server.cli_json("apikey", "create", "--tenant", "a", "--name", "H04")
    server.sql("UPDATE api_keys SET secret_hash = :h WHERE key = :k", {"h": crypto.digest("ab:cd"), "k": key["key"]})
    assert raw(server, "Basic " + b64(f"{key['key']}:ab:cd"), params={"limit": "1"}).status_code == 200
    assert_basic_401(raw(server, "Basic " + b64(f"{key['key']}:ab")))
    assert_basic_401(raw(server, "Basic " + b64(f"{key['key']}:ab:cd:")))


def test_H06_rotated_key_old_secret_fails(server: Server) -> None:
    """H-06: after `apikey rotate`, the old secret is refused at once and the new one works."""
    key = server.cli_json("apikey", "create", "--tenant", "a", "--name", "H06")
    assert xapi(server, "GET", "/statements", key, params={"limit": "1"}).status_code == 200
    rotated = server.cli_json("apikey", "rotate", "--tenant", "a", key["key"])
    assert_basic_401(xapi(server, "GET", "/statements", key, params={"limit": "1"}))
    assert (
        xapi(server, "GET", "/statements", {**key, "secret": rotated["secret"]}, params={"limit": "1"}).status_code
        == 200
    )


def test_H08_tenant_mismatch(server: Server) -> None:
    """H-08: KA with X-CXP-Tenant: b -> 403 tenant_mismatch; its own tenant or none -> 200."""
    response = xapi(server, "GET", "/statements", headers={"X-CXP-Tenant": "b"}, params={"limit": "1"})
    assert response.status_code == 403
    assert response.json()["error"] == "tenant_mismatch"
    assert xapi(server, "GET", "/statements", headers={"X-CXP-Tenant": "a"}, params={"limit": "1"}).status_code == 200


def test_H08_statements_stay_in_the_key_tenant(server: Server) -> None:
    """H-08: a statement written with KA (tenant a) is invisible to KB (tenant b)."""
    sid = new_id()
    assert xapi(server, "PUT", "/statements", params={"statementId": sid}, json=statement()).status_code == 204
    assert xapi(server, "GET", "/statements", params={"statementId": sid}).status_code == 200
    kb = server.apikeys["KB"]
    assert xapi(server, "GET", "/statements", kb, params={"statementId": sid}).status_code == 404


def test_H09_digest_as_secret_fails(server: Server) -> None:
    """H-09: the stored SHA-256 digest presented as the secret is refused."""
    ka = server.apikeys["KA"]
    stored = server.sql("SELECT secret_hash FROM api_keys WHERE key = :k", {"k": ka["key"]})[0][0]
    assert stored == crypto.digest(ka["secret"])
    assert_basic_401(raw(server, "Basic " + b64(f"{ka['key']}:{stored}")))


def test_H10_deprecation_headers_on_basic(server: Server) -> None:
    """H-10: Basic-authenticated responses carry Deprecation (RFC 9745) and a deprecation Link."""
    response = xapi(server, "GET", "/statements", params={"limit": "1"})
    assert response.status_code == 200
    assert response.headers["deprecation"] == "@1735689600"
    assert response.headers["link"] == '</docs/integrating.md>; rel="deprecation"; type="text/markdown"'
    guide = httpx.get(server.base_url + "/docs/integrating.md", timeout=30)
    assert guide.status_code == 200 and "## Basic auth (deprecated)" in guide.text


def test_H11_client_authority_replaced(server: Server) -> None:
    """H-11: a client-supplied authority is replaced by the credential's own Agent."""
    sid = new_id()
    forged = {"objectType": "Agent", "account": {"homePage": "http://evil.example", "name": "someone-else"}}
    assert (
        xapi(server, "PUT", "/statements", params={"statementId": sid}, json=statement(authority=forged)).status_code
        == 204
    )
    stored = xapi(server, "GET", "/statements", params={"statementId": sid}).json()
    assert stored["authority"] == {
        "objectType": "Agent",
        "account": {"homePage": server.base_url, "name": server.apikeys["KA"]["key"]},
    }


def test_H07_read_scope_key_cannot_write(server: Server) -> None:
    """H-07: a key holding only statements/read may read but not write (403 insufficient_scope)."""
    key = server.cli_json("apikey", "create", "--tenant", "a", "--name", "H07", "--scope", "statements/read")
    assert xapi(server, "GET", "/statements", key, params={"limit": "1"}).status_code == 200
    response = xapi(server, "POST", "/statements", key, json=statement())
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_bearer_token_on_xapi(server: Server) -> None:
    """G-01/I-01 on /xapi: an OAuth access token with X-CXP-Tenant works and sets the client as authority."""
    token = tokens(server)["access_token"]
    headers = {**VERSION, "Authorization": f"Bearer {token}", "X-CXP-Tenant": "a"}
    sid = new_id()
    url = f"{server.base_url}/xapi/statements"
    put = httpx.put(url, params={"statementId": sid}, json=statement(), headers=headers, timeout=30)
    assert put.status_code == 204, put.text
    assert "deprecation" not in put.headers
    got = httpx.get(url, params={"statementId": sid}, headers=headers, timeout=30).json()
    assert got["authority"]["account"]["name"] == server.clients["c1"]["client_id"]
    other = httpx.get(url, params={"statementId": sid}, headers={**headers, "X-CXP-Tenant": "b"}, timeout=30)
    assert other.status_code == 403


def test_version_header_required_and_echoed(server: Server) -> None:
    """The version header is required (400 when missing or unsupported) and echoed as 1.0.3 / 2.0.0."""
    ka = server.apikeys["KA"]
    url = f"{server.base_url}/xapi/statements"
    auth = (ka["key"], ka["secret"])
    missing = httpx.get(url, auth=auth, params={"limit": "1"}, timeout=30)
    assert missing.status_code == 400
    assert missing.headers["x-experience-api-version"] in {"1.0.3", "2.0.0"}
    assert httpx.get(url, auth=auth, headers={"X-Experience-API-Version": "0.9"}, timeout=30).status_code == 400
    for sent, echoed in (("1.0.0", "1.0.3"), ("1.0.3", "1.0.3"), ("2.0.0", "2.0.0")):
        response = httpx.get(
            url, auth=auth, headers={"X-Experience-API-Version": sent}, params={"limit": "1"}, timeout=30
        )
        assert response.status_code == 200
        assert response.headers["x-experience-api-version"] == echoed


def test_about_needs_no_auth_or_version(server: Server) -> None:
    """GET /xapi/about answers without credentials or version header."""
    response = httpx.get(f"{server.base_url}/xapi/about", timeout=30)
    assert response.status_code == 200
    assert response.json() == {"version": ["1.0.3", "2.0.0"]}


def test_cors_without_credentials(server: Server) -> None:
    """CORS: any origin, the xAPI headers allowed and exposed, never Allow-Credentials."""
    url = f"{server.base_url}/xapi/statements"
    pre = httpx.options(
        url,
        headers={"Origin": "https://content.example", "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert pre.status_code in {200, 204}
    assert pre.headers["access-control-allow-origin"] == "*"
    allowed = pre.headers["access-control-allow-headers"].lower()
    for name in ("authorization", "content-type", "x-experience-api-version", "if-match", "if-none-match"):
        assert name in allowed
    assert "access-control-allow-credentials" not in pre.headers
    got = xapi(server, "GET", "/statements", params={"limit": "1"}, headers={"Origin": "https://content.example"})
    assert got.headers["access-control-allow-origin"] == "*"
    assert "x-experience-api-consistent-through" in got.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-credentials" not in got.headers


def test_unknown_ids_do_not_leak(server: Server) -> None:
    """A random id is 404 for its own tenant (no 500 or 403)."""
    assert xapi(server, "GET", "/statements", params={"statementId": str(uuid.uuid4())}).status_code == 404
