"""Catalogue cases that had no test of their own (docs/security.md lists them): L-04 (our pages load
nothing from another origin), P-04 (no token in any URL the authorization server produces), P-05
(pages that carry a code or a request in their URL send no Referer), Q-04 (an LRS key's rotation and
disabling take effect at once) and M-07 (credentials come from ``secrets`` only), over HTTP against
the real server, plus one source gate."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from openxp import crypto
from tests.support.flow import (
    CONSENT_FORM,
    Browser,
    auth_params,
    authz,
    code_body,
    get_authorize,
    hidden_fields,
    pkce_pair,
    query_of,
    refresh_body,
)
from tests.support.server import Server
from tests.xapi.lrs import xapi

OPENXP_SRC = Path(__file__).resolve().parents[1] / "openxp"
# Attributes through which a page makes the browser fetch something by itself (links the user
# clicks are not loads, so <a href> is left out).
_LOADS = {
    "link": ("href",),
    "script": ("src",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "input": ("src",),
}


class _Resources(HTMLParser):
    """Every URL a page asks the browser to load, and every inline style (which could url() one)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in _LOADS.get(tag, ()):
            if values.get(name):
                self.urls.extend(part.split()[0] for part in values[name].split(",") if part.strip())
        if values.get("style"):
            self.styles.append(values["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def _resources(page: httpx.Response) -> _Resources:
    parser = _Resources()
    parser.feed(page.text)
    return parser


def _same_origin(base: str, url: str) -> bool:
    page, target = urlsplit(base), urlsplit(urljoin(base, url))
    return (target.scheme, target.netloc) == (page.scheme, page.netloc)


@pytest.fixture(scope="module")
def demo_client(server: Server) -> Iterator[str]:
    """A tenant-a client whose redirect URI is our own demo callback, so the page that carries a real
    code in its URL (the quick start's landing page) can be fetched."""
    created = server.cli_json(
        "client", "create", "--tenant", "a", "--name", "Demo P-05", "--redirect-uri", f"{server.base_url}/demo/callback"
    )
    key = f"demo-{created['client_id']}"
    server.clients[key] = created
    yield key
    del server.clients[key]
    server.cli("client", "delete", "--tenant", "a", created["client_id"], check=False)


@pytest.fixture(scope="module")
def pages(server: Server, demo_client: str) -> Iterator[dict[str, httpx.Response]]:
    """The pages a browser meets on the way through an authorization: login, a failed login, consent,
    the error page, the demo callback with a code in its URL, and the signed-out page."""
    browser = Browser.open(server)
    found: dict[str, httpx.Response] = {}
    try:
        found["login"] = browser.authorize(auth_params(server, demo_client))
        found["login_failed"] = browser.login(found["login"], "adminA", password="wrong password")
        found["consent"] = browser.consent_page(browser.login(found["login"], "adminA"))
        found["redirect"] = browser.decide(found["consent"])
        found["callback"] = browser.http.get(found["redirect"].headers["location"])
        found["error"] = get_authorize(server, authz(server, redirect_uri="https://evil.test/cb"))
        consent = browser.authorize(auth_params(server, demo_client))
        csrf = hidden_fields(consent.text)["csrf_token"]
        found["signed_out"] = browser.http.post("/auth/logout", data={"csrf_token": csrf})
        yield found
    finally:
        browser.close()


def test_L04_pages_load_nothing_from_another_origin(server: Server, pages: dict[str, httpx.Response]) -> None:
    """L-04: login, consent, error, callback and signed-out pages load styles, scripts, fonts and images
    only from our own origin: every resource URL in the page is same-origin, no inline style can url()
    anything, the stylesheet itself imports nothing, and the CSP allows no other host to be fetched."""
    assert CONSENT_FORM in pages["consent"].text and "code=" in str(pages["callback"].url)
    loaded = 0
    for name, page in pages.items():
        if not page.headers.get("content-type", "").startswith("text/html"):
            continue
        found = _resources(page)
        foreign = [url for url in found.urls if not _same_origin(str(page.url), url)]
        assert foreign == [], (name, foreign)
        assert not any("url(" in style or "@import" in style for style in found.styles), name
        loaded += len(found.urls)
        for directive in page.headers["content-security-policy"].split(";"):
            parts = directive.split()
            if parts and parts[0] != "form-action":
                assert set(parts[1:]) <= {"'self'", "'none'"}, (name, directive)
    assert loaded >= 5, "every page links our stylesheet: the parse found nothing, so it proved nothing"
    css = httpx.get(f"{server.base_url}/static/openxp.css", timeout=30)
    assert css.status_code == 200
    assert "@import" not in css.text and "url(" not in css.text


def test_P05_pages_with_a_code_or_request_in_their_url_send_no_referrer(pages: dict[str, httpx.Response]) -> None:
    """P-05: the authorization request (its URL holds state and the PKCE challenge), the redirect that
    carries the code, and the callback page whose URL holds the code all tell the browser to send no
    Referer (header, and the pages also in a meta element), and load nothing from elsewhere (L-04)."""
    assert "code=" in pages["redirect"].headers["location"]
    for name in ("login", "consent", "redirect", "callback", "error"):
        assert pages[name].headers["referrer-policy"] == "no-referrer", name
    for name in ("login", "consent", "callback", "error"):
        assert '<meta name="referrer" content="no-referrer">' in pages[name].text, name


def test_P04_no_token_in_any_url_the_authorization_server_produces(server: Server) -> None:
    """P-04: through a whole flow (authorize, login, consent, code exchange, refresh, an API call, a second
    authorization that is denied, revocation) no URL the server hands out, in a Location header or in a
    page, holds an access token, a refresh token, the client secret or the PKCE verifier; the only
    credential in a URL is the code in the redirect to the client."""
    urls: list[str] = []

    def record(response: httpx.Response) -> None:
        response.read()
        urls.extend(value for name, value in response.headers.multi_items() if name.lower() in ("location", "link"))
        if response.headers.get("content-type", "").startswith("text/html"):
            urls.extend(_resources(response).urls)
            urls.extend(url for url in _hrefs(response.text))

    browser = Browser.open(server)
    browser.http.event_hooks["response"] = [record]
    verifier, challenge = pkce_pair()
    c1 = server.clients["c1"]
    try:
        final = browser.approve(auth_params(server, "c1", code_challenge=challenge, code_challenge_method="S256"))
        assert final.status_code == 303
        code = query_of(final.headers["location"])["code"][0]
        issued = browser.http.post("/auth/oauth/token", json=code_body(server, code, code_verifier=verifier))
        assert issued.status_code == 200, issued.text
        first = issued.json()
        rotated = browser.http.post("/auth/oauth/token", json=refresh_body(server, first["refresh_token"]))
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()
        me = browser.http.get(
            "/api/auth/me", headers={"authorization": f"Bearer {second['access_token']}", "X-CXP-Tenant": "a"}
        )
        assert me.status_code == 200, me.text
        denied = browser.approve(auth_params(server, "c1"), decision="deny")
        assert denied.status_code == 303 and "error=access_denied" in denied.headers["location"]
        revoked = browser.http.post(
            "/auth/oauth/revoke",
            data={"token": second["refresh_token"], "client_id": c1["client_id"], "client_secret": c1["client_secret"]},
        )
        assert revoked.status_code == 200
    finally:
        browser.close()

    secrets_seen = [
        first["access_token"],
        first["refresh_token"],
        second["access_token"],
        second["refresh_token"],
        c1["client_secret"],
        verifier,
    ]
    redirects = [url for url in urls if url.startswith(c1["redirect_uris"][0])]
    assert len(redirects) == 2, urls
    leaked = [url for url in urls for value in secrets_seen if value in url]
    assert leaked == [], leaked
    assert not any(
        prefix in url for url in urls for prefix in (crypto.ACCESS_TOKEN_PREFIX, crypto.REFRESH_TOKEN_PREFIX)
    )
    for url in redirects:
        assert set(query_of(url)) <= {"code", "state", "iss", "error", "error_description"}, url
        assert urlsplit(url).fragment == "", url


def _hrefs(html: str) -> Iterator[str]:
    """Links and form targets in a page (what a user could follow or submit)."""

    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            for name, value in attrs:
                if name in ("href", "action", "formaction") and value:
                    self.found.append(value)

    parser = Links()
    parser.feed(html)
    yield from parser.found


def test_Q04_lrs_key_rotation_and_disabling_take_effect_at_once(server: Server) -> None:
    """Q-04 (as Q-01, for an LRS key): after `apikey rotate` the old secret is refused on the next request
    and the new one works, the database holds only the new secret's digest; after `apikey disable` the
    key is refused whatever secret it presents."""
    key = server.cli_json("apikey", "create", "--tenant", "a", "--name", "Q04")
    probe = {"limit": "1"}
    assert xapi(server, "GET", "/statements", key, params=probe).status_code == 200
    rotated = server.cli_json("apikey", "rotate", "--tenant", "a", key["key"])
    assert rotated["secret"] != key["secret"]
    assert xapi(server, "GET", "/statements", key, params=probe).status_code == 401
    fresh = {**key, "secret": rotated["secret"]}
    assert xapi(server, "GET", "/statements", fresh, params=probe).status_code == 200
    (stored,) = server.sql("SELECT secret_hash FROM api_keys WHERE key = :key", {"key": key["key"]})
    assert stored[0] == crypto.digest(rotated["secret"]) and stored[0] != crypto.digest(key["secret"])
    server.cli("apikey", "disable", "--tenant", "a", key["key"])
    assert xapi(server, "GET", "/statements", fresh, params=probe).status_code == 401


def test_M07_credentials_come_from_secrets_only() -> None:
    """M-07 (gate): no module of openxp imports ``random`` (not a CSPRNG), and uuid4 is used only for
    xAPI statement ids (which xAPI defines as UUIDs and which are no credential). Every credential
    comes from ``crypto.random_token`` (``secrets.token_urlsafe``, 256 bits; C-01 and F-16 check the
    handed-out values)."""
    offenders = []
    uuid_users = set()
    for path in OPENXP_SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(alias.name == "random" for alias in node.names):
                offenders.append(str(path.relative_to(OPENXP_SRC)))
            if isinstance(node, ast.ImportFrom) and node.module == "random":
                offenders.append(str(path.relative_to(OPENXP_SRC)))
            if isinstance(node, ast.Attribute) and node.attr in ("uuid1", "uuid4"):
                uuid_users.add(str(path.relative_to(OPENXP_SRC)))
    assert offenders == [], offenders
    assert uuid_users <= {"xapi/statements.py"}, uuid_users
    assert "secrets.token_urlsafe" in (OPENXP_SRC / "crypto.py").read_text(encoding="utf-8")
