"""Headers and access on every xAPI resource (xAPI-Communication.md 1.x, 3.2, 3.3, 4;
NOTES.md 3.1, 3.2, 3.14, 3.15): the version header (required, validated, echoed),
Consistent-Through and Date, HEAD, CORS preflight, the alternate request syntax
(1.0.3 must support it, 2.0.0 must reject it), and the 401/403 cases the ADL suite
skips: H-01, H-02, H-07, H-08, H-11, I-11."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.server import Server
from tests.xapi.statement_cases import V1, V2, base

AGENT = json.dumps({"mbox": "mailto:headers@example.com"})
ACTIVITY = "http://example.com/activities/headers"
# (method, path, params) for every resource and method; bodies are added where needed.
RESOURCES: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/statements", {"limit": "1"}),
    ("POST", "/statements", {}),
    ("PUT", "/statements", {"statementId": "5c0b8a9e-2f1d-4c3b-8a7e-6d5c4b3a2f10"}),
    ("GET", "/activities/state", {"activityId": ACTIVITY, "agent": AGENT, "stateId": "s"}),
    ("PUT", "/activities/state", {"activityId": ACTIVITY, "agent": AGENT, "stateId": "s"}),
    ("POST", "/activities/state", {"activityId": ACTIVITY, "agent": AGENT, "stateId": "s"}),
    ("DELETE", "/activities/state", {"activityId": ACTIVITY, "agent": AGENT, "stateId": "s"}),
    ("GET", "/activities/profile", {"activityId": ACTIVITY, "profileId": "p"}),
    ("PUT", "/activities/profile", {"activityId": ACTIVITY, "profileId": "p"}),
    ("DELETE", "/activities/profile", {"activityId": ACTIVITY, "profileId": "p"}),
    ("GET", "/agents/profile", {"agent": AGENT, "profileId": "p"}),
    ("POST", "/agents/profile", {"agent": AGENT, "profileId": "p"}),
    ("DELETE", "/agents/profile", {"agent": AGENT, "profileId": "p"}),
    ("GET", "/activities", {"activityId": ACTIVITY}),
    ("GET", "/agents", {"agent": AGENT}),
]
RESOURCE_IDS = [f"{m} {p}" for m, p, _ in RESOURCES]


def body_for(method: str, path: str) -> dict[str, Any]:
    if method not in {"PUT", "POST"}:
        return {}
    return {"json": base() if path == "/statements" else {"doc": 1}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def send(
    server: Server, method: str, path: str, params: dict[str, str], headers: dict[str, str], **kw: Any
) -> httpx.Response:
    return httpx.request(method, f"{server.base_url}/xapi{path}", params=params, headers=headers, timeout=30, **kw)


def basic(key: dict[str, Any]) -> str:
    return "Basic " + b64(f"{key['key']}:{key['secret']}")


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    ka = server.apikeys["KA"]
    with httpx.Client(base_url=f"{server.base_url}/xapi", auth=(ka["key"], ka["secret"]), timeout=30) as c:
        yield c


# -- version header ---------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "params"), RESOURCES, ids=RESOURCE_IDS)
def test_version_header_required_everywhere(server: Server, method: str, path: str, params: dict[str, str]) -> None:
    """Every resource but /about: no X-Experience-API-Version -> 400 (with a version header); a bad one -> 400."""
    auth = {"Authorization": basic(server.apikeys["KA"])}
    missing = send(server, method, path, params, auth, **body_for(method, path))
    assert missing.status_code == 400, missing.text
    assert missing.headers["x-experience-api-version"] in {V1, V2}
    for bad in ("0.9", "1.1.0", "BAD", "2.1.0", ""):
        response = send(
            server, method, path, params, {**auth, "X-Experience-API-Version": bad}, **body_for(method, path)
        )
        assert response.status_code == 400, (bad, response.text)


def test_version_echoed(client: httpx.Client) -> None:
    """1.0.x requests are answered as 1.0.3 and 2.0.x as 2.0.0, on success and on error."""
    for sent, echoed in (("1.0.0", V1), ("1.0.1", V1), ("1.0.3", V1), ("2.0.0", V2)):
        headers = {"X-Experience-API-Version": sent}
        ok = client.get("/statements", params={"limit": "1"}, headers=headers)
        assert ok.status_code == 200 and ok.headers["x-experience-api-version"] == echoed
        error = client.get("/statements", params={"foo": "1"}, headers=headers)
        assert error.status_code == 400 and error.headers["x-experience-api-version"] == echoed


@pytest.mark.parametrize("version", [V1, V2])
def test_statement_get_headers(client: httpx.Client, version: str) -> None:
    """GET /statements: Content-Type, Date, and an ISO 8601 Consistent-Through no earlier than a write."""
    headers = {"X-Experience-API-Version": version}
    [sid] = client.post("/statements", json=base(), headers=headers).json()
    stored = client.get("/statements", params={"statementId": sid}, headers=headers).json()["stored"]
    response = client.get("/statements", params={"limit": "1"}, headers=headers)
    assert response.headers["content-type"].startswith("application/json")
    assert parsedate_to_datetime(response.headers["date"])
    through = datetime.fromisoformat(response.headers["x-experience-api-consistent-through"].replace("Z", "+00:00"))
    assert through >= datetime.fromisoformat(stored.replace("Z", "+00:00"))
    assert response.json()["more"] is not None


def test_head_on_every_get(client: httpx.Client) -> None:
    """HEAD answers like GET (status, headers) with an empty body, on every GET resource."""
    headers = {"X-Experience-API-Version": V1}
    [sid] = client.post("/statements", json=base(), headers=headers).json()
    for path, params in [
        ("/statements", {"limit": "1"}),
        ("/statements", {"statementId": sid}),
        ("/activities", {"activityId": ACTIVITY}),
        ("/agents", {"agent": AGENT}),
        ("/activities/state", {"activityId": ACTIVITY, "agent": AGENT}),
        ("/activities/profile", {"activityId": ACTIVITY}),
        ("/agents/profile", {"agent": AGENT}),
        ("/about", {}),
    ]:
        head = client.head(path, params=params, headers=headers)
        get = client.get(path, params=params, headers=headers)
        assert head.status_code == get.status_code == 200, (path, head.status_code, get.status_code)
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    assert client.head("/statements", params={"statementId": str(uuid.uuid4())}, headers=headers).status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/statements", "/activities/state", "/activities/profile", "/agents/profile", "/activities", "/agents", "/about"],
)
def test_cors_preflight(server: Server, path: str) -> None:
    """OPTIONS preflight with no credentials: any origin, the xAPI request headers allowed, no credentials mode."""
    response = httpx.options(
        f"{server.base_url}/xapi{path}",
        headers={
            "Origin": "https://content.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization,content-type,x-experience-api-version,if-match",
        },
        timeout=30,
    )
    assert response.status_code in {200, 204}
    assert response.headers["access-control-allow-origin"] == "*"
    allowed = response.headers["access-control-allow-headers"].lower()
    for name in ("authorization", "content-type", "x-experience-api-version", "if-match", "if-none-match"):
        assert name in allowed
    assert "put" in response.headers["access-control-allow-methods"].lower()
    assert "access-control-allow-credentials" not in response.headers


# -- alternate request syntax ------------------------------------------------------------


def form(
    server: Server, query: str, fields: dict[str, str], headers: dict[str, str], method: str = "POST"
) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.base_url}/xapi/statements?{query}",
        content=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        timeout=30,
    )


def test_alternate_syntax_1_0_3(server: Server, client: httpx.Client) -> None:
    """1.0.3 MUST support `POST ?method=`: GET with a form body; PUT with content; headers carried in the form;
    extra query parameters, missing content, JSON sent as a form, a non-POST method or a bad form version -> 400."""
    auth = basic(server.apikeys["KA"])
    real = {"Authorization": auth, "X-Experience-API-Version": V1}
    got = form(server, "method=GET", {"limit": "1"}, real)
    assert got.status_code == 200, got.text
    assert set(got.json()) == {"statements", "more"} and len(got.json()["statements"]) == 1
    sid = str(uuid.uuid4())
    put = form(server, "method=PUT", {"statementId": sid, "content": json.dumps(base())}, real)
    assert put.status_code == 204, put.text
    assert (
        client.get("/statements", params={"statementId": sid}, headers={"X-Experience-API-Version": V1}).status_code
        == 200
    )
    sid2 = str(uuid.uuid4())
    in_form = {
        "statementId": sid2,
        "content": json.dumps(base()),
        "Authorization": auth,
        "X-Experience-API-Version": V1,
        "Content-Type": "application/json",
    }
    assert form(server, "method=PUT", in_form, {}).status_code == 204
    assert (
        client.get("/statements", params={"statementId": sid2}, headers={"X-Experience-API-Version": V1}).status_code
        == 200
    )
    assert (
        form(
            server,
            "method=PUT",
            {**in_form, "statementId": str(uuid.uuid4()), "Authorization": "Basic " + b64("x:y")},
            {},
        ).status_code
        == 401
    )
    rejected = [
        form(server, "method=GET", {"limit": "1", "X-Experience-API-Version": "0.8"}, {"Authorization": auth}),
        form(server, f"method=PUT&statementId={uuid.uuid4()}", {"content": json.dumps(base())}, real),
        form(server, "method=PUT", {"statementId": str(uuid.uuid4())}, real),
        form(server, "method=PUT", {}, real),
        form(server, "method=POST", {"content": json.dumps(base())}, real, method="PUT"),
        httpx.post(
            f"{server.base_url}/xapi/statements?method=PUT",
            content=json.dumps(base()).encode(),
            headers={**real, "Content-Type": "application/x-www-form-urlencoded"},
            timeout=30,
        ),
    ]
    for response in rejected:
        assert response.status_code == 400, (response.request.url, response.text)


def test_alternate_syntax_rejected_in_2_0(server: Server) -> None:
    """2.0.0 forbids the alternate request syntax: any ?method= -> 4xx, nothing stored."""
    real = {"Authorization": basic(server.apikeys["KA"]), "X-Experience-API-Version": V2}
    sid = str(uuid.uuid4())
    for query, fields in (
        ("method=GET", {"limit": "1"}),
        ("method=PUT", {"statementId": sid, "content": json.dumps(base())}),
    ):
        response = form(server, query, fields, real)
        assert 400 <= response.status_code < 500, response.text
    check = send(server, "GET", "/statements", {"statementId": sid}, real)
    assert check.status_code == 404


# -- 401 and 403 (the cases the ADL suite skips) --------------------------------------------


@pytest.mark.parametrize(("method", "path", "params"), RESOURCES, ids=RESOURCE_IDS)
def test_H01_H02_every_resource_needs_credentials(
    server: Server, method: str, path: str, params: dict[str, str]
) -> None:
    """H-01: no credentials on any resource -> 401 with a Basic challenge; H-02: a wrong secret -> the same 401."""
    version = {"X-Experience-API-Version": V1}
    ka = server.apikeys["KA"]
    for authorization in (None, "Basic " + b64(f"{ka['key']}:wrong-secret"), "Basic " + b64("unknown:x")):
        headers = dict(version)
        if authorization:
            headers["Authorization"] = authorization
        response = send(server, method, path, params, headers, **body_for(method, path))
        assert response.status_code == 401, (authorization, response.text)
        assert response.headers["www-authenticate"].startswith("Basic realm=")
        assert response.headers["x-experience-api-version"] == V1
    # Nothing was written by the refused calls.
    if method == "PUT" and path == "/statements":
        good = {**version, "Authorization": basic(ka)}
        assert send(server, "GET", path, {"statementId": params["statementId"]}, good).status_code == 404


@pytest.fixture(scope="module")
def scoped_keys(server: Server) -> dict[str, dict[str, Any]]:
    """Tenant-a keys with narrow scopes, made through the CLI."""

    def make(name: str, *scopes: str) -> dict[str, Any]:
        args = [a for s in scopes for a in ("--scope", s)]
        return server.cli_json("apikey", "create", "--tenant", "a", "--name", name, *args)

    return {
        "read": make("conf-read", "statements/read"),
        "write": make("conf-write", "statements/write"),
        "mine": make("conf-mine", "statements/write", "statements/read/mine"),
        "state": make("conf-state", "state"),
    }


def test_H07_scopes_are_enforced(server: Server, scoped_keys: dict[str, dict[str, Any]]) -> None:
    """H-07: a key without statements/write cannot write (403, nothing stored); without statements/read cannot read;
    without state/profile cannot touch those documents."""
    version = {"X-Experience-API-Version": V1}
    read, write, state = (basic(scoped_keys[k]) for k in ("read", "write", "state"))
    sid = str(uuid.uuid4())
    refused = send(server, "PUT", "/statements", {"statementId": sid}, {**version, "Authorization": read}, json=base())
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    assert send(server, "POST", "/statements", {}, {**version, "Authorization": read}, json=base()).status_code == 403
    assert (
        send(server, "GET", "/statements", {"statementId": sid}, {**version, "Authorization": read}).status_code == 404
    )
    assert send(server, "GET", "/statements", {"limit": "1"}, {**version, "Authorization": write}).status_code == 403
    assert (
        send(server, "GET", "/activities", {"activityId": ACTIVITY}, {**version, "Authorization": write}).status_code
        == 403
    )
    state_params = {"activityId": ACTIVITY, "agent": AGENT, "stateId": "h07"}
    assert (
        send(
            server, "PUT", "/activities/state", state_params, {**version, "Authorization": state}, json={"a": 1}
        ).status_code
        == 204
    )
    assert (
        send(
            server, "PUT", "/activities/state", state_params, {**version, "Authorization": write}, json={"a": 2}
        ).status_code
        == 403
    )
    profile = {"activityId": ACTIVITY, "profileId": "h07"}
    assert send(server, "GET", "/activities/profile", profile, {**version, "Authorization": state}).status_code == 403
    assert send(server, "POST", "/statements", {}, {**version, "Authorization": state}, json=base()).status_code == 403


def test_H07_read_mine_never_reads_others(
    server: Server, client: httpx.Client, scoped_keys: dict[str, dict[str, Any]]
) -> None:
    """H-07: a statements/read/mine key reads the statements it wrote, and never one another credential wrote
    (by id that is 404, as if absent; in queries it is simply not there)."""
    version = {"X-Experience-API-Version": V1}
    mine = {**version, "Authorization": basic(scoped_keys["mine"])}
    verb_id = f"http://example.com/verbs/mine-{uuid.uuid4().hex}"
    statement = {**base(), "verb": {"id": verb_id}}
    [own] = send(server, "POST", "/statements", {}, mine, json=statement).json()
    [other] = client.post("/statements", json=statement, headers=version).json()
    single = send(server, "GET", "/statements", {"statementId": other}, mine)
    assert single.status_code == 404, single.text
    listed = send(server, "GET", "/statements", {"verb": verb_id}, mine)
    assert listed.status_code == 200, listed.text
    assert [s["id"] for s in listed.json()["statements"]] == [own]
    assert send(server, "GET", "/statements", {"statementId": own}, mine).status_code == 200
    everything = client.get("/statements", params={"verb": verb_id}, headers=version).json()["statements"]
    assert {s["id"] for s in everything} == {own, other}


def test_H08_tenant_header_mismatch(client: httpx.Client) -> None:
    """H-08: KA with X-CXP-Tenant: b -> 403 tenant_mismatch on every resource, nothing written."""
    for method, path, params in RESOURCES:
        headers = {"X-Experience-API-Version": V2, "X-CXP-Tenant": "b"}
        response = client.request(method, path, params=params, headers=headers, **body_for(method, path))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "tenant_mismatch"


def test_I11_other_tenant_sees_no_statements(server: Server, client: httpx.Client) -> None:
    """I-11: tenant b's key never reads tenant a's statements (by id, voided id, filters, /activities), and reusing
    their id in tenant b neither conflicts with nor changes tenant a's statement."""
    kb = server.apikeys["KB"]
    version = {"X-Experience-API-Version": V2}
    b_headers = {**version, "Authorization": basic(kb)}
    tag = uuid.uuid4().hex
    activity = {
        "objectType": "Activity",
        "id": f"http://example.com/activities/i11-{tag}",
        "definition": {"name": {"en": "tenant a only"}},
    }
    statement = {**base(), "object": activity, "verb": {"id": f"http://example.com/verbs/i11-{tag}"}}
    [sid] = client.post("/statements", json=statement, headers=version).json()
    voiding = {
        **base(),
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": sid},
    }
    [void_id] = client.post("/statements", json=voiding, headers=version).json()
    assert send(server, "GET", "/statements", {"statementId": void_id}, b_headers).status_code == 404
    assert send(server, "GET", "/statements", {"voidedStatementId": sid}, b_headers).status_code == 404
    for params in (
        {"verb": statement["verb"]["id"]},
        {"activity": activity["id"]},
        {"activity": activity["id"], "related_activities": "true"},
    ):
        listed = send(server, "GET", "/statements", params, b_headers)
        assert listed.json()["statements"] == [], params
    assert send(server, "GET", "/activities", {"activityId": activity["id"]}, b_headers).json() == {
        "objectType": "Activity",
        "id": activity["id"],
    }
    # The same id in tenant b is a different statement: accepted, and tenant a's is unchanged.
    theirs = {**base(), "verb": {"id": "http://example.com/verbs/tenant-b"}}
    put = send(server, "PUT", "/statements", {"statementId": void_id}, b_headers, json=theirs)
    assert put.status_code == 204, put.text
    assert client.get("/statements", params={"statementId": void_id}, headers=version).json()["verb"] == voiding["verb"]


def test_H11_authority_is_the_credential(server: Server, client: httpx.Client) -> None:
    """H-11: whatever authority the client sends (valid Agent, two-member group), the stored one is the key's Agent."""
    version = {"X-Experience-API-Version": V2}
    expected = {"objectType": "Agent", "account": {"homePage": server.base_url, "name": server.apikeys["KA"]["key"]}}
    forged_group = {
        "objectType": "Group",
        "member": [{"mbox": "mailto:one@example.com"}, {"mbox": "mailto:two@example.com"}],
    }
    for forged in ({"mbox": "mailto:boss@example.com"}, forged_group):
        [sid] = client.post("/statements", json={**base(), "authority": forged}, headers=version).json()
        assert client.get("/statements", params={"statementId": sid}, headers=version).json()["authority"] == expected
