"""SECURITY.md section K: revocation (RFC 7009), introspection (RFC 7662) and
authorization server metadata (RFC 8414), K-01..K-07."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from openxp import crypto
from tests.support.flow import Browser, api, auth_params, query_of, refresh, tokens
from tests.support.server import Server, destroy_server, make_server


def creds(server: Server, client: str = "c1") -> dict[str, str]:
    c = server.clients[client]
    return {"client_id": c["client_id"], "client_secret": c["client_secret"]}


def basic(server: Server, client: str = "c1", secret: str | None = None) -> dict[str, str]:
    c = server.clients[client]
    raw = f"{c['client_id']}:{secret if secret is not None else c['client_secret']}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


def revoke(server: Server, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/auth/oauth/revoke", timeout=30, **kwargs)


def introspect(server: Server, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/auth/oauth/introspect", timeout=30, **kwargs)


def assert_revoked_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers.get("cache-control") == "no-store"
    assert "access_token" not in response.text


def assert_inactive(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"active": False}
    assert response.headers.get("cache-control") == "no-store"


def assert_invalid_client(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers.get("cache-control") == "no-store"


# ---- K-01 .. K-04: revocation ------------------------------------------------------------------


def test_K01_revoke_refresh_token_ends_the_grant(server: Server) -> None:
    """K-01: revoking R (form, hint refresh_token, c1's body credentials) is 200; R is then invalid_grant
    and the same grant's access token is RS-401."""
    issued = tokens(server)
    assert api(server, issued["access_token"]).status_code == 200
    response = revoke(
        server, data={"token": issued["refresh_token"], "token_type_hint": "refresh_token", **creds(server)}
    )
    assert_revoked_ok(response)
    again = refresh(server, issued["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert api(server, issued["access_token"]).status_code == 401


@pytest.mark.parametrize("style", ["json", "basic", "no-hint", "wrong-hint"])
def test_K01_revoke_in_every_request_style(server: Server, style: str) -> None:
    """K-01: JSON bodies, HTTP Basic, no hint and a misleading hint all revoke the refresh token."""
    issued = tokens(server)
    token = issued["refresh_token"]
    if style == "json":
        response = revoke(server, json={"token": token, **creds(server)})
    elif style == "basic":
        response = revoke(server, data={"token": token}, headers=basic(server))
    elif style == "no-hint":
        response = revoke(server, data={"token": token, **creds(server)})
    else:
        response = revoke(server, data={"token": token, "token_type_hint": "access_token", **creds(server)})
    assert_revoked_ok(response)
    assert refresh(server, token).status_code == 400
    assert api(server, issued["access_token"]).status_code == 401


def test_K01_revoke_access_token_only(server: Server) -> None:
    """K-01: revoking an access token ends that token; the refresh token still works."""
    issued = tokens(server)
    assert_revoked_ok(revoke(server, data={"token": issued["access_token"], **creds(server)}))
    assert api(server, issued["access_token"]).status_code == 401
    assert refresh(server, issued["refresh_token"]).status_code == 200


def test_K02_unknown_or_invalid_token_is_200(server: Server) -> None:
    """K-02: unknown, garbage, already revoked and expired tokens all answer the same 200 (no oracle);
    a missing token parameter is 400 invalid_request."""
    issued = tokens(server)
    assert_revoked_ok(revoke(server, data={"token": issued["refresh_token"], **creds(server)}))
    expired = tokens(server)["access_token"]
    server.sql(
        "UPDATE access_tokens SET expires_at = :t WHERE token_hash = :h",
        {"t": time.time() - 10, "h": crypto.digest(expired)},
    )
    for token in ("cxr_" + secrets.token_urlsafe(32), "garbage", "x" * 300, issued["refresh_token"], expired):
        response = revoke(server, data={"token": token, **creds(server)})
        assert_revoked_ok(response)
        assert response.content == b""
    missing = revoke(server, data=creds(server))
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


@pytest.mark.parametrize("other", ["c2", "cb"])
def test_K03_another_clients_token_is_not_revoked(server: Server, other: str) -> None:
    """K-03: c2 (same tenant) or cb (other tenant) revoking c1's tokens gets the uniform 200 and the
    tokens keep working."""
    issued = tokens(server)
    assert_revoked_ok(revoke(server, data={"token": issued["refresh_token"], **creds(server, other)}))
    assert_revoked_ok(revoke(server, data={"token": issued["access_token"], **creds(server, other)}))
    assert api(server, issued["access_token"]).status_code == 200
    assert refresh(server, issued["refresh_token"]).status_code == 200


def test_K04_revocation_requires_client_authentication(server: Server) -> None:
    """K-04: no, unknown or wrong client credentials are 401 invalid_client (Basic: with a challenge),
    and the token survives."""
    issued = tokens(server)
    token = issued["refresh_token"]
    c1 = server.clients["c1"]
    assert_invalid_client(revoke(server, data={"token": token}))
    assert_invalid_client(revoke(server, data={"token": token, "client_id": c1["client_id"]}))
    assert_invalid_client(revoke(server, data={"token": token, "client_id": c1["client_id"], "client_secret": "x"}))
    assert_invalid_client(revoke(server, data={"token": token, "client_id": "nobody", "client_secret": "x"}))
    response = revoke(server, data={"token": token}, headers=basic(server, secret="wrong"))
    assert_invalid_client(response)
    assert response.headers["www-authenticate"] == 'Basic realm="openxp"'
    assert refresh(server, token).status_code == 200


# ---- K-05: introspection -------------------------------------------------------------------------


def test_K05_introspection_of_own_active_token(server: Server) -> None:
    """K-05: c1 introspecting its own live access and refresh tokens gets active=true with the claims."""
    issued = tokens(server)
    response = introspect(server, data={"token": issued["access_token"], **creds(server)})
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == server.clients["c1"]["client_id"]
    assert body["tenant"] == "a"
    assert body["token_type"].lower() == "bearer"
    assert body["exp"] - body["iat"] == pytest.approx(3600, abs=1)
    assert body["iss"] == server.base_url
    response = introspect(
        server, data={"token": issued["refresh_token"], "token_type_hint": "refresh_token"}, headers=basic(server)
    )
    assert response.json()["active"] is True


def test_K05_introspection_requires_client_authentication(server: Server) -> None:
    """K-05: unauthenticated or wrongly authenticated introspection is 401 invalid_client."""
    token = tokens(server)["access_token"]
    assert_invalid_client(introspect(server, data={"token": token}))
    assert_invalid_client(introspect(server, data={"token": token, **creds(server), "client_secret": "nope"}))
    assert_invalid_client(introspect(server, data={"token": token}, headers={"authorization": f"Bearer {token}"}))


def test_K05_inactive_tokens_reveal_nothing(server: Server) -> None:
    """K-05: expired, revoked, other-client, other-tenant, rotated and garbage tokens are {"active": false}
    and nothing else."""
    expired = tokens(server)["access_token"]
    server.sql(
        "UPDATE access_tokens SET expires_at = :t WHERE token_hash = :h",
        {"t": time.time() - 10, "h": crypto.digest(expired)},
    )
    revoked = tokens(server)
    assert_revoked_ok(revoke(server, data={"token": revoked["refresh_token"], **creds(server)}))
    rotated = tokens(server)
    assert refresh(server, rotated["refresh_token"]).status_code == 200
    other_client = tokens(server, "c2")
    other_tenant = tokens(server, "cb", admin="adminB")
    for token in (
        expired,
        revoked["access_token"],
        revoked["refresh_token"],
        rotated["refresh_token"],
        other_client["access_token"],
        other_client["refresh_token"],
        other_tenant["access_token"],
        "cxa_" + secrets.token_urlsafe(32),
        "garbage",
    ):
        assert_inactive(introspect(server, data={"token": token, **creds(server)}))
    # The other client's token is active for its owner (so the false above was about ownership).
    assert introspect(server, data={"token": other_client["access_token"], **creds(server, "c2")}).json()["active"]


# ---- K-06: throttling, on a server with a low client-auth budget ------------------------------------


@pytest.fixture(scope="module")
def strict_server() -> Iterator[Server]:
    srv = make_server(extra_env={"OPENXP_RATE_CLIENT_AUTH": "3", "OPENXP_RATE_LOCKOUT": "120"})
    try:
        yield srv
    finally:
        destroy_server(srv)


@pytest.mark.parametrize("endpoint", ["revoke", "introspect"])
def test_K06_client_auth_failures_are_throttled(strict_server: Server, endpoint: str) -> None:
    """K-06: failed client authentication at the revocation and introspection endpoints is counted; past
    the limit (3 on this server) the answer is 429 too_many_requests with Retry-After. Known gap: token
    scanning with *valid* client credentials is not throttled (each answer is a uniform 200 /
    active=false, so a scan learns nothing, but it is not slowed down either)."""
    call = revoke if endpoint == "revoke" else introspect
    client = "c1" if endpoint == "revoke" else "c2"
    c = strict_server.clients[client]
    statuses = []
    for _ in range(5):
        token = "cxa_" + secrets.token_urlsafe(32)
        response = call(strict_server, data={"token": token, "client_id": c["client_id"], "client_secret": "bad"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["error"] == "too_many_requests"
            assert int(response.headers["retry-after"]) > 0
            assert response.headers.get("cache-control") == "no-store"
    assert statuses[:2] == [401, 401], statuses
    assert statuses[2:] == [429, 429, 429], statuses
    # No attacker-driven lockout: the right secret still works.
    good = call(
        strict_server, data={"token": "cxa_x", "client_id": c["client_id"], "client_secret": c["client_secret"]}
    )
    assert good.status_code == 200


# ---- K-07: metadata ------------------------------------------------------------------------------


def test_K07_metadata_document(server: Server) -> None:
    """K-07: RFC 8414 metadata: issuer is the configured base URL (no query/fragment; https is the
    deployment's public URL), endpoints absolute under it, code only, enabled grants only, S256 only,
    the auth methods we accept, revocation/introspection endpoints that exist, and RFC 9207's flag, whose
    iss matches the redirect's."""
    response = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    meta = response.json()
    issuer = meta["issuer"]
    assert issuer == server.base_url
    parts = urlsplit(issuer)
    assert parts.query == "" and parts.fragment == "" and not issuer.endswith("/")
    for name, path in (
        ("authorization_endpoint", "/auth/oauth/authorize"),
        ("token_endpoint", "/auth/oauth/token"),
        ("revocation_endpoint", "/auth/oauth/revoke"),
        ("introspection_endpoint", "/auth/oauth/introspect"),
    ):
        assert meta[name] == issuer + path
    assert meta["response_types_supported"] == ["code"]
    assert sorted(meta["grant_types_supported"]) == ["authorization_code", "client_credentials", "refresh_token"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    methods = set(meta["token_endpoint_auth_methods_supported"])
    assert (
        {"client_secret_post", "client_secret_basic"}
        <= methods
        <= {"client_secret_post", "client_secret_basic", "none"}
    )
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert "password" not in meta["grant_types_supported"] and "implicit" not in meta["grant_types_supported"]
    for name in ("revocation_endpoint", "introspection_endpoint", "token_endpoint"):
        probe = httpx.post(meta[name], data={"token": "x"}, timeout=30)
        assert probe.status_code in (400, 401), (name, probe.status_code)
    browser = Browser.open(server)
    try:
        final = browser.approve(auth_params(server, "c1"))
        assert query_of(final.headers["location"])["iss"] == [issuer]
    finally:
        browser.close()
