"""The tenant console in a real browser (Debian's Chromium via Playwright): the issue's story,
each page at desktop width and at 375 px, axe-core on every page, screenshots of each.

The story (issue 12, "Done when"): a new admin signs in at /console/a/, creates an integration,
runs the authorization flow with it, sees it under Connected integrations, revokes it and the
integration's next API call is 401; then creates an API key, posts a statement with it, and
sees the key's last use. Screenshots go to artifacts/screenshots/ (kept out of git).
Security cases: L-01 (CSP in force: the nonce'd copy script runs, nothing else), L-11 (the
secret is shown once), B-12 (sign-out), L-10 (the password prompt before a sensitive action).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.support import flow
from tests.support.axe import violations
from tests.support.chromium import CHROMIUM, callback_server, chromium_browser
from tests.support.console import add_admin
from tests.support.server import PASSWORD, Server, backend, destroy_server, make_server

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"

if not CHROMIUM.exists() and os.environ.get("CI") != "true":
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402


@pytest.fixture(scope="module")
def callback_url() -> Iterator[str]:
    with callback_server() as url:
        yield url


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = make_server()
    add_admin(srv, "newadmin", "newadmin@a.example.com", "admin")
    add_admin(srv, "owner", "owner@a.example.com", "owner")
    try:
        yield srv
    finally:
        destroy_server(srv)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with chromium_browser() as browser:
        yield browser


def _page(chromium: Browser, width: int = 1100) -> Page:
    context = chromium.new_context(viewport={"width": width, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    return tab


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{backend()}-{name}.png"), full_page=True)


def accessible(page: Page, name: str) -> None:
    found = violations(page)
    assert not found, f"{name}: axe violations of impact serious/critical: {found}"


def sign_in(page: Page, server: Server, admin: str) -> None:
    creds = server.admins[admin]
    page.goto(f"{server.base_url}/console/a/")
    page.get_by_label("Email").fill(creds["email"])
    page.get_by_label("Password").fill(creds["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Integrations", exact=True)).to_be_visible()


def test_the_story_of_a_new_admin(server: Server, chromium: Browser, callback_url: str) -> None:
    page = _page(chromium)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # Sign in, with a wrong password first: the error sits with the form.
    page.goto(f"{server.base_url}/console/a/")
    expect(page.get_by_role("heading", name="Sign in to the console of tenant a")).to_be_visible()
    accessible(page, "sign-in")
    shot(page, "sign-in")
    page.get_by_label("Email").fill(server.admins["newadmin"]["email"])
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect email or password.")
    accessible(page, "sign-in error")
    sign_in(page, server, "newadmin")
    accessible(page, "integrations")
    shot(page, "integrations")

    # Create an integration; a wrong redirect URI first is reported next to its field.
    page.get_by_role("link", name="Create an integration").click()
    page.get_by_label("Name").fill("Story LMS")
    page.get_by_label("Redirect URIs").fill("http://lms.example.com/cb")
    page.get_by_role("button", name="Create integration").click()
    expect(page.locator("#redirect_uris-error")).to_contain_text("plain http is allowed only for loopback")
    expect(page.get_by_label("Redirect URIs")).to_have_attribute("aria-invalid", "true")
    accessible(page, "create integration with errors")
    shot(page, "integration-new-errors")
    page.get_by_label("Redirect URIs").fill(callback_url)
    page.get_by_role("button", name="Create integration").click()
    expect(page.get_by_role("status")).to_have_text("The integration was created.")
    secret = page.get_by_label("Client secret").input_value()
    client_id = page.locator("dl.facts dd").first.inner_text().strip()
    assert len(secret) >= 32 and client_id
    copy = page.locator("button[data-copy]")
    expect(copy).to_have_text("Copy")
    expect(copy).to_be_visible()  # the nonce'd script ran under the strict CSP
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    accessible(page, "integration secret")
    shot(page, "integration-secret")
    page.get_by_role("link", name="Continue to the integration").click()
    expect(page.get_by_role("heading", name="Story LMS")).to_be_visible()
    assert secret not in page.content()  # L-11: shown once
    accessible(page, "integration detail")
    shot(page, "integration-detail")

    # The seed's authorization flow with the new client, in the same browser (already signed in).
    state = secrets.token_urlsafe(8)
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": callback_url, "state": state})
    page.goto(f"{server.base_url}/auth/oauth/authorize?{query}")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile("^" + re.escape(callback_url) + r"\?"))
    code = parse_qs(urlsplit(page.url).query)["code"][0]
    server.clients["story"] = {"client_id": client_id, "client_secret": secret, "redirect_uris": [callback_url]}
    exchanged = flow.exchange(server, code, "story")
    assert exchanged.status_code == 200, exchanged.text
    access = exchanged.json()["access_token"]
    assert flow.api(server, access).status_code == 200

    # Connected integrations: the grant, who approved it, last use; revoke it.
    page.goto(f"{server.base_url}/console/a/connected")
    row = page.get_by_role("row").filter(has_text="Story LMS")
    expect(row).to_contain_text(server.admins["newadmin"]["email"])
    expect(row).to_contain_text("all")
    expect(row).not_to_contain_text("never")
    accessible(page, "connected integrations")
    shot(page, "connected")
    row.get_by_role("button", name=re.compile("^Revoke Story LMS")).click()
    expect(page.get_by_role("status")).to_contain_text("Access revoked")
    expect(page.get_by_role("row").filter(has_text="Story LMS")).to_have_count(0)
    assert flow.api(server, access).status_code == 401  # the integration's next call

    # An API key: created with a scope, used for a statement, its last use shown.
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_text("HTTP Basic authentication, which is deprecated")).to_be_visible()
    accessible(page, "api keys")
    shot(page, "keys")
    page.get_by_label("Name", exact=True).fill("Story LRS feed")
    page.get_by_role("button", name="Create API key").click()
    key = page.locator("dl.facts dd").first.inner_text().strip()
    key_secret = page.get_by_label("Secret (the Basic password)").input_value()
    accessible(page, "api key secret")
    shot(page, "key-secret")
    statement = {
        "actor": {"mbox": "mailto:learner@a.example.com", "name": "Learner"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
        "object": {"id": "https://courses.a.test/story"},
    }
    basic = base64.b64encode(f"{key}:{key_secret}".encode()).decode()
    posted = httpx.post(
        f"{server.base_url}/xapi/statements",
        json=statement,
        headers={"authorization": f"Basic {basic}", "x-experience-api-version": "1.0.3"},
        timeout=30,
    )
    assert posted.status_code == 200, posted.text
    page.get_by_role("link", name="Back to API keys").click()
    key_row = page.get_by_role("row").filter(has_text="Story LRS feed")
    expect(key_row).to_contain_text("statements/write")
    expect(key_row).to_contain_text("UTC")
    expect(key_row).not_to_contain_text("never")
    shot(page, "keys-used")

    # My account, then sign out: the session ends on the server.
    page.get_by_role("link", name="My account").click()
    expect(page.get_by_text("(this browser)")).to_be_visible()
    accessible(page, "my account")
    shot(page, "account")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    page.get_by_role("button", name="Sign out").first.click()
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    accessible(page, "signed out")
    replay = httpx.get(f"{server.base_url}/console/a/integrations", cookies=cookies)
    assert replay.status_code == 303
    assert not [e for e in errors if "Content Security Policy" in e], errors
    page.context.close()


def test_owner_pages_and_narrow_screens(server: Server, chromium: Browser) -> None:
    """Every page at 375 px: usable (no sideways scrolling), accessible, photographed."""
    page = _page(chromium, width=375)
    sign_in(page, server, "owner")
    for path, name, heading in (
        ("/integrations", "integrations", "Integrations"),
        ("/integrations/new", "integration-new", "Create an integration"),
        ("/connected", "connected", "Connected integrations"),
        ("/keys", "keys", "API keys"),
        ("/admins", "admins", "Admins"),
        ("/account", "account", "My account"),
    ):
        page.goto(f"{server.base_url}/console/a{path}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 375, f"{path} scrolls sideways at 375 px ({wide} px)"
        accessible(page, f"{path} at 375 px")
        shot(page, f"narrow-{name}")
    # Admins: create a viewer, whose console has no change buttons.
    page.goto(f"{server.base_url}/console/a/admins")
    page.get_by_label("Email").fill("story-viewer@a.example.com")
    page.get_by_label("Initial password").fill(PASSWORD)
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Create admin").click()
    expect(page.get_by_role("status")).to_have_text("The admin was created.")
    shot(page, "admins")
    page.context.close()


def test_L10_the_password_prompt_keeps_what_was_typed(server: Server, chromium: Browser) -> None:
    """L-10: outside the re-auth window, creating a confidential integration shows the password
    prompt (accessible, no sideways scrolling at 375 px); a wrong password is reported next to the
    field, and the right one creates the integration exactly as typed, two redirect URIs on two
    lines included, without a script."""
    page = _page(chromium)
    sign_in(page, server, "owner")
    (token,) = [c["value"] for c in page.context.cookies() if "session" in c["name"]]
    # As if two hours had passed since sign-in (Playwright's loop holds this thread: SQL in another).
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            server.sql,
            "UPDATE sessions SET authenticated_at = authenticated_at - 7200 WHERE id_hash = :h",
            {"h": hashlib.sha256(token.encode()).hexdigest()},
        ).result()
    uris = ["https://one.prompted.a.test/cb", "https://two.prompted.a.test/cb"]
    page.goto(f"{server.base_url}/console/a/integrations/new")
    page.get_by_label("Name").fill("Prompted LMS")
    page.get_by_label("Redirect URIs").fill("\n".join(uris))
    page.get_by_role("button", name="Create integration").click()
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    expect(page.get_by_text("To create the integration Prompted LMS with a client secret")).to_be_visible()
    accessible(page, "re-auth prompt")
    shot(page, "reauth")
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#reauth_password-error")).to_have_text("That is not your current password.")
    expect(page.get_by_label("Your password")).to_have_attribute("aria-invalid", "true")
    accessible(page, "re-auth prompt with an error")
    shot(page, "reauth-error")
    page.set_viewport_size({"width": 375, "height": 900})
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 375, f"the prompt scrolls sideways at 375 px ({wide} px)"
    page.set_viewport_size({"width": 1100, "height": 900})
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text("The integration was created.")
    expect(page.locator("dl.facts")).to_contain_text(" ".join(uris))
    (made,) = [c for c in server.cli_json("client", "list", "--tenant", "a")["clients"] if c["name"] == "Prompted LMS"]
    assert made["redirect_uris"] == uris
    page.context.close()


def test_keyboard_alone_reaches_the_content(server: Server, chromium: Browser) -> None:
    """The first Tab lands on the skip link, which moves focus to the page's content."""
    page = _page(chromium)
    sign_in(page, server, "owner")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") in ("Create an integration", "Story LMS")
    page.context.close()
