"""GET /api/actors/completions: completion records folded from statements as they are stored, with
statements in the shapes real content sends: a SCORM-to-xAPI wrapper (attempted, answered under a
parent, passed with a score), cmi5 content (initialized, completed, passed, terminated, with the
moveon category) and H5P (answered with result.completion/success, sub-content under its parent).
Filters, paging and ``expand=hierarchy``; voiding, concurrency, tenants (I-01, I-09), scopes.
"""

from __future__ import annotations

import json
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.flow import api, tokens
from tests.support.server import Server
from tests.xapi.lrs import xapi

VERBS = "http://adlnet.gov/expapi/verbs/"
CMI5_CATEGORY = {"id": "https://w3id.org/xapi/cmi5/context/categories/cmi5"}
MOVEON = {"id": "https://w3id.org/xapi/cmi5/context/categories/moveon"}


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return str(tokens(server, "c1")["access_token"])


def learner() -> dict[str, Any]:
    return {"objectType": "Agent", "mbox": f"mailto:learner-{secrets.token_hex(4)}@example.com", "name": "Learner"}


def statement(
    actor: dict[str, Any],
    verb: str,
    activity: str,
    at: str,
    *,
    result: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "actor": actor,
        "verb": {"id": verb if verb.startswith("http") else VERBS + verb, "display": {"en-US": verb}},
        "object": {"objectType": "Activity", "id": activity},
        "timestamp": at,
    }
    if result is not None:
        body["result"] = result
    if context is not None:
        body["context"] = context
    return body


def post(server: Server, statements: list[dict[str, Any]], key: str = "KA") -> None:
    response = xapi(server, "POST", "/statements", server.apikeys[key], json=statements)
    assert response.status_code == 200, response.text


def completions(server: Server, token: str, actor: dict[str, Any], tenant: str = "a", **params: str) -> httpx.Response:
    ifi = {"mbox": actor["mbox"]}
    return api(server, token, tenant, "GET", "/api/actors/completions", params={"agent": json.dumps(ifi), **params})


def records(server: Server, token: str, actor: dict[str, Any], **params: str) -> list[dict[str, Any]]:
    response = completions(server, token, actor, **params)
    assert response.status_code == 200, response.text
    return list(response.json())


def by_activity(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["activity"]["id"]: r for r in found}


def scorm_wrapper_session(actor: dict[str, Any], course: str, registration: str) -> list[dict[str, Any]]:
    """What a SCORM-to-xAPI wrapper sends for one attempt: attempted, two answered interactions
    under the course, then passed with a score."""
    context = {"registration": registration}
    under_course = {"registration": registration, "contextActivities": {"parent": [{"id": course}]}}
    return [
        statement(actor, "attempted", course, "2026-11-02T09:00:00.000Z", context=context),
        statement(
            actor,
            "answered",
            course + "/q1",
            "2026-11-02T09:05:00.000Z",
            result={"success": True, "response": "b"},
            context=under_course,
        ),
        statement(
            actor,
            "answered",
            course + "/q2",
            "2026-11-02T09:06:00.000Z",
            result={"success": False, "response": "a"},
            context=under_course,
        ),
        statement(
            actor,
            "passed",
            course,
            "2026-11-02T09:10:00.000Z",
            result={"score": {"scaled": 0.85, "raw": 85, "min": 0, "max": 100}, "success": True, "completion": True},
            context=context,
        ),
    ]


def test_a_scorm_wrapper_attempt_folds_into_one_passed_record(server: Server, token: str) -> None:
    actor, course, registration = learner(), f"https://lms.example.com/scorm/{secrets.token_hex(4)}", str(uuid.uuid4())
    post(server, scorm_wrapper_session(actor, course, registration))
    found = by_activity(records(server, token, actor))
    record = found[course]
    assert record["status"] == "passed" and record["completed"] is True and record["success"] is True
    assert record["score"] == {"scaled": 0.85}
    assert record["registration"] == registration
    assert record["firstAccessed"] == "2026-11-02T09:00:00.000Z"
    assert record["lastAccessed"] == "2026-11-02T09:10:00.000Z"
    assert record["completedAt"] == "2026-11-02T09:10:00.000Z"
    assert record["statements"] == 2
    assert record["actor"]["mbox"] == actor["mbox"]
    assert found[course + "/q1"]["status"] == "passed" and found[course + "/q2"]["status"] == "failed"


def test_cmi5_content_statements(server: Server, token: str) -> None:
    """initialized, completed (result.completion), passed (score), terminated: completed and passed."""
    actor, au, registration = learner(), f"https://lms.example.com/au/{secrets.token_hex(4)}", str(uuid.uuid4())
    session = {"https://w3id.org/xapi/cmi5/context/extensions/sessionid": str(uuid.uuid4())}
    plain = {"registration": registration, "contextActivities": {"category": [CMI5_CATEGORY]}, "extensions": session}
    moveon = {**plain, "contextActivities": {"category": [CMI5_CATEGORY, MOVEON]}}
    post(
        server,
        [
            statement(actor, "initialized", au, "2026-11-03T10:00:00.000Z", context=plain),
            statement(
                actor,
                "completed",
                au,
                "2026-11-03T10:20:00.000Z",
                result={"completion": True, "duration": "PT20M"},
                context=moveon,
            ),
            statement(
                actor,
                "passed",
                au,
                "2026-11-03T10:21:00.000Z",
                result={"success": True, "score": {"scaled": 0.9}, "duration": "PT21M"},
                context=moveon,
            ),
            statement(actor, "terminated", au, "2026-11-03T10:22:00.000Z", result={"duration": "PT22M"}, context=plain),
        ],
    )
    [record] = records(server, token, actor, activityId=au)
    assert (record["status"], record["completed"], record["score"]) == ("passed", True, {"scaled": 0.9})
    assert record["completedAt"] == "2026-11-03T10:20:00.000Z" and record["statements"] == 4


def test_h5p_answers_and_sub_content(server: Server, token: str) -> None:
    """H5P's xAPI: answered with result.completion and success, sub-content with its parent."""
    actor = learner()
    content = f"https://site.example.com/wp-admin/admin-ajax.php?action=h5p_embed&id={secrets.randbelow(10**6)}"
    sub = content + "?subContentId=7f1c"
    post(
        server,
        [
            statement(
                actor,
                "answered",
                sub,
                "2026-11-04T08:01:00.000Z",
                result={"score": {"min": 0, "max": 1, "raw": 0, "scaled": 0}, "completion": True, "success": False},
                context={"contextActivities": {"parent": [{"id": content}]}},
            ),
            statement(
                actor,
                "answered",
                content,
                "2026-11-04T08:02:00.000Z",
                result={"score": {"min": 0, "max": 4, "raw": 3, "scaled": 0.75}, "completion": True},
            ),
        ],
    )
    found = by_activity(records(server, token, actor))
    assert found[sub]["status"] == "failed" and found[sub]["completed"] is True
    assert found[content]["status"] == "completed" and found[content]["registration"] is None
    [tree] = records(server, token, actor, activityId=content, expand="hierarchy")
    assert [c["activity"]["id"] for c in tree["children"]] == [sub]


def test_a_retry_that_passes_outranks_the_fail_and_a_fail_alone_is_failed(server: Server, token: str) -> None:
    actor, quiz = learner(), f"https://lms.example.com/quiz/{secrets.token_hex(4)}"
    post(server, [statement(actor, "failed", quiz, "2026-11-05T10:00:00.000Z", result={"score": {"scaled": 0.4}})])
    assert records(server, token, actor)[0]["status"] == "failed"
    post(server, [statement(actor, "passed", quiz, "2026-11-05T11:00:00.000Z", result={"score": {"scaled": 0.8}})])
    [record] = records(server, token, actor)
    assert (record["status"], record["score"]) == ("passed", {"scaled": 0.8})
    # Statements that arrive late, from before, move the first access back and nothing else.
    post(server, [statement(actor, "attempted", quiz, "2026-11-05T09:00:00.000Z")])
    [record] = records(server, token, actor)
    assert record["firstAccessed"] == "2026-11-05T09:00:00.000Z" and record["status"] == "passed"


def test_status_activity_and_registration_filters_and_paging(server: Server, token: str) -> None:
    actor = learner()
    base = f"https://lms.example.com/m/{secrets.token_hex(4)}/"
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    post(
        server,
        [
            statement(actor, "passed", base + "a", "2026-11-06T10:00:00.000Z"),
            statement(actor, "failed", base + "b", "2026-11-06T11:00:00.000Z"),
            statement(actor, "completed", base + "c", "2026-11-06T12:00:00.000Z"),
            statement(actor, "experienced", base + "d", "2026-11-06T13:00:00.000Z"),
            statement(actor, "attempted", base + "e", "2026-11-06T14:00:00.000Z", context={"registration": first}),
            statement(actor, "completed", base + "e", "2026-11-06T15:00:00.000Z", context={"registration": second}),
        ],
    )
    everything = records(server, token, actor)
    assert [r["activity"]["id"][-1] for r in everything] == ["e", "e", "d", "c", "b", "a"]  # latest first
    status = {r["activity"]["id"][-1]: r["status"] for r in everything if r["registration"] is None}
    assert status == {"a": "passed", "b": "failed", "c": "completed", "d": "in-progress"}
    done = records(server, token, actor, status="passed,completed")
    assert sorted(r["activity"]["id"][-1] for r in done) == ["a", "c", "e"]
    assert [r["registration"] for r in records(server, token, actor, activityId=base + "e")] == [second, first]
    assert [r["status"] for r in records(server, token, actor, registration=first)] == ["in-progress"]
    assert records(server, token, actor, limit="2", skip="1") == everything[1:3]


def test_expand_hierarchy_nests_children_with_not_attempted_ones(server: Server, token: str) -> None:
    """A course with two lessons, a quiz under lesson 1: the learner finished lesson 1's quiz only."""
    actor, registration = learner(), str(uuid.uuid4())
    course = f"https://lms.example.com/course/{secrets.token_hex(4)}"
    lesson1, lesson2, quiz = course + "/lesson-1", course + "/lesson-2", course + "/lesson-1/quiz"

    def under(parent: str) -> dict[str, Any]:
        return {"registration": registration, "contextActivities": {"parent": [{"id": parent}]}}

    other = learner()  # another learner's statements describe lesson 2 as part of the course
    post(
        server,
        [
            statement(actor, "attempted", course, "2026-11-07T10:00:00.000Z", context={"registration": registration}),
            statement(actor, "attempted", lesson1, "2026-11-07T10:01:00.000Z", context=under(course)),
            statement(actor, "passed", quiz, "2026-11-07T10:09:00.000Z", context=under(lesson1)),
            statement(other, "attempted", lesson2, "2026-11-07T10:02:00.000Z", context=under(course)),
        ],
    )
    [root] = records(server, token, actor, activityId=course, expand="hierarchy")
    assert root["activity"]["id"] == course and root["status"] == "in-progress"
    children = {c["activity"]["id"]: c for c in root["children"]}
    assert set(children) == {lesson1, lesson2}
    assert children[lesson2]["status"] == "not-attempted" and children[lesson2]["children"] == []
    assert children[lesson1]["status"] == "in-progress"
    [quiz_record] = children[lesson1]["children"]
    assert quiz_record["activity"]["id"] == quiz and quiz_record["status"] == "passed"
    assert quiz_record["children"] == []
    without = records(server, token, actor, activityId=course)
    assert "children" not in without[0]


def test_a_cycle_in_the_tree_ends_the_walk(server: Server, token: str) -> None:
    actor = learner()
    a, b = (
        f"https://lms.example.com/cyc/{secrets.token_hex(4)}/a",
        f"https://lms.example.com/cyc/{secrets.token_hex(4)}/b",
    )
    post(
        server,
        [
            statement(
                actor,
                "attempted",
                a,
                "2026-11-08T10:00:00.000Z",
                context={"contextActivities": {"parent": [{"id": b}]}},
            ),
            statement(
                actor,
                "attempted",
                b,
                "2026-11-08T10:01:00.000Z",
                context={"contextActivities": {"parent": [{"id": a}]}},
            ),
        ],
    )
    [root] = records(server, token, actor, activityId=a, expand="hierarchy")
    assert [c["activity"]["id"] for c in root["children"]] == [b]
    assert root["children"][0]["children"] == []


def test_voiding_the_pass_folds_the_record_again(server: Server, token: str) -> None:
    actor, quiz = learner(), f"https://lms.example.com/void/{secrets.token_hex(4)}"
    failed = statement(actor, "failed", quiz, "2026-11-09T10:00:00.000Z", result={"score": {"scaled": 0.3}})
    passed = statement(actor, "passed", quiz, "2026-11-09T11:00:00.000Z", result={"score": {"scaled": 0.9}})
    post(server, [failed, passed])
    assert records(server, token, actor)[0]["status"] == "passed"
    voiding = {
        "actor": {"mbox": "mailto:admin@example.com"},
        "verb": {"id": VERBS + "voided"},
        "object": {"objectType": "StatementRef", "id": passed["id"]},
    }
    post(server, [voiding])
    [record] = records(server, token, actor)
    assert (record["status"], record["score"], record["statements"]) == ("failed", {"scaled": 0.3}, 1)


def test_concurrent_batches_merge_in_the_database(server: Server, token: str) -> None:
    """20 requests at once, each with one statement about the same record, across the server's
    workers: the record counts all 20, and the merge keeps the best score and both bounds."""
    actor, quiz = learner(), f"https://lms.example.com/race/{secrets.token_hex(4)}"
    batches = [
        [statement(actor, "answered", quiz, f"2026-11-10T10:{i:02d}:00.000Z", result={"score": {"scaled": i / 20}})]
        for i in range(20)
    ]
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda batch: post(server, batch), batches))
    [record] = records(server, token, actor)
    assert record["statements"] == 20 and record["score"] == {"scaled": 19 / 20}
    assert record["firstAccessed"] == "2026-11-10T10:00:00.000Z"
    assert record["lastAccessed"] == "2026-11-10T10:19:00.000Z"


def test_I09_records_stay_in_their_tenant(server: Server, token: str) -> None:
    """I-09: the same learner's statements in tenant b never show in tenant a's records; I-01: a
    tenant-a token naming tenant b is refused."""
    actor, course = learner(), f"https://lms.example.com/b-only/{secrets.token_hex(4)}"
    post(server, [statement(actor, "passed", course, "2026-11-11T10:00:00.000Z")], key="KB")
    assert records(server, token, actor) == []
    token_b = str(tokens(server, "cb", admin="adminB")["access_token"])
    response = completions(server, token_b, actor, tenant="b")
    assert [r["activity"]["id"] for r in response.json()] == [course]
    assert completions(server, token, actor, tenant="b").status_code == 403


def test_scope_and_bad_parameters(server: Server, token: str) -> None:
    actor = learner()
    importer = tokens(server, "cs")["access_token"]
    assert completions(server, importer, actor).status_code == 403
    reader = tokens(server, "cs", scope="actors/read")["access_token"]
    assert completions(server, reader, actor).status_code == 200
    for params in (
        {},
        {"agent": "not json"},
        {"agent": json.dumps({"name": "no identifier"})},
        {"agent": json.dumps({"mbox": actor["mbox"]}), "status": "done"},
        {"agent": json.dumps({"mbox": actor["mbox"]}), "expand": "hierarchy"},
        {"agent": json.dumps({"mbox": actor["mbox"]}), "activityId": "x", "expand": "tree"},
        {"agent": json.dumps({"mbox": actor["mbox"]}), "registration": "nope"},
        {"agent": json.dumps({"mbox": actor["mbox"]}), "limit": "0"},
        {"agent": json.dumps({"mbox": actor["mbox"]}), "colour": "blue"},
    ):
        response = api(server, token, "a", "GET", "/api/actors/completions", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"] == "invalid_parameter", response.text
