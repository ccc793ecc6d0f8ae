"""The Learning records and Audit log pages in Debian's Chromium: keyboard-only filtering,
375 px wide, axe-core (no serious or critical violation) with the strict CSP in force, and a
screenshot of each page in artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.support.chromium import chromium_browser
from tests.support.server import Server, destroy_server, make_server
from tests.support.statements import post_statements
from tests.test_console_browser import _page, accessible, shot, sign_in


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = make_server()
    statements = [
        {
            "actor": {"mbox": f"mailto:learner{i % 3}@a.example.com", "name": f"Learner {i % 3}"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
            "object": {"id": f"https://courses.a.test/unit-{i}", "definition": {"name": {"en-US": f"Unit {i}"}}},
        }
        for i in range(12)
    ]
    post_statements(srv, "a", statements)
    srv.sql("UPDATE xapi_statements SET stored = stored - 86400 * (seq % 5)")
    try:
        yield srv
    finally:
        destroy_server(srv)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with chromium_browser() as browser:
        yield browser


@pytest.mark.parametrize("width", [1100, 375])
def test_records_page_by_keyboard(server: Server, chromium: Browser, width: int) -> None:
    page = _page(chromium, width)
    sign_in(page, server, "viewerA")
    page.get_by_role("link", name="Learning records").click()
    expect(page.get_by_role("heading", name="Learning records", exact=True)).to_be_visible()
    expect(page.get_by_role("img")).to_be_visible()
    page.get_by_text("The numbers per day").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("table").first).to_be_visible()
    accessible(page, f"records-{width}")
    shot(page, f"records-{width}")
    page.get_by_label("Learner").focus()
    page.keyboard.type("learner1@a.example.com")
    page.keyboard.press("Enter")
    rows = page.get_by_role("row").filter(has_text="Learner 1")
    expect(rows).to_have_count(4)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.get_by_role("link", name="as JSON").first.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Statement", exact=True)).to_be_visible()
    expect(page.locator("pre")).to_contain_text('"mbox": "mailto:learner1@a.example.com"')
    accessible(page, f"record-{width}")
    shot(page, f"record-{width}")
    page.goto(f"{server.base_url}/console/a/records?verb=completed")
    expect(page.locator("#verb-error")).to_be_visible()
    accessible(page, f"records-error-{width}")
    page.context.close()


@pytest.mark.parametrize("width", [1100, 375])
def test_audit_page_by_keyboard(server: Server, chromium: Browser, width: int) -> None:
    page = _page(chromium, width)
    sign_in(page, server, "viewerA")
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log", exact=True)).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="login_succeeded").first).to_be_visible()
    accessible(page, f"audit-{width}")
    shot(page, f"audit-{width}")
    page.get_by_label("Event type").focus()
    page.keyboard.type("login_succeeded")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Event type")).to_have_value("login_succeeded")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    with page.expect_download() as download:
        page.get_by_role("link", name="Export as CSV").click()
    assert download.value.suggested_filename == "audit-a.csv"
    page.goto(f"{server.base_url}/console/a/audit?from=someday")
    expect(page.locator("#from-error")).to_be_visible()
    accessible(page, f"audit-error-{width}")
    shot(page, f"audit-error-{width}")
    page.context.close()
