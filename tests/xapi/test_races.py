"""Races on the LRS write paths, against the real 2-worker server, on SQLite and PostgreSQL
(SECURITY.md L-12: never a 5xx; the house style of tests/test_races.py for C-04/E-04).

Each round releases PARALLEL requests at once (threads behind a ``threading.Barrier``, each
with its own already-connected ``httpx.Client``). What is checked is the outcome a serial
order would give: the same statement stored twice is accepted every time, a different one
under a taken id is 409; of several writers holding one ETag exactly one wins and the others
get 412; concurrent JSON merges keep every key; a voided target ends voided whichever of it
and its voiding statement was stored first.

Set OPENXP_RACE_ITERATIONS to run more rounds than the default.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import Server
from tests.xapi.lrs import VERSION, basic, new_id, statement

ROUNDS = int(os.environ.get("OPENXP_RACE_ITERATIONS", "10"))
PARALLEL = 8
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
AGENT = json.dumps({"objectType": "Agent", "mbox": "mailto:racer@example.com"})


@pytest.fixture(scope="module")
def racers(server: Server) -> Iterator[list[httpx.Client]]:
    """One HTTP client (one connection) per concurrent request, authenticated with key KA."""
    clients = [
        httpx.Client(base_url=f"{server.base_url}/xapi", auth=basic(server.apikeys["KA"]), headers=VERSION, timeout=60)
        for _ in range(PARALLEL)
    ]
    yield clients
    for client in clients:
        client.close()


Call = Callable[[httpx.Client], httpx.Response]


def race(racers: list[httpx.Client], calls: list[Call]) -> list[httpx.Response]:
    """Run calls[i] on racers[i], all released at the same moment."""
    for client in racers[: len(calls)]:
        # Connect first, so that the barrier releases requests, not TCP handshakes.
        assert client.get("/about").status_code == 200
    barrier = threading.Barrier(len(calls))
    results: list[httpx.Response | BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = calls[i](racers[i])
        except BaseException as exc:  # reported below, once every thread is done
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    failures = [r for r in results if not isinstance(r, httpx.Response)]
    assert not failures, failures
    responses = [r for r in results if isinstance(r, httpx.Response)]
    server_errors = [(r.status_code, r.text[:200]) for r in responses if r.status_code >= 500]
    assert not server_errors, server_errors
    return responses


def summary(responses: list[httpx.Response]) -> list[tuple[int, str]]:
    return sorted((r.status_code, r.json().get("error", "") if r.content else "") for r in responses)


def put_statement(body: dict[str, Any]) -> Call:
    return lambda c: c.put("/statements", params={"statementId": body["id"]}, json=body)


def post_statements(body: Any) -> Call:
    return lambda c: c.post("/statements", json=body)


def document(method: str, path: str, params: dict[str, str], body: Any = None, **headers: str) -> Call:
    def call(c: httpx.Client) -> httpx.Response:
        return c.request(method, path, params=params, json=body, headers=headers)

    return call


def get_statement(racers: list[httpx.Client], sid: str, *, voided: bool = False) -> httpx.Response:
    return racers[0].get("/statements", params={"voidedStatementId" if voided else "statementId": sid})


# -- statements -------------------------------------------------------------


def test_concurrent_put_of_one_statement_is_204_every_time(racers: list[httpx.Client]) -> None:
    """8 PUTs of the same statement at once, 10 rounds: every answer 204, one statement stored."""
    for _ in range(ROUNDS):
        body = statement(id=new_id())
        responses = race(racers, [put_statement(body)] * PARALLEL)
        assert [r.status_code for r in responses] == [204] * PARALLEL, summary(responses)
        stored = get_statement(racers, body["id"])
        assert stored.status_code == 200
        assert stored.json()["object"] == body["object"]


def test_concurrent_put_of_two_statements_under_one_id(racers: list[httpx.Client]) -> None:
    """Half the writers send A, half B, under one id: one body wins (all its senders 204),
    every sender of the other gets 409 conflict, and the stored statement is the winner."""
    for _ in range(ROUNDS):
        sid = new_id()
        a, b = statement(id=sid), statement(id=sid, verb={"id": "http://example.com/verbs/other"})
        responses = race(racers, [put_statement(a if i % 2 == 0 else b) for i in range(PARALLEL)])
        of_a = {(r.status_code, r.json()["error"] if r.content else "") for r in responses[0::2]}
        of_b = {(r.status_code, r.json()["error"] if r.content else "") for r in responses[1::2]}
        assert {frozenset(of_a), frozenset(of_b)} == {frozenset({(204, "")}), frozenset({(409, "conflict")})}, summary(
            responses
        )
        winner = a if of_a == {(204, "")} else b
        assert get_statement(racers, sid).json()["verb"]["id"] == winner["verb"]["id"]


def test_concurrent_post_of_the_same_batch(racers: list[httpx.Client]) -> None:
    """8 POSTs of one two-statement batch at once: every answer 200 with both ids."""
    for _ in range(ROUNDS):
        batch = [statement(id=new_id()), statement(id=new_id())]
        responses = race(racers, [post_statements(batch)] * PARALLEL)
        assert [r.status_code for r in responses] == [200] * PARALLEL, summary(responses)
        assert all(r.json() == [s["id"] for s in batch] for r in responses)


def test_concurrent_posts_overlapping_with_a_conflict(racers: list[httpx.Client]) -> None:
    """Half POST [S, X], half [S, X'] (X' differs from X under the same id): one batch is stored
    whole, all its senders 200; the other's senders 409; never a 5xx."""
    for _ in range(ROUNDS):
        shared, contested = statement(id=new_id()), new_id()
        first = [shared, statement(id=contested)]
        second = [shared, statement(id=contested, verb={"id": "http://example.com/verbs/other"})]
        responses = race(racers, [post_statements(first if i % 2 == 0 else second) for i in range(PARALLEL)])
        codes_first = {r.status_code for r in responses[0::2]}
        codes_second = {r.status_code for r in responses[1::2]}
        assert {frozenset(codes_first), frozenset(codes_second)} == {frozenset({200}), frozenset({409})}, summary(
            responses
        )
        assert get_statement(racers, shared["id"]).status_code == 200


# -- voiding ----------------------------------------------------------------


def voiding(target: str) -> dict[str, Any]:
    return statement(
        id=new_id(),
        verb={"id": VOIDED, "display": {"en-US": "voided"}},
        object={"objectType": "StatementRef", "id": target},
    )


def assert_voided(racers: list[httpx.Client], target: str) -> None:
    assert get_statement(racers, target).status_code == 404
    assert get_statement(racers, target, voided=True).status_code == 200


def test_two_voiding_statements_for_one_target_at_once(racers: list[httpx.Client]) -> None:
    """Several voiding statements for one stored target, at once: all accepted, the target voided."""
    for _ in range(ROUNDS):
        target = new_id()
        assert racers[0].post("/statements", json=statement(id=target)).status_code == 200
        voiders = [voiding(target) for _ in range(PARALLEL)]
        responses = race(racers, [post_statements(v) for v in voiders])
        assert [r.status_code for r in responses] == [200] * PARALLEL, summary(responses)
        assert_voided(racers, target)
        for voider in voiders:
            assert get_statement(racers, voider["id"]).status_code == 200


def test_voiding_while_the_target_is_being_stored(racers: list[httpx.Client]) -> None:
    """The target and its voiding statement sent at the same moment: both stored, and the
    target is voided whichever came first (Data 2.3.2: voided iff a voiding statement for it is held)."""
    for _ in range(ROUNDS):
        target = new_id()
        calls = [put_statement(statement(id=target)), post_statements(voiding(target))]
        responses = race(racers, calls * (PARALLEL // 2))
        assert sorted(r.status_code for r in responses) == [200] * (PARALLEL // 2) + [204] * (PARALLEL // 2), summary(
            responses
        )
        assert_voided(racers, target)


def test_voiding_statement_stored_before_its_target(racers: list[httpx.Client]) -> None:
    """Serially: the voiding statement first (accepted, Data 2.3.2), then the target, which is voided."""
    target = new_id()
    assert racers[0].post("/statements", json=voiding(target)).status_code == 200
    assert racers[0].put("/statements", params={"statementId": target}, json=statement(id=target)).status_code == 204
    assert_voided(racers, target)


# -- documents --------------------------------------------------------------


def state_params() -> dict[str, str]:
    return {"activityId": f"http://example.com/activities/{new_id()}", "agent": AGENT, "stateId": new_id()}


def test_concurrent_puts_with_one_etag_have_one_winner(racers: list[httpx.Client]) -> None:
    """8 PUTs carrying the document's current ETag at once: exactly one 204, seven 412
    precondition_failed, and the stored document is the winner's."""
    for _ in range(ROUNDS):
        params = state_params()
        assert racers[0].put("/activities/state", params=params, json={"v": "start"}).status_code == 204
        etag = racers[0].get("/activities/state", params=params).headers["etag"]
        bodies = [{"v": f"writer {i}"} for i in range(PARALLEL)]
        calls = [document("PUT", "/activities/state", params, b, **{"If-Match": etag}) for b in bodies]
        responses = race(racers, calls)
        codes = summary(responses)
        assert codes == [(204, "")] + [(412, "precondition_failed")] * (PARALLEL - 1), codes
        winner = next(b for b, r in zip(bodies, responses, strict=True) if r.status_code == 204)
        assert racers[0].get("/activities/state", params=params).json() == winner


def test_concurrent_merges_with_one_etag_have_one_winner(racers: list[httpx.Client]) -> None:
    """The same for POST (merge) with If-Match: one merge applies, the others 412."""
    for _ in range(ROUNDS):
        params = state_params()
        assert racers[0].post("/activities/state", params=params, json={"base": 1}).status_code == 204
        etag = racers[0].get("/activities/state", params=params).headers["etag"]
        calls = [
            document("POST", "/activities/state", params, {f"k{i}": i}, **{"If-Match": etag}) for i in range(PARALLEL)
        ]
        responses = race(racers, calls)
        codes = summary(responses)
        assert codes == [(204, "")] + [(412, "precondition_failed")] * (PARALLEL - 1), codes
        assert len(racers[0].get("/activities/state", params=params).json()) == 2


def test_concurrent_creates_with_if_none_match_have_one_winner(racers: list[httpx.Client]) -> None:
    """8 PUTs of a new agent profile with If-None-Match: * at once: one 204, seven 412."""
    for _ in range(ROUNDS):
        params = {"agent": AGENT, "profileId": new_id()}
        bodies = [{"v": f"writer {i}"} for i in range(PARALLEL)]
        calls = [document("PUT", "/agents/profile", params, b, **{"If-None-Match": "*"}) for b in bodies]
        responses = race(racers, calls)
        codes = summary(responses)
        assert codes == [(204, "")] + [(412, "precondition_failed")] * (PARALLEL - 1), codes
        winner = next(b for b, r in zip(bodies, responses, strict=True) if r.status_code == 204)
        assert racers[0].get("/agents/profile", params=params).json() == winner


def test_concurrent_merges_keep_every_key(racers: list[httpx.Client]) -> None:
    """8 POSTs merging a key each into one State document (new or existing) at once: all 204,
    and the document holds every key (no merge lost)."""
    for round_ in range(ROUNDS):
        params = state_params()
        if round_ % 2:
            assert racers[0].post("/activities/state", params=params, json={"base": 0}).status_code == 204
        calls = [document("POST", "/activities/state", params, {f"k{i}": i}) for i in range(PARALLEL)]
        responses = race(racers, calls)
        assert [r.status_code for r in responses] == [204] * PARALLEL, summary(responses)
        merged = racers[0].get("/activities/state", params=params).json()
        expected = {f"k{i}": i for i in range(PARALLEL)} | ({"base": 0} if round_ % 2 else {})
        assert merged == expected


def test_concurrent_unguarded_state_puts_leave_one_whole_document(racers: list[httpx.Client]) -> None:
    """1.0.3 State PUTs without preconditions at once (new document): all 204, and the document
    is exactly one writer's body."""
    for _ in range(ROUNDS):
        params = state_params()
        bodies = [{"v": f"writer {i}"} for i in range(PARALLEL)]
        calls = [document("PUT", "/activities/state", params, b) for b in bodies]
        responses = race(racers, calls)
        assert [r.status_code for r in responses] == [204] * PARALLEL, summary(responses)
        assert racers[0].get("/activities/state", params=params).json() in bodies


def test_concurrent_deletes_with_one_etag(racers: list[httpx.Client]) -> None:
    """A DELETE and PUTs carrying the same ETag at once: exactly one wins, the others 412."""
    for _ in range(ROUNDS):
        params = state_params()
        assert racers[0].put("/activities/state", params=params, json={"v": 0}).status_code == 204
        etag = racers[0].get("/activities/state", params=params).headers["etag"]
        calls = [document("DELETE", "/activities/state", params, **{"If-Match": etag})]
        calls += [
            document("PUT", "/activities/state", params, {"v": i}, **{"If-Match": etag}) for i in range(1, PARALLEL)
        ]
        responses = race(racers, calls)
        codes = summary(responses)
        assert codes == [(204, "")] + [(412, "precondition_failed")] * (PARALLEL - 1), codes
        after = racers[0].get("/activities/state", params=params)
        assert (after.status_code == 404) == (responses[0].status_code == 204)
