"""Erasing one learner (issue 15, part 1): ``POST /api/actors/erase`` and ``openxp learners erase``.

Statements name the learner in every place xAPI allows: as the actor, as the object Agent, as a
member of the actor Group, as context instructor, as a member of the context team, and as the
actor or object of a SubStatement; with voided and voiding statements on both sides, a
StatementRef to an erased statement, and attachments used only by them (removed) or shared with
another learner (kept). SECURITY.md I-01/I-09 (tenant confinement), H-07 (the scope), P-01/P-02
(the audit event, without the erased person's identifiers).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.server import Server, backend, destroy_server, make_server
from tests.support.statements import post_with_parts
from tests.xapi.lrs import xapi

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
ERASED_HOME = "urn:openxp:erased"


@pytest.fixture(scope="module")
def srv() -> Iterator[Server]:
    server = make_server()
    try:
        yield server
    finally:
        destroy_server(server)


def mbox(person: str) -> dict[str, Any]:
    return {"objectType": "Agent", "mbox": f"mailto:{person}", "name": person.split("@")[0]}


def verb(name: str = "experienced") -> dict[str, Any]:
    return {"id": f"http://adlnet.gov/expapi/verbs/{name}", "display": {"en-US": name}}


def activity() -> dict[str, Any]:
    return {"objectType": "Activity", "id": f"http://example.com/activities/{uuid.uuid4()}"}


def stmt(actor: dict[str, Any], obj: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "actor": actor, "verb": verb(), "object": obj or activity(), **extra}


def attachment_of(content: bytes) -> dict[str, Any]:
    return {
        "usageType": "http://example.com/attachment-usage/test",
        "display": {"en-US": "attachment"},
        "contentType": "text/plain",
        "length": len(content),
        "sha2": hashlib.sha256(content).hexdigest(),
    }


def post(server: Server, tenant: str, statements: list[dict[str, Any]], parts: list[bytes] | None = None) -> None:
    key = server.apikeys["KA" if tenant == "a" else "KB"]
    if parts:
        post_with_parts(server, key, statements, parts)
        return
    response = xapi(server, "POST", "/statements", key, json=statements)
    assert response.status_code == 200, response.text


def api(server: Server, path: str, body: Any, key: dict[str, Any] | None = None, tenant: str = "a") -> httpx.Response:
    key = key or server.apikeys["KA" if tenant == "a" else "KB"]
    return httpx.post(
        f"{server.base_url}{path}",
        json=body,
        auth=(key["key"], key["secret"]),
        headers={"X-CXP-Tenant": tenant},
        timeout=60,
    )


def erase(server: Server, person: str, *, dry_run: bool = False, tenant: str = "a") -> httpx.Response:
    return api(server, "/api/actors/erase", {"agent": {"mbox": f"mailto:{person}"}, "dryRun": dry_run}, tenant=tenant)


def get_statement(server: Server, sid: str, *, voided: bool = False, tenant: str = "a") -> httpx.Response:
    key = server.apikeys["KA" if tenant == "a" else "KB"]
    return xapi(server, "GET", "/statements", key, params={"voidedStatementId" if voided else "statementId": sid})


def query(server: Server, **params: Any) -> list[dict[str, Any]]:
    response = xapi(server, "GET", "/statements", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["statements"]
    return found


@dataclass
class World:
    ann: str
    bob: str
    removed: dict[str, str] = field(default_factory=dict)
    mentions: dict[str, str] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)
    only_ann: bytes = b""
    shared: bytes = b""


def seed(server: Server) -> World:
    """Learner ann (record, attributes, documents, statements everywhere) and bob, in tenant a;
    a learner of the same mbox, with a statement, in tenant b."""
    tag = secrets.token_hex(4)
    w = World(ann=f"ann-{tag}@example.com", bob=f"bob-{tag}@example.com")
    w.only_ann, w.shared = f"only ann {tag}".encode(), f"shared {tag}".encode()
    ann, bob = mbox(w.ann), mbox(w.bob)
    for tenant in ("a", "b"):
        learner = {**ann, "extensions": {"http://clearlrs.com/api/ext/agent/attributes": {"dept": "x"}}}
        key = server.apikeys["KA" if tenant == "a" else "KB"]
        saved = httpx.put(
            f"{server.base_url}/api/actors/agents",
            json=learner,
            auth=(key["key"], key["secret"]),
            headers={"X-CXP-Tenant": tenant},
            timeout=30,
        )
        assert saved.status_code == 200, saved.text

    actor = stmt(ann, attachments=[attachment_of(w.only_ann), attachment_of(w.shared)])
    post(server, "a", [actor], [w.only_ann, w.shared])
    bob_shared = stmt(bob, attachments=[attachment_of(w.shared)])
    post(server, "a", [bob_shared], [w.shared])
    ann_voided = stmt(ann)
    bob_voided = stmt(bob)
    post(server, "a", [ann_voided, bob_voided])
    voided_by_bob = stmt(bob, {"objectType": "StatementRef", "id": ann_voided["id"]}, verb=verb("voided"))
    voided_by_ann = stmt(ann, {"objectType": "StatementRef", "id": bob_voided["id"]}, verb=verb("voided"))
    ref = stmt(bob, {"objectType": "StatementRef", "id": actor["id"]})
    mentions = {
        "object": stmt(bob, ann),
        "group_member": stmt({"objectType": "Group", "member": [ann, bob]}),
        "instructor": stmt(bob, context={"instructor": ann}),
        "team_member": stmt(bob, context={"team": {"objectType": "Group", "member": [ann]}}),
        "sub_actor": stmt(bob, {"objectType": "SubStatement", "actor": ann, "verb": verb(), "object": activity()}),
        "sub_object": stmt(bob, {"objectType": "SubStatement", "actor": bob, "verb": verb(), "object": ann}),
    }
    post(server, "a", [voided_by_bob, voided_by_ann, ref, *mentions.values()])
    post(server, "b", [stmt(ann)])
    w.removed = {"actor": actor["id"], "ann_voided": ann_voided["id"], "voided_by_ann": voided_by_ann["id"]}
    w.mentions = {k: v["id"] for k, v in mentions.items()}
    w.kept = {
        "bob_shared": bob_shared["id"],
        "bob_voided": bob_voided["id"],
        "voided_by_bob": voided_by_bob["id"],
        "ref": ref["id"],
    }
    act = "http://example.com/activities/state-" + tag
    for person in (w.ann, w.bob):
        agent = json.dumps({"mbox": f"mailto:{person}"})
        state = xapi(
            server,
            "POST",
            "/activities/state",
            params={"activityId": act, "agent": agent, "stateId": "s"},
            json={"a": 1},
        )
        assert state.status_code == 204, state.text
        profile = xapi(server, "POST", "/agents/profile", params={"agent": agent, "profileId": "p"}, json={"b": 2})
        assert profile.status_code == 204, profile.text
    return w


def count(server: Server, sql: str, **params: Any) -> int:
    return int(server.sql(sql, params)[0][0])


def tenant_id(server: Server, name: str) -> int:
    return count(server, "SELECT id FROM tenants WHERE name = :n", n=name)


def snapshot(server: Server, w: World) -> dict[str, int]:
    """What tenant a holds that names ann, and its totals."""
    a = tenant_id(server, "a")
    like = f"%{w.ann}%"
    return {
        "statements": count(server, "SELECT count(*) FROM xapi_statements WHERE tenant_id = :t", t=a),
        "naming_ann": count(
            server, "SELECT count(*) FROM xapi_statements WHERE tenant_id = :t AND payload LIKE :l", t=a, l=like
        ),
        "agent_rows": count(
            server, "SELECT count(*) FROM xapi_statement_agents WHERE tenant_id = :t AND agent_key LIKE :l", t=a, l=like
        ),
        "documents": count(server, "SELECT count(*) FROM xapi_documents WHERE tenant_id = :t", t=a),
        "attachments": count(server, "SELECT count(*) FROM xapi_attachments WHERE tenant_id = :t", t=a),
        "learner": count(
            server, "SELECT count(*) FROM learners WHERE tenant_id = :t AND identifier = :i", t=a, i=w.ann
        ),
    }


EXPECTED = {
    "learner": 1,
    "attributes": 2,  # Email and dept
    "statements": 3,
    "stateDocuments": 1,
    "agentProfiles": 1,
    "attachments": 1,
    "pseudonymisedStatements": 6,
    "completionRecords": 1,  # the activity of ann's one unvoided statement (the voided one fed it too)
}


def test_dry_run_reports_exactly_what_the_erasure_removes(srv: Server) -> None:
    w = seed(srv)
    before = snapshot(srv, w)
    dry = erase(srv, w.ann, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert dry.json() == {"dryRun": True, "removed": EXPECTED}
    assert snapshot(srv, w) == before, "a dry run changed something"
    real = erase(srv, w.ann)
    assert real.status_code == 200, real.text
    assert real.json() == {"dryRun": False, "removed": dry.json()["removed"]}
    after = snapshot(srv, w)
    assert after["statements"] == before["statements"] - EXPECTED["statements"]
    assert after["naming_ann"] == after["agent_rows"] == after["learner"] == 0
    assert after["documents"] == before["documents"] - 2
    assert after["attachments"] == before["attachments"] - 1
    again = erase(srv, w.ann)
    assert again.json()["removed"] == dict.fromkeys(EXPECTED, 0)


def test_erasure_removes_pseudonymises_and_leaves_reads_consistent(srv: Server) -> None:
    w = seed(srv)
    # A cursor taken before the erasure, over every statement of the tenant, two at a time.
    first = xapi(srv, "GET", "/statements", params={"limit": 2, "ascending": "true"})
    more = first.json()["more"]
    assert more
    assert erase(srv, w.ann).status_code == 200

    for sid in w.removed.values():
        assert get_statement(srv, sid).status_code == 404
        assert get_statement(srv, sid, voided=True).status_code == 404
    # Voided by ann's (erased) voiding statement: stays voided (xAPI: voiding is not undone).
    assert get_statement(srv, w.kept["bob_voided"], voided=True).status_code == 200
    # bob's voiding statement and bob's StatementRef now point at nothing, and still answer.
    for name in ("voided_by_bob", "ref", "bob_shared"):
        assert get_statement(srv, w.kept[name]).status_code == 200, name
    assert query(srv, agent=json.dumps({"mbox": f"mailto:{w.ann}"}), related_agents="true") == []
    # The StatementRef branch of a filtered query meets the dangling references without failing.
    bob_sees = {s["id"] for s in query(srv, agent=json.dumps({"mbox": f"mailto:{w.bob}"}), limit=500)}
    assert {w.kept["voided_by_bob"], w.kept["ref"]} <= bob_sees

    # The mentions keep their statement, with one stable pseudonym instead of ann.
    pseudonyms = set()
    for place, sid in w.mentions.items():
        got = get_statement(srv, sid)
        assert got.status_code == 200, place
        text = got.text
        assert w.ann not in text and w.ann.split("@")[0] not in text, place
        assert ERASED_HOME in text, place
        pseudonyms |= {
            a["account"]["name"] for a in _agents(got.json()) if a.get("account", {}).get("homePage") == ERASED_HOME
        }
    assert len(pseudonyms) == 1
    pseudo = {"account": {"homePage": ERASED_HOME, "name": pseudonyms.pop()}}
    related = {s["id"] for s in query(srv, agent=json.dumps(pseudo), related_agents="true", limit=500)}
    assert related == set(w.mentions.values())
    assert {s["id"] for s in query(srv, agent=json.dumps(pseudo))} == {w.mentions["object"]}

    # The attachment only ann's statement used is gone; the one bob's uses is still served.
    with_bytes = xapi(srv, "GET", "/statements", params={"statementId": w.kept["bob_shared"], "attachments": "true"})
    assert with_bytes.status_code == 200 and w.shared in with_bytes.content

    # The old cursor walks on, and a new walk with attachments pages through everything.
    seen = 0
    while more:
        page = xapi(srv, "GET", more.removeprefix("/xapi"))
        assert page.status_code == 200, page.text
        seen += len(page.json()["statements"])
        more = page.json()["more"]
    assert seen > 0
    walk = xapi(srv, "GET", "/statements", params={"limit": 3, "attachments": "true"})
    assert walk.status_code == 200

    # Mentioned again after the erasure, then erased again: the same pseudonym.
    later = stmt(mbox(w.bob), mbox(w.ann))
    post(srv, "a", [later])
    assert erase(srv, w.ann).json()["removed"]["pseudonymisedStatements"] == 1
    assert pseudo["account"]["name"] in get_statement(srv, later["id"]).text


def _agents(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if "account" in value or "mbox" in value:
            yield value
        for v in value.values():
            yield from _agents(v)
    elif isinstance(value, list):
        for v in value:
            yield from _agents(v)


def test_I09_erasure_is_confined_to_the_tenant(srv: Server) -> None:
    w = seed(srv)
    b = tenant_id(srv, "b")
    before = count(srv, "SELECT count(*) FROM xapi_statements WHERE tenant_id = :t", t=b)
    assert erase(srv, w.ann).status_code == 200
    assert count(srv, "SELECT count(*) FROM xapi_statements WHERE tenant_id = :t", t=b) == before
    assert count(srv, "SELECT count(*) FROM learners WHERE tenant_id = :t AND identifier = :i", t=b, i=w.ann) == 1
    # Tenant b's key erases in b only; naming tenant a with it is refused.
    assert erase(srv, w.ann, tenant="b").json()["removed"]["statements"] == 1
    assert (
        api(srv, "/api/actors/erase", {"agent": {"mbox": f"mailto:{w.ann}"}}, srv.apikeys["KB"], "a").status_code == 403
    )


def test_P01_the_audit_event_records_who_and_how_much_never_whom(srv: Server) -> None:
    w = seed(srv)
    assert erase(srv, w.ann).status_code == 200
    key = srv.apikeys["KA"]
    listed = httpx.get(
        f"{srv.base_url}/api/audit",
        params={"type": "learner_erased"},
        auth=(key["key"], key["secret"]),
        headers={"X-CXP-Tenant": "a"},
        timeout=30,
    )
    assert listed.status_code == 200, listed.text
    events = listed.json()["events"]
    assert events, "no learner_erased event"
    event = events[0]
    assert event["actor"] == key["key"]
    assert event["details"]["removed"] == EXPECTED
    text = json.dumps(events)
    sha1 = hashlib.sha1(f"mailto:{w.ann}".encode()).hexdigest()
    for identifier in (w.ann, w.ann.split("@")[0], sha1):
        assert identifier not in text
    logged = [line for line in srv.log().splitlines() if "learner_erased" in line]
    assert logged and not any(w.ann in line for line in logged)


def test_H07_erasure_needs_its_scope(srv: Server) -> None:
    w = seed(srv)
    for scope in ("actors/write", "all/read"):
        narrow = srv.cli_json("apikey", "create", "--tenant", "a", "--name", f"n-{scope}", "--scope", scope)
        refused = api(srv, "/api/actors/erase", {"agent": {"mbox": f"mailto:{w.ann}"}}, narrow)
        assert refused.status_code == 403, refused.text
        body = refused.json()
        assert body["error"] == "insufficient_scope" and body["code"] == 403 and body["name"] == "Forbidden"
        assert isinstance(body["body"], list) and body["message"]
    assert snapshot(srv, w)["learner"] == 1
    # A service account's Bearer token with exactly actors/erase may.
    svc = srv.cli_json(
        "client", "create", "--tenant", "a", "--name", "eraser", "--grant-type", "client_credentials",
        "--scope", "actors/erase",
    )  # fmt: skip
    token = httpx.post(
        f"{srv.base_url}/auth/oauth/token",
        data={"grant_type": "client_credentials", "scope": "actors/erase"},
        auth=(svc["client_id"], svc["client_secret"]),
        timeout=30,
    ).json()["access_token"]
    allowed = httpx.post(
        f"{srv.base_url}/api/actors/erase",
        json={"agent": {"mbox": f"mailto:{w.ann}"}, "dryRun": True},
        headers={"authorization": f"Bearer {token}", "X-CXP-Tenant": "a"},
        timeout=30,
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["removed"] == EXPECTED


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"agent": "ann@example.com"},
        {"agent": {"mbox": "ann@example.com"}},
        {"agent": {"mbox": "mailto:a@example.com", "openid": "https://x.example"}},
        {"agent": {"account": {"homePage": "https://x.example"}}},
        {"agent": {"mbox_sha1sum": "xyz"}},
        {"agent": {"objectType": "Group", "mbox": "mailto:a@example.com"}},
        {"agent": {"mbox": "mailto:a@example.com"}, "dryRun": "yes"},
        {"agent": {"mbox": "mailto:a@example.com"}, "extra": 1},
    ],
)
def test_bad_requests_are_400_and_change_nothing(srv: Server, body: Any) -> None:
    refused = api(srv, "/api/actors/erase", body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "validation_error"


def _install_failure(server: Server) -> None:
    """A trigger that makes deleting any document fail: the erasure fails after it has deleted
    the learner and the statements and rewritten the mentions, inside its transaction."""
    if backend() == "postgresql":
        server.sql(
            "CREATE FUNCTION erasure_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "'BEGIN RAISE EXCEPTION ''refused by the test''; END'"
        )
        server.sql(
            "CREATE TRIGGER erasure_test_refuse BEFORE DELETE ON xapi_documents "
            "FOR EACH ROW EXECUTE FUNCTION erasure_test_refuse()"
        )
    else:
        server.sql(
            "CREATE TRIGGER erasure_test_refuse BEFORE DELETE ON xapi_documents "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )


def _remove_failure(server: Server) -> None:
    server.sql("DROP TRIGGER erasure_test_refuse" + (" ON xapi_documents" if backend() == "postgresql" else ""))
    if backend() == "postgresql":
        server.sql("DROP FUNCTION erasure_test_refuse()")


def test_a_failure_midway_leaves_everything_as_it_was(srv: Server) -> None:
    w = seed(srv)
    before = snapshot(srv, w)
    payloads = srv.sql("SELECT seq, payload FROM xapi_statements ORDER BY seq")
    _install_failure(srv)
    try:
        failed = erase(srv, w.ann)
        assert failed.status_code >= 500, failed.text
        assert "Traceback" not in failed.text
    finally:
        _remove_failure(srv)
    assert snapshot(srv, w) == before
    assert srv.sql("SELECT seq, payload FROM xapi_statements ORDER BY seq") == payloads
    done = erase(srv, w.ann)
    assert done.status_code == 200 and done.json()["removed"] == EXPECTED


def test_cli_erases_like_the_api(srv: Server) -> None:
    w = seed(srv)
    agent = json.dumps({"mbox": f"mailto:{w.ann}"})
    dry = srv.cli_json("learners", "erase", "--tenant", "a", "--agent", agent, "--dry-run")
    assert dry == {"dryRun": True, "removed": EXPECTED}
    assert snapshot(srv, w)["learner"] == 1
    real = srv.cli_json("learners", "erase", "--tenant", "a", "--agent", agent)
    assert real == {"dryRun": False, "removed": EXPECTED}
    assert snapshot(srv, w)["naming_ann"] == 0
    bad = srv.cli("learners", "erase", "--tenant", "a", "--agent", '{"mbox": "nope"}', "--json", check=False)
    assert bad.returncode == 1 and "mbox" in bad.stderr


def test_an_mbox_erasure_reaches_the_same_persons_mbox_sha1sum(srv: Server) -> None:
    """An mbox and its mbox_sha1sum (xAPI Data 2.4.2.3) name one person: erasing by the mbox removes
    the statements sent with the hashed form too, and both forms' mentions get one pseudonym, the
    same as erasing by the sha1 gives."""
    person = f"hashed-{secrets.token_hex(4)}@example.com"
    sha1 = hashlib.sha1(f"mailto:{person}".encode()).hexdigest()
    hashed = {"objectType": "Agent", "mbox_sha1sum": sha1}
    bob = mbox(f"bob-{secrets.token_hex(4)}@example.com")
    by_hash, by_mbox = stmt(hashed), stmt(mbox(person))
    mention_hash, mention_mbox = stmt(bob, hashed), stmt(bob, mbox(person))
    post(srv, "a", [by_hash, by_mbox, mention_hash, mention_mbox])

    dry = erase(srv, person, dry_run=True).json()["removed"]
    assert get_statement(srv, by_hash["id"]).status_code == 200  # the dry run changed nothing
    done = erase(srv, person).json()["removed"]
    assert dry == done and done["statements"] == 2 and done["pseudonymisedStatements"] == 2, done
    for gone in (by_hash, by_mbox):
        assert get_statement(srv, gone["id"]).status_code == 404
    names = set()
    for kept in (mention_hash, mention_mbox):
        got = get_statement(srv, kept["id"])
        assert got.status_code == 200 and sha1 not in got.text and person not in got.text, got.text
        names.add(got.json()["object"]["account"]["name"])
    assert len(names) == 1

    # Erasing by the sha1 alone gives the same pseudonym to a later mention.
    later = stmt(bob, hashed)
    post(srv, "a", [later])
    response = api(srv, "/api/actors/erase", {"agent": {"mbox_sha1sum": sha1}, "dryRun": False})
    assert response.status_code == 200 and response.json()["removed"]["pseudonymisedStatements"] == 1
    assert get_statement(srv, later["id"]).json()["object"]["account"]["name"] in names
