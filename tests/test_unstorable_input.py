"""Values the database cannot store, deep JSON, and a JSON body sent as a form.

SECURITY.md O-01 (``\\x00`` in every identifier is a literal, never a 5xx), O-02 (JSON nested
deeper than the documented limit is a quick 400), O-05 (invalid encodings are 400) and F-03-style
content-type mistakes at the token endpoint.

A NUL character (and a lone surrogate) cannot be stored in PostgreSQL ``text``; SQLite would take
it. openxp refuses such a value wherever it would reach the database, on both databases alike,
with the surface's 400 (``invalid_request`` on /auth/oauth, ``invalid_text`` on /xapi and /api).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.flow import tokens
from tests.support.server import Server

NUL = "a\x00b"
VERSION = {"X-Experience-API-Version": "1.0.3"}
STATEMENT = {
    "actor": {"mbox": "mailto:l@x.test"},
    "verb": {"id": "http://x.test/v"},
    "object": {"id": "http://x.test/o"},
}
AGENT = json.dumps({"mbox": "mailto:a@x.test"})


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.fixture(scope="module")
def bearer(server: Server) -> str:
    return str(tokens(server)["access_token"])


Call = Callable[[Server, str], httpx.Response]


def oauth(path: str, **kwargs: Any) -> Call:
    return lambda s, _token: httpx.post(f"{s.base_url}/auth/oauth/{path}", timeout=30, **kwargs)


def xapi(method: str, path: str, *, key: bool = True, **kwargs: Any) -> Call:
    def run(s: Server, _token: str) -> httpx.Response:
        headers = {**VERSION, **kwargs.pop("headers", {})}
        auth = (s.apikeys["KA"]["key"], s.apikeys["KA"]["secret"]) if key else None
        return httpx.request(method, f"{s.base_url}/xapi{path}", headers=headers, auth=auth, timeout=30, **kwargs)

    return run


def api(method: str, path: str, **kwargs: Any) -> Call:
    def run(s: Server, token: str) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}", "X-CXP-Tenant": "a", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{s.base_url}/api{path}", headers=headers, timeout=30, **kwargs)

    return run


def _agent_with_name(name: str) -> str:
    return json.dumps({"account": {"homePage": "http://x.test", "name": name}})


# (entry point, request, status, error code). Every value here reached SQL and answered 500 on
# PostgreSQL before; each is a literal the database cannot hold.
NUL_CASES: list[tuple[str, Call, int, str]] = [
    (
        "token JSON client_id",
        oauth("token", json={"grant_type": "authorization_code", "client_id": NUL, "code": "x"}),
        400,
        "invalid_request",
    ),
    (
        "token form client_id",
        oauth("token", data={"grant_type": "authorization_code", "client_id": NUL, "code": "x"}),
        400,
        "invalid_request",
    ),
    (
        "token Basic username",
        oauth(
            "token", data={"grant_type": "authorization_code", "code": "x"}, headers={"authorization": basic(NUL, "s")}
        ),
        400,
        "invalid_request",
    ),
    ("introspect client_id", oauth("introspect", data={"token": "x", "client_id": NUL}), 400, "invalid_request"),
    (
        "introspect Basic username",
        oauth("introspect", data={"token": "x"}, headers={"authorization": basic(NUL, "s")}),
        400,
        "invalid_request",
    ),
    ("revoke client_id", oauth("revoke", data={"token": "x", "client_id": NUL}), 400, "invalid_request"),
    (
        "revoke Basic username",
        oauth("revoke", data={"token": "x"}, headers={"authorization": basic(NUL, "s")}),
        400,
        "invalid_request",
    ),
    (
        "xapi Basic username",
        xapi("GET", "/statements", key=False, headers={"authorization": basic(NUL, "s")}),
        400,
        "invalid_text",
    ),
    (
        "xapi agent query (mbox)",
        xapi("GET", "/statements", params={"agent": json.dumps({"mbox": "mailto:a\x00@x.test"})}),
        400,
        "invalid_text",
    ),
    (
        "xapi agent query (account)",
        xapi("GET", "/statements", params={"agent": _agent_with_name(NUL)}),
        400,
        "invalid_text",
    ),
    (
        "xapi stateId",
        xapi("GET", "/activities/state", params={"activityId": "http://x.test/a", "agent": AGENT, "stateId": NUL}),
        400,
        "invalid_text",
    ),
    (
        "xapi state PUT",
        xapi(
            "PUT",
            "/activities/state",
            params={"activityId": "http://x.test/a", "agent": AGENT, "stateId": NUL},
            json={"a": 1},
        ),
        400,
        "invalid_text",
    ),
    (
        "xapi activityId",
        xapi("GET", "/activities/state", params={"activityId": "http://x.test/a" + NUL, "agent": AGENT}),
        400,
        "invalid_text",
    ),
    (
        "xapi profileId",
        xapi("GET", "/activities/profile", params={"activityId": "http://x.test/a", "profileId": NUL}),
        400,
        "invalid_text",
    ),
    (
        "xapi agent profileId",
        xapi("GET", "/agents/profile", params={"agent": AGENT, "profileId": NUL}),
        400,
        "invalid_text",
    ),
    (
        "xapi activities",
        xapi("GET", "/activities", params={"activityId": "http://x.test/a" + NUL}),
        400,
        "invalid_text",
    ),
    (
        "xapi statement verb",
        xapi("POST", "/statements", json=[{**STATEMENT, "verb": {"id": "http://x.test/v" + NUL}}]),
        400,
        "invalid_text",
    ),
    (
        "xapi statement actor",
        xapi("POST", "/statements", json=[{**STATEMENT, "actor": json.loads(_agent_with_name(NUL))}]),
        400,
        "invalid_text",
    ),
    (
        "xapi statement object",
        xapi("POST", "/statements", json=[{**STATEMENT, "object": {"id": "http://x.test/o" + NUL}}]),
        400,
        "invalid_text",
    ),
    (
        "xapi alternate syntax Basic",
        xapi(
            "POST",
            "/statements",
            key=False,
            params={"method": "GET"},
            data={"Authorization": basic(NUL, "x"), "X-Experience-API-Version": "1.0.3"},
        ),
        400,
        "invalid_text",
    ),
    ("api Basic username", api("GET", "/auth/me", headers={"authorization": basic(NUL, "s")}), 400, "invalid_text"),
    (
        "api short-lived actor",
        api(
            "POST",
            "/auth/basic",
            json={"username": "nul-actor", "ttlMins": 5, "data": {"actor": json.loads(_agent_with_name(NUL))}},
        ),
        400,
        "invalid_text",
    ),
    ("api short-lived revoke", api("DELETE", "/auth/basic/a%00b"), 400, "invalid_text"),
    (
        "api launch activity_id",
        api(
            "POST",
            "/launch",
            json={
                "url": "https://x.test/c",
                "actor": {"mbox": "mailto:a@x.test"},
                "activity_id": "http://x.test/a" + NUL,
            },
        ),
        400,
        "invalid_text",
    ),
    (
        "api launch actor",
        api(
            "POST",
            "/launch",
            json={
                "url": "https://x.test/c",
                "actor": json.loads(_agent_with_name(NUL)),
                "activity_id": "http://x.test/a",
            },
        ),
        400,
        "invalid_text",
    ),
]


@pytest.mark.parametrize(("name", "call", "status", "error"), NUL_CASES, ids=[c[0] for c in NUL_CASES])
def test_O01_O05_a_nul_never_reaches_the_database(
    server: Server, bearer: str, name: str, call: Call, status: int, error: str
) -> None:
    """O-01, O-05: a NUL in a value that would reach SQL is a 400 with the surface's stable code (never a
    500, never a stack trace), the same on SQLite and PostgreSQL, and writes nothing."""
    statements_before = server.sql("SELECT COUNT(*) FROM xapi_statements")[0][0]
    response = call(server, bearer)
    assert response.status_code == status, (name, response.text)
    assert response.json()["error"] == error, (name, response.text)
    assert "Traceback" not in response.text
    assert server.sql("SELECT COUNT(*) FROM xapi_statements")[0][0] == statements_before


def test_O01_values_that_are_hashed_first_stay_ordinary_refusals(server: Server) -> None:
    """O-01: a NUL in a secret, code or token never reaches SQL as text (only its digest does), so it is
    the ordinary refusal: invalid_client, invalid_grant, inactive."""
    c1 = server.clients["c1"]
    auth = {"client_id": c1["client_id"], "client_secret": c1["client_secret"]}
    token_url = f"{server.base_url}/auth/oauth/token"
    secret = httpx.post(
        token_url,
        data={"grant_type": "authorization_code", "client_id": c1["client_id"], "client_secret": NUL, "code": "x"},
    )
    assert secret.status_code == 401 and secret.json()["error"] == "invalid_client"
    code = httpx.post(
        token_url,
        data={"grant_type": "authorization_code", **auth, "code": NUL, "redirect_uri": c1["redirect_uris"][0]},
    )
    assert code.status_code == 400 and code.json()["error"] == "invalid_grant"
    refresh = httpx.post(token_url, data={"grant_type": "refresh_token", **auth, "refresh_token": NUL})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    introspected = httpx.post(f"{server.base_url}/auth/oauth/introspect", data={"token": NUL, **auth})
    assert introspected.status_code == 200 and introspected.json() == {"active": False}
    # A NUL inside a statement's free text is stored escaped in the JSON text: that is fine.
    stored = httpx.post(
        f"{server.base_url}/xapi/statements",
        json=[{**STATEMENT, "result": {"extensions": {"http://x.test/e": NUL}}}],
        auth=(server.apikeys["KA"]["key"], server.apikeys["KA"]["secret"]),
        headers=VERSION,
        timeout=30,
    )
    assert stored.status_code == 200, stored.text


# ---- O-02: deep JSON ----------------------------------------------------------------------------

LIMIT = 64  # openxp.wire.MAX_JSON_DEPTH, documented in docs/security.md


def nested(depth: int) -> str:
    """A JSON object nested ``depth`` levels deep in total (the outer object counts as one)."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def deep_statement(depth: int) -> bytes:
    """A statement whose extension value brings the whole body to ``depth`` levels (array, statement,
    result, extensions, then the value)."""
    inner = nested(depth - 4)
    body = json.dumps([{**STATEMENT, "result": {"extensions": {"http://x.test/e": "HOLE"}}}])
    return body.replace('"HOLE"', inner).encode()


DEEP = [300, 1000]


@pytest.mark.parametrize("depth", [LIMIT + 1, *DEEP])
def test_O02_deep_json_is_a_400_at_the_oauth_endpoints(server: Server, depth: int) -> None:
    """O-02: a token, introspection or revocation body nested deeper than 64 levels is 400
    invalid_request naming the limit (255-1,023 levels answered 500 before: the duplicate-member check
    re-serialised the value and hit orjson's depth limit). No authentication is needed to send it."""
    for path in ("token", "introspect", "revoke"):
        response = httpx.post(
            f"{server.base_url}/auth/oauth/{path}",
            content=nested(depth).encode(),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 400, (path, depth, response.text)
        assert response.json()["error"] == "invalid_request"
        assert "nested deeper than 64" in response.json()["error_description"]


@pytest.mark.parametrize("depth", [LIMIT + 1, *DEEP])
def test_O02_deep_json_is_a_400_on_the_lrs_and_the_api(server: Server, bearer: str, depth: int) -> None:
    """O-02: statements, the ``agent`` query parameter, a state POST and an /api body nested deeper than
    64 levels are 400 with the surface's code; nothing is stored."""
    auth = (server.apikeys["KA"]["key"], server.apikeys["KA"]["secret"])
    base = f"{server.base_url}/xapi"
    before = server.sql("SELECT COUNT(*) FROM xapi_statements")[0][0]
    statements = httpx.post(
        f"{base}/statements",
        content=deep_statement(depth),
        headers={**VERSION, "content-type": "application/json"},
        auth=auth,
        timeout=30,
    )
    assert statements.status_code == 400 and statements.json()["error"] == "invalid_json", statements.text
    assert "nested deeper than 64" in statements.json()["message"]
    agent = '{"mbox":"mailto:a@x.test","name":' + nested(depth - 1) + "}"
    query = httpx.get(f"{base}/statements", params={"agent": agent}, headers=VERSION, auth=auth, timeout=30)
    assert query.status_code == 400 and query.json()["error"] == "bad_request", query.text
    state_id = f"deep-{secrets.token_hex(4)}"
    where = {"activityId": "http://x.test/a", "agent": AGENT, "stateId": state_id}
    posted = httpx.post(
        f"{base}/activities/state",
        params=where,
        content=nested(depth).encode(),
        headers={**VERSION, "content-type": "application/json"},
        auth=auth,
        timeout=30,
    )
    assert posted.status_code == 400 and posted.json()["error"] == "bad_request", posted.text
    assert httpx.get(f"{base}/activities/state", params=where, headers=VERSION, auth=auth).status_code == 404
    imported = httpx.post(
        f"{server.base_url}/api/import/users",
        content=('{"users":[' + nested(depth - 2) + "]}").encode(),
        headers={"authorization": f"Bearer {bearer}", "X-CXP-Tenant": "a", "content-type": "application/json"},
        timeout=30,
    )
    assert imported.status_code == 400 and imported.json()["error"] == "validation_error", imported.text
    assert server.sql("SELECT COUNT(*) FROM xapi_statements")[0][0] == before


def test_O02_json_at_the_depth_limit_is_accepted(server: Server) -> None:
    """O-02: the limit is exact: a statement body of exactly 64 levels is stored."""
    response = httpx.post(
        f"{server.base_url}/xapi/statements",
        content=deep_statement(LIMIT),
        headers={**VERSION, "content-type": "application/json"},
        auth=(server.apikeys["KA"]["key"], server.apikeys["KA"]["secret"]),
        timeout=30,
    )
    assert response.status_code == 200, response.text


# ---- JSON sent with the form content type -------------------------------------------------------


def test_F_json_body_with_the_form_content_type_is_named(server: Server) -> None:
    """A JSON body sent as ``application/x-www-form-urlencoded`` (curl's default for ``-d``) is 400
    invalid_request saying to send ``Content-Type: application/json``, not "grant_type is required"."""
    c1 = server.clients["c1"]
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": "cxr_x", "client_id": c1["client_id"]})
    for path in ("token", "introspect", "revoke"):
        for text in (body, "  \n" + body, "[" + body + "]"):
            response = httpx.post(
                f"{server.base_url}/auth/oauth/{path}",
                content=text.encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
                timeout=30,
            )
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "invalid_request"
            assert "Content-Type: application/json" in response.json()["error_description"], response.text


def test_O05_the_parameter_check_refuses_lone_surrogates_and_nul_in_arrays() -> None:
    """O-05: the one check every bound value passes (``openxp.store.db.refuse_unstorable``) also refuses a
    lone surrogate (no UTF-8 encoding exists; neither driver can send it) and looks inside array
    parameters; ordinary text, non-ASCII included, passes."""
    from openxp.store.db import refuse_unstorable
    from openxp.store.errors import UnstorableText

    refuse_unstorable(["plain", "Grüße ☃", 3, None, b"\x00bytes", ["ok", "fine"]])
    for bad in ("a\x00b", "x\ud800y", ["ok", "a\x00"], ("\udfff",)):
        with pytest.raises(UnstorableText):
            refuse_unstorable(["ok", bad])
