"""The Learners page in a real browser (Debian's Chromium via Playwright): search, a learner's
page and the CSV import's preview and report, at desktop width and at 375 px, axe-core on each
page with the strict CSP in force, screenshots in artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.console import add_admin
from tests.support.server import Server, destroy_server, make_server

# The story test's helpers and its chromium fixture (that module skips when there is no Chromium).
from tests.test_console_browser import Browser, _page, accessible, chromium, expect, shot, sign_in

__all__ = ["chromium"]

CSV = "name,Email,Team,Score\nAda Lovelace,ada@a.test,red,90\nBob Byte,bob@a.test,blue,40\nNo Mail,,blue,10\n"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = make_server()
    add_admin(srv, "learner-admin", "learner-admin@a.example.com", "admin")
    try:
        yield srv
    finally:
        destroy_server(srv)


def test_import_then_search_then_a_learner(server: Server, chromium: Browser) -> None:
    page = _page(chromium)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, server, "learner-admin")
    page.get_by_role("link", name="Learners", exact=True).click()
    expect(page.get_by_role("heading", name="Learners", exact=True)).to_be_visible()
    page.get_by_role("link", name="Import learners from CSV").click()
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("#csv-error")).to_be_visible()
    expect(page.get_by_label("Or paste the CSV")).to_have_attribute("aria-invalid", "true")
    accessible(page, "import with an error")
    page.get_by_label("Or paste the CSV").fill(CSV)
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("status")).to_have_text("Checked: nothing has been written yet.")
    expect(page.get_by_role("cell", name="Ada Lovelace")).to_be_visible()
    accessible(page, "import preview")
    shot(page, "learners-import-preview")
    page.get_by_role("button", name="Import these learners").click()
    expect(page.get_by_role("status")).to_have_text("The import ran.")
    accessible(page, "import report")
    shot(page, "learners-import-report")

    page.get_by_role("link", name="All learners").click()
    page.get_by_label("Attribute 1").fill("Team")
    page.get_by_label("Comparator 1").select_option("=")
    page.get_by_label("Value 1").fill("blue")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Bob Byte")).to_be_visible()
    expect(page.get_by_role("link", name="Ada Lovelace")).to_have_count(0)
    accessible(page, "search results")
    shot(page, "learners-search")
    page.get_by_role("link", name="Bob Byte").click()
    expect(page.get_by_role("heading", name="Bob Byte")).to_be_visible()
    expect(page.get_by_role("cell", name="blue")).to_be_visible()
    accessible(page, "learner")
    shot(page, "learner")
    assert not [e for e in errors if "Content Security Policy" in e], errors
    page.context.close()


def test_import_of_a_chosen_file(server: Server, chromium: Browser) -> None:
    """The file input: choose a file, see its preview, confirm, see the streamed run's report."""
    page = _page(chromium)
    sign_in(page, server, "learner-admin")
    page.goto(f"{server.base_url}/console/a/learners/import")
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "learners.csv", "mimeType": "text/csv", "buffer": b"name,Email\nFile Fay,fay@a.test\n"}]
    )
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("status")).to_have_text("Checked: nothing has been written yet.")
    expect(page.get_by_role("cell", name="File Fay")).to_be_visible()
    accessible(page, "file import preview")
    shot(page, "learners-import-file-preview")
    page.get_by_role("button", name="Import these learners").click()
    expect(page.get_by_role("heading", name="Importing…")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("The import ran.")
    expect(page.get_by_text("1 row read", exact=True)).to_be_visible()
    accessible(page, "file import report")
    shot(page, "learners-import-file-report")
    page.context.close()


def test_learner_pages_at_375_px_and_by_keyboard(server: Server, chromium: Browser) -> None:
    page = _page(chromium, width=375)
    sign_in(page, server, "learner-admin")
    for path, name, heading in (
        ("/learners?key1=Team&op1=%3D&value1=*", "learners", "Learners"),
        ("/learners/import", "learners-import", "Import learners"),
    ):
        page.goto(f"{server.base_url}/console/a{path}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 375, f"{path} scrolls sideways at 375 px ({wide} px)"
        accessible(page, f"{path} at 375 px")
        shot(page, f"narrow-{name}")
    # The search form by keyboard alone: type a name, Enter submits.
    page.goto(f"{server.base_url}/console/a/learners")
    page.get_by_label("Name contains").focus()
    page.keyboard.type("zzz-nobody")
    page.keyboard.press("Enter")
    expect(page.get_by_text("No learners match.")).to_be_visible()
    page.context.close()
