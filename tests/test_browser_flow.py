"""The login and consent pages in a real browser (Debian's Chromium, driven by Playwright).

The client's redirect URI points at a tiny HTTP server on 127.0.0.1 run by the
test, so the browser really lands on "the integration" at the end. Fields are
found by their labels and buttons by their names, as assistive technology
finds them.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.support.chromium import CHROMIUM, callback_server, chromium_browser
from tests.support.server import Server

if not CHROMIUM.exists() and os.environ.get("CI") != "true":
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect


@pytest.fixture(scope="module")
def callback_url() -> Iterator[str]:
    with callback_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser_client(server: Server, callback_url: str) -> dict[str, Any]:
    """A client registered through the CLI whose redirect URI is the callback server (http on loopback)."""
    return server.cli_json("client", "create", "--tenant", "a", "--name", "Browser app", "--redirect-uri", callback_url)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with chromium_browser() as browser:
        yield browser


@pytest.fixture()
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context()
    try:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        yield tab
    finally:
        context.close()


def authorize_url(server: Server, client: dict[str, Any], state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": client["redirect_uris"][0],
            "state": state,
        }
    )
    return f"{server.base_url}/auth/oauth/authorize?{query}"


def landed(page: Page, callback_url: str) -> dict[str, list[str]]:
    page.wait_for_url(re.compile("^" + re.escape(callback_url) + r"\?"))
    expect(page.get_by_role("heading", name="Callback received")).to_be_visible()
    return parse_qs(urlsplit(page.url).query)


def sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_login_consent_allow_lands_on_callback_with_code(
    server: Server, page: Page, browser_client: dict[str, Any], callback_url: str
) -> None:
    """The seed's steps 1-3 in a browser: sign in, the consent page names the client, tenant and
    scopes (B-07), Allow lands on the callback with code, state and iss (A-21, B-08), and the code
    exchanges over HTTP."""
    state = "st-" + secrets.token_urlsafe(8)
    admin = server.admins["adminA"]
    page.goto(authorize_url(server, browser_client, state))
    expect(page.get_by_role("heading", name=re.compile("Sign in to authorize Browser app"))).to_be_visible()
    sign_in(page, admin["email"], admin["password"])

    expect(page.get_by_role("heading", name=re.compile(r"Authorize Browser app\?"))).to_be_visible()
    main = page.locator("main")
    expect(main).to_contain_text("in tenant a")
    expect(main).to_contain_text(admin["email"])
    expect(page.locator("ul.scopes li")).to_have_text(
        ["all: Full access to this tenant's ClearXP API and learning records"]
    )
    expect(main).to_contain_text("returns to 127.0.0.1:")
    page.get_by_role("button", name="Allow").click()

    params = landed(page, callback_url)
    assert params["state"] == [state]
    assert params["iss"] == [server.base_url]
    assert "error" not in params
    response = httpx.post(
        f"{server.base_url}/auth/oauth/token",
        json={
            "grant_type": "authorization_code",
            "client_id": browser_client["client_id"],
            "client_secret": browser_client["client_secret"],
            "redirect_uri": callback_url,
            "code": params["code"][0],
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["access_token"].startswith("cxa_")


def test_A22_deny_lands_on_callback_with_access_denied(
    server: Server, page: Page, browser_client: dict[str, Any], callback_url: str
) -> None:
    """A-22: pressing Deny returns error=access_denied with the state and iss, and no code."""
    state = "deny-" + secrets.token_urlsafe(8)
    admin = server.admins["adminA"]
    page.goto(authorize_url(server, browser_client, state))
    sign_in(page, admin["email"], admin["password"])
    page.get_by_role("button", name="Deny").click()
    params = landed(page, callback_url)
    assert params["error"] == ["access_denied"]
    assert params["state"] == [state]
    assert params["iss"] == [server.base_url]
    assert "code" not in params


def test_B13_wrong_password_shows_an_alert_and_stays(
    server: Server, page: Page, browser_client: dict[str, Any], callback_url: str
) -> None:
    """B-13: a wrong password shows the generic message in a role=alert element tied to the email
    field, keeps the email, never reaches the callback, and the right password then works."""
    admin = server.admins["adminA"]
    page.goto(authorize_url(server, browser_client, "wrong-pw"))
    sign_in(page, admin["email"], "not the password at all")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Incorrect email or password.")
    expect(page.get_by_label("Email")).to_have_value(admin["email"])
    expect(page.get_by_label("Email")).to_have_attribute("aria-describedby", "login-error")
    expect(page.get_by_label("Password")).to_have_value("")
    assert not page.url.startswith(callback_url)

    page.get_by_label("Password").fill(admin["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Allow")).to_be_visible()


def test_keyboard_only_sign_in_and_allow(
    server: Server, page: Page, browser_client: dict[str, Any], callback_url: str
) -> None:
    """Tab and Enter alone reach every control and submit both forms, in a sensible order."""
    admin = server.admins["adminA"]
    page.goto(authorize_url(server, browser_client, "keyboard"))

    def focused() -> str:
        script = "(() => { const e = document.activeElement; return e.id || e.textContent.trim(); })()"
        return str(page.evaluate(script))

    assert focused() == "email", "the email field has focus on load"
    page.keyboard.type(admin["email"])
    page.keyboard.press("Tab")
    assert focused() == "password"
    page.keyboard.type(admin["password"])
    page.keyboard.press("Tab")
    assert focused() == "Sign in"
    page.keyboard.press("Enter")

    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    page.keyboard.press("Tab")
    assert focused() == "Allow", "Allow is the first control on the consent page"
    page.keyboard.press("Tab")
    assert focused() == "Deny"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    params = landed(page, callback_url)
    assert params["state"] == ["keyboard"]
    assert len(params["code"][0]) >= 32
