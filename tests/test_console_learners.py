"""The console's Learners page over plain HTTP: search with the Clear API criteria, a learner's
page, and the CSV import (preview writes nothing; confirm writes and reports by file line).

Security cases: L-08 (CSRF on the import), L-09 (a viewer reads but may not import), I-series
isolation (another tenant's learners are neither found nor shown: 404), L-05 (names inert).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from tests.support.console import sign_in
from tests.support.server import Server, destroy_server, make_server

CSV = "name,Email,Team,Score\nAda Lovelace,ada@a.test,red,90\nBob <b>,bob@a.test,blue,40\nNo Mail,,blue,10\n"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = make_server()
    try:
        yield srv
    finally:
        destroy_server(srv)


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[tuple[httpx.Client, str]]:
    http, csrf = sign_in(server, "a", "adminA")
    yield http, csrf
    http.close()


@pytest.fixture(scope="module")
def viewer(server: Server) -> Iterator[tuple[httpx.Client, str]]:
    http, csrf = sign_in(server, "a", "viewerA")
    yield http, csrf
    http.close()


def _learner_count(server: Server, tenant: str = "a") -> int:
    rows = server.sql(
        "SELECT count(*) FROM learners JOIN tenants ON tenants.id = learners.tenant_id WHERE tenants.name = :t",
        {"t": tenant},
    )
    return int(rows[0][0])


def _import(http: httpx.Client, csrf: str, step: str, text: str = CSV, tenant: str = "a") -> httpx.Response:
    return http.post(f"/console/{tenant}/learners/import", data={"csrf_token": csrf, "step": step, "csv": text})


def test_preview_writes_nothing_and_confirm_writes(server: Server, admin: tuple[httpx.Client, str]) -> None:
    http, csrf = admin
    before = _learner_count(server)
    preview = _import(http, csrf, "preview")
    assert preview.status_code == 200, preview.text
    assert "nothing has been written yet" in preview.text
    assert "Ada Lovelace" in preview.text and "Bob &lt;b&gt;" in preview.text  # L-05
    assert "<dt>New</dt><dd>2</dd>" in preview.text and "<dt>Errors</dt><dd>1</dd>" in preview.text
    assert '<td data-label="Line">4</td>' in preview.text  # the row without an email, as the file counts it
    assert _learner_count(server) == before
    done = _import(http, csrf, "confirm")
    assert done.status_code == 200, done.text
    assert "The import ran." in done.text and "<dt>New</dt><dd>2</dd>" in done.text
    assert _learner_count(server) == before + 2
    again = _import(http, csrf, "confirm")
    assert "<dt>Existing (updated)</dt><dd>2</dd>" in again.text and "<dt>New</dt><dd>0</dd>" in again.text
    assert _learner_count(server) == before + 2
    assert "learners_imported" in server.log() and "admina@example.com" in server.log()


def test_empty_paste_is_an_error_next_to_the_field(admin: tuple[httpx.Client, str]) -> None:
    http, csrf = admin
    empty = _import(http, csrf, "preview", text="  ")
    assert empty.status_code == 400 and 'id="csv-error"' in empty.text and 'aria-invalid="true"' in empty.text


def test_a_broken_file_is_reported_not_a_500(server: Server, admin: tuple[httpx.Client, str]) -> None:
    http, csrf = admin
    before = _learner_count(server)
    broken = _import(http, csrf, "preview", text="Email,Team\nx@a.test,red\n")
    assert broken.status_code == 200 and '<p class="error">' in broken.text, broken.text
    assert _learner_count(server) == before


def test_import_needs_csrf_and_the_admin_role(
    server: Server, admin: tuple[httpx.Client, str], viewer: tuple[httpx.Client, str]
) -> None:
    http, _ = admin
    before = _learner_count(server)
    text = "name,Email\nCsrf Less,csrf@a.test\n"
    assert http.post("/console/a/learners/import", data={"step": "confirm", "csv": text}).status_code == 403
    foreign = http.post(
        "/console/a/learners/import",
        data={"step": "confirm", "csv": text, "csrf_token": admin[1]},
        headers={"origin": "https://evil.test"},
    )
    assert foreign.status_code == 403
    v_http, v_csrf = viewer
    assert v_http.get("/console/a/learners/import").status_code == 403
    assert _import(v_http, v_csrf, "confirm", text).status_code == 403
    assert _learner_count(server) == before
    assert v_http.get("/console/a/learners").status_code == 200  # a viewer reads


def test_search_by_name_and_attributes(admin: tuple[httpx.Client, str], viewer: tuple[httpx.Client, str]) -> None:
    http, csrf = admin
    _import(http, csrf, "confirm")
    v_http, _ = viewer
    by_name = v_http.get("/console/a/learners", params={"name": "LOVE"})
    assert by_name.status_code == 200 and "Ada Lovelace" in by_name.text and "bob@a.test" not in by_name.text
    by_team = v_http.get("/console/a/learners", params={"key1": "Team", "op1": "=", "value1": "bl*"})
    assert "bob@a.test" in by_team.text and "ada@a.test" not in by_team.text
    by_score = v_http.get("/console/a/learners", params={"key1": "Score", "op1": ">=", "value1": "50"})
    assert "ada@a.test" in by_score.text and "bob@a.test" not in by_score.text
    both = v_http.get(
        "/console/a/learners",
        params={"key1": "Team", "op1": "=", "value1": "blue", "key2": "Score", "op2": "<", "value2": "50"},
    )
    assert "bob@a.test" in both.text and "ada@a.test" not in both.text
    nothing = v_http.get("/console/a/learners", params={"name": "100%_"})
    assert "No learners match." in nothing.text


def test_search_errors_sit_next_to_their_fields(viewer: tuple[httpx.Client, str]) -> None:
    v_http, _ = viewer
    missing_key = v_http.get("/console/a/learners", params={"value1": "x"})
    assert missing_key.status_code == 400 and 'id="key1-error"' in missing_key.text
    bad_op = v_http.get("/console/a/learners", params={"key2": "Team", "op2": "~", "value2": "x"})
    assert bad_op.status_code == 400 and 'id="op2-error"' in bad_op.text
    wild = v_http.get("/console/a/learners", params={"key1": "Team", "op1": "<", "value1": "a*"})
    assert wild.status_code in (200, 400)  # never a 500


def test_a_learners_page_shows_attributes_and_recent_statements(
    server: Server, admin: tuple[httpx.Client, str], viewer: tuple[httpx.Client, str]
) -> None:
    http, csrf = admin
    _import(http, csrf, "confirm")
    key = server.apikeys["KA"]
    basic = base64.b64encode(f"{key['key']}:{key['secret']}".encode()).decode()
    statement = {
        "actor": {"mbox": "mailto:ada@a.test", "name": "Ada"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
        "object": {"id": "https://courses.a.test/engines", "definition": {"name": {"en-US": "Engines 101"}}},
    }
    posted = httpx.post(
        f"{server.base_url}/xapi/statements",
        json=statement,
        headers={"authorization": f"Basic {basic}", "x-experience-api-version": "1.0.3"},
        timeout=30,
    )
    assert posted.status_code == 200, posted.text
    page = viewer[0].get("/console/a/learners/view", params={"id": "ada@a.test"})
    assert page.status_code == 200
    assert "Ada Lovelace" in page.text and "red" in page.text
    assert "completed" in page.text and "Engines 101" in page.text and posted.json()[0] in page.text
    bob = viewer[0].get("/console/a/learners/view", params={"id": "bob@a.test"})
    assert "Engines 101" not in bob.text and "No statements" in bob.text
    assert viewer[0].get("/console/a/learners/view", params={"id": "nobody@a.test"}).status_code == 404


def test_another_tenants_learners_are_404_and_never_found(server: Server, admin: tuple[httpx.Client, str]) -> None:
    http_b, csrf_b = sign_in(server, "b", "adminB")
    try:
        done = _import(http_b, csrf_b, "confirm", "name,Email\nOnly In B,onlyb@b.test\n", tenant="b")
        assert "<dt>New</dt><dd>1</dd>" in done.text
        # adminB's session is no session for a, and a's search never shows b's learner.
        assert http_b.get("/console/a/learners").status_code == 303
        assert _import(http_b, csrf_b, "confirm", tenant="a").status_code == 403
    finally:
        http_b.close()
    http, _ = admin
    assert "onlyb@b.test" not in http.get("/console/a/learners", params={"name": "Only In B"}).text
    assert http.get("/console/a/learners/view", params={"id": "onlyb@b.test"}).status_code == 404


def test_results_are_paged(server: Server, admin: tuple[httpx.Client, str]) -> None:
    http, csrf = admin
    rows = "".join(f"Paged {i:02d},paged{i:02d}@a.test\n" for i in range(30))
    _import(http, csrf, "confirm", "name,Email\n" + rows)
    first = http.get("/console/a/learners", params={"name": "Paged"})
    assert "paged00@a.test" in first.text and "paged29@a.test" not in first.text and 'rel="next"' in first.text
    second = http.get("/console/a/learners", params={"name": "Paged", "page": "2"})
    assert "paged29@a.test" in second.text and "paged00@a.test" not in second.text and 'rel="prev"' in second.text


def test_a_paste_over_the_form_limit_is_a_400_and_writes_nothing(
    server: Server, admin: tuple[httpx.Client, str]
) -> None:
    http, csrf = admin
    before = _learner_count(server)
    rows = "".join(f"Big {i},big{i}@a.test\n" for i in range(1000))
    big = _import(http, csrf, "confirm", "name,Email\n" + rows)
    assert big.status_code == 400 and "form too large" in big.text
    assert _learner_count(server) == before
