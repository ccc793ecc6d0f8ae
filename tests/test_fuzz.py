"""Property tests (Hypothesis): arbitrary input never makes the server fail.

- ``GET /auth/oauth/authorize`` with arbitrary query strings: never 5xx, and a
  redirect only ever goes to a registered redirect URI (A-cases' core invariant);
- ``POST /auth/oauth/token``, ``/auth/oauth/revoke``, ``/auth/oauth/introspect``
  with arbitrary JSON / form / raw bodies and headers: never 5xx, and every
  refusal is JSON with an ``error`` from the RFC 6749 / 7009 list (plus
  ``too_many_requests``) and ``Cache-Control: no-store``;
- ``POST /api/import/users`` with arbitrary bodies and headers: never 5xx, and
  every answer has the ClearXP shape.

Examples stay modest (150 per test) so the file runs in well under a minute per database.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.asserts import RFC6749_ERRORS
from tests.support.flow import query_of, tokens
from tests.support.provision import create_client
from tests.support.server import Server

OAUTH_ERRORS = RFC6749_ERRORS | {"unsupported_token_type", "too_many_requests"}
AUTHORIZE_ERRORS = {
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---- strategies ---------------------------------------------------------------------------------

# Any code point, lone surrogates included (JSON can carry them as \\uD800 escapes).
any_text = st.text(st.characters(blacklist_categories=()), max_size=40)
# What survives as a str in a URL or form (no surrogates).
url_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
# h11 refuses header values with leading or trailing blanks, so strip them here.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(str.strip)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
AUTHORIZE_KEYS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "request",
    "request_uri",
    "nonce",
    "prompt",
]
TOKEN_KEYS = [
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "token",
    "token_type_hint",
    "username",
    "password",
]


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30, follow_redirects=False) as client:
        yield client


@pytest.fixture(scope="module")
def access_token(server: Server) -> str:
    return str(tokens(server)["access_token"])


def fuzz_client(server: Server) -> dict[str, Any]:
    """A client of the fuzzer's own: its secret lands in stored state values, and must not be
    a sentinel of the storage tests (M-03) that may run later in the session."""
    if "fuzz" not in server.clients:
        server.clients["fuzz"] = create_client(server, "fuzz")
    return server.clients["fuzz"]


def real_values(server: Server) -> list[str]:
    """Values that get a request past the first checks, so the fuzzing reaches deeper code."""
    c1, cp = fuzz_client(server), server.clients["cp"]
    return [
        c1["client_id"],
        c1["client_secret"],
        c1["redirect_uris"][0],
        cp["client_id"],
        cp["redirect_uris"][0],
        "authorization_code",
        "refresh_token",
        "code",
        "S256",
        "plain",
        "all",
        "users/import",
        "cxa_x",
        "cxr_x",
    ]


def param_value(server: Server) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(real_values(server)), url_text)


def query_strings(server: Server) -> st.SearchStrategy[bytes]:
    pairs = st.lists(st.tuples(st.one_of(st.sampled_from(AUTHORIZE_KEYS), url_text), param_value(server)), max_size=10)
    encoded = pairs.map(lambda p: urlencode(p, quote_via=quote).encode())
    # Raw bytes too: stray %, invalid UTF-8 after decoding, separators, non-ASCII bytes.
    raw = st.binary(max_size=200).map(lambda b: quote(b, safe="=&%;+").encode())
    return st.one_of(encoded, raw)


def token_bodies(server: Server) -> st.SearchStrategy[tuple[dict[str, str], bytes]]:
    """(headers, body): JSON objects (near-valid or arbitrary), form bodies, or raw bytes."""
    near_valid = st.dictionaries(st.sampled_from(TOKEN_KEYS), st.one_of(param_value(server), json_values), max_size=8)
    json_body = st.one_of(near_valid, json_values).map(
        lambda v: ({"content-type": "application/json"}, json.dumps(v).encode())
    )
    form_pairs = st.lists(st.tuples(st.one_of(st.sampled_from(TOKEN_KEYS), url_text), param_value(server)), max_size=8)
    form_body = form_pairs.map(lambda p: ({"content-type": "application/x-www-form-urlencoded"}, urlencode(p).encode()))
    content_types = st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "application/json; charset=latin-1",
            "multipart/form-data",
            "",
        ]
    )
    raw_body = st.tuples(content_types, st.binary(max_size=300)).map(
        lambda t: ({"content-type": t[0]} if t[0] else {}, t[1])
    )
    return st.one_of(json_body, form_body, raw_body)


def authorization_headers(server: Server) -> st.SearchStrategy[dict[str, str]]:
    c1 = fuzz_client(server)
    good = base64.b64encode(f"{c1['client_id']}:{c1['client_secret']}".encode()).decode()
    value = st.one_of(
        st.just(f"Basic {good}"),
        st.binary(max_size=60).map(lambda b: "Basic " + base64.b64encode(b).decode()),
        header_text.map(lambda t: f"Basic {t}"),
        header_text.map(lambda t: f"Bearer {t}"),
        header_text,
    )
    extra = st.dictionaries(
        st.sampled_from(["origin", "x-forwarded-for", "x-cxp-tenant", "accept", "cookie"]), header_text, max_size=2
    )
    return st.tuples(st.one_of(st.none(), value), extra).map(
        lambda t: {**t[1], **({"authorization": t[0].strip()} if t[0] and t[0].strip() else {})}
    )


def assert_oauth_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.headers.get("cache-control") == "no-store"
    if response.status_code == 200:
        return
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("error") in OAUTH_ERRORS, body
    assert "access_token" not in body


# ---- properties ---------------------------------------------------------------------------------


def test_fuzz_authorize_query(server: Server, http: httpx.Client) -> None:
    """A-cases (fuzz): arbitrary query strings at the authorization endpoint never cause a 5xx, and any
    redirect goes to a registered redirect URI with a known error code or a code."""
    registered = [uri for c in server.clients.values() for uri in c["redirect_uris"]]

    @FUZZ
    @given(query=query_strings(server))
    def check(query: bytes) -> None:
        response = http.get("/auth/oauth/authorize?" + query.decode("ascii"))
        assert response.status_code < 500, (query, response.text[:300])
        if 300 <= response.status_code < 400:
            location = response.headers["location"]
            assert any(location.startswith(uri.split("?")[0]) for uri in registered), location
            params = query_of(location)
            assert "code" in params or params.get("error", [""])[0] in AUTHORIZE_ERRORS, location
        else:
            assert "location" not in response.headers

    check()


@pytest.mark.parametrize("path", ["/auth/oauth/token", "/auth/oauth/revoke", "/auth/oauth/introspect"])
def test_fuzz_oauth_endpoints(server: Server, http: httpx.Client, path: str) -> None:
    """F-05 / F-14 / O-05 (fuzz): arbitrary bodies and headers at the token, revocation and introspection
    endpoints never cause a 5xx; refusals are JSON with an RFC error code and no-store."""

    @FUZZ
    @given(body=token_bodies(server), headers=authorization_headers(server))
    def check(body: tuple[dict[str, str], bytes], headers: dict[str, str]) -> None:
        content_headers, content = body
        response = http.post(path, content=content, headers={**headers, **content_headers})
        assert_oauth_answer(response)

    check()


def test_fuzz_import_users(server: Server, http: httpx.Client, access_token: str) -> None:
    """O-cases (fuzz): arbitrary JSON and raw bodies (with a valid token, and with arbitrary headers) at
    /api/import/users never cause a 5xx; every answer has the ClearXP shape (or the import report)."""
    row = st.fixed_dictionaries(
        {},
        optional={
            "name": st.one_of(any_text, json_values),
            "attributes": st.one_of(
                st.dictionaries(
                    st.one_of(st.sampled_from(["Email", "Hire Date", "Manager Email"]), any_text),
                    st.one_of(any_text, json_values),
                    max_size=4,
                ),
                json_values,
            ),
        },
    )
    near_valid = st.fixed_dictionaries(
        {"users": st.one_of(st.lists(st.one_of(row, json_values), max_size=5), json_values)},
        optional={"verify": st.one_of(st.just(True), json_values)},
    )
    body = st.one_of(
        st.one_of(near_valid, json_values).map(lambda v: ("application/json", json.dumps(v).encode())),
        st.tuples(st.sampled_from(["application/json", "text/csv", "text/plain"]), st.binary(max_size=300)),
    )
    tenant = st.one_of(st.just("a"), st.just("b"), header_text)

    @FUZZ
    @given(body=body, tenant=tenant, auth=st.one_of(st.just(f"Bearer {access_token}"), header_text))
    def check(body: tuple[str, bytes], tenant: str, auth: str) -> None:
        content_type, content = body
        headers = {"content-type": content_type, "x-cxp-tenant": tenant.strip() or "a"}
        if auth.strip():
            headers["authorization"] = auth.strip()
        payload: Any = http.post("/api/import/users", content=content, headers=headers)
        assert payload.status_code < 500, (content[:200], payload.text[:300])
        assert payload.headers.get("cache-control") == "no-store"
        parsed = payload.json()
        if payload.status_code == 200:
            assert {"rows", "new", "existing", "errorCount", "errors"} <= set(parsed)
        else:
            assert {"code", "name", "error", "message", "body"} <= set(parsed), parsed
            assert parsed["code"] == payload.status_code

    check()
