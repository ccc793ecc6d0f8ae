"""The console's audit log page and its CSV export over plain HTTP: roles, tenant isolation,
filters, paging, field errors and the CSV's content (with the formula guard).

Security cases: L-05 (values rendered inert), L-09 (no session gets no page), I-series
isolation (another tenant's events never show), and the CSV-injection guard of the export.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.console import sign_in
from tests.support.server import Server, destroy_server, make_server

# 2026-01-10 12:00 UTC and the days around it: fixed times, so filters are exact.
T0 = 1768046400.0
DAY = 86400.0


def _event(server: Server, tenant: str, at: float, type_: str, actor: str, details: str = "{}") -> None:
    server.sql(
        "INSERT INTO audit_events (tenant, at, type, severity, actor, ip, details)"
        " VALUES (:tenant, :at, :type, 'info', :actor, '192.0.2.7', :details)",
        {"tenant": tenant, "at": at, "type": type_, "actor": actor, "details": details},
    )


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = make_server()
    _event(srv, "a", T0 - 2 * DAY, "client_created", "alice@a.test", '{"client_id": "c-old"}')
    _event(srv, "a", T0, "grant_revoked", "alice@a.test", '{"grant": 7}')
    _event(srv, "a", T0 + DAY, "login_failed", '=HYPERLINK("http://evil.test")', '{"reason": "<b>x</b>"}')
    _event(srv, "a", T0 + DAY + 60, "login_failed", "@bob", "{}")
    _event(srv, "b", T0, "grant_revoked", "secret-b-admin@b.test", '{"grant": 99}')
    for i in range(60):
        _event(srv, "a", T0 - 10 * DAY + i, "token_issued", "paging-client", f'{{"n": {i}}}')
    try:
        yield srv
    finally:
        destroy_server(srv)


@pytest.fixture(scope="module")
def viewer(server: Server) -> Iterator[httpx.Client]:
    http, _ = sign_in(server, "a", "viewerA")
    yield http
    http.close()


def test_no_session_gets_no_audit_page_or_csv(server: Server) -> None:
    for path in ("/console/a/audit", "/console/a/audit.csv"):
        got = httpx.get(f"{server.base_url}{path}")
        assert got.status_code == 303 and got.headers["location"] == "/console/a/"


def test_viewer_reads_the_newest_first_and_only_its_tenant(viewer: httpx.Client) -> None:
    page = viewer.get("/console/a/audit")
    assert page.status_code == 200
    assert 'href="/console/a/audit" aria-current="page"' in page.text
    text = page.text[page.text.index("<tbody>") :]
    assert text.index("evil.test") < text.index("&#34;grant&#34;:7") < text.index("c-old")
    assert "secret-b-admin" not in text and '"grant": 99' not in text
    # Hostile values are text, not markup (L-05).
    assert "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text
    assert "style=" not in text


def test_another_tenants_admin_sees_only_its_own(server: Server) -> None:
    http, _ = sign_in(server, "b", "adminB")
    try:
        page = http.get("/console/b/audit")
        assert page.status_code == 200 and "secret-b-admin" in page.text and "alice@a.test" not in page.text
        # Tenant a's console with tenant b's session: not signed in there.
        assert http.get("/console/a/audit").status_code == 303
        assert http.get("/console/a/audit.csv").status_code == 303
    finally:
        http.close()


def test_filters_by_type_actor_and_time(viewer: httpx.Client) -> None:
    by_type = viewer.get("/console/a/audit", params={"type": "grant_revoked"}).text.split("<tbody>")[1]
    assert "grant_revoked" in by_type and "client_created" not in by_type and "login_failed" not in by_type
    by_actor = viewer.get("/console/a/audit", params={"actor": "@bob"}).text
    assert "@bob" in by_actor and "alice@a.test" not in by_actor
    # "to" as a date includes that whole day; "from" is inclusive.
    window = viewer.get("/console/a/audit", params={"from": "2026-01-08", "to": "2026-01-10"}).text
    assert "client_created" in window and "grant_revoked" in window and "login_failed" not in window
    minute = viewer.get("/console/a/audit", params={"from": "2026-01-10 12:00", "to": "2026-01-10 12:01"}).text
    assert "grant_revoked" in minute and "client_created" not in minute
    nothing = viewer.get("/console/a/audit", params={"type": "no_such_event"}).text
    assert "No event matches" in nothing


def test_bad_filters_are_a_400_with_the_error_next_to_the_field(viewer: httpx.Client) -> None:
    bad = viewer.get("/console/a/audit", params={"from": "yesterday", "to": "2026-01-01"})
    assert bad.status_code == 400
    assert 'id="from-error"' in bad.text and 'aria-describedby="time-hint from-error"' in bad.text
    assert 'aria-invalid="true"' in bad.text and 'value="yesterday"' in bad.text
    backwards = viewer.get("/console/a/audit", params={"from": "2026-01-10", "to": "2026-01-09 00:00"})
    assert backwards.status_code == 400 and 'id="to-error"' in backwards.text
    long_type = viewer.get("/console/a/audit", params={"type": "x" * 65})
    assert long_type.status_code == 400 and 'id="type-error"' in long_type.text
    assert viewer.get("/console/a/audit.csv", params={"from": "yesterday"}).status_code == 400
    # A page number that is not one is the first page, never an error.
    assert viewer.get("/console/a/audit", params={"page": "-3"}).status_code == 200


def test_pages_of_twenty_five_keep_the_filters(viewer: httpx.Client) -> None:
    # 25 a page: at 375 px each event is a stacked card, and 50 of them made a very long page.
    first = viewer.get("/console/a/audit", params={"actor": "paging-client"}).text
    assert first.count('data-label="When"') == 25
    assert "/console/a/audit?actor=paging-client&amp;page=2" in first and 'rel="prev"' not in first
    second = viewer.get("/console/a/audit", params={"actor": "paging-client", "page": "2"}).text
    assert second.count('data-label="When"') == 25
    assert "/console/a/audit?actor=paging-client&amp;page=1" in second
    assert "/console/a/audit?actor=paging-client&amp;page=3" in second
    third = viewer.get("/console/a/audit", params={"actor": "paging-client", "page": "3"}).text
    assert third.count('data-label="When"') == 10 and 'rel="next"' not in third
    assert "&#34;n&#34;:59" in first and "&#34;n&#34;:35}" in first and "&#34;n&#34;:34}" not in first
    assert "&#34;n&#34;:34}" in second and "&#34;n&#34;:10}" in second and "&#34;n&#34;:9}" not in second
    assert "&#34;n&#34;:9}" in third and "&#34;n&#34;:0}" in third


def test_csv_export_has_the_same_filters_and_guards_formulas(viewer: httpx.Client) -> None:
    got = viewer.get("/console/a/audit.csv", params={"type": "login_failed"})
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == 'attachment; filename="audit-a.csv"'
    rows = list(csv.reader(io.StringIO(got.text)))
    assert rows[0] == ["id", "at", "type", "severity", "actor", "ip", "details"]
    assert [r[2] for r in rows[1:]] == ["login_failed", "login_failed"]
    assert rows[1][4] == "'@bob" and rows[2][4] == '\'=HYPERLINK("http://evil.test")'
    assert rows[1][1] == "2026-01-11T12:01:00.000Z" and rows[1][5] == "192.0.2.7"
    assert rows[2][6] == '{"reason":"<b>x</b>"}'
    everything = viewer.get("/console/a/audit.csv").text
    assert "secret-b-admin" not in everything
    assert len(list(csv.reader(io.StringIO(everything)))) >= 1 + 64


def test_console_actions_reach_the_audit_page(server: Server) -> None:
    http, _ = sign_in(server, "a", "adminA")
    try:
        deadline = time.time() + 10
        while True:
            page = http.get("/console/a/audit", params={"actor": "admina@example.com"})
            if "login_succeeded" in page.text or time.time() > deadline:
                break
            time.sleep(0.2)
        assert "login_succeeded" in page.text
    finally:
        http.close()
