"""Driving the authorization endpoint as a browser would, with httpx."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from tests.support.server import Server

AUTHORIZE = "/auth/oauth/authorize"
TOKEN = "/auth/oauth/token"
LOGIN_FORM = 'action="/auth/login"'
CONSENT_FORM = 'action="/auth/oauth/consent"'
_HIDDEN = re.compile(r'name="(csrf_token|interaction)" value="([^"]*)"')

Pairs = Sequence[tuple[str, str]]


def pkce_pair(length: int = 64) -> tuple[str, str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    verifier = "".join(secrets.choice(alphabet) for _ in range(length))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden_fields(html: str) -> dict[str, str]:
    return dict(_HIDDEN.findall(html))


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


@dataclass
class Browser:
    """A cookie-keeping HTTP client that logs in and approves like an admin would."""

    server: Server
    http: httpx.Client

    @classmethod
    def open(cls, server: Server) -> Browser:
        return cls(server, httpx.Client(base_url=server.base_url, follow_redirects=False, timeout=30))

    def close(self) -> None:
        self.http.close()

    def authorize(self, params: dict[str, str] | list[tuple[str, str]]) -> httpx.Response:
        return self.http.get("/auth/oauth/authorize", params=params)

    def login(self, page: httpx.Response, admin: str, password: str | None = None) -> httpx.Response:
        fields = hidden_fields(page.text)
        creds = self.server.admins[admin]
        return self.http.post(
            "/auth/login",
            data={
                **fields,
                "email": creds["email"],
                "password": password if password is not None else creds["password"],
            },
        )

    def decide(self, page: httpx.Response, decision: str = "allow") -> httpx.Response:
        fields = hidden_fields(page.text)
        return self.http.post("/auth/oauth/consent", data={**fields, "decision": decision})

    def consent_page(self, login_response: httpx.Response) -> httpx.Response:
        assert login_response.status_code == 303, login_response.text
        return self.http.get(login_response.headers["location"])

    def approve(self, params: dict[str, str], admin: str = "adminA", decision: str = "allow") -> httpx.Response:
        """Run authorize -> (login) -> consent; returns the final redirect response."""
        page = self.authorize(params)
        assert page.status_code == 200, page.text
        if LOGIN_FORM in page.text:
            page = self.consent_page(self.login(page, admin))
        assert CONSENT_FORM in page.text, page.text
        return self.decide(page, decision)


def _authz_base(server: Server, client: str) -> dict[str, str]:
    """The parameters of AUTHZ(...) of SECURITY.md section 0 for ``client``, before any override."""
    c = server.clients[client]
    return {
        "response_type": "code",
        "client_id": c["client_id"],
        "redirect_uri": c["redirect_uris"][0],
        "state": "st-123",
    }


def auth_params(server: Server, client: str = "c1", **overrides: Any) -> dict[str, str]:
    """AUTHZ(...) as a dict; an override of None keeps the default, one of "" drops the parameter."""
    params = _authz_base(server, client)
    params.update({k: v for k, v in overrides.items() if v is not None})
    return {k: v for k, v in params.items() if v != ""}


def encode(pairs: Pairs) -> str:
    """A query string with every key and value percent-encoded once (no normalisation)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def get_authorize(server: Server, pairs: Pairs | str, http: httpx.Client | None = None) -> httpx.Response:
    """GET the authorization endpoint with exactly this query (a string is sent as is)."""
    query = pairs if isinstance(pairs, str) else encode(pairs)
    url = f"{server.base_url}{AUTHORIZE}?{query}"
    if http is not None:
        return http.get(url)
    return httpx.get(url, follow_redirects=False, timeout=30)


def authz(server: Server, client: str = "c1", *, drop: Sequence[str] = (), **overrides: str) -> list[tuple[str, str]]:
    """AUTHZ(...) as ordered pairs (without PKCE unless asked for); overrides are sent as given, "" too."""
    params = {**_authz_base(server, client), **overrides}
    return [(k, v) for k, v in params.items() if k not in drop]


def new_code(browser: Browser, client: str = "c1", admin: str = "adminA", **overrides: Any) -> str:
    """A code approved in this browser (which signs in as ``admin`` the first time)."""
    response = browser.approve(auth_params(browser.server, client, **overrides), admin=admin)
    assert response.status_code == 303, response.text
    query = query_of(response.headers["location"])
    assert "code" in query, response.headers["location"]
    return query["code"][0]


def get_code(server: Server, client: str = "c1", admin: str = "adminA", **overrides: Any) -> str:
    """A code from a browser of its own (for other tenants or dedicated admins)."""
    browser = Browser.open(server)
    try:
        return new_code(browser, client, admin, **overrides)
    finally:
        browser.close()


def token_post(server: Server, **kwargs: Any) -> httpx.Response:
    """POST to the token endpoint exactly what the caller passes (json=, data=, content=, headers=)."""
    return httpx.post(f"{server.base_url}{TOKEN}", timeout=30, **kwargs)


def code_body(server: Server, code: str, client: str = "c1", **extra: str) -> dict[str, str]:
    """The authorization_code grant request for ``client`` (client_secret_post), plus ``extra``."""
    c = server.clients[client]
    body = {
        "grant_type": "authorization_code",
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "redirect_uri": c["redirect_uris"][0],
        "code": code,
    }
    body.update(extra)
    return body


def refresh_body(server: Server, refresh_token: str, client: str = "c1", **extra: str) -> dict[str, str]:
    """The refresh_token grant request for ``client`` (client_secret_post), plus ``extra``."""
    c = server.clients[client]
    return {
        "grant_type": "refresh_token",
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "refresh_token": refresh_token,
        **extra,
    }


def exchange(server: Server, code: str, client: str = "c1", *, form: bool = False, **extra: str) -> httpx.Response:
    """Redeem ``code`` (JSON body, or a form body with ``form=True``); an ``extra`` of None drops that field."""
    body = {k: v for k, v in code_body(server, code, client, **extra).items() if v is not None}
    if form:
        return token_post(server, data=body)
    return token_post(server, json=body)


def tokens(server: Server, client: str = "c1", **overrides: Any) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    code = get_code(server, client, code_challenge=challenge, code_challenge_method="S256", **overrides)
    response = exchange(server, code, client, code_verifier=verifier)
    assert response.status_code == 200, response.text
    return response.json()


def refresh(server: Server, refresh_token: str, client: str = "c1", **extra: str) -> httpx.Response:
    return token_post(server, json=refresh_body(server, refresh_token, client, **extra))


def introspect(server: Server, token: str, client: str = "c1") -> dict[str, Any]:
    """RFC 7662 introspection of ``token`` by ``client`` (form body, client_secret_post); the JSON answer."""
    c = server.clients[client]
    response = httpx.post(
        f"{server.base_url}/auth/oauth/introspect",
        data={"token": token, "client_id": c["client_id"], "client_secret": c["client_secret"]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def api(
    server: Server,
    token: str,
    tenant: str | None = "a",
    method: str = "POST",
    path: str = "/api/import/users",
    **kwargs: Any,
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    if tenant is not None:
        headers["X-CXP-Tenant"] = tenant
    if method == "POST" and "json" not in kwargs and "content" not in kwargs:
        kwargs["json"] = {"users": []}
    return httpx.request(method, f"{server.base_url}{path}", headers=headers, timeout=30, **kwargs)
