"""Document resources (xAPI-Communication.md 2.3, 2.6, 2.7, 3.1; NOTES.md 3.10-3.13):
State, Activity Profile and Agent Profile on 1.0.3 and 2.0.0 -- PUT/POST/GET/DELETE,
lists of ids with `since`, JSON merge and its 400 cases, ETag/If-Match/If-None-Match
per version, Last-Modified, HEAD; /activities, /agents (Person), /about; and tenant
isolation of documents (I-11)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from tests.support.server import Server
from tests.xapi.statement_cases import V1, V2

KINDS = ("state", "activity_profile", "agent_profile")
PATHS = {"state": "/activities/state", "activity_profile": "/activities/profile", "agent_profile": "/agents/profile"}
ID_PARAM = {"state": "stateId", "activity_profile": "profileId", "agent_profile": "profileId"}


class Docs:
    """One document resource, one version, one fresh key space (unique activity and agent)."""

    def __init__(self, client: httpx.Client, kind: str, version: str) -> None:
        self.client, self.kind, self.version = client, kind, version
        self.path = PATHS[kind]
        self.id_param = ID_PARAM[kind]
        t = uuid.uuid4().hex[:12]
        self.agent = json.dumps({"objectType": "Agent", "mbox": f"mailto:doc-{t}@example.com"})
        self.activity = f"http://example.com/doc-activities/{t}"

    def scope(self) -> dict[str, str]:
        if self.kind == "state":
            return {"activityId": self.activity, "agent": self.agent}
        if self.kind == "activity_profile":
            return {"activityId": self.activity}
        return {"agent": self.agent}

    def call(
        self,
        method: str,
        doc_id: str | None = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        query = self.scope()
        if doc_id is not None:
            query[self.id_param] = doc_id
        query.update(params or {})
        sent = {"X-Experience-API-Version": self.version, **(headers or {})}
        return self.client.request(method, self.path, params=query, headers=sent, **kwargs)

    def put_json(self, doc_id: str, body: Any, **headers: str) -> httpx.Response:
        return self.call("PUT", doc_id, json=body, headers=headers)

    def create(self, doc_id: str, body: Any) -> str:
        """A new document (If-None-Match: * works for every kind and version); returns its ETag."""
        assert self.put_json(doc_id, body, **{"If-None-Match": "*"}).status_code == 204
        got = self.call("GET", doc_id)
        assert got.status_code == 200, got.text
        return got.headers["etag"]

    def body(self, doc_id: str) -> Any:
        got = self.call("GET", doc_id)
        assert got.status_code == 200, got.text
        return got.json()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    ka = server.apikeys["KA"]
    with httpx.Client(base_url=f"{server.base_url}/xapi", auth=(ka["key"], ka["secret"]), timeout=30) as c:
        yield c


@pytest.fixture(params=[(k, v) for v in (V1, V2) for k in KINDS], ids=lambda p: f"{p[1]}-{p[0]}")
def docs(client: httpx.Client, request: pytest.FixtureRequest) -> Docs:
    kind, version = request.param
    return Docs(client, kind, version)


def test_put_get_list_delete(docs: Docs) -> None:
    """PUT 204; GET 200 with the body, its Content-Type, a quoted ETag (1.0.3: 40 hex) and Last-Modified;
    HEAD is GET without a body; GET without the id lists ids (filtered by since); DELETE 204 then 404."""
    etag = docs.create("doc-1", {"car": "MKX"})
    if docs.version == V1:
        assert re.fullmatch(r'"[0-9a-f]{40}"', etag), etag
    else:
        assert re.fullmatch(r'(W/)?"[^"]+"', etag), etag
    got = docs.call("GET", "doc-1")
    assert got.json() == {"car": "MKX"}
    assert got.headers["content-type"].startswith("application/json")
    assert got.headers["x-experience-api-version"] == docs.version
    assert parsedate_to_datetime(got.headers["last-modified"])
    head = docs.call("HEAD", "doc-1")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    docs.create("doc-2", {"n": 2})
    assert sorted(docs.call("GET").json()) == ["doc-1", "doc-2"]
    minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert sorted(docs.call("GET", params={"since": minute_ago}).json()) == ["doc-1", "doc-2"]
    assert docs.call("GET", params={"since": later}).json() == []
    assert docs.call("HEAD").status_code == 200
    assert docs.call("DELETE", "doc-1").status_code == 204
    assert docs.call("GET", "doc-1").status_code == 404
    assert docs.call("GET").json() == ["doc-2"]
    # DELETE of a document that does not exist is still 204.
    assert docs.call("DELETE", "never-written").status_code == 204


def test_put_preconditions(docs: Docs) -> None:
    """Communication 3.1: If-Match right -> 204; wrong -> 412; If-None-Match: * on an existing document -> 412;
    no header on an existing document -> 409 with a body (1.0.3 State: overwrite allowed); failures change nothing."""
    etag = docs.create("p", {"v": 1})
    for header in ({"If-Match": '"' + "1" * 40 + '"'}, {"If-Match": '"1234"'}, {"If-None-Match": "*"}):
        response = docs.put_json("p", {"v": "bad"}, **header)
        assert response.status_code == 412, (header, response.text)
    assert docs.body("p") == {"v": 1}
    bare = docs.put_json("p", {"v": 2})
    if docs.kind == "state" and docs.version == V1:
        assert bare.status_code == 204
        etag = docs.call("GET", "p").headers["etag"]
    else:
        assert bare.status_code == 409 and bare.content, bare.text
        assert docs.body("p") == {"v": 1}
    assert docs.put_json("p", {"v": 3}, **{"If-Match": etag}).status_code == 204
    assert docs.body("p") == {"v": 3}
    assert docs.call("GET", "p").headers["etag"] != etag
    # If-Match: * matches any existing document, and no missing one.
    assert docs.put_json("p", {"v": 4}, **{"If-Match": "*"}).status_code == 204
    assert docs.put_json("missing", {"v": 0}, **{"If-Match": "*"}).status_code == 412


def test_put_new_document_without_preconditions(docs: Docs) -> None:
    """A PUT with neither If-Match nor If-None-Match to a new document: 204, except a 1.0.3 profile (400)."""
    response = docs.put_json("fresh", {"x": 1})
    if docs.version == V1 and docs.kind != "state":
        assert response.status_code == 400, response.text
        assert docs.call("GET", "fresh").status_code == 404
    else:
        assert response.status_code == 204, response.text
        assert docs.body("fresh") == {"x": 1}


def test_post_and_delete_if_match(docs: Docs) -> None:
    """2.0 enforces If-Match on POST and DELETE too: wrong -> 412 and nothing changes; right -> 204.
    POST and DELETE without precondition headers keep working."""
    etag = docs.create("m", {"a": 1})
    wrong = {"If-Match": '"' + "2" * 40 + '"'}
    assert docs.call("POST", "m", json={"b": 2}, headers=wrong).status_code == 412
    assert docs.call("DELETE", "m", headers=wrong).status_code == 412
    assert docs.body("m") == {"a": 1}
    assert docs.call("POST", "m", json={"b": 2}, headers={"If-Match": etag}).status_code == 204
    assert docs.body("m") == {"a": 1, "b": 2}
    assert docs.call("POST", "m", json={"c": 3}).status_code == 204
    etag = docs.call("GET", "m").headers["etag"]
    assert docs.call("DELETE", "m", headers={"If-Match": etag}).status_code == 204
    assert docs.call("GET", "m").status_code == 404


def test_post_merge_rules(docs: Docs) -> None:
    """POST merges top-level keys of two JSON objects (new wins, one level deep); POST to nothing acts like PUT;
    non-JSON on either side, or an application/json body that does not parse -> 400, document unchanged."""
    assert docs.call("POST", "merge", json={"car": "MKX", "deep": {"a": 1}}).status_code == 204
    assert docs.call("POST", "merge", json={"car": "MKZ", "deep": {"b": 2}}).status_code == 204
    assert docs.body("merge") == {"car": "MKZ", "deep": {"b": 2}}
    assert docs.call("POST", "merge", json={"type": "Civic"}).status_code == 204
    assert docs.body("merge") == {"car": "MKZ", "deep": {"b": 2}, "type": "Civic"}
    for content, ctype in (
        (b"not/json", "text/plain"),
        (b"\x00\x01", "application/octet-stream"),
        (b"abc", "application/x-www-form-urlencoded"),
        (b'{"car": "X"}{', "application/json"),
        (b'{"car": "X"}[', "application/json"),
        (b"[1, 2]", "application/json"),
    ):
        response = docs.call("POST", "merge", content=content, headers={"Content-Type": ctype})
        assert response.status_code == 400, (content, response.text)
    assert docs.body("merge") == {"car": "MKZ", "deep": {"b": 2}, "type": "Civic"}
    # A stored non-JSON document cannot take a JSON merge.
    raw = docs.call("PUT", "raw", content=b"plain", headers={"Content-Type": "text/plain", "If-None-Match": "*"})
    assert raw.status_code == 204
    assert docs.call("POST", "raw", json={"a": 1}).status_code == 400
    assert docs.call("GET", "raw").content == b"plain"


def test_bytes_round_trip(docs: Docs) -> None:
    """A non-JSON document comes back byte for byte with its original Content-Type."""
    content = b"/ asdf / undefined \xff\x00 end"
    put = docs.call(
        "PUT", "bytes", content=content, headers={"Content-Type": "application/octet-stream", "If-None-Match": "*"}
    )
    assert put.status_code == 204
    got = docs.call("GET", "bytes")
    assert got.content == content
    assert got.headers["content-type"] == "application/octet-stream"


def test_parameter_errors(docs: Docs) -> None:
    """Missing required parameters on every method, bad agent/registration/since values, unknown names -> 400."""
    required = list(docs.scope())
    for method in ("GET", "PUT", "POST", "DELETE"):
        for name in required:
            params = {k: v for k, v in docs.scope().items() if k != name}
            params[docs.id_param] = "x"
            response = docs.client.request(
                method, docs.path, params=params, json={"a": 1}, headers={"X-Experience-API-Version": docs.version}
            )
            assert response.status_code == 400, (method, name, response.text)
    for method in ("PUT", "POST"):
        assert docs.call(method, json={"a": 1}).status_code == 400  # no stateId / profileId
    bad: list[dict[str, str]] = [{"foo": "bar"}, {"since": "not a timestamp"}, {"since": "true"}]
    if "agent" in docs.scope():
        broken = docs.agent.replace(":", '"', 1)
        bad += [
            {"agent": "true"},
            {"agent": "not JSON"},
            {"agent": json.dumps({"name": "no ifi"})},
            {"agent": broken},
            {"Agent": docs.agent},
        ]
    if "activityId" in docs.scope():
        bad += [{"activityId": "not an iri"}]
    if docs.kind == "state":
        bad += [{"registration": "true"}]
    for extra in bad:
        response = docs.call("GET", params=extra)
        assert response.status_code == 400, (extra, response.text)


def test_last_modified_moves_on_update(client: httpx.Client) -> None:
    """2.0: Last-Modified on a single document increases after an update (one kind pays the wait; shared code)."""
    docs = Docs(client, "agent_profile", V2)
    docs.create("lm", {"a": 1})
    first = parsedate_to_datetime(docs.call("GET", "lm").headers["last-modified"])
    time.sleep(1.05)
    assert docs.call("POST", "lm", json={"b": 2}).status_code == 204
    second = parsedate_to_datetime(docs.call("GET", "lm").headers["last-modified"])
    assert second > first


def test_state_registration_and_delete_all(client: httpx.Client) -> None:
    """State: a registration is part of the key; DELETE without stateId removes every state of activity+agent."""
    for version in (V1, V2):
        docs = Docs(client, "state", version)
        reg = str(uuid.uuid4())
        docs.create("s1", {"a": 1})
        assert docs.put_json("s1", {"r": 1}, **{"If-None-Match": "*"}).status_code == 412
        assert (
            docs.call(
                "PUT", "s1", params={"registration": reg}, json={"r": 1}, headers={"If-None-Match": "*"}
            ).status_code
            == 204
        )
        assert docs.call("GET", "s1", params={"registration": reg}).json() == {"r": 1}
        assert docs.body("s1") == {"a": 1}
        assert docs.call("GET", params={"registration": str(uuid.uuid4())}).json() == []
        docs.create("s2", {"b": 2})
        assert sorted(docs.call("GET").json()) == ["s1", "s2"]
        assert docs.call("DELETE").status_code == 204
        assert docs.call("GET").json() == []
        assert docs.call("GET", "s1", params={"registration": reg}).status_code in {200, 404}


def test_activity_and_agent_profile_delete_needs_id(client: httpx.Client) -> None:
    """Profiles: DELETE without profileId -> 400 (only State deletes many)."""
    for kind in ("activity_profile", "agent_profile"):
        docs = Docs(client, kind, V2)
        docs.create("keep", {"k": 1})
        assert docs.call("DELETE").status_code == 400
        assert docs.body("keep") == {"k": 1}


# -- /activities, /agents, /about ------------------------------------------------------


@pytest.mark.parametrize("version", [V1, V2])
def test_activities_resource(client: httpx.Client, version: str) -> None:
    """GET /activities?activityId: the Activity, definitions merged over statements; unknown id -> 200 {objectType, id};
    missing or non-IRI activityId -> 400; HEAD -> 200 without body."""
    headers = {"X-Experience-API-Version": version}
    activity_id = f"http://example.com/activities/merged-{uuid.uuid4().hex}"
    for lang in ("en-US", "fr-FR"):
        obj = {
            "objectType": "Activity",
            "id": activity_id,
            "definition": {"name": {lang: f"name {lang}"}, "type": "http://example.com/types/course"},
        }
        s = {"actor": {"mbox": "mailto:act@example.com"}, "verb": {"id": "http://example.com/verbs/v"}, "object": obj}
        assert client.post("/statements", json=s, headers=headers).status_code == 200
    got = client.get("/activities", params={"activityId": activity_id}, headers=headers)
    assert got.status_code == 200
    assert got.json() == {
        "objectType": "Activity",
        "id": activity_id,
        "definition": {
            "name": {"en-US": "name en-US", "fr-FR": "name fr-FR"},
            "type": "http://example.com/types/course",
        },
    }
    unknown = f"http://example.com/activities/unknown-{uuid.uuid4().hex}"
    assert client.get("/activities", params={"activityId": unknown}, headers=headers).json() == {
        "objectType": "Activity",
        "id": unknown,
    }
    head = client.head("/activities", params={"activityId": activity_id}, headers=headers)
    assert head.status_code == 200 and head.content == b""
    for params in ({}, {"activityId": "not an iri"}, {"activityId": activity_id, "foo": "1"}):
        assert client.get("/activities", params=params, headers=headers).status_code == 400


@pytest.mark.parametrize("version", [V1, V2])
def test_agents_resource(client: httpx.Client, version: str) -> None:
    """GET /agents?agent: a Person whose properties are arrays; no agent or no IFI -> 400; HEAD -> 200."""
    headers = {"X-Experience-API-Version": version}
    agent = {"objectType": "Agent", "name": "Pat", "mbox": "mailto:pat@example.com"}
    got = client.get("/agents", params={"agent": json.dumps(agent)}, headers=headers)
    assert got.status_code == 200
    person = got.json()
    assert person["objectType"] == "Person"
    assert person["name"] == ["Pat"] and person["mbox"] == ["mailto:pat@example.com"]
    assert all(isinstance(v, list) for k, v in person.items() if k != "objectType")
    account = {"account": {"homePage": "http://example.com", "name": "pat"}}
    assert client.get("/agents", params={"agent": json.dumps(account)}, headers=headers).json()["account"] == [
        account["account"]
    ]
    head = client.head("/agents", params={"agent": json.dumps(agent)}, headers=headers)
    assert head.status_code == 200 and head.content == b""
    for params in (
        {},
        {"agent": json.dumps({"name": "no ifi"})},
        {"agent": "not json"},
        {"agent": json.dumps({"mbox": "a@b.c", "openid": "http://x.example"})},
    ):
        assert client.get("/agents", params=params, headers=headers).status_code == 400


def test_about(server: Server) -> None:
    """/about: 200 {"version": [...]} listing 1.0.3 and 2.0.0, with no credentials and no version header."""
    response = httpx.get(f"{server.base_url}/xapi/about", timeout=30)
    assert response.status_code == 200
    versions = response.json()["version"]
    assert isinstance(versions, list) and {"1.0.3", "2.0.0"} <= set(versions)
    assert response.headers["content-type"].startswith("application/json")


# -- tenant isolation (I-11) -----------------------------------------------------------


def test_I11_documents_invisible_to_another_tenant(client: httpx.Client, server: Server) -> None:
    """I-11: tenant b's key never reads, lists, overwrites or deletes tenant a's documents."""
    kb = server.apikeys["KB"]
    with httpx.Client(base_url=f"{server.base_url}/xapi", auth=(kb["key"], kb["secret"]), timeout=30) as other:
        for kind in KINDS:
            mine = Docs(client, kind, V2)
            mine.create("secret", {"tenant": "a"})
            theirs = Docs(other, kind, V2)
            theirs.agent, theirs.activity = mine.agent, mine.activity
            assert theirs.call("GET", "secret").status_code == 404
            assert theirs.call("HEAD", "secret").status_code == 404
            assert theirs.call("GET").json() == []
            assert theirs.call("DELETE", "secret").status_code == 204
            assert theirs.call("POST", "secret", json={"tenant": "b"}).status_code == 204
            assert mine.body("secret") == {"tenant": "a"}
            assert theirs.body("secret") == {"tenant": "b"}
