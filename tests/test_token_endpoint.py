"""SECURITY.md section F: the token endpoint (client authentication, content
types, parameters, headers), F-01..F-18, over HTTP against the real server."""

from __future__ import annotations

import base64
import re
import statistics
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.support import asserts
from tests.support.asserts import RFC6749_ERRORS, after_a_change_behind_openxps_back
from tests.support.flow import Browser, api, auth_params, code_body, exchange, new_code, query_of, token_post
from tests.support.server import Server

# RFC 6749 5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
DESCRIPTION_CHARS = re.compile(r"[\x20-\x21\x23-\x5B\x5D-\x7E]*")


def token_url(server: Server) -> str:
    return f"{server.base_url}/auth/oauth/token"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def assert_token_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """TOKEN-ERR(s, e) of SECURITY.md section 0, plus F-14's body hygiene."""
    asserts.assert_token_error(response, status, error)
    assert response.headers.get("pragma") == "no-cache"
    body = response.json()
    assert isinstance(body, dict)
    assert set(body) <= {"error", "error_description", "error_uri"}
    description = body.get("error_description", "")
    assert DESCRIPTION_CHARS.fullmatch(description), description
    assert "Traceback" not in response.text and "SELECT" not in response.text.upper()
    return body


def assert_token_success(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("cache-control") == "no-store"
    assert response.headers.get("pragma") == "no-cache"
    body = response.json()
    assert body["access_token"].startswith("cxa_")
    assert body["refresh_token"].startswith("cxr_")
    assert body["token_type"].lower() == "bearer"
    assert body["expires_in"] == 3600
    return body


# ---- F-01 .. F-03: happy paths and cache headers -------------------------------------------------


def test_F01_form_body_happy_path(server: Server, admin_browser: Browser) -> None:
    """F-01: a form-encoded authorization_code request gets the seed's token JSON with no-store/no-cache."""
    code = new_code(admin_browser)
    response = token_post(server, data=code_body(server, code))
    assert_token_success(response)


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_F02_json_body_happy_path(server: Server, admin_browser: Browser, content_type: str) -> None:
    """F-02: the seed's JSON body, with and without a charset parameter, works like the form body."""
    import json

    code = new_code(admin_browser)
    response = token_post(server, content=json.dumps(code_body(server, code)), headers={"content-type": content_type})
    body = assert_token_success(response)
    assert api(server, body["access_token"]).status_code == 200


def test_F03_no_store_on_every_token_response(server: Server, admin_browser: Browser) -> None:
    """F-03: Cache-Control no-store on success, on refresh, on 400 and on 401 answers."""
    code = new_code(admin_browser)
    issued = assert_token_success(token_post(server, json=code_body(server, code)))
    c1 = server.clients["c1"]
    refreshed = token_post(
        server,
        json={
            "grant_type": "refresh_token",
            "client_id": c1["client_id"],
            "client_secret": c1["client_secret"],
            "refresh_token": issued["refresh_token"],
        },
    )
    assert_token_success(refreshed)
    assert_token_error(token_post(server, json=code_body(server, code)), 400, "invalid_grant")
    assert_token_error(token_post(server, json=code_body(server, "x", client_secret="wrong")), 401, "invalid_client")
    assert_token_error(token_post(server, json={"grant_type": "authorization_code"}), 401, "invalid_client")
    assert_token_error(token_post(server, json={}), 400, "invalid_request")


# ---- F-04 .. F-10: content types, type confusion, parameters -------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {},
        {"content-type": "multipart/form-data; boundary=x"},
        {"content-type": "application/xml"},
    ],
    ids=["text-plain", "none", "multipart", "xml"],
)
def test_F04_unsupported_content_type_is_415_and_not_parsed(
    server: Server, admin_browser: Browser, headers: dict[str, str]
) -> None:
    """F-04: other content types are 415 invalid_request and the body is not parsed (the code stays unspent)."""
    import json

    code = new_code(admin_browser)
    response = token_post(server, content=json.dumps(code_body(server, code)).encode(), headers=headers)
    assert_token_error(response, 415, "invalid_request")
    # Not parsed: the code was never claimed, so the proper request still works.
    assert_token_success(token_post(server, json=code_body(server, code)))


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        ('{"code": ["a", "b"], "grant_type": "authorization_code"}', 400, "invalid_request"),
        ('{"code": 123, "grant_type": "authorization_code"}', 400, "invalid_request"),
        ('{"client_secret": true, "grant_type": "authorization_code"}', 400, "invalid_request"),
        ('{"client_secret": null, "grant_type": "authorization_code"}', 400, "invalid_request"),
        ('{"client_secret": {"$ne": ""}, "grant_type": "authorization_code"}', 400, "invalid_request"),
        ('{"code": "a", "code": "b", "grant_type": "authorization_code"}', 400, "invalid_request"),
        ('[{"grant_type": "authorization_code"}]', 400, "invalid_request"),
        ('"grant_type=authorization_code"', 400, "invalid_request"),
        ("{not json", 400, "invalid_request"),
        ("[" * 2000 + "]" * 2000, 400, "invalid_request"),
        ('{"a":' * 2000 + "1" + "}" * 2000, 400, "invalid_request"),
    ],
    ids=[
        "code-array",
        "code-number",
        "secret-true",
        "secret-null",
        "secret-operator",
        "duplicate-keys",
        "top-level-array",
        "top-level-string",
        "malformed",
        "deep-array",
        "deep-object",
    ],
)
def test_F05_json_type_confusion(server: Server, raw: str, status: int, error: str) -> None:
    """F-05: non-string members, duplicate keys, non-objects and deep nesting are invalid_request, never 200/5xx."""
    response = token_post(server, content=raw.encode(), headers={"content-type": "application/json"})
    assert_token_error(response, status, error)


def test_F05_json_with_real_credentials_and_wrong_types_never_succeeds(server: Server, admin_browser: Browser) -> None:
    """F-05: a valid code with a type-confused secret fails and does not spend the code."""
    code = new_code(admin_browser)
    for secret in (True, None, {"$ne": ""}, [server.clients["c1"]["client_secret"]]):
        body: dict[str, Any] = {**code_body(server, code), "client_secret": secret}
        assert_token_error(token_post(server, json=body), 400, "invalid_request")
    assert_token_success(token_post(server, json=code_body(server, code)))


def test_F05_invalid_utf8_json(server: Server) -> None:
    """F-05 / O-05: invalid UTF-8 in a JSON body is invalid_request."""
    raw = b'{"grant_type": "authorization_code", "code": "\xff\xfe"}'
    assert_token_error(
        token_post(server, content=raw, headers={"content-type": "application/json"}), 400, "invalid_request"
    )


def test_F06_duplicate_form_parameters(server: Server, admin_browser: Browser) -> None:
    """F-06: a parameter twice in a form body is invalid_request, and the code is not spent."""
    code = new_code(admin_browser)
    body = list(code_body(server, code).items())
    for duplicated in ("code", "client_id", "grant_type"):
        value = dict(body)[duplicated]
        pairs = [*body, (duplicated, "other" if duplicated != "client_id" else value)]
        response = token_post(
            server,
            content=httpx.QueryParams(pairs).__str__().encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert_token_error(response, 400, "invalid_request")
    assert_token_success(token_post(server, data=code_body(server, code)))


def test_F06_parameter_in_query_and_body(server: Server, admin_browser: Browser) -> None:
    """F-06: the same parameter in the query string and the body is invalid_request (any query is refused)."""
    code = new_code(admin_browser)
    response = httpx.post(token_url(server), params={"code": code}, data=code_body(server, code), timeout=30)
    assert_token_error(response, 400, "invalid_request")
    assert_token_success(token_post(server, data=code_body(server, code)))


def test_F07_credentials_in_the_url_are_refused(server: Server, admin_browser: Browser) -> None:
    """F-07: parameters only in the query string are invalid_request; the secret is not logged."""
    code = new_code(admin_browser)
    params = code_body(server, code)
    response = httpx.post(token_url(server), params=params, timeout=30)
    assert_token_error(response, 400, "invalid_request")
    response = httpx.post(
        token_url(server), params=params, headers={"content-type": "application/x-www-form-urlencoded"}, timeout=30
    )
    assert_token_error(response, 400, "invalid_request")
    # Nothing accepted from the query: the code is still good.
    assert_token_success(token_post(server, data=params))
    log = server.log()
    assert server.clients["c1"]["client_secret"] not in log
    assert code not in log


def test_F08_get_is_405_with_allow_post(server: Server) -> None:
    """F-08: GET /auth/oauth/token is 405 with Allow: POST."""
    c1 = server.clients["c1"]
    response = httpx.get(
        token_url(server),
        params={"grant_type": "authorization_code", "client_id": c1["client_id"]},
        timeout=30,
    )
    assert response.status_code == 405
    assert "POST" in response.headers.get("allow", "")
    assert "access_token" not in response.text


def test_F09_grant_type_handling(server: Server) -> None:
    """F-09: missing grant_type is invalid_request; password, implicit, device_code and AUTHORIZATION_CODE
    are unsupported_grant_type; client_credentials is enabled (service accounts), so a client not
    registered for it gets unauthorized_client."""
    c1 = server.clients["c1"]
    creds = {"client_id": c1["client_id"], "client_secret": c1["client_secret"]}
    assert_token_error(token_post(server, data=creds), 400, "invalid_request")
    assert_token_error(token_post(server, data={**creds, "grant_type": ""}), 400, "invalid_request")
    for grant_type in (
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
        "AUTHORIZATION_CODE",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ):
        body = {**creds, "grant_type": grant_type, "username": "adminA@example.com", "password": "x"}
        assert_token_error(token_post(server, data=body), 400, "unsupported_grant_type")
    service = {**creds, "grant_type": "client_credentials"}
    assert_token_error(token_post(server, data=service), 400, "unauthorized_client")


def test_F10_empty_values_mean_absent(server: Server, admin_browser: Browser) -> None:
    """F-10: client_secret= (empty) is invalid_client 401; code= is invalid_request."""
    code = new_code(admin_browser)
    assert_token_error(token_post(server, data=code_body(server, code, client_secret="")), 401, "invalid_client")
    assert_token_error(token_post(server, data=code_body(server, "")), 400, "invalid_request")
    assert_token_error(token_post(server, json=code_body(server, "")), 400, "invalid_request")
    assert_token_success(token_post(server, data=code_body(server, code)))


# ---- F-11 .. F-13: client authentication ------------------------------------------------------


def test_F11_client_auth_failures_in_the_body_are_identical_401s(server: Server, admin_browser: Browser) -> None:
    """F-11: wrong secret, unknown client, missing secret, other-case secret, secret + newline: 401
    invalid_client with identical bodies, and similar latency for unknown vs wrong."""
    code = new_code(admin_browser)
    secret = server.clients["c1"]["client_secret"]
    bodies = [
        code_body(server, code, client_secret="wrong-" + secret),
        code_body(server, code, client_id="no-such-client-" + secret[:8]),
        {k: v for k, v in code_body(server, code).items() if k != "client_secret"},
        code_body(server, code, client_secret=secret.swapcase()),
        code_body(server, code, client_secret=secret + "\n"),
        code_body(server, code, client_secret=" " + secret),
        code_body(server, code, client_secret=server.clients["c2"]["client_secret"]),
    ]
    answers = []
    for body in bodies:
        for form in (False, True):
            response = token_post(server, data=body) if form else token_post(server, json=body)
            answers.append(assert_token_error(response, 401, "invalid_client"))
            assert "www-authenticate" not in response.headers or "Basic" in response.headers["www-authenticate"]
    assert all(answer == answers[0] for answer in answers), answers
    # The code was never touched by the failed attempts.
    assert_token_success(token_post(server, json=code_body(server, code)))


def test_F11_unknown_client_and_wrong_secret_take_similar_time(server: Server) -> None:
    """F-11: unknown client_id and wrong secret take about the same time (no cheap existence oracle)."""
    c1 = server.clients["c1"]

    samples: dict[str, list[float]] = {c1["client_id"]: [], "unknown-client-id-xyz": []}
    with httpx.Client(timeout=30) as http:
        # Interleaved, so load from other processes on the machine hits both sides alike.
        for _ in range(15):
            for client_id, bucket in samples.items():
                body = {
                    "grant_type": "refresh_token",
                    "client_id": client_id,
                    "client_secret": "wrong",
                    "refresh_token": "cxr_x",
                }
                start = time.perf_counter()
                assert http.post(token_url(server), json=body).status_code == 401
                bucket.append(time.perf_counter() - start)
    known, unknown = (statistics.median(bucket) for bucket in samples.values())
    # A coarse bound: both are one indexed look-up and one digest comparison.
    assert abs(known - unknown) < 0.05, (known, unknown)


def test_F12_basic_auth_failure_has_basic_challenge(server: Server, admin_browser: Browser) -> None:
    """F-12: wrong secret via HTTP Basic is 401 invalid_client with WWW-Authenticate: Basic realm="openxp"."""
    code = new_code(admin_browser)
    c1 = server.clients["c1"]
    body = {k: v for k, v in code_body(server, code).items() if k not in ("client_id", "client_secret")}
    for header in (
        basic(c1["client_id"], "wrong"),
        basic("unknown-client", c1["client_secret"]),
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b":" + c1["client_secret"].encode()).decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic",
    ):
        response = token_post(server, data=body, headers={"authorization": header})
        assert_token_error(response, 401, "invalid_client")
        assert response.headers.get("www-authenticate") == 'Basic realm="openxp"', header
    assert_token_success(
        token_post(server, data=body, headers={"authorization": basic(c1["client_id"], c1["client_secret"])})
    )


def test_F12_basic_auth_with_form_urlencoded_credentials(server: Server, admin_browser: Browser) -> None:
    """F-12: RFC 6749 2.3.1 asks clients to form-urlencode id and secret before base64; the secret is
    split on the first colon only (an appended ':x' makes it wrong, not truncated). Generated secrets
    use only [A-Za-z0-9_-] (CONTRACT.md), so a secret holding ':', '+', '%' or a space cannot exist;
    what must hold is that the plain and the URL-encoded Basic forms both work."""
    c1 = server.clients["c1"]
    body = lambda code: {  # noqa: E731
        k: v for k, v in code_body(server, code).items() if k not in ("client_id", "client_secret")
    }
    encoded = basic(quote(c1["client_id"], safe=""), quote(c1["client_secret"], safe=""))
    assert_token_success(token_post(server, data=body(new_code(admin_browser)), headers={"authorization": encoded}))
    code = new_code(admin_browser)
    colon = basic(c1["client_id"], c1["client_secret"] + ":x")
    assert_token_error(token_post(server, data=body(code), headers={"authorization": colon}), 401, "invalid_client")
    # body client_id equal to the Basic id is fine.
    same = {**body(code), "client_id": c1["client_id"]}
    ok = basic(c1["client_id"], c1["client_secret"])
    assert_token_success(token_post(server, data=same, headers={"authorization": ok}))


def test_F13_two_authentication_methods_at_once(server: Server, admin_browser: Browser) -> None:
    """F-13: Basic plus client_secret in the body is 400 invalid_request; a body client_id that differs
    from the Basic id is 401 invalid_client; neither spends the code."""
    code = new_code(admin_browser)
    c1, c2 = server.clients["c1"], server.clients["c2"]
    header = {"authorization": basic(c1["client_id"], c1["client_secret"])}
    assert_token_error(token_post(server, data=code_body(server, code), headers=header), 400, "invalid_request")
    assert_token_error(token_post(server, json=code_body(server, code), headers=header), 400, "invalid_request")
    other = {k: v for k, v in code_body(server, code).items() if k != "client_secret"}
    other["client_id"] = c2["client_id"]
    response = token_post(server, data=other, headers=header)
    assert_token_error(response, 401, "invalid_client")
    assert response.headers.get("www-authenticate") == 'Basic realm="openxp"'
    assert_token_success(token_post(server, json=code_body(server, code)))


def test_F13_unsupported_authorization_scheme(server: Server, admin_browser: Browser) -> None:
    """F-13: a Bearer (or other) Authorization header is not a client authentication method: 401."""
    code = new_code(admin_browser)
    response = token_post(server, data=code_body(server, code), headers={"authorization": "Bearer cxa_something"})
    assert_token_error(response, 401, "invalid_client")
    assert_token_success(token_post(server, data=code_body(server, code)))


# ---- F-14 .. F-18 ------------------------------------------------------------------------------


def test_F14_error_bodies_never_echo_secrets_or_input(server: Server, admin_browser: Browser) -> None:
    """F-14: error bodies use RFC 6749 codes, a safe description charset, and never echo a secret,
    a code, a refresh token or hostile input."""
    code = new_code(admin_browser)
    secret = server.clients["c1"]["client_secret"]
    hostile = 'x"\\\r\n\t<script>' + "' OR 1=1 --"
    requests = [
        code_body(server, code, client_secret=secret + "x"),
        code_body(server, hostile),
        code_body(server, code, redirect_uri=hostile),
        code_body(server, code, grant_type=hostile),
        code_body(server, code, client_id=hostile),
        {
            "grant_type": "refresh_token",
            "client_id": server.clients["c1"]["client_id"],
            "client_secret": secret,
            "refresh_token": hostile,
        },
        code_body(server, code, code_verifier=hostile),
    ]
    for body in requests:
        response = token_post(server, json=body)
        assert 400 <= response.status_code < 500, response.text
        parsed = response.json()
        assert parsed["error"] in RFC6749_ERRORS
        assert DESCRIPTION_CHARS.fullmatch(parsed.get("error_description", ""))
        for leaked in (secret, code, "<script>", "OR 1=1"):
            assert leaked not in response.text


@pytest.mark.parametrize("method", ["OPTIONS", "POST"])
def test_F15_no_cors_headers_on_the_token_endpoint(server: Server, method: str) -> None:
    """F-15: neither a preflight nor an actual cross-origin request gets any Access-Control-Allow-Origin."""
    headers = {
        "origin": "https://evil.test",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, authorization",
    }
    response = httpx.request(method, token_url(server), headers=headers, json={}, timeout=30)
    assert response.status_code < 500
    assert not any(name.lower().startswith("access-control-") for name in response.headers)


def test_F16_access_token_properties_and_enforced_lifetime(server: Server, admin_browser: Browser) -> None:
    """F-16: access tokens are opaque, 256-bit URL-safe random, unique; the stored expiry is issue + 3600 s
    and the server enforces it (1 s before expiry works, 1 s after is 401)."""
    issued = [
        assert_token_success(token_post(server, json=code_body(server, new_code(admin_browser)))) for _ in range(3)
    ]
    access = [body["access_token"] for body in issued]
    assert len(set(access)) == len(access)
    for token in access:
        assert re.fullmatch(r"cxa_[A-Za-z0-9_-]{43}", token), token
    rows = server.sql("SELECT created_at, expires_at FROM access_tokens ORDER BY created_at DESC LIMIT 3")
    for created_at, expires_at in rows:
        assert expires_at - created_at == pytest.approx(3600, abs=1)
    token = access[0]
    from openxp import crypto

    digest = crypto.digest(token)
    # Clock-inject by ageing the row: 1 s left -> still accepted.
    server.sql("UPDATE access_tokens SET expires_at = :t WHERE token_hash = :h", {"t": time.time() + 2, "h": digest})
    assert api(server, token).status_code == 200
    # 1 s past expiry -> 401 invalid_token.
    server.sql("UPDATE access_tokens SET expires_at = :t WHERE token_hash = :h", {"t": time.time() - 1, "h": digest})
    response = after_a_change_behind_openxps_back(lambda: api(server, token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_F17_tokens_only_in_the_json_body(server: Server) -> None:
    """F-17: the redirect carries only code/state/iss; the token response has no Location or Set-Cookie."""
    browser = Browser.open(server)
    try:
        final = browser.approve(auth_params(server, "c1"))
        assert final.status_code == 303
        location = final.headers["location"]
        assert set(query_of(location)) == {"code", "state", "iss"}
        assert "cxa_" not in location and "cxr_" not in location
        assert urlsplit(location).fragment == ""
        code = query_of(location)["code"][0]
    finally:
        browser.close()
    response = exchange(server, code)
    body = assert_token_success(response)
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    for value in response.headers.values():
        assert body["access_token"] not in value and body["refresh_token"] not in value


def test_F18_plain_http_is_not_redirected_to_https(server: Server, admin_browser: Browser) -> None:
    """F-18: TLS terminates at the reverse proxy (deployment matter, see docs); the app itself must never
    answer plain HTTP with a transparent 301/302/307/308 to https (which would have exposed the secret)."""
    code = new_code(admin_browser)
    assert server.base_url.startswith("http://")
    response = httpx.post(token_url(server), data=code_body(server, code), timeout=30, follow_redirects=False)
    assert not 300 <= response.status_code < 400
    assert "location" not in response.headers
    wrong = httpx.post(token_url(server), data=code_body(server, "x"), timeout=30, follow_redirects=False)
    assert not 300 <= wrong.status_code < 400
    assert "location" not in wrong.headers
