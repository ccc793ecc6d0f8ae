"""The xAPI Statement resource: round trips, validation (400 with a property),
query filters, paging with ``more``, voiding and conflicts."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.support.server import Server
from tests.xapi.lrs import new_id, statement, xapi

VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def post(server: Server, body: Any, **kwargs: Any) -> Any:
    response = xapi(server, "POST", "/statements", json=body, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def get(server: Server, **params: str) -> Any:
    response = xapi(server, "GET", "/statements", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_put_then_get_round_trip(server: Server) -> None:
    """PUT ?statementId= -> 204; GET returns it with id, stored, timestamp, authority and version set by the LRS."""
    sid = new_id()
    sent = statement(result={"score": {"scaled": 0.12123434, "raw": 12.125, "min": 0.12123434, "max": 45.45}})
    response = xapi(server, "PUT", "/statements", params={"statementId": sid}, json=sent)
    assert response.status_code == 204, response.text
    got = get(server, statementId=sid)
    assert got["id"] == sid
    assert got["result"] == sent["result"]
    assert got["actor"] == sent["actor"] and got["verb"] == sent["verb"] and got["object"] == sent["object"]
    assert got["stored"].endswith("Z") and len(got["stored"].split(".")[1]) == 4
    assert got["timestamp"] == got["stored"]
    assert got["version"] == "1.0.3"


def test_post_single_and_batch_return_ids(server: Server) -> None:
    """POST one statement or an array -> 200 with the id array, in order; ids are generated when absent."""
    given = new_id()
    ids = post(server, [statement(id=given), statement()])
    assert ids[0] == given and len(ids) == 2
    uuid.UUID(ids[1])
    [single] = post(server, statement())
    assert get(server, statementId=single)["id"] == single


def test_same_id_same_content_is_idempotent_different_is_409(server: Server) -> None:
    """A reused id: same content -> 204 (PUT) / 200 (POST); different content -> 409, stored one unchanged."""
    sid = new_id()
    body = statement()
    assert xapi(server, "PUT", "/statements", params={"statementId": sid}, json=body).status_code == 204
    assert xapi(server, "PUT", "/statements", params={"statementId": sid}, json=body).status_code == 204
    assert post(server, {**body, "id": sid}) == [sid]
    changed = {**body, "verb": {"id": "http://example.com/verbs/other"}}
    response = xapi(server, "PUT", "/statements", params={"statementId": sid}, json=changed)
    assert response.status_code == 409
    assert xapi(server, "POST", "/statements", json={**changed, "id": sid}).status_code == 409
    assert get(server, statementId=sid)["verb"] == body["verb"]


INVALID: list[tuple[str, Any, str]] = [
    ("id not a uuid", {"id": "not-a-uuid"}, "id"),
    ("actor two IFIs", {"actor": {"mbox": "mailto:a@b.c", "openid": "http://a.example/me"}}, "actor"),
    ("actor no IFI", {"actor": {"name": "nobody"}}, "actor"),
    ("mbox without mailto", {"actor": {"mbox": "a@b.c"}}, "actor.mbox"),
    ("verb id not IRI", {"verb": {"id": "different value"}}, "verb.id"),
    ("display not a map", {"verb": {"id": "http://x.example/v", "display": "did"}}, "verb.display"),
    (
        "bad language tag",
        {"verb": {"id": "http://x.example/v", "display": {"something": "x"}}},
        "verb.display.something",
    ),
    ("objectType wrong case", {"object": {"objectType": "activity", "id": "http://x.example/a"}}, "object.objectType"),
    ("scaled out of range", {"result": {"score": {"scaled": 1.01}}}, "result.score.scaled"),
    ("raw above max", {"result": {"score": {"raw": 11, "min": 0, "max": 10}}}, "result.score.raw"),
    ("success as string", {"result": {"success": "true"}}, "result.success"),
    ("duration weeks mixed", {"result": {"duration": "P4W1D"}}, "result.duration"),
    ("timestamp -00:00", {"timestamp": "2024-01-01T00:00:00-00:00"}, "timestamp"),
    ("timestamp not ISO", {"timestamp": "01/011/2015"}, "timestamp"),
    ("extension key not IRI", {"result": {"extensions": {"key": 1}}}, "result.extensions.key"),
    ("unknown top-level", {"dummy": 1}, "dummy"),
    ("wrong-case key", {"Verb": {"id": "http://x.example/v"}}, "Verb"),
    ("null value", {"result": None}, "result"),
    (
        "revision with agent object",
        {"object": {"objectType": "Agent", "mbox": "mailto:x@y.z"}, "context": {"revision": "1"}},
        "context.revision",
    ),
    ("team is an agent", {"context": {"team": {"mbox": "mailto:x@y.z"}}}, "context.team.objectType"),
    ("registration not uuid", {"context": {"registration": "abc"}}, "context.registration"),
    (
        "nested substatement",
        {
            "object": {
                "objectType": "SubStatement",
                "actor": {"mbox": "mailto:a@b.c"},
                "verb": {"id": "http://x.example/v"},
                "object": {"objectType": "SubStatement"},
            }
        },
        "object.object.objectType",
    ),
    (
        "substatement with id",
        {
            "object": {
                "objectType": "SubStatement",
                "id": str(uuid.uuid4()),
                "actor": {"mbox": "mailto:a@b.c"},
                "verb": {"id": "http://x.example/v"},
                "object": {"id": "http://x.example/a"},
            }
        },
        "object.id",
    ),
    (
        "interactionType missing",
        {"object": {"id": "http://x.example/a", "definition": {"choices": []}}},
        "object.definition.interactionType",
    ),
    ("voiding a non-StatementRef", {"verb": {"id": VOIDED}}, "object"),
    (
        "authority group of three",
        {"authority": {"objectType": "Group", "member": [{"mbox": f"mailto:{n}@x.y"} for n in "abc"]}},
        "authority",
    ),
]


@pytest.mark.parametrize(("case", "change", "prop"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_statement_is_400_with_property(server: Server, case: str, change: dict[str, Any], prop: str) -> None:
    """Validation per xAPI-Data.md: 400 invalid_statement naming the property; never 422/500."""
    response = xapi(server, "POST", "/statements", json=statement(**change))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_statement"
    assert body["property"] == prop, body


def test_invalid_statement_in_batch_rejects_whole_batch(server: Server) -> None:
    """One bad statement rejects the batch; the good one is not stored (path names the index)."""
    good = new_id()
    response = xapi(server, "POST", "/statements", json=[statement(id=good), statement(verb={"id": "nope"})])
    assert response.status_code == 400
    assert response.json()["property"] == "[1].verb.id"
    assert xapi(server, "GET", "/statements", params={"statementId": good}).status_code == 404


def test_valid_edge_cases_accepted(server: Server) -> None:
    """What the spec allows: Group actor, SubStatement, StatementRef, extensions with null, language tags."""
    valid = [
        statement(actor={"objectType": "Group", "member": [{"mbox": "mailto:m@x.y"}]}),
        statement(object={"objectType": "StatementRef", "id": new_id()}),
        statement(result={"extensions": {"http://x.example/e": None}, "duration": "PT4H35M59.14S"}),
        statement(verb={"id": "http://x.example/v", "display": {"sr-Latn-RS": "x", "tlh": "y", "cmn": "z"}}),
        statement(timestamp="2030-01-01T00:00:00.123+05:00"),
        statement(
            object={
                "objectType": "SubStatement",
                "actor": {"mbox": "mailto:a@b.c"},
                "verb": {"id": "http://x.example/v"},
                "object": {"objectType": "StatementRef", "id": new_id()},
            }
        ),
    ]
    assert len(post(server, valid)) == len(valid)


def test_malformed_requests_are_400(server: Server) -> None:
    """Bad JSON, wrong content type, unknown or wrong-case parameters -> 400."""
    bad_json = xapi(server, "POST", "/statements", content=b"{", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    form = xapi(server, "POST", "/statements", content=b"a=b", headers={"Content-Type": "multipart/form-data"})
    assert form.status_code == 400
    for params in ({"foo": "bar"}, {"LIMIT": "1"}, {"statementId": "wrong"}, {"agent": "wrong"}):
        response = xapi(server, "GET", "/statements", params=params)
        assert response.status_code == 400, params
        assert "x-experience-api-consistent-through" in response.headers
    combined = xapi(server, "GET", "/statements", params={"statementId": new_id(), "verb": "http://x.example/v"})
    assert combined.status_code == 400
    assert xapi(server, "PUT", "/statements", json=statement()).status_code == 400


def test_query_filters(server: Server) -> None:
    """agent, verb, activity, registration and related_* filters select exactly the matching statements."""
    tag = uuid.uuid4().hex
    verb = f"http://x.example/verbs/{tag}"
    activity = f"http://x.example/act/{tag}"
    agent = {"mbox": f"mailto:{tag}@x.example"}
    registration = new_id()
    ids = post(
        server,
        [
            statement(actor=agent, verb={"id": verb}),
            statement(object={"id": activity}, context={"registration": registration}),
            statement(
                context={
                    "instructor": agent,
                    "contextActivities": {"category": {"id": activity}},
                }
            ),
        ],
    )
    import json

    def found(**params: str) -> list[str]:
        return [s["id"] for s in get(server, **params)["statements"]]

    assert found(verb=verb) == [ids[0]]
    assert found(agent=json.dumps(agent)) == [ids[0]]
    assert set(found(agent=json.dumps(agent), related_agents="true")) == {ids[0], ids[2]}
    assert found(activity=activity) == [ids[1]]
    assert set(found(activity=activity, related_activities="true")) == {ids[1], ids[2]}
    assert found(registration=registration) == [ids[1]]
    # contextActivities come back as arrays
    third = get(server, statementId=ids[2])
    assert third["context"]["contextActivities"]["category"] == [{"id": activity}]


def test_paging_with_more_and_order(server: Server) -> None:
    """limit + more pages through a filter in stored order (newest first; ascending=true oldest first)."""
    verb = f"http://x.example/verbs/{uuid.uuid4().hex}"
    ids = [post(server, statement(verb={"id": verb}))[0] for _ in range(5)]
    seen: list[str] = []
    page = get(server, verb=verb, limit="2")
    while True:
        assert "more" in page
        seen += [s["id"] for s in page["statements"]]
        if not page["more"]:
            break
        assert page["more"].startswith("/xapi/statements?more=")
        response = xapi(server, "GET", page["more"][len("/xapi") :])
        assert response.status_code == 200, response.text
        page = response.json()
    assert seen == list(reversed(ids))
    ascending = [s["id"] for s in get(server, verb=verb, ascending="true")["statements"]]
    assert ascending == ids


def test_since_until(server: Server) -> None:
    """since is exclusive, until inclusive, both on stored."""
    verb = f"http://x.example/verbs/{uuid.uuid4().hex}"
    [first] = post(server, statement(verb={"id": verb}))
    stored = get(server, statementId=first)["stored"]
    time.sleep(0.01)
    [second] = post(server, statement(verb={"id": verb}))
    assert [s["id"] for s in get(server, verb=verb, since=stored)["statements"]] == [second]
    assert [s["id"] for s in get(server, verb=verb, until=stored)["statements"]] == [first]


def test_voiding(server: Server) -> None:
    """Voided statements: 404 by statementId, 200 by voidedStatementId, hidden from queries; the voiding
    statement is returned for the voided one's verb; voiding a voiding statement is rejected."""
    verb = f"http://x.example/verbs/{uuid.uuid4().hex}"
    [target] = post(server, statement(verb={"id": verb}))
    [voiding] = post(server, statement(verb={"id": VOIDED}, object={"objectType": "StatementRef", "id": target}))
    assert xapi(server, "GET", "/statements", params={"statementId": target}).status_code == 404
    assert get(server, voidedStatementId=target)["id"] == target
    assert xapi(server, "GET", "/statements", params={"voidedStatementId": voiding}).status_code == 404
    assert [s["id"] for s in get(server, verb=verb)["statements"]] == [voiding]
    again = xapi(
        server,
        "POST",
        "/statements",
        json=statement(verb={"id": VOIDED}, object={"objectType": "StatementRef", "id": voiding}),
    )
    assert again.status_code == 400
    assert get(server, statementId=voiding)["id"] == voiding
    # voiding an unknown statement is accepted
    post(server, statement(verb={"id": VOIDED}, object={"objectType": "StatementRef", "id": new_id()}))


def test_formats(server: Server) -> None:
    """format=ids keeps only identifiers; format=canonical keeps one language per map."""
    sid = new_id()
    body = statement(
        verb={"id": "http://x.example/v", "display": {"en-US": "did", "en-GB": "did (GB)", "fr-FR": "fait"}},
        object={"id": "http://x.example/a", "definition": {"name": {"en-US": "A", "en-GB": "A (GB)"}}},
    )
    assert xapi(server, "PUT", "/statements", params={"statementId": sid}, json=body).status_code == 204
    ids = get(server, statementId=sid, format="ids")
    assert ids["object"] == {"id": "http://x.example/a"}
    assert ids["verb"] == {"id": "http://x.example/v"}
    assert ids["actor"] == {"objectType": "Agent", "mbox": "mailto:learner@example.com"}
    response = xapi(
        server,
        "GET",
        "/statements",
        params={"statementId": sid, "format": "canonical"},
        headers={"Accept-Language": "en-GB"},
    )
    canonical = response.json()
    assert canonical["verb"]["display"] == {"en-GB": "did (GB)"}
    assert canonical["object"]["definition"]["name"] == {"en-GB": "A (GB)"}
    assert get(server, statementId=sid)["verb"]["display"] == body["verb"]["display"]


def test_consistent_through_and_last_modified(server: Server) -> None:
    """GET /statements carries X-Experience-API-Consistent-Through; a single statement carries Last-Modified."""
    [sid] = post(server, statement())
    response = xapi(server, "GET", "/statements", params={"statementId": sid})
    assert response.headers["x-experience-api-consistent-through"].endswith("Z")
    assert response.headers["last-modified"].endswith("GMT")


def test_big_integers_and_odd_queries_never_5xx(server: Server) -> None:
    """Valid JSON orjson cannot encode (integers beyond 64 bits) is stored and returned; odd query values and
    tampered `more` tokens answer 400, never 5xx."""
    sid = new_id()
    big = 10**30
    body = statement(id=sid, result={"extensions": {"http://x.example/big": big}})
    assert xapi(server, "POST", "/statements", json=body).status_code == 200
    response = xapi(server, "GET", "/statements", params={"statementId": sid})
    assert response.status_code == 200 and str(big) in response.text
    assert xapi(server, "GET", "/statements", params={"statementId": sid, "format": "ids"}).status_code == 200
    import base64
    import json

    odd = [
        {"limit": "-1"},
        {"limit": "99999999999999999999"},
        {"since": "0000-01-01T00:00:00Z"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"agent": '{"account": 5}'},
        {"agent": "[]"},
        {"more": "!!!"},
        {"more": base64.urlsafe_b64encode(json.dumps({"p": {}, "a": 2**70}).encode()).decode()},
        {"more": base64.urlsafe_b64encode(json.dumps({"p": {"x": "1"}, "a": 1}).encode()).decode()},
        {"format": "EXACT"},
        {"ascending": "yes"},
    ]
    for params in odd:
        status = xapi(server, "GET", "/statements", params=params).status_code
        assert status in {200, 400}, (params, status)
