"""cmi5 launch (POST /api/launch with "mode": "cmi5"): the launch URL of cmi5 8.1, the one-time
fetch URL of 8.2 (SECURITY.md J-01), the session's credential on /xapi (J-02, J-03, J-05, J-06),
the LMS.LaunchData document (10) and the LMS's "launched" and "abandoned" statements (9.3).

One server for the module, with a 1 s grace after "terminated" (OPENXP_CMI5_TERMINATE_GRACE).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.api.test_credentials import call, key_auth, lrs
from tests.support.records import digest
from tests.support.server import Server, served
from tests.xapi.lrs import statement

ACTOR = {"objectType": "Agent", "account": {"homePage": "https://lms.example.com", "name": "learner-7"}}
OTHER = {"objectType": "Agent", "account": {"homePage": "https://lms.example.com", "name": "learner-8"}}
AU = "https://lms.example.com/courses/safety-101/au/1"
PUBLISHER_ID = "https://content.example.com/safety-101/intro"
EXT = "https://w3id.org/xapi/cmi5/context/extensions/"
GRACE = 1


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with served({"OPENXP_CMI5_TERMINATE_GRACE": str(GRACE)}) as srv:
        yield srv


def launch(server: Server, **overrides: Any) -> httpx.Response:
    body = {
        "mode": "cmi5",
        "url": "https://content.example.com/safety-101/index.html?lang=en",
        "actor": ACTOR,
        "activity_id": AU,
        "publisher_id": PUBLISHER_ID,
        "registration": str(uuid.uuid4()),
        **overrides,
    }
    return call(server, "POST", "/api/launch", key_auth(server), json=body)


def launched(server: Server, **overrides: Any) -> tuple[dict[str, Any], dict[str, str]]:
    response = launch(server, **overrides)
    assert response.status_code == 200, response.text
    query = parse_qs(urlsplit(response.json()["url"]).query)
    return response.json(), {name: values[-1] for name, values in query.items()}


def fetch(params: dict[str, str], method: str = "POST") -> httpx.Response:
    return httpx.request(method, params["fetch"], timeout=30)


def token(params: dict[str, str]) -> str:
    response = fetch(params)
    assert response.status_code == 200, response.text
    return "Basic " + response.json()["auth-token"]


def state_params(params: dict[str, str], state_id: str | None = "LMS.LaunchData") -> dict[str, str]:
    query = {"activityId": params["activityId"], "agent": params["actor"], "registration": params["registration"]}
    return {**query, "stateId": state_id} if state_id else query


def about(params: dict[str, str], verb: str = "http://adlnet.gov/expapi/verbs/initialized", **extra: Any) -> dict:
    body = statement(
        actor=json.loads(params["actor"]),
        verb={"id": verb},
        object={"objectType": "Activity", "id": params["activityId"]},
        context={"registration": params["registration"]},
    )
    return {**body, **extra}


def lms_statements(server: Server, verb: str, registration: str) -> list[dict[str, Any]]:
    response = lrs(
        server,
        "GET",
        "/statements",
        key_auth(server),
        params={"verb": verb, "registration": registration, "activity": AU},
    )
    assert response.status_code == 200, response.text
    return list(response.json()["statements"])


def session_statements(server: Server, registration: str) -> list[dict[str, Any]]:
    """The registration's statements about the AU, oldest first, as the LMS reads them."""
    response = lrs(
        server,
        "GET",
        "/statements",
        key_auth(server),
        params={"registration": registration, "activity": AU, "ascending": "true"},
    )
    assert response.status_code == 200, response.text
    return list(response.json()["statements"])


def test_launch_url_carries_the_cmi5_parameters(server: Server) -> None:
    """8.1: endpoint, fetch, actor, registration and activityId, the content's own query kept; no
    credential in the URL (only the one-time fetch URL)."""
    answer, params = launched(server)
    assert set(params) == {"lang", "endpoint", "fetch", "actor", "registration", "activityId"}
    assert params["endpoint"] == f"{server.base_url}/xapi/"
    assert params["fetch"].startswith(f"{server.base_url}/api/launch/fetch?k=")
    assert json.loads(params["actor"]) == ACTOR
    assert params["activityId"] == AU
    assert params["registration"] == answer["registration"]
    assert answer["expires_in"] > 0 and answer["session_id"] and answer["username"].startswith("lx_")
    assert urlsplit(answer["url"]).netloc == "content.example.com"


def test_the_lms_generates_a_registration_when_none_is_given(server: Server) -> None:
    answer, params = launched(server, registration=None)
    assert str(uuid.UUID(params["registration"])) == params["registration"] == answer["registration"]


def test_J01_fetch_answers_the_token_once(server: Server) -> None:
    """J-01: the first POST answers {"auth-token"}, the second {"error-code": "1"} and no token,
    both 200 application/json; GET is refused; a key openxp never issued answers error 2."""
    _, params = launched(server)
    assert fetch(params, "GET").status_code == 405
    first = fetch(params)
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/json")
    assert set(first.json()) == {"auth-token"}
    assert "no-store" in first.headers["cache-control"]
    assert first.headers["access-control-allow-origin"] == "*"
    second = fetch(params)
    assert second.status_code == 200
    assert second.json()["error-code"] == "1" and "auth-token" not in second.json()
    forged = httpx.post(f"{server.base_url}/api/launch/fetch?k=not-a-key", timeout=30)
    assert forged.status_code == 200 and forged.json()["error-code"] == "2"
    assert httpx.post(f"{server.base_url}/api/launch/fetch", timeout=30).json()["error-code"] == "2"


def test_J01_concurrent_fetches_hand_out_one_token(server: Server) -> None:
    """J-01 under a race: 20 fetches of one URL at once, across the server's workers, give one token."""
    _, params = launched(server)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: fetch(params).json(), range(20)))
    tokens = [a["auth-token"] for a in answers if "auth-token" in a]
    assert len(tokens) == 1, answers
    assert all(a == {"auth-token": tokens[0]} or a.get("error-code") == "1" for a in answers)
    assert lrs(server, "POST", "/statements", "Basic " + tokens[0], json=about(params)).status_code == 200


def test_J05_the_fetch_key_and_the_secret_are_stored_as_digests(server: Server) -> None:
    """J-05: the stored row holds digests: of the fetch key, and of the secret the fetch made."""
    answer, params = launched(server)
    key = parse_qs(urlsplit(params["fetch"]).query)["k"][0]
    auth = token(params)
    rows = server.sql(
        "SELECT fetch_hash, secret_hash, session_id FROM short_lived_credentials WHERE username = :u",
        {"u": answer["username"]},
    )
    assert rows[0][0] == digest(key) and rows[0][2] == answer["session_id"]
    secret = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":", 1)[1]
    assert rows[0][1] == digest(secret)
    assert key not in server.log() and secret not in server.log()


def test_J03_the_token_acts_for_its_learner_activity_and_registration(server: Server) -> None:
    """J-03: statements of the launch's actor, activity and registration pass; another learner,
    another registration, a voiding statement (cmi5 6.3) and /api are refused."""
    _, params = launched(server)
    auth = token(params)
    posted = lrs(server, "POST", "/statements", auth, json=about(params))
    assert posted.status_code == 200
    [mine] = posted.json()
    other = {**about(params), "actor": OTHER}
    assert lrs(server, "POST", "/statements", auth, json=other).status_code == 403
    elsewhere = about(params)
    elsewhere["context"]["registration"] = str(uuid.uuid4())
    assert lrs(server, "POST", "/statements", auth, json=elsewhere).status_code == 403
    voiding = about(
        params, verb="http://adlnet.gov/expapi/verbs/voided", object={"objectType": "StatementRef", "id": mine}
    )
    refused = lrs(server, "POST", "/statements", auth, json=voiding)
    assert refused.status_code == 403 and refused.json()["error"] == "voiding_forbidden"
    assert call(server, "GET", "/api/auth/me", auth).status_code in (401, 403)


def test_nothing_works_before_the_fetch(server: Server) -> None:
    """The credential exists from the launch but has no usable secret until fetched: guessing
    the username with any password is refused."""
    answer, params = launched(server)
    guess = "Basic " + base64.b64encode(f"{answer['username']}:".encode()).decode()
    assert lrs(server, "POST", "/statements", guess, json=about(params)).status_code == 401


def test_launch_data_document_and_launched_statement(server: Server) -> None:
    """10.2: LMS.LaunchData holds contextTemplate (session id, publisher id grouping), launchMode,
    moveOn, masteryScore, launchParameters, returnURL, entitlementKey; 9.3.1: the "launched"
    statement, with the context extensions of 9.6.3, is stored before the AU runs."""
    answer, params = launched(
        server,
        moveOn="CompletedAndPassed",
        masteryScore=0.8,
        launchParameters="level=2",
        returnURL="https://lms.example.com/courses/safety-101",
        entitlementKey={"courseStructure": "xyz-123"},
    )
    auth = token(params)
    response = lrs(server, "GET", "/activities/state", auth, params=state_params(params))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data == {
        "contextTemplate": {
            "contextActivities": {"grouping": [{"id": PUBLISHER_ID}]},
            "extensions": {EXT + "sessionid": answer["session_id"]},
        },
        "launchMode": "Normal",
        "moveOn": "CompletedAndPassed",
        "masteryScore": 0.8,
        "launchParameters": "level=2",
        "returnURL": "https://lms.example.com/courses/safety-101",
        "entitlementKey": {"courseStructure": "xyz-123"},
    }
    [stored] = lms_statements(server, "http://adlnet.gov/expapi/verbs/launched", params["registration"])
    assert stored["actor"] == ACTOR and stored["object"]["id"] == AU
    context = stored["context"]
    assert context["registration"] == params["registration"]
    assert {"id": "https://w3id.org/xapi/cmi5/context/categories/cmi5"} in context["contextActivities"]["category"]
    assert context["contextActivities"]["grouping"] == [{"id": PUBLISHER_ID}]
    assert context["extensions"] == {
        EXT + "sessionid": answer["session_id"],
        EXT + "launchmode": "Normal",
        EXT + "launchurl": "https://content.example.com/safety-101/index.html?lang=en",
        EXT + "moveon": "CompletedAndPassed",
        EXT + "masteryscore": 0.8,
        EXT + "launchparameters": "level=2",
    }


def test_the_au_reads_but_never_changes_launch_data(server: Server) -> None:
    """10.2.1: the AU MUST NOT modify or delete LMS.LaunchData: PUT, POST and DELETE of it, and
    DELETE of all the launch's State, are 403; its own State documents it keeps as before."""
    _, params = launched(server)
    auth = token(params)
    for method in ("PUT", "POST"):
        refused = lrs(server, method, "/activities/state", auth, params=state_params(params), json={"moveOn": "x"})
        assert refused.status_code == 403, refused.text
    assert lrs(server, "DELETE", "/activities/state", auth, params=state_params(params)).status_code == 403
    assert lrs(server, "DELETE", "/activities/state", auth, params=state_params(params, None)).status_code == 403
    bookmark = state_params(params, "bookmark")
    assert lrs(server, "PUT", "/activities/state", auth, params=bookmark, json={"page": 3}).status_code == 204
    assert lrs(server, "GET", "/activities/state", auth, params=state_params(params)).json()["moveOn"]
    assert lrs(server, "DELETE", "/activities/state", auth, params=bookmark).status_code == 204


def test_J06_terminated_ends_the_session_after_the_grace(server: Server) -> None:
    """J-06 / cmi5 9.3.8: after the AU's "terminated" statement its credential still takes the
    statements in flight for OPENXP_CMI5_TERMINATE_GRACE seconds, then answers 401."""
    _, params = launched(server)
    auth = token(params)
    assert lrs(server, "POST", "/statements", auth, json=about(params)).status_code == 200
    terminated = about(params, verb="http://adlnet.gov/expapi/verbs/terminated", result={"duration": "PT42S"})
    assert lrs(server, "POST", "/statements", auth, json=terminated).status_code == 200
    assert lrs(server, "POST", "/statements", auth, json=about(params)).status_code == 200  # in flight
    time.sleep(GRACE + 0.5)
    assert lrs(server, "POST", "/statements", auth, json=about(params)).status_code == 401
    assert lrs(server, "GET", "/activities/state", auth, params=state_params(params)).status_code == 401


def test_J06_a_relaunch_abandons_the_open_session(server: Server) -> None:
    """9.3.6: a new launch of a registration whose session is still open abandons it: the old
    credential answers 401, and an "abandoned" statement with that session's id and a duration
    is stored; a session that terminated is not abandoned."""
    registration = str(uuid.uuid4())
    first, first_params = launched(server, registration=registration)
    first_auth = token(first_params)
    assert lrs(server, "POST", "/statements", first_auth, json=about(first_params)).status_code == 200
    _, second_params = launched(server, registration=registration)
    assert lrs(server, "POST", "/statements", first_auth, json=about(first_params)).status_code == 401
    [abandoned] = lms_statements(server, "https://w3id.org/xapi/adl/verbs/abandoned", registration)
    assert abandoned["context"]["extensions"][EXT + "sessionid"] == first["session_id"]
    assert abandoned["result"]["duration"].startswith("PT")
    second_auth = token(second_params)
    terminated = about(second_params, verb="http://adlnet.gov/expapi/verbs/terminated")
    assert lrs(server, "POST", "/statements", second_auth, json=terminated).status_code == 200
    launched(server, registration=registration)
    assert len(lms_statements(server, "https://w3id.org/xapi/adl/verbs/abandoned", registration)) == 1
    assert len(lms_statements(server, "http://adlnet.gov/expapi/verbs/launched", registration)) == 3


@pytest.mark.parametrize(
    ("overrides", "prop"),
    [
        ({"mode": "scorm"}, "mode"),
        ({"publisher_id": None}, "publisher_id"),
        ({"publisher_id": AU}, "activity_id"),
        ({"actor": {"objectType": "Agent", "mbox": "mailto:learner@example.com"}}, "actor"),
        ({"masteryScore": 1.5}, "masteryScore"),
        ({"masteryScore": 0.12345}, "masteryScore"),
        ({"masteryScore": True}, "masteryScore"),
        ({"launchMode": "Test"}, "launchMode"),
        ({"moveOn": "Whenever"}, "moveOn"),
        ({"returnURL": "javascript:alert(1)"}, "returnURL"),
        ({"entitlementKey": {"alternate": "x"}}, "entitlementKey"),
        ({"launchParameters": 7}, "launchParameters"),
    ],
)
def test_bad_cmi5_launches_are_refused_and_store_nothing(server: Server, overrides: dict[str, Any], prop: str) -> None:
    registration = str(uuid.uuid4())
    response = launch(server, registration=registration, **overrides)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "validation_error"
    assert response.json()["body"][0]["property"] == prop
    assert lms_statements(server, "http://adlnet.gov/expapi/verbs/launched", registration) == []
