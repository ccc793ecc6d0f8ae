"""Content launch (POST /api/launch) and its credential on /xapi: SECURITY.md section J,
read for the Rustici launch mechanism (which has no one-time fetch URL: J-01 is cmi5's,
tests/xapi/test_cmi5.py): the ``auth`` launch parameter is the whole Authorization header
value of a short-lived credential confined to its actor, activity and registration."""

from __future__ import annotations

import base64
import http.client
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.api.test_credentials import basic, call, key_auth, lrs
from tests.support.flow import api, tokens
from tests.support.records import digest
from tests.support.server import Server
from tests.xapi.lrs import VERSION, statement

ACTOR = {"objectType": "Agent", "mbox": "mailto:launched@example.com", "name": "Launched Learner"}
OTHER = {"objectType": "Agent", "mbox": "mailto:not-launched@example.com"}
ACTIVITY = "http://example.com/courses/launch-101"


def launch(server: Server, authorization: str | None = None, **overrides: Any) -> httpx.Response:
    body = {
        "url": "https://content.example.com/course/index.html",
        "actor": ACTOR,
        "activity_id": ACTIVITY,
        "registration": str(uuid.uuid4()),
        **overrides,
    }
    return call(server, "POST", "/api/launch", authorization or key_auth(server), json=body)


def launch_params(server: Server, **overrides: Any) -> dict[str, str]:
    """A fresh launch's parameters, as content reads them from its URL."""
    response = launch(server, **overrides)
    assert response.status_code == 200, response.text
    query = parse_qs(urlsplit(response.json()["url"]).query)
    return {name: values[0] for name, values in query.items()}


def about(params: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """A statement as the launched content would send it."""
    body = statement(
        actor=json.loads(params["actor"]),
        object={"objectType": "Activity", "id": params["activity_id"]},
        context={"registration": params["registration"]},
    )
    body.update(overrides)
    return body


def test_launch_url_carries_rustici_parameters(server: Server) -> None:
    """POST /api/launch answers the content URL with endpoint, auth, actor, activity_id and registration,
    the content's own query and fragment kept (our parameter names replaced), and expires_in."""
    registration = str(uuid.uuid4())
    response = launch(
        server,
        url="https://content.example.com/c/index.html?lang=en&endpoint=https%3A%2F%2Fevil.example%2F#start",
        registration=registration.upper(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 14400
    assert response.headers["cache-control"] == "no-store"
    parts = urlsplit(body["url"])
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "https",
        "content.example.com",
        "/c/index.html",
        "start",
    )
    query = parse_qs(parts.query)
    assert query["lang"] == ["en"]
    assert query["endpoint"] == [f"{server.base_url}/xapi/"]
    assert json.loads(query["actor"][0]) == ACTOR
    assert query["activity_id"] == [ACTIVITY]
    assert query["registration"] == [registration]
    assert query["auth"][0].startswith("Basic ")
    without = launch_params(server, registration=None)
    assert "registration" not in without


def test_launch_request_validation(server: Server) -> None:
    """POST /api/launch refuses a relative or non-http URL, a missing or invalid actor, a non-IRI
    activity_id and a non-UUID registration (400), and needs the launch scope (H-07: 403)."""
    for overrides, prop in (
        ({"url": "/relative/index.html"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"actor": None}, "actor"),
        ({"actor": {"name": "no identifier"}}, "actor"),
        ({"activity_id": "not an iri"}, "activity_id"),
        ({"registration": "not-a-uuid"}, "registration"),
    ):
        response = launch(server, **overrides)
        assert response.status_code == 400, (overrides, response.text)
        assert response.json()["body"][0]["property"] == prop
    narrow = tokens(server, "cs")["access_token"]
    refused = api(server, narrow, path="/api/launch", json={"url": "https://x.example/", "actor": ACTOR})
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    bearer = api(
        server,
        tokens(server)["access_token"],
        path="/api/launch",
        json={"url": "https://x.example/", "actor": ACTOR, "activity_id": ACTIVITY},
    )
    assert bearer.status_code == 200, bearer.text


def test_J04_auth_value_is_the_authorization_header(server: Server) -> None:
    """J-04: ``Authorization: <auth>`` works as given, with whitespace padding too; the same credential
    under Bearer, without its scheme, or another launch's auth for this actor's data are refused; an admin
    access token is not a launch credential (as Basic: 401) and a launch credential is not a Bearer
    token on /api (G-10: 401 invalid_token)."""
    params = launch_params(server)
    auth = params["auth"]
    ok = lrs(server, "POST", "/statements", auth, json=about(params))
    assert ok.status_code == 200, ok.text
    assert "deprecation" not in ok.headers
    padded = lrs(server, "POST", "/statements", auth.replace(" ", "   "), json=about(params))
    assert padded.status_code == 200, padded.text
    # Leading and trailing blanks (httpx refuses to send them; http.client does).
    host, port = server.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": "  " + auth + " \t", "Content-Type": "application/json", **VERSION}
    connection.request("POST", "/xapi/statements", body=json.dumps(about(params)), headers=headers)
    assert connection.getresponse().status == 200
    connection.close()
    token = auth.split(" ", 1)[1]
    as_bearer = lrs(server, "POST", "/statements", "Bearer " + token, json=about(params))
    assert as_bearer.status_code == 401
    assert lrs(server, "POST", "/statements", token, json=about(params)).status_code == 401
    admin = tokens(server)["access_token"]
    for header in ("Basic " + admin, basic(admin, admin), admin):
        assert lrs(server, "POST", "/statements", header, json=about(params)).status_code == 401, header
    on_api = call(server, "GET", "/api/actors", "Bearer " + token, tenant="a")
    assert on_api.status_code == 401
    assert on_api.json()["error"] == "invalid_token"


def test_J03_launch_confined_to_actor_activity_registration(server: Server) -> None:
    """J-03: the launch credential writes only its actor's statements about its activity (or one beneath
    it, or naming it in context) in its registration; reads only its actor's statements in its
    registration; queries for all statements, other learners' statements and documents, and the
    ClearXP API are refused (403)."""
    params = launch_params(server)
    auth = params["auth"]
    registration = params["registration"]
    assert lrs(server, "POST", "/statements", auth, json=about(params)).status_code == 200
    child = about(params, object={"objectType": "Activity", "id": ACTIVITY + "/question-1"})
    assert lrs(server, "POST", "/statements", auth, json=child).status_code == 200
    parent = about(
        params,
        object={"objectType": "Activity", "id": "http://example.com/shared/quiz"},
        context={"registration": registration, "contextActivities": {"parent": [{"id": ACTIVITY}]}},
    )
    assert lrs(server, "POST", "/statements", auth, json=parent).status_code == 200
    for refused in (
        about(params, actor=OTHER),
        about(params, object={"objectType": "Activity", "id": "http://example.com/courses/other"}),
        about(params, object={"objectType": "Activity", "id": ACTIVITY + "-extra"}),
        about(params, context={"registration": str(uuid.uuid4())}),
        about(params, context={}),
    ):
        response = lrs(server, "POST", "/statements", auth, json=refused)
        assert response.status_code == 403, (refused, response.text)
        assert response.json()["error"] == "forbidden_by_credential"
    agent = json.dumps(ACTOR)
    mine = lrs(server, "GET", "/statements", auth, params={"agent": agent})
    assert mine.status_code == 200
    found = mine.json()["statements"]
    assert len(found) == 3
    assert {s["context"]["registration"] for s in found} == {registration}
    assert lrs(server, "GET", "/statements", auth).status_code == 403
    assert lrs(server, "GET", "/statements", auth, params={"agent": json.dumps(OTHER)}).status_code == 403
    other_reg = {"agent": agent, "registration": str(uuid.uuid4())}
    assert lrs(server, "GET", "/statements", auth, params=other_reg).status_code == 403
    # A statement of this very actor written outside the launch (another registration) stays hidden,
    # answered as an unknown id would be (I-04; docs/security.md).
    outside = lrs(server, "POST", "/statements", key_auth(server), json=statement(actor=ACTOR)).json()[0]
    assert lrs(server, "GET", "/statements", auth, params={"statementId": outside}).status_code == 404
    # Documents.
    state = {"activityId": ACTIVITY, "agent": agent, "registration": registration, "stateId": "bookmark"}
    assert lrs(server, "PUT", "/activities/state", auth, params=state, content=b"p7").status_code == 204
    assert lrs(server, "GET", "/activities/state", auth, params=state).content == b"p7"
    for changed in (
        {"agent": json.dumps(OTHER)},
        {"activityId": "http://example.com/courses/other"},
        {"registration": str(uuid.uuid4())},
    ):
        assert lrs(server, "GET", "/activities/state", auth, params={**state, **changed}).status_code == 403
    # The ClearXP API, including making further launches.
    for method, path in (("GET", "/api/actors"), ("POST", "/api/launch"), ("POST", "/api/import/users")):
        refused_api = call(server, method, path, auth, json={})
        assert refused_api.status_code == 403, refused_api.text


def test_J02_launch_expires(server: Server) -> None:
    """J-02: the launch credential lives OPENXP_LAUNCH_TOKEN_TTL seconds and answers 401 after it."""
    params = launch_params(server)
    username = base64.b64decode(params["auth"].split(" ", 1)[1]).decode().split(":", 1)[0]
    row = server.sql("SELECT created_at, expires_at FROM short_lived_credentials WHERE username = :u", {"u": username})[
        0
    ]
    assert abs(row[1] - row[0] - 14400) < 1
    assert lrs(server, "POST", "/statements", params["auth"], json=about(params)).status_code == 200
    server.sql(
        "UPDATE short_lived_credentials SET expires_at = :t WHERE username = :u", {"t": time.time() - 1, "u": username}
    )
    expired = lrs(server, "POST", "/statements", params["auth"], json=about(params))
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == 'Basic realm="openxp"'


def test_J05_launch_secret_storage_and_logging(server: Server) -> None:
    """J-05: the launch password is 256 random bits, stored only as its SHA-256 digest, and neither it,
    the auth value nor the launch URL reaches the server log."""
    response = launch(server)
    params = {k: v[0] for k, v in parse_qs(urlsplit(response.json()["url"]).query).items()}
    username, password = base64.b64decode(params["auth"].split(" ", 1)[1]).decode().split(":", 1)
    assert response.json()["username"] == username
    assert len(base64.urlsafe_b64decode(password + "=" * (-len(password) % 4))) >= 32
    assert lrs(server, "POST", "/statements", params["auth"], json=about(params)).status_code == 200
    rows = server.sql("SELECT * FROM short_lived_credentials WHERE username = :u", {"u": username})
    assert digest(password) in [str(v) for v in rows[0]]
    assert all(password not in str(v) for v in rows[0])
    log = server.log()
    for secret in (password, params["auth"].split(" ", 1)[1], response.json()["url"]):
        assert secret not in log


def test_J06_launch_revocation(server: Server) -> None:
    """J-06: revoking the launch credential (DELETE /api/auth/basic/{username}) ends it at once: 401."""
    response = launch(server)
    params = {k: v[0] for k, v in parse_qs(urlsplit(response.json()["url"]).query).items()}
    assert lrs(server, "POST", "/statements", params["auth"], json=about(params)).status_code == 200
    revoked = call(server, "DELETE", f"/api/auth/basic/{response.json()['username']}", key_auth(server))
    assert revoked.status_code == 204
    assert lrs(server, "POST", "/statements", params["auth"], json=about(params)).status_code == 401


def test_I11_launch_credential_other_tenant(server: Server) -> None:
    """I-11: a launch credential of tenant a naming tenant b is 403 tenant_mismatch, and a launch made by
    tenant b cannot see tenant a's statements of the same actor."""
    params = launch_params(server)
    response = lrs(server, "POST", "/statements", params["auth"], json=about(params), headers={"X-CXP-Tenant": "b"})
    assert response.status_code == 403
    assert response.json()["error"] == "tenant_mismatch"
    sid = lrs(server, "POST", "/statements", params["auth"], json=about(params)).json()[0]
    params_b = {
        k: v[0]
        for k, v in parse_qs(
            urlsplit(launch(server, key_auth(server, "KB"), registration=params["registration"]).json()["url"]).query
        ).items()
    }
    assert lrs(server, "GET", "/statements", params_b["auth"], params={"statementId": sid}).status_code == 404
