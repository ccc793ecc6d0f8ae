"""The console's learning records pages over plain HTTP: roles, tenant isolation (another
tenant's statement id is 404), the filters through the LRS's query, the seq cursor, the
statement's JSON escaped, and the per-day chart's numbers.

Security cases: L-05 (values rendered inert), L-09 (no session gets no page), I-series
isolation (another tenant's ids are 404).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.console import sign_in
from tests.support.server import Server, destroy_server, make_server
from tests.support.statements import post_statements

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
ATTEMPTED = "http://adlnet.gov/expapi/verbs/attempted"
DAY = 86400


def _statement(who: str, verb: str, activity: str, name: str = "") -> dict[str, Any]:
    obj: dict[str, Any] = {"id": activity}
    if name:
        obj["definition"] = {"name": {"en-US": name}}
    return {"actor": {"mbox": f"mailto:{who}", "name": who.split("@")[0]}, "verb": {"id": verb}, "object": obj}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = make_server()
    try:
        yield srv
    finally:
        destroy_server(srv)


@pytest.fixture(scope="module")
def posted(server: Server) -> dict[str, list[str]]:
    ids = {
        "alice": post_statements(server, "a", [_statement("alice@a.test", COMPLETED, "https://courses.a.test/one")]),
        "hostile": post_statements(
            server, "a", [_statement("mallory@a.test", ATTEMPTED, "https://courses.a.test/x", "<script>x()</script>")]
        ),
        "many": post_statements(
            server, "a", [_statement("bob@a.test", ATTEMPTED, f"https://courses.a.test/p{i}") for i in range(55)]
        ),
        "account": post_statements(
            server,
            "a",
            [
                {
                    "actor": {"account": {"homePage": "https://lms.a.test", "name": "learner-42"}},
                    "verb": {"id": COMPLETED},
                    "object": {"id": "https://courses.a.test/two"},
                }
            ],
        ),
        "b": post_statements(server, "b", [_statement("secret-b@b.test", COMPLETED, "https://courses.b.test/b")]),
    }
    # Age alice's statement by three days and bob's first ten by ten: the chart counts per day.
    now = time.time()
    server.sql(
        "UPDATE xapi_statements SET stored = :t WHERE statement_id = :id", {"t": now - 3 * DAY, "id": ids["alice"][0]}
    )
    for sid in ids["many"][:10]:
        server.sql("UPDATE xapi_statements SET stored = :t WHERE statement_id = :id", {"t": now - 10 * DAY, "id": sid})
    return ids


@pytest.fixture(scope="module")
def viewer(server: Server) -> Iterator[httpx.Client]:
    http, _ = sign_in(server, "a", "viewerA")
    yield http
    http.close()


def _ids(html: str) -> list[str]:
    return re.findall(r'href="/console/a/records/([0-9a-f-]{36})"', html)


def test_no_session_gets_no_records(server: Server) -> None:
    for path in ("/console/a/records", f"/console/a/records/{uuid.uuid4()}"):
        got = httpx.get(f"{server.base_url}{path}")
        assert got.status_code == 303 and got.headers["location"] == "/console/a/"


def test_viewer_sees_the_newest_first_and_only_its_tenant(viewer: httpx.Client, posted: dict[str, list[str]]) -> None:
    page = viewer.get("/console/a/records")
    assert page.status_code == 200
    assert 'href="/console/a/records" aria-current="page"' in page.text
    shown = _ids(page.text)
    assert len(shown) == 50
    assert shown[0] == posted["account"][0]
    assert posted["b"][0] not in page.text and "secret-b" not in page.text
    assert "style=" not in page.text
    hostile = viewer.get("/console/a/records", params={"learner": "mallory@a.test"}).text
    assert "<script>x()</script>" not in hostile and "&lt;script&gt;x()&lt;/script&gt;" in hostile


def test_the_lrs_cursor_pages_to_the_end(viewer: httpx.Client, posted: dict[str, list[str]]) -> None:
    first = viewer.get("/console/a/records", params={"learner": "bob@a.test"}).text
    more = re.search(r'href="(/console/a/records\?[^"]*after=\d+)" rel="next"', first)
    assert more, first
    assert "learner=bob%40a.test" in more.group(1)
    second = viewer.get(more.group(1).replace("&amp;", "&")).text
    assert len(_ids(first)) == 50 and len(_ids(second)) == 5 and 'rel="next"' not in second
    assert set(_ids(first) + _ids(second)) == set(posted["many"])
    assert "Newest statements" in second


def test_filters_by_learner_verb_activity_and_time(viewer: httpx.Client, posted: dict[str, list[str]]) -> None:
    by_mail = _ids(viewer.get("/console/a/records", params={"learner": "mailto:alice@a.test"}).text)
    assert by_mail == posted["alice"]
    assert _ids(viewer.get("/console/a/records", params={"learner": "alice@a.test"}).text) == posted["alice"]
    by_account = viewer.get("/console/a/records", params={"learner": "https://lms.a.test learner-42"}).text
    assert _ids(by_account) == posted["account"]
    by_verb = _ids(viewer.get("/console/a/records", params={"verb": COMPLETED}).text)
    assert set(by_verb) == {posted["alice"][0], posted["account"][0]}
    by_activity = _ids(viewer.get("/console/a/records", params={"activity": "https://courses.a.test/one"}).text)
    assert by_activity == posted["alice"]
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 3 * DAY))
    in_day = _ids(viewer.get("/console/a/records", params={"from": day, "to": day}).text)
    assert in_day == posted["alice"]
    # Another tenant's learner: nothing, not their statements.
    assert _ids(viewer.get("/console/a/records", params={"learner": "secret-b@b.test"}).text) == []


def test_bad_filters_are_a_400_with_the_error_next_to_the_field(viewer: httpx.Client) -> None:
    bad = viewer.get("/console/a/records", params={"learner": "not an agent", "verb": "completed", "from": "soon"})
    assert bad.status_code == 400
    for name in ("learner", "verb", "from"):
        assert f'id="{name}-error"' in bad.text
    assert 'aria-describedby="verb-hint verb-error" aria-invalid="true"' in bad.text
    assert 'value="not an agent"' in bad.text
    # A cursor that is not one is the first page, never an error.
    assert viewer.get("/console/a/records", params={"after": "x'; --"}).status_code == 200


def test_one_statement_as_escaped_pretty_json_and_other_tenants_ids_404(
    viewer: httpx.Client, posted: dict[str, list[str]]
) -> None:
    sid = posted["hostile"][0]
    page = viewer.get(f"/console/a/records/{sid}")
    assert page.status_code == 200
    assert f"&#34;id&#34;: &#34;{sid}&#34;" in page.text or f"&quot;id&quot;: &quot;{sid}&quot;" in page.text
    assert "<script>x()</script>" not in page.text and "&lt;script&gt;x()&lt;/script&gt;" in page.text
    assert '\n  "' in page.text.replace("&#34;", '"').replace("&quot;", '"')  # indented, one key a line
    assert viewer.get(f"/console/a/records/{sid.upper()}").status_code == 200
    assert viewer.get(f"/console/a/records/{posted['b'][0]}").status_code == 404
    assert viewer.get(f"/console/a/records/{uuid.uuid4()}").status_code == 404
    assert viewer.get("/console/a/records/not-a-uuid").status_code == 404


def test_the_chart_counts_per_day_in_svg_and_a_table(viewer: httpx.Client, posted: dict[str, list[str]]) -> None:
    html = viewer.get("/console/a/records").text
    assert "<svg" in html and 'role="img"' in html
    rows = dict(re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>(\d+)</td></tr>", html))
    assert len(rows) == 30
    today = time.strftime("%Y-%m-%d", time.gmtime())
    three = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 3 * DAY))
    ten = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 10 * DAY))
    # Tenant b's statement is not counted in a's chart.
    assert rows[today] == "47" and rows[three] == "1" and rows[ten] == "10"
    assert sum(int(v) for v in rows.values()) == 58
    assert html.count("<rect ") == 30
