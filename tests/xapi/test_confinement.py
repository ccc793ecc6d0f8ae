"""Confinement of learner-bound credentials on /xapi (docs/security.md, "Confinement of
learner-bound credentials"): SECURITY.md J-03 (a launch credential keeps to its actor,
activity and registration), I-04 (ids outside one's reach answer as if absent) and H-11
(authority is the credential's), for the three kinds of confined credential: a launch
credential (POST /api/launch), an actor-bound short-lived credential (POST /api/auth/basic
with data.actor) and an API key holding only statements/read/mine + statements/write."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.api.test_credentials import basic, key_auth, lrs, new_credential
from tests.support.server import Server
from tests.xapi.lrs import statement
from tests.xapi.test_launch import ACTIVITY, about, launch_params

VOIDED = {"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "voided"}}
LEARNER = {"objectType": "Agent", "mbox": "mailto:short-lived@example.com", "name": "Short Lived"}


def victim(server: Server) -> tuple[str, dict[str, Any]]:
    """Another learner's statement in another course and registration, written by the LMS key."""
    other = {"objectType": "Agent", "mbox": f"mailto:victim-{uuid.uuid4().hex[:8]}@example.com"}
    body = statement(
        actor=other,
        object={"objectType": "Activity", "id": "http://example.com/courses/other-course"},
        context={"registration": str(uuid.uuid4())},
    )
    response = lrs(server, "POST", "/statements", key_auth(server), json=body)
    assert response.status_code == 200, response.text
    return response.json()[0], other


def as_lms(server: Server, statement_id: str) -> Any:
    return lrs(server, "GET", "/statements", key_auth(server), params={"statementId": statement_id})


def mine_key(server: Server) -> str:
    key = server.cli_json(
        "apikey", "create", "--tenant", "a", "--name", "mine", "--scope", "statements/read/mine",
        "--scope", "statements/write",
    )  # fmt: skip
    return basic(key["key"], key["secret"])


def confined(server: Server, kind: str) -> tuple[str, dict[str, Any]]:
    """(Authorization value, a statement this credential may write) for each kind."""
    if kind == "launch":
        params = launch_params(server)
        return params["auth"], about(params)
    if kind == "shortlived":
        return basic(*new_credential(server, LEARNER)), statement(actor=LEARNER)
    return mine_key(server), statement()


def voiding(target: str, like: dict[str, Any]) -> dict[str, Any]:
    """A voiding statement that passes every check on its own actor, registration and activity."""
    body = {**like, "verb": VOIDED, "object": {"objectType": "StatementRef", "id": target}}
    context = dict(like.get("context") or {})
    context["contextActivities"] = {"grouping": [{"id": ACTIVITY}]}
    body["context"] = context
    return body


@pytest.mark.parametrize("kind", ["launch", "shortlived", "mine"])
def test_J03_confined_credential_cannot_void_others(server: Server, kind: str) -> None:
    """J-03: a confined credential voiding another learner's statement (another course and
    registration) is 403 voiding_forbidden, the target stays unvoided and the voiding statement
    is not stored; voiding an id that does not exist answers the same (no existence oracle);
    voiding its own statement works."""
    target, _ = victim(server)
    auth, own = confined(server, kind)
    void_id = str(uuid.uuid4())
    refused = lrs(server, "POST", "/statements", auth, json={**voiding(target, own), "id": void_id})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "voiding_forbidden"
    assert as_lms(server, target).status_code == 200
    assert as_lms(server, void_id).status_code == 404
    put = lrs(server, "PUT", "/statements", auth, params={"statementId": void_id}, json=voiding(target, own))
    assert put.status_code == 403, put.text
    assert as_lms(server, target).status_code == 200
    unknown = lrs(server, "POST", "/statements", auth, json=voiding(str(uuid.uuid4()), own))
    assert (unknown.status_code, unknown.json()) == (refused.status_code, refused.json())
    # Its own statement it may void.
    written = lrs(server, "POST", "/statements", auth, json=own)
    assert written.status_code == 200, written.text
    mine = written.json()[0]
    voided = lrs(server, "POST", "/statements", auth, json=voiding(mine, own))
    assert voided.status_code == 200, voided.text
    assert as_lms(server, mine).status_code == 404
    assert lrs(server, "GET", "/statements", key_auth(server), params={"voidedStatementId": mine}).status_code == 200
    # Writing and voiding in one batch is one's own statement too.
    fresh = {**own, "id": str(uuid.uuid4())}
    batch = lrs(server, "POST", "/statements", auth, json=[fresh, voiding(fresh["id"], own)])
    assert batch.status_code == 200, batch.text
    assert as_lms(server, fresh["id"]).status_code == 404


def test_J03_launch_cannot_void_own_statement_outside_launch(server: Server) -> None:
    """J-03: a launch credential may not void a statement of its own actor made outside its
    registration or activity (it could not have written it)."""
    params = launch_params(server)
    actor = json.loads(params["actor"])
    elsewhere = lrs(server, "POST", "/statements", key_auth(server), json=statement(actor=actor)).json()[0]
    response = lrs(server, "POST", "/statements", params["auth"], json=voiding(elsewhere, about(params)))
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "voiding_forbidden"
    assert as_lms(server, elsewhere).status_code == 200


def test_J03_registration_bound_state_needs_the_registration(server: Server) -> None:
    """J-03: a registration-bound launch credential reaches only the State of its registration:
    PUT, POST, GET and DELETE without the registration are 403 and change nothing."""
    params = launch_params(server)
    auth = params["auth"]
    base = {"activityId": ACTIVITY, "agent": params["actor"]}
    with_reg = {**base, "registration": params["registration"], "stateId": "bookmark"}
    assert lrs(server, "PUT", "/activities/state", auth, params=with_reg, content=b"mine").status_code == 204
    # A registration-less document of this actor, written by the LMS.
    lms_doc = {**base, "stateId": "bookmark"}
    assert lrs(server, "PUT", "/activities/state", key_auth(server), params=lms_doc, content=b"lms").status_code == 204
    for method, query, content in (
        ("PUT", lms_doc, b"x"),
        ("POST", {**base, "stateId": "other"}, b"{}"),
        ("GET", lms_doc, None),
        ("GET", base, None),
        ("DELETE", lms_doc, None),
        ("DELETE", base, None),
    ):
        response = lrs(server, method, "/activities/state", auth, params=query, content=content)
        assert response.status_code == 403, (method, query, response.text)
        assert response.json()["error"] == "forbidden_by_credential"
    assert lrs(server, "GET", "/activities/state", key_auth(server), params=lms_doc).content == b"lms"
    assert lrs(server, "GET", "/activities/state", auth, params=with_reg).content == b"mine"


def test_J03_launch_reads_only_its_activity_definition(server: Server) -> None:
    """J-03: GET /xapi/activities with a launch credential answers for its activity (or one
    beneath it) and is 403 for any other activity."""
    params = launch_params(server)
    auth = params["auth"]
    for ok in (ACTIVITY, ACTIVITY + "/question-1"):
        assert lrs(server, "GET", "/activities", auth, params={"activityId": ok}).status_code == 200
    for other in ("http://example.com/courses/other-course", ACTIVITY + "-extra"):
        refused = lrs(server, "GET", "/activities", auth, params={"activityId": other})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "forbidden_by_credential"


@pytest.mark.parametrize("kind", ["launch", "shortlived", "mine"])
def test_I04_existing_ids_outside_reach_answer_as_absent(server: Server, kind: str) -> None:
    """I-04: a PUT with another learner's statement id answers exactly as a PUT with a fresh
    id (204), changes nothing, and GET of that id is 404, as for an id that does not exist."""
    target, _ = victim(server)
    before = as_lms(server, target).json()
    auth, own = confined(server, kind)
    fresh = str(uuid.uuid4())
    taken = lrs(server, "PUT", "/statements", auth, params={"statementId": target}, json=own)
    free = lrs(server, "PUT", "/statements", auth, params={"statementId": fresh}, json=own)
    assert (taken.status_code, taken.content) == (free.status_code, free.content) == (204, b"")
    posted = lrs(server, "POST", "/statements", auth, json={**own, "id": target})
    assert posted.status_code == 200 and posted.json() == [target], posted.text
    assert as_lms(server, target).json() == before
    got = lrs(server, "GET", "/statements", auth, params={"statementId": target})
    unknown = lrs(server, "GET", "/statements", auth, params={"statementId": str(uuid.uuid4())})
    assert (got.status_code, got.json()) == (unknown.status_code, unknown.json())
    assert got.status_code == 404


@pytest.mark.parametrize("kind", ["launch", "shortlived"])
def test_J03_actor_bound_names_no_other_agent(server: Server, kind: str) -> None:
    """J-03: an actor-bound credential may not name other people: an identified Group carrying
    its own mbox with others as members, a Group as actor, another Agent as object, an
    instructor or team of others, or a SubStatement about others are 403, and none of them
    shows up in the other learner's related_agents results."""
    auth, own = confined(server, kind)
    me = own["actor"]
    other = {"objectType": "Agent", "mbox": f"mailto:bystander-{uuid.uuid4().hex[:8]}@example.com"}
    context = dict(own.get("context") or {})
    sub = {"objectType": "SubStatement", "actor": other, "verb": own["verb"], "object": own["object"]}
    grouping = {"contextActivities": {"grouping": [{"id": ACTIVITY}]}}
    for refused in (
        {**own, "actor": {"objectType": "Group", "mbox": me["mbox"], "member": [other]}},
        {**own, "actor": {"objectType": "Group", "mbox": me["mbox"], "member": [me]}},
        {**own, "object": other, "context": {**context, **grouping}},
        {**own, "context": {**context, "instructor": other}},
        {**own, "context": {**context, "team": {"objectType": "Group", "member": [other]}}},
        {**own, "object": sub, "context": {**context, **grouping}},
    ):
        response = lrs(server, "POST", "/statements", auth, json=refused)
        assert response.status_code == 403, (refused, response.text)
        assert response.json()["error"] == "forbidden_by_credential"
    seen = lrs(
        server, "GET", "/statements", key_auth(server), params={"agent": json.dumps(other), "related_agents": "true"}
    )
    assert seen.status_code == 200 and seen.json()["statements"] == []
    # Naming itself as instructor, or in a SubStatement, is still its own statement.
    for allowed in (
        {**own, "context": {**context, "instructor": me}},
        {**own, "object": {**sub, "actor": me}, "context": {**context, **grouping}},
    ):
        response = lrs(server, "POST", "/statements", auth, json=allowed)
        assert response.status_code == 200, (allowed, response.text)
