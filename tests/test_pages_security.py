"""SECURITY.md section L for our HTML pages (L-01, L-02, L-03, L-06, L-13, L-14) and O-03
(CR/LF in state), over HTTP against the real server; plus one headless-browser check that
the login page will not render inside an attacker's frame (L-01)."""

from __future__ import annotations

import html
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import markupsafe
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Frame, sync_playwright

from tests.support.asserts import assert_err_redirect, assert_error_page
from tests.support.flow import (
    CONSENT_FORM,
    LOGIN_FORM,
    Browser,
    auth_params,
    authz,
    encode,
    get_authorize,
    hidden_fields,
    query_of,
)
from tests.support.server import Server, destroy_server, make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS = "<svg onload=alert(1)>"
INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
PAGE_ROUTES = ["/auth/oauth/authorize", "/auth/login", "/auth/oauth/consent", "/auth/logout"]


@pytest.fixture(scope="module")
def pages(server: Server) -> Iterator[dict[str, httpx.Response]]:
    """One of every HTML page we serve: login (fresh and after a failed sign-in), consent (from
    the login redirect and straight from authorize), the error page, the CSRF refusal, the
    too-long-request page, and the signed-out page."""
    browser = Browser.open(server)
    found: dict[str, httpx.Response] = {}
    try:
        found["login"] = browser.authorize(auth_params(server))
        found["login_failed"] = browser.login(found["login"], "adminA", password="wrong password")
        found["consent"] = browser.consent_page(browser.login(found["login"], "adminA"))
        found["consent_direct"] = browser.authorize(auth_params(server))
        found["error"] = get_authorize(server, authz(server, redirect_uri="https://evil.test/cb"))
        found["forbidden"] = browser.http.post("/auth/oauth/consent", data={"decision": "allow"})
        found["too_long"] = get_authorize(server, authz(server, state="y" * 17_000))
        csrf = hidden_fields(found["consent"].text)["csrf_token"]
        found["signed_out"] = browser.http.post("/auth/logout", data={"csrf_token": csrf})
        yield found
    finally:
        browser.close()


def test_pages_fixture_collects_what_it_says(pages: dict[str, httpx.Response]) -> None:
    """L-01, L-03, L-13 (precondition): each page below really is the page it is named for."""
    assert pages["login"].status_code == 200 and LOGIN_FORM in pages["login"].text
    assert pages["login_failed"].status_code == 200 and "Incorrect email or password." in pages["login_failed"].text
    assert pages["consent"].status_code == 200 and CONSENT_FORM in pages["consent"].text
    assert pages["consent_direct"].status_code == 200 and CONSENT_FORM in pages["consent_direct"].text
    assert_error_page(pages["error"])
    assert_error_page(pages["forbidden"], status=403)
    assert_error_page(pages["too_long"], status=414)
    assert pages["signed_out"].status_code == 200 and "signed out" in pages["signed_out"].text.lower()
    for response in pages.values():
        assert response.headers["content-type"].startswith("text/html")


def _directives(csp: str) -> dict[str, str]:
    parts = (p.strip().split(None, 1) for p in csp.split(";") if p.strip())
    return {p[0].lower(): (p[1] if len(p) > 1 else "") for p in parts}


def test_L01_every_page_forbids_framing(pages: dict[str, httpx.Response]) -> None:
    """L-01: every HTML response carries CSP frame-ancestors 'none' and X-Frame-Options: DENY."""
    for name, response in pages.items():
        csp = _directives(response.headers["content-security-policy"])
        assert csp["frame-ancestors"] == "'none'", name
        assert response.headers["x-frame-options"] == "DENY", name


def test_L01_redirects_and_json_errors_forbid_framing_too(server: Server) -> None:
    """L-01: responses that are not pages (an error redirect, a 405) carry X-Frame-Options too."""
    redirect = get_authorize(server, authz(server, response_type="token"))
    assert redirect.status_code == 303 and redirect.headers["x-frame-options"] == "DENY"
    refused = httpx.request("PUT", f"{server.base_url}/auth/login", timeout=30)
    assert refused.status_code == 405 and refused.headers["x-frame-options"] == "DENY"


def test_L03_security_headers_on_every_page(pages: dict[str, httpx.Response]) -> None:
    """L-03: nosniff, Referrer-Policy: no-referrer, Cross-Origin-Opener-Policy: same-origin, and a CSP
    that allows no script at all (default-src 'none', no script-src, no 'unsafe-inline'), no
    plugins (object-src falls back to 'none') and base-uri 'none'. (HSTS is checked on the https
    server in test_L02_L03_https_cookie_and_hsts.)"""
    for name, response in pages.items():
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["cross-origin-opener-policy"] == "same-origin", name
        csp_header = headers["content-security-policy"]
        csp = _directives(csp_header)
        assert csp["default-src"] == "'none'", name
        assert "script-src" not in csp and csp.get("object-src", "'none'") == "'none'", name
        assert csp["base-uri"] == "'none'", name
        assert "unsafe-inline" not in csp_header and "unsafe-eval" not in csp_header, name
        assert "<script" not in response.text.lower() and not INLINE_HANDLER.search(response.text), name


def test_L03_form_action_limited_to_self_and_the_registered_client(pages: dict[str, httpx.Response]) -> None:
    """L-03: forms may post only to us (and follow the redirect to the client's registered origin)."""
    for name in ("login", "consent"):
        actions = _directives(pages[name].headers["content-security-policy"])["form-action"].split()
        assert actions == ["'self'", "https://app.a.test"], (name, actions)
    assert _directives(pages["error"].headers["content-security-policy"])["form-action"] == "'self'"


def test_L13_pages_are_not_cached(pages: dict[str, httpx.Response]) -> None:
    """L-13: login, consent, error and sign-out pages carry Cache-Control: no-store."""
    for name, response in pages.items():
        directives = {d.strip() for d in response.headers["cache-control"].lower().split(",")}
        assert "no-store" in directives, name


def _cookie_attributes(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    first, *rest = [part.strip() for part in set_cookie.split(";")]
    name, _, value = first.partition("=")
    attributes = {}
    for item in rest:
        key, _, val = item.partition("=")
        attributes[key.strip().lower()] = val.strip()
    return name, value, attributes


def _session_cookies(response: httpx.Response) -> list[tuple[str, str, dict[str, str]]]:
    return [_cookie_attributes(h) for h in response.headers.get_list("set-cookie")]


def test_L02_cookie_attributes_on_plain_http(server: Server) -> None:
    """L-02: with an http:// public URL (development), the session cookie is openxp_session with
    HttpOnly, SameSite=Lax, Path=/ and no Domain; Secure and the __Host- prefix need https and are
    checked on the https server below. Holds for the pre-login, post-login and sign-out cookies."""
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server))
        logged_in = browser.login(page, "adminA")
        consent = browser.consent_page(logged_in)
        signed_out = browser.http.post("/auth/logout", data={"csrf_token": hidden_fields(consent.text)["csrf_token"]})
        for response in (page, logged_in, signed_out):
            cookies = _session_cookies(response)
            assert len(cookies) == 1, cookies
            name, _, attributes = cookies[0]
            assert name == "openxp_session"
            assert "httponly" in attributes and attributes["samesite"].lower() == "lax"
            assert attributes["path"] == "/" and "domain" not in attributes
            assert "secure" not in attributes
        assert len(_session_cookies(page)[0][1]) >= 43  # 256 random bits
        assert _session_cookies(signed_out)[0][1] in ("", '""')
    finally:
        browser.close()


@pytest.fixture(scope="module")
def https_server() -> Iterator[Server]:
    """A second server whose public URL is https://cxp.test (it still listens on plain http)."""
    srv = make_server(extra_env={"OPENXP_PUBLIC_URL": "https://cxp.test"}, provision=False)
    try:
        srv.tenants["a"] = srv.cli_json("tenant", "create", "a")["name"]
        srv.clients["c1"] = srv.cli_json(
            "client", "create", "--tenant", "a", "--name", "Client c1", "--redirect-uri", "https://app.a.test/cb"
        )
        password = "https server admin password"
        email = "admin-https@example.com"
        srv.cli("admin", "create", "--tenant", "a", "--email", email, "--password-stdin", stdin=password + "\n")
        srv.admins["adminA"] = {"email": email, "password": password}
        yield srv
    finally:
        destroy_server(srv)


def test_L02_L03_https_cookie_and_hsts(https_server: Server) -> None:
    """L-02: behind an https public URL the session cookie is __Host-openxp_session; Secure; HttpOnly;
    SameSite=Lax; Path=/; no Domain, before and after login. L-03: HSTS max-age >= 1 year with
    includeSubDomains. (httpx keeps Secure cookies off plain http, so the test sends it by hand.)"""
    srv = https_server
    with httpx.Client(base_url=srv.base_url, timeout=30) as http:
        page = http.get("/auth/oauth/authorize", params=auth_params(srv))
        assert page.status_code == 200 and LOGIN_FORM in page.text
        hsts = {d.strip().lower() for d in page.headers["strict-transport-security"].split(";")}
        max_age = next(int(d.split("=", 1)[1]) for d in hsts if d.startswith("max-age="))
        assert max_age >= 31536000 and "includesubdomains" in hsts
        [(name, value, attributes)] = _session_cookies(page)
        creds = srv.admins["adminA"]
        logged_in = http.post(
            "/auth/login",
            data={**hidden_fields(page.text), "email": creds["email"], "password": creds["password"]},
            headers={"cookie": f"{name}={value}", "origin": "https://cxp.test"},
        )
        assert logged_in.status_code == 303, logged_in.text
        for response in (page, logged_in):
            [(name, value, attributes)] = _session_cookies(response)
            assert name == "__Host-openxp_session"
            assert "secure" in attributes and "httponly" in attributes
            assert attributes["samesite"].lower() == "lax"
            assert attributes["path"] == "/" and "domain" not in attributes
        # Our own Origin is accepted; a look-alike is not.
        foreign = http.post(
            "/auth/login",
            data={**hidden_fields(page.text), "email": creds["email"], "password": creds["password"]},
            headers={"cookie": f"{name}={value}", "origin": "http://cxp.test"},
        )
        assert foreign.status_code == 403


def test_L06_reflected_values_are_escaped(server: Server) -> None:
    """L-06: <svg onload=alert(1)> in client_id, redirect_uri, state, scope, error_description, an
    unknown parameter, and the email field is never reflected unescaped; in an error redirect it
    is percent-encoded."""
    bad_client = get_authorize(server, authz(server, client_id=XSS))
    assert_error_page(bad_client, absent=("<svg",))
    bad_uri = get_authorize(server, authz(server, redirect_uri=f"https://app.a.test/cb?{XSS}"))
    assert_error_page(bad_uri, absent=("<svg",))
    page = get_authorize(server, [*authz(server, state=XSS), ("error_description", XSS), ("extra", XSS)])
    assert page.status_code == 200 and LOGIN_FORM in page.text and "<svg" not in page.text
    redirected = get_authorize(server, authz(server, scope=XSS, state=XSS))
    assert_err_redirect(server, redirected, "invalid_scope", state=XSS)
    location = redirected.headers["location"]
    assert "<" not in location and ">" not in location and " " not in location
    assert "<svg" not in redirected.text

    browser = Browser.open(server)
    try:
        login = browser.authorize(auth_params(server))
        email = '"><svg onload=alert(1)>@example.com'
        failed = browser.http.post(
            "/auth/login", data={**hidden_fields(login.text), "email": email, "password": "wrong password"}
        )
        assert failed.status_code == 200 and "<svg" not in failed.text
        assert f'value="{markupsafe.escape(email)}"' in failed.text
    finally:
        browser.close()


@pytest.mark.parametrize("method", ["TRACE", "TRACK", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_L14_unexpected_methods_are_405(server: Server, method: str) -> None:
    """L-14: TRACE and every method a page route does not serve answer 405 with Allow, and nothing
    of the request (a probe header, a cookie) is echoed back (no XST). TRACK is no registered HTTP
    method: uvicorn's parser (llhttp) refuses it with 400 before the application sees it."""
    for path in PAGE_ROUTES:
        response = httpx.request(
            method,
            f"{server.base_url}{path}",
            headers={"X-Probe": "probe-value-l14", "Cookie": "openxp_session=probe-cookie-l14"},
            timeout=30,
        )
        assert "probe-value-l14" not in response.text and "probe-cookie-l14" not in response.text
        if method == "TRACK":
            assert response.status_code == 400, (path, response.status_code)
            continue
        assert response.status_code == 405, (method, path, response.status_code)
        assert response.headers["allow"], (method, path)
        assert method not in response.headers["allow"]


def test_L14_get_on_post_only_routes_is_405(server: Server) -> None:
    """L-14: the login and sign-out forms accept POST only (GET and HEAD are 405)."""
    for path in ("/auth/login", "/auth/logout"):
        for method in ("GET", "HEAD"):
            response = httpx.request(method, f"{server.base_url}{path}", timeout=30)
            assert response.status_code == 405, (method, path)
            assert response.headers["allow"] == "POST"


def _no_injected_header(response: httpx.Response) -> None:
    for name, value in response.headers.multi_items():
        assert "\r" not in value and "\n" not in value, name
    assert not any(c.lower().startswith("a=") for c in response.headers.get_list("set-cookie"))
    assert "a" not in response.cookies


def test_O03_crlf_in_state_is_percent_encoded_in_location(server: Server) -> None:
    """O-03: state=x\\r\\nSet-Cookie: a=b comes back percent-encoded inside Location, on the error
    redirect and on the success redirect, and no header is injected."""
    state = "x\r\nSet-Cookie: a=b"
    encoded = quote(state, safe="")
    error = get_authorize(server, authz(server, response_type="token", state=state))
    assert_err_redirect(server, error, "unsupported_response_type", state=state)
    assert f"state={encoded}" in error.headers["location"]
    _no_injected_header(error)

    browser = Browser.open(server)
    try:
        success = browser.approve(auth_params(server, state=state))
        assert success.status_code == 303
        location = success.headers["location"]
        assert f"state={encoded}" in location and "%0D%0A" in location
        assert query_of(location)["state"] == [state]
        _no_injected_header(success)
        assert "a" not in browser.http.cookies
    finally:
        browser.close()


def test_O03_crlf_in_state_raw_on_the_wire(server: Server) -> None:
    """O-03: the same, checked on the raw response bytes (no client-side header parsing):
    exactly one Location line and no Set-Cookie line for a=b."""
    url = httpx.URL(server.base_url)
    query = encode(authz(server, response_type="token", state="x\r\nSet-Cookie: a=b\r\nX-Injected: 1"))
    request = f"GET /auth/oauth/authorize?{query} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nConnection: close\r\n\r\n"
    with socket.create_connection((url.host, url.port), timeout=30) as sock:
        sock.sendall(request.encode("ascii"))
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    assert lines[0].startswith("HTTP/1.1 303")
    names = [line.split(":", 1)[0].lower() for line in lines[1:]]
    assert names.count("location") == 1
    assert "x-injected" not in names
    assert not any(line.lower().startswith("set-cookie: a=") for line in lines)


def test_L01_login_page_does_not_render_in_an_attacker_frame(server: Server) -> None:
    """L-01 smoke test in headless Chromium: an attacker page that frames our login page does not
    get our form rendered inside its frame; a control frame on the same page does render a form,
    and the login page renders normally at top level."""
    if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
        pytest.skip(f"{CHROMIUM} is not installed (CI=true makes this a failure)")

    url = f"{server.base_url}/auth/oauth/authorize?{encode(authz(server))}"
    attacker = (
        "<!doctype html><html><body><h1>Win a prize</h1>"
        f'<iframe id="victim" src="{html.escape(url)}" width="600" height="400"></iframe>'
        '<iframe id="control" srcdoc="<form><input name=password type=password></form>"></iframe>'
        "</body></html>"
    )

    def has_password_field(frame: Frame) -> bool:
        try:
            return frame.query_selector("input[name=password]") is not None
        except PlaywrightError:
            return False  # e.g. Chromium's own error page for a blocked frame

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page()
            page.goto(url)
            assert page.locator("input[name=password]").count() == 1

            page.set_content(attacker)
            page.wait_for_timeout(500)
            control = page.query_selector("#control")
            victim = page.query_selector("#victim")
            assert control is not None and victim is not None
            control_frame, victim_frame = control.content_frame(), victim.content_frame()
            assert control_frame is not None and has_password_field(control_frame)
            assert victim_frame is None or not has_password_field(victim_frame)
            for frame in page.frames:
                if frame is not page.main_frame and frame is not control_frame:
                    assert not has_password_field(frame), frame.url
        finally:
            chromium.close()
