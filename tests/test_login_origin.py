"""Signing in from another address of the same server (http://localhost:P when the public URL is
http://127.0.0.1:P) is refused, as B-01 (c) requires, and the refusal says which address to open
instead, with a link that starts the same authorization there."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

from tests.support.flow import LOGIN_FORM, Browser, auth_params, hidden_fields
from tests.support.server import Server


def test_B01_other_origin_refusal_names_the_public_address(server: Server) -> None:
    """B-01 (c): a login post with Origin http://localhost:P is 403 with no session, and the page
    names both addresses and links to the same authorization request at the public URL."""
    port = urlsplit(server.base_url).port
    other = f"http://localhost:{port}"
    browser = Browser.open(server)
    try:
        params = auth_params(server, "c1", state="origin-st")
        page = browser.authorize(params)
        assert page.status_code == 200 and LOGIN_FORM in page.text
        creds = server.admins["adminA"]
        refused = browser.http.post(
            "/auth/login",
            data={**hidden_fields(page.text), "email": creds["email"], "password": creds["password"]},
            headers={"Origin": other},
        )
    finally:
        browser.close()
    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers and "location" not in refused.headers
    text = html.unescape(refused.text)
    assert other in text and f"open {server.base_url}/auth/oauth/authorize?" in text, text
    (link,) = re.findall(r'href="([^"]+)"', refused.text.split("<main", 1)[-1]) or [""]
    link = html.unescape(link)
    assert link.startswith(f"{server.base_url}/auth/oauth/authorize?"), refused.text
    suggested = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert suggested["client_id"] == params["client_id"]
    assert suggested["redirect_uri"] == params["redirect_uri"]
    assert suggested["state"] == "origin-st"

    fresh = Browser.open(server)
    try:
        restarted = fresh.http.get(link)
        assert restarted.status_code == 200 and LOGIN_FORM in restarted.text, restarted.text[:300]
        signed_in = fresh.login(restarted, "adminA")
        assert signed_in.status_code == 303
    finally:
        fresh.close()


def test_B01_hostile_origin_is_still_refused_without_a_link_to_its_site(server: Server) -> None:
    """B-01 (c): Origin https://evil.test stays refused (403); the page links only to our address."""
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server, "c1"))
        refused = browser.http.post(
            "/auth/login", data={**hidden_fields(page.text), "email": "x@example.com", "password": "y" * 12},
            headers={"Origin": "https://evil.test"},
        )  # fmt: skip
    finally:
        browser.close()
    assert refused.status_code == 403
    links = re.findall(r'href="([^"]+)"', refused.text)
    assert all(not link.startswith("https://evil.test") for link in links), links
