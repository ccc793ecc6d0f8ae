"""Interop: the full flow driven by two widely used OAuth client libraries.

- requests-oauthlib's ``OAuth2Session`` (with its built-in PKCE, S256), client
  credentials in HTTP Basic (its default) and in the body (``include_client_id``);
- Authlib's ``OAuth2Session`` (requests integration) with
  ``token_endpoint_auth_method`` ``client_secret_post`` and ``client_secret_basic``.

Each library builds the authorization URL; ``tests.support.flow.Browser`` logs in and
approves; the final redirect URL goes back to the library's ``fetch_token``. Then the
library's own session calls the API and refreshes (rotation is checked), and the
authorization code is shown to be single use.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from tests.support.flow import LOGIN_FORM, Browser, query_of
from tests.support.server import Server

IMPORT = {"users": [], "verify": True}


@pytest.fixture(autouse=True)
def _oauthlib_over_plain_http(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The test server speaks plain HTTP on 127.0.0.1 (TLS belongs to the proxy in production, F-18).
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    yield


def approve(browser: Browser, authorization_url: str, admin: str = "adminA") -> str:
    """Run the library-built URL through login and consent; return the final redirect URL."""
    page = browser.http.get(authorization_url)
    assert page.status_code == 200, page.text
    if LOGIN_FORM in page.text:
        page = browser.consent_page(browser.login(page, admin))
    final = browser.decide(page)
    assert final.status_code == 303, final.text
    location = str(final.headers["location"])
    assert "code" in query_of(location), location
    return location


def endpoints(server: Server) -> tuple[str, str, str]:
    base = server.base_url
    return f"{base}/auth/oauth/authorize", f"{base}/auth/oauth/token", f"{base}/api/import/users"


def assert_token(token: dict[str, Any]) -> None:
    assert token["access_token"].startswith("cxa_")
    assert token["refresh_token"].startswith("cxr_")
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] == 3600


# ---- requests-oauthlib ------------------------------------------------------------------------


@pytest.mark.parametrize("credentials_in", ["basic", "body"])
def test_requests_oauthlib_full_flow_with_pkce(server: Server, admin_browser: Browser, credentials_in: str) -> None:
    """requests-oauthlib: authorization URL with S256 PKCE and state, code exchange (client auth in Basic
    or in the body), API call with the session, refresh (rotated), and a replayed code refused."""
    authorize_url, token_url, api_url = endpoints(server)
    c1 = server.clients["c1"]
    session = OAuth2Session(c1["client_id"], redirect_uri=c1["redirect_uris"][0], pkce="S256")
    url, state = session.authorization_url(authorize_url)
    sent = query_of(url)
    assert sent["code_challenge_method"] == ["S256"] and sent["code_challenge"]
    final = approve(admin_browser, url)
    assert query_of(final)["state"] == [state]
    if credentials_in == "basic":
        token = session.fetch_token(token_url, authorization_response=final, client_secret=c1["client_secret"])
    else:
        token = session.fetch_token(
            token_url, authorization_response=final, client_secret=c1["client_secret"], include_client_id=True
        )
    assert_token(token)
    response = session.post(api_url, json=IMPORT, headers={"X-CXP-Tenant": "a"})
    assert response.status_code == 200, response.text
    first_refresh = token["refresh_token"]
    if credentials_in == "basic":
        renewed = session.refresh_token(token_url, auth=HTTPBasicAuth(c1["client_id"], c1["client_secret"]))
    else:
        renewed = session.refresh_token(token_url, client_id=c1["client_id"], client_secret=c1["client_secret"])
    assert_token(renewed)
    assert renewed["refresh_token"] != first_refresh
    assert session.post(api_url, json=IMPORT, headers={"X-CXP-Tenant": "a"}).status_code == 200
    # The code is single use, also through the library.
    replay = requests.post(
        token_url,
        data={
            "grant_type": "authorization_code",
            "code": query_of(final)["code"][0],
            "redirect_uri": c1["redirect_uris"][0],
            "client_id": c1["client_id"],
            "client_secret": c1["client_secret"],
            "code_verifier": session._code_verifier,
        },
        timeout=30,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_requests_oauthlib_public_client_with_pkce(server: Server, admin_browser: Browser) -> None:
    """requests-oauthlib with the public client cp: PKCE only, no secret, code exchange and refresh."""
    authorize_url, token_url, api_url = endpoints(server)
    cp = server.clients["cp"]
    session = OAuth2Session(cp["client_id"], redirect_uri=cp["redirect_uris"][0], pkce="S256")
    url, _ = session.authorization_url(authorize_url)
    final = approve(admin_browser, url)
    token = session.fetch_token(token_url, authorization_response=final, include_client_id=True)
    assert_token(token)
    assert session.post(api_url, json=IMPORT, headers={"X-CXP-Tenant": "a"}).status_code == 200
    renewed = session.refresh_token(token_url, client_id=cp["client_id"])
    assert_token(renewed)


def test_requests_oauthlib_wrong_secret_is_invalid_client(server: Server, admin_browser: Browser) -> None:
    """requests-oauthlib surfaces our 401 invalid_client as its InvalidClientError."""
    from oauthlib.oauth2.rfc6749.errors import InvalidClientError

    authorize_url, token_url, _ = endpoints(server)
    c1 = server.clients["c1"]
    session = OAuth2Session(c1["client_id"], redirect_uri=c1["redirect_uris"][0], pkce="S256")
    url, _ = session.authorization_url(authorize_url)
    final = approve(admin_browser, url)
    with pytest.raises(InvalidClientError):
        session.fetch_token(token_url, authorization_response=final, client_secret="wrong-" + secrets.token_hex(4))


# ---- Authlib -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_authlib_full_flow(server: Server, admin_browser: Browser, method: str) -> None:
    """Authlib: authorization URL with S256 PKCE and state, code exchange with the given
    token_endpoint_auth_method, API call with the session, refresh (rotated) with the same method."""
    authorize_url, token_url, api_url = endpoints(server)
    c1 = server.clients["c1"]
    session = AuthlibSession(
        c1["client_id"],
        c1["client_secret"],
        token_endpoint_auth_method=method,
        redirect_uri=c1["redirect_uris"][0],
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = session.create_authorization_url(authorize_url, code_verifier=verifier)
    assert query_of(url)["code_challenge_method"] == ["S256"]
    final = approve(admin_browser, url)
    assert query_of(final)["state"] == [state]
    token = session.fetch_token(token_url, authorization_response=final, code_verifier=verifier)
    assert_token(dict(token))
    response = session.post(api_url, json=IMPORT, headers={"X-CXP-Tenant": "a"})
    assert response.status_code == 200, response.text
    renewed = session.refresh_token(token_url, refresh_token=token["refresh_token"])
    assert_token(dict(renewed))
    assert renewed["refresh_token"] != token["refresh_token"]
    assert session.post(api_url, json=IMPORT, headers={"X-CXP-Tenant": "a"}).status_code == 200
    # The old refresh token is spent: its reuse revokes the family (E-02), which the library sees as an error.
    from authlib.integrations.base_client.errors import OAuthError

    with pytest.raises(OAuthError) as refused:
        session.refresh_token(token_url, refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"
    assert session.post(api_url, json=IMPORT, headers={"X-CXP-Tenant": "a"}).status_code == 401


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_authlib_without_pkce_as_in_the_seed(server: Server, admin_browser: Browser, method: str) -> None:
    """Authlib without PKCE (the seed's flow for a confidential client) works with both auth methods."""
    authorize_url, token_url, api_url = endpoints(server)
    c2 = server.clients["c2"]
    session = AuthlibSession(
        c2["client_id"], c2["client_secret"], token_endpoint_auth_method=method, redirect_uri=c2["redirect_uris"][0]
    )
    url, _ = session.create_authorization_url(authorize_url)
    assert "code_challenge" not in query_of(url)
    token = session.fetch_token(token_url, authorization_response=approve(admin_browser, url))
    assert_token(dict(token))
    assert session.post(api_url, json=IMPORT, headers={"X-CXP-Tenant": "a"}).status_code == 200
    assert_token(dict(session.refresh_token(token_url, refresh_token=token["refresh_token"])))


def test_authlib_revocation_and_introspection(server: Server, admin_browser: Browser) -> None:
    """Authlib's revoke_token / introspect_token talk to our RFC 7009 / 7662 endpoints."""
    authorize_url, token_url, api_url = endpoints(server)
    base = server.base_url
    c1 = server.clients["c1"]
    session = AuthlibSession(
        c1["client_id"],
        c1["client_secret"],
        token_endpoint_auth_method="client_secret_basic",
        revocation_endpoint_auth_method="client_secret_basic",
        redirect_uri=c1["redirect_uris"][0],
    )
    url, _ = session.create_authorization_url(authorize_url)
    token = session.fetch_token(token_url, authorization_response=approve(admin_browser, url))
    info = session.introspect_token(f"{base}/auth/oauth/introspect", token=token["access_token"])
    assert info.status_code == 200 and info.json()["active"] is True
    revoked = session.revoke_token(
        f"{base}/auth/oauth/revoke", token=token["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200
    assert session.post(api_url, json=IMPORT, headers={"X-CXP-Tenant": "a"}).status_code == 401
    info = session.introspect_token(f"{base}/auth/oauth/introspect", token=token["access_token"])
    assert info.json() == {"active": False}
