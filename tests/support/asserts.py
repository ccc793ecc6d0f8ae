"""Assertions for the shorthands of SECURITY.md section 0 (TOKEN-ERR, ERROR-PAGE,
ERR-REDIRECT, RS-401) and the shapes of what the server hands out."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

import httpx

from tests.support.flow import CONSENT_FORM, LOGIN_FORM, api, query_of
from tests.support.server import Server

# Stored digests are lowercase hex SHA-256; handed-out credentials are base64url.
HEX64 = re.compile(r"[0-9a-f]{64}")
URLSAFE = re.compile(r"[A-Za-z0-9_-]+")
# The error codes of RFC 6749 5.2.
RFC6749_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)
_URL_ATTRIBUTE = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)


def assert_token_error(response: httpx.Response, status: int, *errors: str) -> str:
    """TOKEN-ERR(s, e): JSON error (one of ``errors``), no-store, no tokens; returns the error code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("cache-control") == "no-store"
    body = response.json()
    assert body["error"] in errors, body
    assert "access_token" not in body and "refresh_token" not in body
    return str(body["error"])


def assert_dead_token(server: Server, access_token: str) -> None:
    """RS-401(invalid_token): the API refuses ``access_token`` with a Bearer invalid_token challenge."""
    response = api(server, access_token)
    assert response.status_code == 401, response.text
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge, challenge


def after_a_change_behind_openxps_back(call: Callable[[], httpx.Response], within: float = 1.0) -> httpx.Response:
    """The first 401 ``call`` answers within ``within`` seconds (else its last answer). A change made
    in the database directly, as the tests' clock injection does, reaches a worker's bearer cache
    through the revocation clock within a second, not at once (openxp.auth.bearer_cache)."""
    deadline = time.monotonic() + within
    while True:
        response = call()
        if response.status_code == 401 or time.monotonic() >= deadline:
            return response
        time.sleep(0.02)


def assert_error_page(response: httpx.Response, *, status: int = 400, absent: Sequence[str] = ()) -> None:
    """ERROR-PAGE: our own HTML page; no redirect of any kind, no link away, no login form."""
    assert response.status_code == status, (response.status_code, response.headers, response.text[:500])
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    lowered = body.lower()
    assert "http-equiv" not in lowered and "<script" not in lowered and "javascript:" not in lowered
    for url in _URL_ATTRIBUTE.findall(body):
        # Only our own static assets: nothing that leads the user to the supplied redirect_uri.
        assert url.startswith("/") and not url.startswith("//"), url
    assert LOGIN_FORM not in body and CONSENT_FORM not in body
    for text in absent:
        assert text not in body, text


def assert_err_redirect(
    server: Server, response: httpx.Response, error: str, *, client: str = "c1", state: str | None = "st-123"
) -> dict[str, list[str]]:
    """ERR-REDIRECT(e): 303 to the registered URI with error, the exact state, iss, and no code."""
    assert response.status_code == 303, (response.status_code, response.text[:500])
    location = response.headers["location"]
    registered = server.clients[client]["redirect_uris"][0]
    assert location.startswith(registered + ("&" if "?" in registered else "?")), location
    assert "#" not in location and "\r" not in location and "\n" not in location
    params = query_of(location)
    assert params["error"] == [error], params
    assert params["iss"] == [server.base_url]
    assert "code" not in params and "access_token" not in params
    if state is None:
        assert "state" not in params
    else:
        assert params["state"] == [state]
    return params
