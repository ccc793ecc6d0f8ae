"""The Statement resource as xAPI-Communication.md 2.1 and the ADL suite want it
(NOTES.md 3.4-3.9), on 1.0.3 and 2.0.0: PUT/POST semantics, what the LRS sets,
single GETs, query filters, ordering, `more` paging, voiding with the
StatementRef filter rule, formats, and the attachments=true response shape."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from tests.support.server import Server
from tests.xapi.lrs import new_id
from tests.xapi.statement_cases import V1, V2, VOIDED

BOTH = pytest.mark.parametrize("version", [V1, V2])


class Lrs:
    """An httpx client on /xapi with KA's Basic credentials and one xAPI version."""

    def __init__(self, client: httpx.Client, version: str) -> None:
        self.client = client
        self.version = version

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Experience-API-Version": self.version, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def post(self, body: Any) -> list[str]:
        response = self.request("POST", "/statements", json=body)
        assert response.status_code == 200, response.text
        ids: list[str] = response.json()
        return ids

    def get(self, **params: str) -> Any:
        response = self.request("GET", "/statements", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def ids(self, **params: str) -> list[str]:
        return [s["id"] for s in self.get(**params)["statements"]]


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    ka = server.apikeys["KA"]
    with httpx.Client(base_url=f"{server.base_url}/xapi", auth=(ka["key"], ka["secret"]), timeout=30) as c:
        yield c


@pytest.fixture(params=[V1, V2])
def lrs(client: httpx.Client, request: pytest.FixtureRequest) -> Lrs:
    return Lrs(client, request.param)


def tag() -> str:
    return uuid.uuid4().hex[:12]


def agent(name: str) -> dict[str, Any]:
    return {"objectType": "Agent", "name": name, "mbox": f"mailto:{name}@example.com"}


def verb(name: str) -> dict[str, Any]:
    return {"id": f"http://example.com/verbs/{name}", "display": {"en-US": name}}


def activity(slug: str, **definition: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"objectType": "Activity", "id": f"http://example.com/activities/{slug}"}
    if definition:
        body["definition"] = definition
    return body


def stmt(actor: str, verb_name: str, obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"actor": agent(actor), "verb": verb(verb_name), "object": obj, **extra}


# -- PUT and POST ----------------------------------------------------------------


def test_put_204_and_post_ids(lrs: Lrs) -> None:
    """PUT ?statementId -> 204 with no body; POST one or many -> 200 with the ids in order (generated when absent)."""
    t = tag()
    sid = new_id()
    put = lrs.request("PUT", "/statements", params={"statementId": sid}, json=stmt(t, "put", activity(t)))
    assert put.status_code == 204 and put.content == b""
    given = new_id()
    ids = lrs.post([stmt(t, "a", activity(t), id=given), stmt(t, "b", activity(t))])
    assert ids[0] == given and len(ids) == 2 and uuid.UUID(ids[1])
    [single] = lrs.post(stmt(t, "c", activity(t)))
    assert lrs.get(statementId=single)["id"] == single
    assert lrs.get(statementId=sid)["id"] == sid


def test_put_parameter_errors(lrs: Lrs) -> None:
    """PUT without statementId, wrong-case name, non-UUID, id differing from the body, or an extra parameter -> 400."""
    body = stmt(tag(), "put", activity("x"))
    sid = new_id()
    for params in ({}, {"StatementId": sid}, {"statementId": "wrong"}, {"statementId": sid, "foo": "bar"}):
        response = lrs.request("PUT", "/statements", params=params, json=body)
        assert response.status_code == 400, (params, response.text)
    response = lrs.request("PUT", "/statements", params={"statementId": sid}, json={**body, "id": new_id()})
    assert response.status_code == 400
    assert lrs.request("GET", "/statements", params={"statementId": sid}).status_code == 404
    # POST takes no parameters (the 1.0.3 alternate syntax is tested with the headers).
    assert lrs.request("POST", "/statements", params={"statementId": sid}, json=body).status_code == 400


def test_same_id_identical_is_noop_different_is_409(lrs: Lrs) -> None:
    """Communication 2.1.2: a known id with the same statement -> 204/200 (no-op); different -> 409, original kept."""
    sid = new_id()
    body = stmt(tag(), "once", activity("same"))
    assert lrs.request("PUT", "/statements", params={"statementId": sid}, json=body).status_code == 204
    assert lrs.request("PUT", "/statements", params={"statementId": sid}, json=body).status_code == 204
    assert lrs.post({**body, "id": sid}) == [sid]
    changed = {**body, "verb": verb("other")}
    assert lrs.request("PUT", "/statements", params={"statementId": sid}, json=changed).status_code == 409
    assert lrs.request("POST", "/statements", json={**changed, "id": sid}).status_code == 409
    # A batch that holds the conflicting statement stores nothing of the batch.
    fresh = new_id()
    response = lrs.request("POST", "/statements", json=[{**body, "id": fresh}, {**changed, "id": sid}])
    assert response.status_code == 409
    assert lrs.request("GET", "/statements", params={"statementId": fresh}).status_code == 404
    assert lrs.get(statementId=sid)["verb"] == body["verb"]


def test_lrs_sets_stored_timestamp_authority_version(lrs: Lrs, server: Server) -> None:
    """stored is overwritten (ms precision); timestamp defaults to stored; authority is the key's Agent; version set."""
    sid = new_id()
    sent = stmt(tag(), "set", activity("set"), id=sid, stored="2011-07-15T12:00:00.000Z")
    lrs.post(sent)
    got = lrs.get(statementId=sid)
    assert got["stored"] != "2011-07-15T12:00:00.000Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3,}(Z|\+00:00)", got["stored"]), got["stored"]
    assert got["timestamp"] == got["stored"]
    assert got["authority"] == {
        "objectType": "Agent",
        "account": {"homePage": server.base_url, "name": server.apikeys["KA"]["key"]},
    }
    assert got["version"] == lrs.version
    # A given version is preserved as sent.
    kept = new_id()
    lrs.post({**sent, "id": kept, "version": "1.0.0" if lrs.version == V1 else "2.0.0"})
    assert lrs.get(statementId=kept)["version"] == ("1.0.0" if lrs.version == V1 else "2.0.0")


def test_round_trip_exact(lrs: Lrs) -> None:
    """format=exact returns what was sent: unrounded scores, unicode maps, extension values, same instant."""
    sid = new_id()
    sent = stmt(
        tag(),
        "exact",
        activity("exact", name={"ja-JP": "アクティビティ", "ko-KR": "활동", "ar-EG": "نشاط"}),
        id=sid,
        result={
            "score": {"scaled": 0.12123434, "raw": 12.125, "min": 0.12123434, "max": 45.45},
            "extensions": {
                "http://example.com/e/null": None,
                "http://example.com/e/empty": "",
                "http://example.com/e/obj": {},
            },
        },
        timestamp="2023-05-04T12:00:00.000-05:00",
    )
    lrs.post(sent)
    got = lrs.get(statementId=sid)
    assert got["result"] == sent["result"]
    assert got["object"] == sent["object"] and got["actor"] == sent["actor"] and got["verb"] == sent["verb"]
    returned = datetime.fromisoformat(got["timestamp"].replace("Z", "+00:00"))
    assert returned == datetime.fromisoformat("2023-05-04T12:00:00-05:00"), got["timestamp"]


def test_context_activities_come_back_as_arrays(lrs: Lrs) -> None:
    """contextActivities values posted as single objects are returned as arrays, in substatements too."""
    sid = new_id()
    single = {"parent": activity("p"), "grouping": {"id": "http://example.com/activities/g"}}
    sub = {"objectType": "SubStatement", **stmt(tag(), "sub", activity("s")), "context": {"contextActivities": single}}
    lrs.post(stmt(tag(), "ca", sub, id=sid, context={"contextActivities": single}))
    got = lrs.get(statementId=sid)
    for context in (got["context"], got["object"]["context"]):
        assert context["contextActivities"]["parent"] == [activity("p")]
        assert context["contextActivities"]["grouping"] == [{"id": "http://example.com/activities/g"}]


def test_v2_timestamp_equals_stored_and_duration_not_rounded(client: httpx.Client) -> None:
    """2.0.0: no timestamp -> timestamp == stored (same string); a 5-decimal duration is kept or truncated."""
    lrs = Lrs(client, V2)
    sid = new_id()
    lrs.post(stmt(tag(), "v2", activity("v2"), id=sid, result={"duration": "P1DT12H36M0.12567S"}))
    got = lrs.get(statementId=sid)
    assert got["timestamp"] == got["stored"]
    assert got["result"]["duration"] in {"P1DT12H36M0.12567S", "P1DT12H36M0.12S"}


def test_content_types(lrs: Lrs) -> None:
    """Statements come as application/json or multipart/mixed; multipart/form-data and text/plain -> 400."""
    body = json.dumps(stmt(tag(), "ct", activity("ct"))).encode()
    for ctype in ("multipart/form-data; boundary=abc", "text/plain", "application/x-www-form-urlencoded"):
        response = lrs.request("POST", "/statements", content=body, headers={"Content-Type": ctype})
        assert response.status_code == 400, (ctype, response.text)
    ok = lrs.request("POST", "/statements", content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


# -- GET: single statements and parameters --------------------------------------------


def test_single_get_headers_and_errors(lrs: Lrs) -> None:
    """statementId -> the bare statement with Content-Type, Date, Consistent-Through (2.0: Last-Modified = stored)."""
    [sid] = lrs.post(stmt(tag(), "single", activity("single")))
    response = lrs.request("GET", "/statements", params={"statementId": sid})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-experience-api-version"] == lrs.version
    assert parsedate_to_datetime(response.headers["date"])
    assert "x-experience-api-consistent-through" in response.headers
    body = response.json()
    assert body["id"] == sid and "statements" not in body
    if lrs.version == V2:
        modified = parsedate_to_datetime(response.headers["last-modified"]).timestamp()
        stored = body["stored"].replace("Z", "+00:00")
        assert int(modified) == int(datetime.fromisoformat(stored).timestamp())
    missing = lrs.request("GET", "/statements", params={"statementId": new_id()})
    assert missing.status_code == 404 and isinstance(missing.json(), dict)
    for name in ("statementId", "voidedStatementId"):
        assert lrs.request("GET", "/statements", params={name: "wrong"}).status_code == 400


@pytest.mark.parametrize(
    "extra",
    [
        {"agent": json.dumps({"mbox": "mailto:x@example.com"})},
        {"verb": "http://example.com/verbs/x"},
        {"activity": "http://example.com/activities/x"},
        {"registration": str(uuid.UUID(int=1))},
        {"related_activities": "true"},
        {"related_agents": "true"},
        {"since": "2012-06-01T19:09:13.245Z"},
        {"until": "2012-06-01T19:09:13.245Z"},
        {"limit": "1"},
        {"ascending": "true"},
        {"voidedStatementId": str(uuid.UUID(int=2))},
    ],
    ids=lambda e: next(iter(e)),
)
def test_statement_id_with_other_parameters_is_400(lrs: Lrs, extra: dict[str, str]) -> None:
    """statementId / voidedStatementId combined with anything but format and attachments -> 400."""
    [sid] = lrs.post(stmt(tag(), "combo", activity("combo")))
    for name in ("statementId", "voidedStatementId"):
        params = {name: sid, **extra}
        if name in extra:
            continue
        response = lrs.request("GET", "/statements", params=params)
        assert response.status_code == 400, (params, response.text)


def test_statement_id_with_format_and_attachments(lrs: Lrs) -> None:
    """statementId with format=ids or attachments=true -> 200."""
    [sid] = lrs.post(stmt(tag(), "fa", activity("fa")))
    assert lrs.request("GET", "/statements", params={"statementId": sid, "format": "ids"}).status_code == 200
    response = lrs.request("GET", "/statements", params={"statementId": sid, "attachments": "true"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=")


@pytest.mark.parametrize(
    "params",
    [
        {"foo": "bar"},
        {"LIMIT": "1"},
        {"Agent": json.dumps({"mbox": "mailto:x@example.com"})},
        {"Verb": "http://example.com/verbs/x"},
        {"Format": "ids"},
        {"agent": "wrong"},
        {"agent": json.dumps({"name": "no ifi"})},
        {"agent": "true"},
        {"verb": "example.com/verbs/x"},
        {"activity": "not an iri"},
        {"registration": "wrong"},
        {"since": "not a time"},
        {"until": "true"},
        {"limit": "-1"},
        {"limit": "abc"},
        {"format": "full"},
        {"attachments": "yes"},
        {"ascending": "1"},
        {"related_agents": "TRUE"},
        {"more": "not-a-token"},
    ],
    ids=lambda p: "&".join(f"{k}={v[:12]}" for k, v in p.items()),
)
def test_bad_query_is_400_with_consistent_through(lrs: Lrs, params: dict[str, str]) -> None:
    """Unknown or wrong-case parameters and bad values -> 400, still with Consistent-Through and the version."""
    response = lrs.request("GET", "/statements", params=params)
    assert response.status_code == 400, response.text
    assert "x-experience-api-consistent-through" in response.headers
    assert response.headers["x-experience-api-version"] == lrs.version


GET_PARAMS = [
    "statementId",
    "voidedStatementId",
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
]


@pytest.mark.parametrize("name", GET_PARAMS)
def test_parameter_names_are_case_sensitive(lrs: Lrs, name: str) -> None:
    """Communication 3.2: a known parameter in another case is an unknown parameter -> 400 (GET and PUT)."""
    for variant in {name.upper(), name[0].upper() + name[1:], name.lower()} - {name}:
        response = lrs.request("GET", "/statements", params={variant: "1"})
        assert response.status_code == 400, (variant, response.text)
        assert "x-experience-api-consistent-through" in response.headers


# -- GET: queries (one data set for the module) ------------------------------------------


@pytest.fixture(scope="module")
def world(client: httpx.Client) -> dict[str, Any]:
    """Statements with unique agents, verbs, activities and a registration, posted in order (distinct stored)."""
    t = tag()
    names = {k: f"{k}-{t}" for k in ("alice", "bob", "inst", "verb", "verb2", "act", "act2", "cat")}
    reg = new_id()
    lrs = Lrs(client, V1)
    s: dict[str, str] = {}
    s["alice_act"] = lrs.post(stmt(names["alice"], names["verb"], activity(names["act"])))[0]
    time.sleep(0.01)
    s["bob_act"] = lrs.post(stmt(names["bob"], names["verb2"], activity(names["act"])))[0]
    time.sleep(0.01)
    s["alice_ctx"] = lrs.post(
        stmt(
            names["alice"],
            names["verb2"],
            activity(names["act2"]),
            context={
                "registration": reg,
                "instructor": agent(names["inst"]),
                "contextActivities": {"category": [activity(names["cat"])]},
            },
        )
    )[0]
    time.sleep(0.01)
    s["bob_about_alice"] = lrs.post(stmt(names["bob"], names["verb"], agent(names["alice"])))[0]
    time.sleep(0.01)
    sub = {"objectType": "SubStatement", **stmt(names["inst"], names["verb"], activity(names["cat"]))}
    s["sub"] = lrs.post(stmt(names["bob"], names["verb2"], sub))[0]
    return {"names": names, "reg": reg, "s": s}


def _agent(name: str) -> str:
    return json.dumps({"mbox": f"mailto:{name}@example.com"})


def test_query_filters(client: httpx.Client, world: dict[str, Any]) -> None:
    """agent, verb, activity, registration, related_agents, related_activities; results newest stored first."""
    n, s = world["names"], world["s"]
    for version in (V1, V2):
        lrs = Lrs(client, version)
        assert lrs.ids(agent=_agent(n["alice"])) == [s["bob_about_alice"], s["alice_ctx"], s["alice_act"]]
        assert lrs.ids(agent=_agent(n["inst"])) == []
        assert lrs.ids(agent=_agent(n["inst"]), related_agents="true") == [s["sub"], s["alice_ctx"]]
        assert lrs.ids(verb=verb(n["verb"])["id"]) == [s["bob_about_alice"], s["alice_act"]]
        assert lrs.ids(activity=activity(n["act"])["id"]) == [s["bob_act"], s["alice_act"]]
        assert lrs.ids(activity=activity(n["cat"])["id"]) == []
        assert lrs.ids(activity=activity(n["cat"])["id"], related_activities="true") == [s["sub"], s["alice_ctx"]]
        assert lrs.ids(registration=world["reg"]) == [s["alice_ctx"]]
        assert lrs.ids(agent=_agent(n["bob"]), verb=verb(n["verb2"])["id"]) == [s["sub"], s["bob_act"]]
        assert lrs.get(verb="http://example.com/verbs/never-used") == {"statements": [], "more": ""}
        # An account agent is a valid filter too, and the unknown one matches nothing.
        account = json.dumps({"account": {"homePage": "http://example.com", "name": n["alice"]}})
        assert lrs.ids(agent=account) == []
        # related_* alone are accepted.
        assert lrs.request("GET", "/statements", params={"related_agents": "true", "limit": "1"}).status_code == 200
        assert lrs.request("GET", "/statements", params={"related_activities": "true", "limit": "1"}).status_code == 200


def test_order_limit_since_until(client: httpx.Client, world: dict[str, Any]) -> None:
    """ascending=true reverses; limit=1 gives the newest match; since is exclusive and until inclusive on stored."""
    n, s = world["names"], world["s"]
    lrs = Lrs(client, V2)
    agent_q = _agent(n["bob"])
    newest_first = [s["sub"], s["bob_about_alice"], s["bob_act"]]
    assert lrs.ids(agent=agent_q) == newest_first
    assert lrs.ids(agent=agent_q, ascending="true") == newest_first[::-1]
    page = lrs.get(agent=agent_q, limit="1")
    assert [x["id"] for x in page["statements"]] == [s["sub"]] and page["more"]
    middle = lrs.get(statementId=s["bob_about_alice"])["stored"]
    assert lrs.ids(agent=agent_q, since=middle) == [s["sub"]]
    assert lrs.ids(agent=agent_q, until=middle) == [s["bob_about_alice"], s["bob_act"]]
    first = lrs.get(statementId=s["bob_act"])["stored"]
    assert lrs.ids(agent=agent_q, since=first, until=middle) == [s["bob_about_alice"]]


def test_more_paging_stable_while_statements_arrive(lrs: Lrs) -> None:
    """`more` is a path with the base path; pages continue where they stopped, even as new statements arrive."""
    verb_name = f"page-{tag()}"
    first = [lrs.post(stmt("pager", verb_name, activity(verb_name)))[0] for _ in range(5)]
    expected = first[::-1]
    seen: list[str] = []
    page = lrs.get(verb=verb(verb_name)["id"], limit="2")
    for _ in range(5):
        seen += [x["id"] for x in page["statements"]]
        if not page["more"]:
            break
        assert page["more"].startswith("/xapi/statements?"), page["more"]
        lrs.post(stmt("pager", verb_name, activity(verb_name)))  # a newer statement must not shift later pages
        response = lrs.client.request(
            "GET", page["more"].removeprefix("/xapi"), headers={"X-Experience-API-Version": lrs.version}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"statements", "more"}
    assert seen == expected


# -- voiding -------------------------------------------------------------------------


def test_voiding_and_statement_ref_filters(lrs: Lrs) -> None:
    """Voided: 404 by statementId, 200 by voidedStatementId, hidden from lists; filters also return statements
    that target a match through a StatementRef (newest first); a voiding statement cannot be voided."""
    name = f"void-{tag()}"
    x = verb(name)["id"]
    [v] = lrs.post(stmt("voider", name, activity(name)))
    time.sleep(0.01)
    [w] = lrs.post(stmt("voider", "voided", {"objectType": "StatementRef", "id": v}, verb={"id": VOIDED}))
    time.sleep(0.01)
    [r] = lrs.post(stmt("voider", name, {"objectType": "StatementRef", "id": v}))
    assert lrs.request("GET", "/statements", params={"statementId": v}).status_code == 404
    assert lrs.get(voidedStatementId=v)["id"] == v
    assert lrs.request("GET", "/statements", params={"voidedStatementId": r}).status_code == 404
    assert lrs.get(statementId=w)["object"] == {"objectType": "StatementRef", "id": v}
    assert lrs.ids(verb=x) == [r, w]
    assert lrs.ids(verb=x, limit="1") == [r]
    assert lrs.ids(activity=activity(name)["id"]) == [r, w]
    assert v not in lrs.ids(agent=_agent("voider"), limit="50")
    # Voiding the voiding statement has no effect: rejected, or accepted and W stays readable.
    response = lrs.request(
        "POST", "/statements", json=stmt("voider", "v", {"objectType": "StatementRef", "id": w}, verb={"id": VOIDED})
    )
    assert response.status_code in {200, 400}
    assert lrs.get(statementId=w)["id"] == w
    # Voiding an unknown statement is accepted.
    unknown = {"objectType": "StatementRef", "id": new_id()}
    assert lrs.request("POST", "/statements", json=stmt("voider", "v", unknown, verb={"id": VOIDED})).status_code == 200


# -- formats -------------------------------------------------------------------------


def test_formats(lrs: Lrs) -> None:
    """ids: Activity -> {id}, Agent -> IFI (+objectType), Group -> objectType + IFI; canonical picks one language;
    exact (default) keeps every language even with Accept-Language."""
    names = {"en-US": "US name", "en-GB": "GB name", "fr": "nom"}
    group = {"objectType": "Group", "name": "G", "mbox": "mailto:group@example.com", "member": [agent("m1")]}
    sub = {
        "objectType": "SubStatement",
        "actor": group,
        "verb": {"id": "http://example.com/verbs/f", "display": names},
        "object": activity("inner", name=names, type="http://example.com/types/t"),
    }
    body = stmt(
        tag(), f"fmt-{tag()}", sub, context={"contextActivities": {"parent": [activity("par", description=names)]}}
    )
    body["verb"]["display"] = names
    [sid] = lrs.post(body)
    ids = lrs.get(statementId=sid, format="ids")
    assert set(ids["actor"]) <= {"objectType", "mbox"} and ids["actor"]["mbox"] == body["actor"]["mbox"]
    assert ids["object"]["object"] == {"id": "http://example.com/activities/inner"}
    assert ids["object"]["actor"] == {"objectType": "Group", "mbox": "mailto:group@example.com"}
    assert ids["context"]["contextActivities"]["parent"] == [{"id": "http://example.com/activities/par"}]
    headers = {"Accept-Language": "en-GB"}
    canon = lrs.request("GET", "/statements", params={"statementId": sid, "format": "canonical"}, headers=headers)
    got = canon.json()
    assert got["verb"]["display"] == {"en-GB": "GB name"}
    assert got["object"]["verb"]["display"] == {"en-GB": "GB name"}
    assert got["object"]["object"]["definition"] == {"name": {"en-GB": "GB name"}, "type": "http://example.com/types/t"}
    assert got["context"]["contextActivities"]["parent"][0]["definition"]["description"] == {"en-GB": "GB name"}
    assert got["object"]["actor"] == group and got["actor"] == body["actor"]
    exact = lrs.request("GET", "/statements", params={"statementId": sid}, headers=headers).json()
    assert exact["verb"]["display"] == names
    listed = lrs.request(
        "GET", "/statements", params={"verb": body["verb"]["id"], "format": "canonical"}, headers=headers
    )
    assert listed.json()["statements"][0]["verb"]["display"] == {"en-GB": "GB name"}


# -- attachments=true ------------------------------------------------------------------


def test_attachments_true_response_shape(lrs: Lrs) -> None:
    """attachments=true: Content-Type exactly `multipart/mixed; boundary=<token>`; JSON first; each part has its
    X-Experience-API-Hash and raw bytes; each sha2 occurs exactly twice in the body. Without it: application/json."""
    content = f"attachment bytes {tag()}".encode()
    sha2 = hashlib.sha256(content).hexdigest()
    sid = new_id()
    body = stmt(
        tag(),
        f"att-{tag()}",
        activity("att"),
        id=sid,
        attachments=[
            {
                "usageType": "http://example.com/attachment-usage/test",
                "display": {"en-US": "file"},
                "contentType": "text/plain",
                "length": len(content),
                "sha2": sha2,
            }
        ],
    )
    boundary = "-------314159265358979323846"
    payload = (
        (
            f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps(body)}\r\n"
            f"--{boundary}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {sha2}\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--".encode()
    )
    sent = lrs.request(
        "POST", "/statements", content=payload, headers={"Content-Type": f"multipart/mixed; boundary={boundary}"}
    )
    assert sent.status_code == 200, sent.text
    for params in ({"statementId": sid, "attachments": "true"}, {"verb": body["verb"]["id"], "attachments": "true"}):
        response = lrs.request("GET", "/statements", params=params)
        assert response.status_code == 200
        ctype = response.headers["content-type"]
        match = re.fullmatch(r"multipart/mixed; boundary=([A-Za-z0-9_-]+)", ctype)
        assert match, ctype
        raw = response.content
        assert raw.count(sha2.encode()) == 2
        parts = [p for p in raw.split(b"--" + match.group(1).encode()) if p.strip(b"\r\n-")]
        head, _, first = parts[0].partition(b"\r\n\r\n")
        assert b"application/json" in head.lower()
        assert json.loads(first.strip())  # the statement or the StatementResult
        att_head, _, att_body = parts[1].partition(b"\r\n\r\n")
        assert f"x-experience-api-hash: {sha2}".encode() in att_head.lower()
        assert att_body.removesuffix(b"\r\n") == content
    plain = lrs.request("GET", "/statements", params={"statementId": sid, "attachments": "false"})
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json()["attachments"][0]["sha2"] == sha2


# -- statement comparison (Data 2.3.1 immutability exceptions) -----------------------------

SAME_STATEMENT = [
    pytest.param(
        {"timestamp": "2020-01-01T12:00:00.000+01:00"},
        {"timestamp": "2020-01-01T11:00:00.000Z"},
        id="timestamp in another offset",
    ),
    pytest.param(
        {"verb": {"id": "http://example.com/verbs/cmp", "display": {"en": "a"}}},
        {"verb": {"id": "http://example.com/verbs/cmp", "display": {"en": "b"}}},
        id="verb display differs",
    ),
    pytest.param(
        {"object": activity("cmp", name={"en": "a"})},
        {"object": activity("cmp", name={"en": "b"})},
        id="activity definition differs",
    ),
    pytest.param(
        {"actor": {"objectType": "Group", "member": [agent("m1"), agent("m2")]}},
        {"actor": {"objectType": "Group", "member": [agent("m2"), agent("m1")]}},
        id="group members reordered",
    ),
    pytest.param({}, {"stored": "2011-07-15T12:00:00Z"}, id="stored sent"),
    pytest.param({}, {"authority": {"mbox": "mailto:someone@example.com"}}, id="authority sent"),
    pytest.param({"id": None}, {}, id="id upper case"),
]


@pytest.mark.parametrize(("first", "second"), SAME_STATEMENT)
def test_resending_an_equivalent_statement_is_not_a_conflict(
    lrs: Lrs, first: dict[str, Any], second: dict[str, Any]
) -> None:
    """Data 2.3.1 / Communication 2.1.1: differences allowed by the immutability exceptions are the same statement
    (204 no-op, not 409), and the stored statement is unchanged."""
    sid = new_id()
    body = {**stmt("cmp", "cmp", activity("cmp")), **first}
    if "id" in first:  # the same id in upper case: UUIDs compare case-insensitively
        body["id"] = sid.upper()
    assert lrs.request("PUT", "/statements", params={"statementId": sid}, json=body).status_code == 204
    before = lrs.get(statementId=sid)
    again = {**body, **second}
    if "id" in first:
        again["id"] = sid
    response = lrs.request("PUT", "/statements", params={"statementId": sid}, json=again)
    assert response.status_code == 204, response.text
    assert lrs.get(statementId=sid) == before


def test_resending_with_more_precise_duration_is_not_a_conflict(client: httpx.Client) -> None:
    """2.0.0 (4.2.7): durations are compared to 0.01 s, so PT1.1234S and PT1.1299S are the same statement."""
    lrs = Lrs(client, V2)
    sid = new_id()
    body = stmt("cmp", "cmp", activity("cmp"), result={"duration": "PT1.1234S"})
    assert lrs.request("PUT", "/statements", params={"statementId": sid}, json=body).status_code == 204
    again = {**body, "result": {"duration": "PT1.1299S"}}
    assert lrs.request("PUT", "/statements", params={"statementId": sid}, json=again).status_code == 204
    different = {**body, "result": {"duration": "PT1.13S"}}
    assert lrs.request("PUT", "/statements", params={"statementId": sid}, json=different).status_code == 409
