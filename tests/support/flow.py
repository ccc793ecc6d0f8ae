"""Driving the authorization endpoint as a browser would, with httpx."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.server import Server

_HIDDEN = re.compile(r'name="(csrf_token|interaction)" value="([^"]*)"')


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
        if 'action="/auth/login"' in page.text:
            page = self.consent_page(self.login(page, admin))
        assert 'action="/auth/oauth/consent"' in page.text, page.text
        return self.decide(page, decision)


def auth_params(server: Server, client: str = "c1", **overrides: Any) -> dict[str, str]:
    c = server.clients[client]
    params = {
        "response_type": "code",
        "client_id": c["client_id"],
        "redirect_uri": c["redirect_uris"][0],
        "state": "st-123",
    }
    params.update({k: v for k, v in overrides.items() if v is not None})
    return {k: v for k, v in params.items() if v != ""}


def get_code(server: Server, client: str = "c1", admin: str = "adminA", **overrides: Any) -> str:
    browser = Browser.open(server)
    try:
        response = browser.approve(auth_params(server, client, **overrides), admin=admin)
    finally:
        browser.close()
    assert response.status_code == 303, response.text
    return query_of(response.headers["location"])["code"][0]


def exchange(server: Server, code: str, client: str = "c1", *, form: bool = False, **extra: str) -> httpx.Response:
    c = server.clients[client]
    body = {
        "grant_type": "authorization_code",
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "redirect_uri": c["redirect_uris"][0],
        "code": code,
    }
    body.update(extra)
    body = {k: v for k, v in body.items() if v is not None}
    url = f"{server.base_url}/auth/oauth/token"
    if form:
        return httpx.post(url, data=body, timeout=30)
    return httpx.post(url, json=body, timeout=30)


def tokens(server: Server, client: str = "c1", **overrides: Any) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    code = get_code(server, client, code_challenge=challenge, code_challenge_method="S256", **overrides)
    response = exchange(server, code, client, code_verifier=verifier)
    assert response.status_code == 200, response.text
    return response.json()


def refresh(server: Server, refresh_token: str, client: str = "c1", **extra: str) -> httpx.Response:
    c = server.clients[client]
    body = {
        "grant_type": "refresh_token",
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "refresh_token": refresh_token,
        **extra,
    }
    return httpx.post(f"{server.base_url}/auth/oauth/token", json=body, timeout=30)


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
