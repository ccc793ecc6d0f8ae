"""SECURITY.md section D: PKCE (RFC 7636), S256 only, D-01..D-12.

openxp's decisions: PKCE is required for public clients and for clients
registered with ``require_pkce``, optional for other confidential clients (the
seed's flow sends no challenge); ``plain`` and a challenge without a method are
refused; a verifier for a code issued without a challenge fails (D-09).
"""

from __future__ import annotations

import inspect
import secrets
from urllib.parse import urlsplit

import httpx
import pytest

from openxp import crypto
from openxp.oauth import rfc7636
from openxp.oauth.errors import InvalidGrant
from tests.support.asserts import assert_err_redirect, assert_token_error
from tests.support.flow import Browser, api, auth_params, exchange, new_code, pkce_pair, token_post
from tests.support.provision import dedicated_client
from tests.support.records import digest
from tests.support.server import Server


@pytest.fixture(scope="module")
def pkce_client(server: Server) -> str:
    """A confidential client registered with --require-pkce."""
    return dedicated_client(server, "pkce", "--require-pkce", name="PKCE required")


def pkce_code(browser: Browser, client: str = "c1", length: int = 64) -> tuple[str, str, str]:
    verifier, challenge = pkce_pair(length)
    code = new_code(browser, client, code_challenge=challenge, code_challenge_method="S256")
    return code, verifier, challenge


def authorize(server: Server, params: dict[str, str] | list[tuple[str, str]]) -> httpx.Response:
    return httpx.get(f"{server.base_url}/auth/oauth/authorize", params=params, timeout=30)


# ---- D-01 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [43, 64, 128])
@pytest.mark.parametrize("client", ["c1", "cp"])
def test_D01_s256_happy_path(server: Server, admin_browser: Browser, client: str, length: int) -> None:
    """D-01: a code bound to an S256 challenge redeems with its verifier (43 and 128 characters)."""
    code, verifier, challenge = pkce_code(admin_browser, client, length)
    stored = server.sql("SELECT code_challenge FROM authorization_codes WHERE code_hash = :h", {"h": digest(code)})
    assert stored[0][0] == challenge
    response = exchange(server, code, client, code_verifier=verifier)
    assert response.status_code == 200, response.text
    assert api(server, response.json()["access_token"]).status_code == 200


def test_D01_public_client_sends_no_secret(server: Server, admin_browser: Browser) -> None:
    """D-01: the public client cp authenticates with client_id and the verifier alone."""
    code, verifier, _ = pkce_code(admin_browser, "cp")
    assert server.clients["cp"]["client_secret"] is None
    body = {
        "grant_type": "authorization_code",
        "client_id": server.clients["cp"]["client_id"],
        "redirect_uri": server.clients["cp"]["redirect_uris"][0],
        "code": code,
        "code_verifier": verifier,
    }
    response = token_post(server, data=body)
    assert response.status_code == 200, response.text


# ---- D-02 .. D-06: the authorization request ------------------------------------------------------


def test_D02_plain_refused(server: Server) -> None:
    """D-02: code_challenge_method=plain is ERR-REDIRECT(invalid_request)."""
    verifier, _ = pkce_pair()
    for client in ("c1", "cp"):
        params = auth_params(server, client, code_challenge=verifier, code_challenge_method="plain")
        assert_err_redirect(server, authorize(server, params), "invalid_request", client=client)
    # A 43-character "plain" challenge that happens to look like an S256 one is refused too.
    _, challenge = pkce_pair()
    params = auth_params(server, "c1", code_challenge=challenge, code_challenge_method="plain")
    assert_err_redirect(server, authorize(server, params), "invalid_request", client="c1")


def test_D03_method_missing(server: Server) -> None:
    """D-03: a challenge without code_challenge_method is refused, not defaulted (to plain or S256)."""
    _, challenge = pkce_pair()
    for client in ("c1", "cp"):
        params = auth_params(server, client, code_challenge=challenge)
        assert_err_redirect(server, authorize(server, params), "invalid_request", client=client)
    # An empty method is the same as none (RFC 6749 3.1).
    params = [*auth_params(server, "c1", code_challenge=challenge).items(), ("code_challenge_method", "")]
    assert_err_redirect(server, authorize(server, params), "invalid_request", client="c1")


def test_D04_challenge_missing_where_required(server: Server, pkce_client: str) -> None:
    """D-04: the public client and a --require-pkce client without code_challenge: ERR-REDIRECT(invalid_request)."""
    for client in ("cp", pkce_client):
        assert_err_redirect(server, authorize(server, auth_params(server, client)), "invalid_request", client=client)
        params = auth_params(server, client, code_challenge_method="S256")
        assert_err_redirect(server, authorize(server, params), "invalid_request", client=client)


def test_D04_required_pkce_client_works_with_s256(server: Server, admin_browser: Browser, pkce_client: str) -> None:
    """D-04: the --require-pkce client completes the flow with S256 and its verifier."""
    code = pkce_code(admin_browser, pkce_client)[0]
    assert_token_error(exchange(server, code, pkce_client), 400, "invalid_grant")
    code, verifier, _ = pkce_code(admin_browser, pkce_client)
    response = exchange(server, code, pkce_client, code_verifier=verifier)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("method", ["s256", "SHA256", "S512", "S256 ", " S256", "sha-256", "none"])
def test_D05_unknown_or_misspelt_method(server: Server, method: str) -> None:
    """D-05: methods are case-sensitive; anything but S256 is ERR-REDIRECT(invalid_request)."""
    _, challenge = pkce_pair()
    params = auth_params(server, "c1", code_challenge=challenge, code_challenge_method=method)
    assert_err_redirect(server, authorize(server, params), "invalid_request", client="c1")


def test_D05_method_sent_twice(server: Server) -> None:
    """D-05: a repeated code_challenge_method (even S256 twice) is ERR-REDIRECT(invalid_request)."""
    _, challenge = pkce_pair()
    params = [
        *auth_params(server, "c1", code_challenge=challenge).items(),
        ("code_challenge_method", "S256"),
        ("code_challenge_method", "plain"),
    ]
    assert_err_redirect(server, authorize(server, params), "invalid_request", client="c1")


@pytest.mark.parametrize(
    "challenge",
    [
        "A" * 42,
        "A" * 44,
        "A" * 128,
        "A" * 42 + "+",
        "A" * 42 + "/",
        "A" * 42 + "=",
        "A" * 43 + "=",
        "A" * 42 + "\u00e9",
        "A" * 42 + ".",
        "A" * 42 + "~",
        "A" * 21 + " " + "A" * 21,
    ],
)
def test_D06_malformed_challenge(server: Server, challenge: str) -> None:
    """D-06: an S256 challenge is exactly 43 base64url characters; anything else is ERR-REDIRECT(invalid_request)."""
    params = auth_params(server, "c1", code_challenge=challenge, code_challenge_method="S256")
    assert_err_redirect(server, authorize(server, params), "invalid_request", client="c1")


# ---- D-07 .. D-10: the token request -----------------------------------------------------------


@pytest.mark.parametrize("client", ["c1", "cp"])
def test_D07_verifier_missing(server: Server, admin_browser: Browser, client: str) -> None:
    """D-07: a PKCE-bound code redeemed without code_verifier (absent or empty) is invalid_grant."""
    code = pkce_code(admin_browser, client)[0]
    assert_token_error(exchange(server, code, client), 400, "invalid_grant")
    code = pkce_code(admin_browser, client)[0]
    assert_token_error(exchange(server, code, client, code_verifier=""), 400, "invalid_grant", "invalid_request")


@pytest.mark.parametrize("client", ["c1", "cp"])
def test_D08_wrong_verifier_burns_the_code(server: Server, admin_browser: Browser, client: str) -> None:
    """D-08: another valid-looking verifier, or the challenge itself, is invalid_grant; a failed verifier
    spends the code, so the right verifier afterwards is refused too."""
    code, verifier, challenge = pkce_code(admin_browser, client)
    other, _ = pkce_pair()
    assert_token_error(exchange(server, code, client, code_verifier=other), 400, "invalid_grant")
    assert_token_error(exchange(server, code, client, code_verifier=verifier), 400, "invalid_grant")
    code, verifier, challenge = pkce_code(admin_browser, client)
    assert_token_error(exchange(server, code, client, code_verifier=challenge), 400, "invalid_grant")
    assert_token_error(exchange(server, code, client, code_verifier=verifier), 400, "invalid_grant")
    rows = server.sql("SELECT used_at FROM authorization_codes WHERE code_hash = :h", {"h": digest(code)})
    assert rows[0][0] is not None


def test_D08_verifier_of_another_code(server: Server, admin_browser: Browser) -> None:
    """D-08: two codes, verifiers swapped: both invalid_grant (each challenge is bound to its own code)."""
    code1, verifier1, _ = pkce_code(admin_browser)
    code2, verifier2, _ = pkce_code(admin_browser)
    assert_token_error(exchange(server, code1, code_verifier=verifier2), 400, "invalid_grant")
    assert_token_error(exchange(server, code2, code_verifier=verifier1), 400, "invalid_grant")


def test_D09_downgrade_verifier_without_challenge(server: Server, admin_browser: Browser) -> None:
    """D-09: a code issued without a challenge (c1 may skip PKCE) redeemed with a code_verifier: invalid_grant."""
    code = new_code(admin_browser, "c1")
    stored = server.sql("SELECT code_challenge FROM authorization_codes WHERE code_hash = :h", {"h": digest(code)})
    assert stored[0][0] is None
    verifier, _ = pkce_pair()
    assert_token_error(exchange(server, code, code_verifier=verifier), 400, "invalid_grant")
    assert_token_error(exchange(server, code, form=True, code_verifier=verifier), 400, "invalid_grant")
    assert_token_error(exchange(server, code), 400, "invalid_grant")


@pytest.mark.parametrize(
    "verifier",
    [
        "a" * 42,
        "a" * 129,
        "a" * 1000,
        "a" * 42 + " ",
        "a" * 21 + " " + "a" * 21,
        "a" * 42 + "+",
        "a" * 42 + "/",
        "a" * 42 + "=",
        "a" * 42 + "\u00e9",
        "a" * 42 + "\U0001f600",
        "a" * 43 + "\n",
        "a" * 43 + "\x00",
        "a" * 43 + "%41",
    ],
)
def test_D10_verifier_syntax(server: Server, admin_browser: Browser, verifier: str) -> None:
    """D-10: a verifier outside RFC 7636 4.1's syntax is 400 invalid_grant/invalid_request, never 200 or 5xx."""
    code, _, _ = pkce_code(admin_browser)
    assert_token_error(exchange(server, code, code_verifier=verifier), 400, "invalid_grant", "invalid_request")


def test_D10_verifier_matching_challenge_but_malformed(server: Server, admin_browser: Browser) -> None:
    """D-10: a 42-character verifier whose S256 is the bound challenge still fails (syntax is checked)."""
    verifier = secrets.token_urlsafe(32)[:42]
    challenge = rfc7636.s256(verifier)
    code = new_code(admin_browser, "c1", code_challenge=challenge, code_challenge_method="S256")
    assert_token_error(exchange(server, code, code_verifier=verifier), 400, "invalid_grant", "invalid_request")


# ---- D-11: constant-time comparison (unit level) -----------------------------------------------------


def test_D11_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """D-11: verify() compares the computed challenge through crypto.equals (hmac.compare_digest)."""
    verifier = secrets.token_urlsafe(48)
    challenge = rfc7636.s256(verifier)
    calls: list[tuple[str, str]] = []
    real_equals = crypto.equals

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real_equals(a, b)

    monkeypatch.setattr(crypto, "equals", spy)
    rfc7636.verify(challenge, verifier)
    assert calls == [(challenge, challenge)]
    calls.clear()
    with pytest.raises(InvalidGrant):
        rfc7636.verify(challenge, secrets.token_urlsafe(48))
    assert len(calls) == 1
    monkeypatch.undo()
    # crypto.equals itself is hmac.compare_digest on bytes.
    assert "hmac.compare_digest" in inspect.getsource(crypto.equals)
    assert crypto.equals(challenge, challenge) and not crypto.equals(challenge, challenge[:-1] + "x")
    assert not crypto.equals(challenge, challenge[:-1]) and crypto.equals("\u00e9", "\u00e9")


def test_D11_verify_behaviour() -> None:
    """D-11: verify() accepts exactly the matching verifier, and refuses every mismatch and downgrade."""
    verifier = secrets.token_urlsafe(48)
    challenge = rfc7636.s256(verifier)
    assert challenge == rfc7636.s256(verifier) and len(challenge) == 43
    rfc7636.verify(challenge, verifier)
    rfc7636.verify(None, None)
    for bad_challenge, bad_verifier in [
        (challenge, None),
        (challenge, challenge),
        (challenge, verifier + "a"),
        (challenge, verifier[:-1]),
        (None, verifier),
        (challenge.lower() if challenge.lower() != challenge else challenge.upper(), verifier),
    ]:
        with pytest.raises(InvalidGrant):
            rfc7636.verify(bad_challenge, bad_verifier)


# ---- D-12 -------------------------------------------------------------------------------------


def test_D12_metadata_advertises_s256_only(server: Server) -> None:
    """D-12: RFC 8414 metadata says code_challenge_methods_supported == ["S256"]."""
    response = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server", timeout=30)
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert urlsplit(metadata["token_endpoint"]).path == "/auth/oauth/token"
