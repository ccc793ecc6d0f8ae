"""xAPI document resources (State, Activity Profile, Agent Profile) with ETag
concurrency and JSON merge; the Activities and Agents resources; HEAD."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.support.server import Server
from tests.xapi.lrs import statement, xapi

AGENT = json.dumps({"objectType": "Agent", "mbox": "mailto:doc@example.com"})


def state_params(**extra: str) -> dict[str, str]:
    return {"activityId": f"http://x.example/act/{uuid.uuid4().hex}", "agent": AGENT, **extra}


def put(server: Server, path: str, params: dict[str, str], body: Any, **headers: str) -> httpx.Response:
    return xapi(server, "PUT", path, params=params, json=body, headers=headers)


def test_state_put_get_post_merge_delete(server: Server) -> None:
    """State: PUT -> 204; GET returns the body with a quoted SHA-1 ETag; POST merges JSON; DELETE -> 204."""
    params = state_params(stateId="s1")
    assert put(server, "/activities/state", params, {"car": "Honda"}).status_code == 204
    got = xapi(server, "GET", "/activities/state", params=params)
    assert got.status_code == 200 and got.json() == {"car": "Honda"}
    assert got.headers["content-type"].startswith("application/json")
    etag = got.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 42
    assert xapi(server, "POST", "/activities/state", params=params, json={"type": "Civic"}).status_code == 204
    assert xapi(server, "GET", "/activities/state", params=params).json() == {"car": "Honda", "type": "Civic"}
    listing = {k: v for k, v in params.items() if k != "stateId"}
    assert xapi(server, "GET", "/activities/state", params=listing).json() == ["s1"]
    assert xapi(server, "HEAD", "/activities/state", params=params).status_code == 200
    assert xapi(server, "DELETE", "/activities/state", params=listing).status_code == 204
    assert xapi(server, "GET", "/activities/state", params=params).status_code == 404


def test_document_merge_rejects_non_json(server: Server) -> None:
    """POST merge: non-JSON onto JSON (or broken JSON) -> 400, stored document unchanged."""
    params = state_params(stateId="m")
    assert put(server, "/activities/state", params, {"a": 1}).status_code == 204
    raw = xapi(
        server,
        "POST",
        "/activities/state",
        params=params,
        content=b"abc",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert raw.status_code == 400
    broken = xapi(
        server, "POST", "/activities/state", params=params, content=b"{}{", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert xapi(server, "GET", "/activities/state", params=params).json() == {"a": 1}


def test_profile_concurrency(server: Server) -> None:
    """Activity profile: no precondition on a new doc -> 400 (1.0.3); If-None-Match: * -> 204, then 412;
    no header on an existing doc -> 409 with a body; wrong If-Match -> 412; right If-Match -> 204."""
    params = {"activityId": f"http://x.example/act/{uuid.uuid4().hex}", "profileId": "p"}
    path = "/activities/profile"
    assert put(server, path, params, {"v": 1}).status_code == 400
    assert put(server, path, params, {"v": 1}, **{"If-None-Match": "*"}).status_code == 204
    assert put(server, path, params, {"v": 2}, **{"If-None-Match": "*"}).status_code == 412
    conflict = put(server, path, params, {"v": 2})
    assert conflict.status_code == 409 and conflict.json()["message"]
    assert put(server, path, params, {"v": 2}, **{"If-Match": '"' + "1" * 40 + '"'}).status_code == 412
    etag = xapi(server, "GET", path, params=params).headers["etag"]
    assert put(server, path, params, {"v": 3}, **{"If-Match": etag}).status_code == 204
    assert xapi(server, "GET", path, params=params).json() == {"v": 3}


def test_agent_profile_bytes_round_trip(server: Server) -> None:
    """Agent profile: a non-JSON document comes back byte-identical with its content type."""
    params = {"agent": AGENT, "profileId": f"p-{uuid.uuid4().hex}"}
    body = b"/ asdf / undefined"
    response = xapi(
        server,
        "PUT",
        "/agents/profile",
        params=params,
        content=body,
        headers={"Content-Type": "application/octet-stream", "If-None-Match": "*"},
    )
    assert response.status_code == 204
    got = xapi(server, "GET", "/agents/profile", params=params)
    assert got.content == body and got.headers["content-type"] == "application/octet-stream"


def test_document_parameter_errors(server: Server) -> None:
    """Missing or invalid parameters -> 400 (agent not JSON, not an Agent, bad registration, bad since)."""
    base = state_params(stateId="x")
    for params in (
        {"agent": AGENT, "stateId": "x"},
        {**base, "agent": "not json"},
        {**base, "agent": "true"},
        {**base, "registration": "true"},
        {k: v for k, v in base.items() if k != "stateId"} | {"since": "not a timestamp"},
    ):
        assert xapi(server, "GET", "/activities/state", params=params).status_code == 400, params
    assert xapi(server, "GET", "/agents").status_code == 400
    assert xapi(server, "GET", "/activities").status_code == 400


def test_activities_and_agents_resources(server: Server) -> None:
    """GET /activities merges definitions from statements; GET /agents returns a Person with arrays."""
    activity_id = f"http://x.example/act/{uuid.uuid4().hex}"
    for lang in ("en-US", "fr-FR"):
        obj = {"objectType": "Activity", "id": activity_id, "definition": {"name": {lang: lang}}}
        assert xapi(server, "POST", "/statements", json=statement(object=obj)).status_code == 200
    got = xapi(server, "GET", "/activities", params={"activityId": activity_id}).json()
    assert got == {
        "objectType": "Activity",
        "id": activity_id,
        "definition": {"name": {"en-US": "en-US", "fr-FR": "fr-FR"}},
    }
    person = xapi(server, "GET", "/agents", params={"agent": json.dumps({"mbox": "mailto:p@x.y", "name": "P"})}).json()
    assert person == {"objectType": "Person", "name": ["P"], "mbox": ["mailto:p@x.y"]}


def test_documents_are_per_tenant(server: Server) -> None:
    """I-01 for documents: tenant b's key cannot read tenant a's state."""
    params = state_params(stateId="t")
    assert put(server, "/activities/state", params, {"secret": 1}).status_code == 204
    assert xapi(server, "GET", "/activities/state", server.apikeys["KB"], params=params).status_code == 404
