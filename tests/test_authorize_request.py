"""SECURITY.md section A: validation of ``GET /auth/oauth/authorize`` (A-01..A-25),
over HTTP against the real server.

ERROR-PAGE and ERR-REDIRECT are the shorthands of SECURITY.md section 0; the
helpers in ``tests/support/asserts.py`` check them in full.
"""

from __future__ import annotations

import subprocess
from urllib.parse import quote

import httpx
import pytest

from tests.support.asserts import assert_err_redirect, assert_error_page
from tests.support.flow import (
    CONSENT_FORM,
    LOGIN_FORM,
    Browser,
    auth_params,
    authz,
    get_authorize,
    hidden_fields,
    query_of,
)
from tests.support.provision import create_client
from tests.support.records import code_count
from tests.support.server import Server, backend

# RFC 7636 appendix B's S256 challenge: well-formed, so only the parameter under test is wrong.
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def try_register(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """`openxp client create` in tenant a, which may be refused."""
    return server.cli("client", "create", "--tenant", "a", "--name", "Registration test", "--json", *args, check=False)


def client_count(server: Server) -> int:
    return int(server.sql("SELECT COUNT(*) FROM clients")[0][0])


# ---- client_id and redirect_uri: ERROR-PAGE ------------------------------------------------------


def test_A01_unknown_client_with_attacker_redirect_uri_gets_error_page(server: Server) -> None:
    """A-01: an unknown client_id with an attacker's redirect_uri shows our error page:
    no redirect, no error=invalid_client anywhere, no login page, no code."""
    before = code_count(server)
    for client_id in ("nope", "nope" * 20, "c1", "' OR '1'='1", "<svg onload=alert(1)>", "a\x00b"):
        response = get_authorize(server, authz(server, client_id=client_id, redirect_uri="https://evil.test/cb"))
        assert_error_page(response, absent=("evil.test", "invalid_client"))
    assert code_count(server) == before


def test_A02_missing_or_empty_client_id_gets_error_page(server: Server) -> None:
    """A-02: without client_id (or with an empty one) there is no client to trust: ERROR-PAGE."""
    before = code_count(server)
    assert_error_page(get_authorize(server, authz(server, drop=["client_id"])), absent=("app.a.test",))
    assert_error_page(get_authorize(server, authz(server, client_id="")), absent=("app.a.test",))
    assert code_count(server) == before


def test_A03_disabled_and_deleted_clients_get_error_page(server: Server) -> None:
    """A-03: a client an operator disabled, or deleted, is treated as unknown: ERROR-PAGE.
    Each client works before it is disabled/deleted (so the test can fail)."""
    for action in ("disable", "delete"):
        client = create_client(server, f"A03{action}", name=f"Client A03{action}")
        pairs = [
            ("response_type", "code"),
            ("client_id", client["client_id"]),
            ("redirect_uri", client["redirect_uris"][0]),
            ("state", "st-123"),
        ]
        works = get_authorize(server, pairs)
        assert works.status_code == 200 and LOGIN_FORM in works.text
        server.cli("client", action, "--tenant", "a", client["client_id"])
        before = code_count(server)
        assert_error_page(get_authorize(server, pairs), absent=(client["redirect_uris"][0],))
        assert code_count(server) == before


def test_A04_redirect_uri_on_another_host_gets_error_page(server: Server) -> None:
    """A-04: c1 with redirect_uri https://evil.test/cb: ERROR-PAGE, never a redirect there."""
    before = code_count(server)
    assert_error_page(get_authorize(server, authz(server, redirect_uri="https://evil.test/cb")), absent=("evil.test",))
    assert code_count(server) == before


A05_VALUES = [
    "https://app.a.test/cb/",
    "https://app.a.test/cbx",
    "https://app.a.test/cb/evil",
    "https://app.a.test/cb/../evil",
    "https://app.a.test/cb/..;/evil",
    "https://app.a.test/cb%2F..%2Fevil",
    "https://app.a.test/cb?",
    "https://app.a.test/cb#",
    "https://app.a.test/c%62",
]


@pytest.mark.parametrize("redirect_uri", A05_VALUES)
def test_A05_prefix_and_path_tricks_get_error_page(server: Server, redirect_uri: str) -> None:
    """A-05: simple string comparison: no prefix match, no path normalisation, no decoding."""
    before = code_count(server)
    assert_error_page(get_authorize(server, authz(server, redirect_uri=redirect_uri)), absent=("app.a.test",))
    assert code_count(server) == before


A06_VALUES = [
    "https://app.a.test.evil.test/cb",
    "https://evil.test/https://app.a.test/cb",
    "https://app.a.test@evil.test/cb",
    "https://app.a.test%40evil.test/cb",
    "https://a@b@evil.test/cb",
    "https://evil.test\\@app.a.test/cb",
    "https://evil.test#@app.a.test/cb",
    "https://app.a.test:443/cb",
    "https://app.a.test./cb",
    "https://app.a.t\u0435st/cb",  # Cyrillic U+0435 in place of the Latin e
    "//app.a.test/cb",
    "https:app.a.test/cb",
    "/cb",
]


@pytest.mark.parametrize("redirect_uri", A06_VALUES)
def test_A06_host_and_authority_tricks_get_error_page(server: Server, redirect_uri: str) -> None:
    """A-06: user-info, look-alike hosts, explicit default port, trailing dot, scheme-relative,
    scheme without slashes and relative URIs are all different strings: ERROR-PAGE."""
    before = code_count(server)
    assert_error_page(
        get_authorize(server, authz(server, redirect_uri=redirect_uri)), absent=("app.a.test", "evil.test")
    )
    assert code_count(server) == before


@pytest.mark.parametrize("redirect_uri", ["https://APP.a.test/cb", "https://app.a.test/CB", "HTTPS://app.a.test/cb"])
def test_A07_case_variants_get_error_page(server: Server, redirect_uri: str) -> None:
    """A-07: byte-exact comparison, no case folding of scheme, host or path."""
    before = code_count(server)
    assert_error_page(get_authorize(server, authz(server, redirect_uri=redirect_uri)), absent=(redirect_uri,))
    assert code_count(server) == before


def _a08_queries(server: Server) -> list[str]:
    client_id = server.clients["c1"]["client_id"]
    rest = f"response_type=code&client_id={client_id}&state=st-123"
    good = "https://app.a.test/cb"
    values = [good + " ", good + "%20", good + "\r\n", good + "\r\nSet-Cookie: a=b", good + "\x00", good + "\t"]
    queries = [f"{rest}&redirect_uri={quote(v, safe='')}" for v in values]
    queries += [
        # Double-encoded: decodes once to https%3A%2F%2Fapp.a.test%2Fcb, never to the registered URI.
        f"{rest}&redirect_uri=https%253A%252F%252Fapp.a.test%252Fcb",
        # Overlong and invalid UTF-8 after percent-decoding.
        f"{rest}&redirect_uri=https%3A%2F%2Fapp.a.test%2Fcb%C0%AF",
        f"{rest}&redirect_uri=https%3A%2F%2Fapp.a.test%2Fcb%FF",
        f"{rest}&redirect_uri=https%3A%2F%2Fapp.a.test%2Fc%E2%82",
    ]
    return queries


def test_A08_encoding_and_control_characters_get_error_page(server: Server) -> None:
    """A-08: trailing space, a literal %20, CR/LF, NUL, tab, double encoding and invalid UTF-8
    in redirect_uri: ERROR-PAGE, and no Location header at all (so none with CR/LF)."""
    before = code_count(server)
    for query in _a08_queries(server):
        response = get_authorize(server, query)
        assert_error_page(response, absent=("app.a.test",))
        assert "a" not in response.cookies
    assert code_count(server) == before


def test_A09_query_component_must_match_exactly(server: Server, admin_browser: Browser) -> None:
    """A-09: a query added (c1) or changed/removed (cq) is ERROR-PAGE; cq's exact registered
    URI succeeds, and code/state/iss are appended with & while x=1 is kept."""
    before = code_count(server)
    assert_error_page(get_authorize(server, authz(server, redirect_uri="https://app.a.test/cb?x=1")))
    assert_error_page(get_authorize(server, authz(server, "cq", redirect_uri="https://app.a.test/cb?x=2")))
    assert_error_page(get_authorize(server, authz(server, "cq", redirect_uri="https://app.a.test/cb")))
    assert_error_page(get_authorize(server, authz(server, "cq", redirect_uri="https://app.a.test/cb?x=1&x=1")))
    assert code_count(server) == before

    response = admin_browser.approve(auth_params(server, "cq"))
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("https://app.a.test/cb?x=1&code="), location
    params = query_of(location)
    assert params["x"] == ["1"] and len(params["code"]) == 1
    assert params["state"] == ["st-123"] and params["iss"] == [server.base_url]


def test_A10_fragment_in_redirect_uri_refused_at_request_and_registration(server: Server) -> None:
    """A-10: a redirect_uri with a fragment is ERROR-PAGE; registering one is refused by the CLI
    (our admin console) and creates nothing."""
    assert_error_page(get_authorize(server, authz(server, redirect_uri="https://app.a.test/cb#frag")))
    clients = client_count(server)
    refused = try_register(server, "--redirect-uri", "https://a10.a.test/cb#frag")
    assert refused.returncode != 0 and refused.stdout == ""
    assert "fragment" in refused.stderr
    assert client_count(server) == clients


A11_REGISTRATIONS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "http://app.a.test/cb",
    "HTTPS://app.a.test/cb",
    "https://user@app.a.test/cb",
]


def test_A11_scheme_downgrade_and_dangerous_schemes_refused(server: Server) -> None:
    """A-11: http:// for an https-registered URI is ERROR-PAGE; registering javascript:, data:,
    vbscript:, file:, plain http on a non-loopback host (and other non-canonical forms) is
    refused by the CLI, which stands in for the admin console here."""
    before = code_count(server)
    assert_error_page(get_authorize(server, authz(server, redirect_uri="http://app.a.test/cb")))
    assert code_count(server) == before
    clients = client_count(server)
    for uri in A11_REGISTRATIONS:
        refused = try_register(server, "--redirect-uri", uri)
        assert refused.returncode != 0 and refused.stdout == "", uri
        assert "error:" in refused.stderr, uri
    assert client_count(server) == clients
    # The loopback exception exists (cp is registered with http://127.0.0.1:9/cb).
    assert server.clients["cp"]["redirect_uris"] == ["http://127.0.0.1:9/cb"]


def test_A12_missing_redirect_uri_is_error_page_for_every_client(server: Server) -> None:
    """A-12: our decision D3: redirect_uri is always required, so its absence is ERROR-PAGE
    both for cm (two registered URIs) and for c1 (one registered URI)."""
    before = code_count(server)
    for client in ("cm", "c1"):
        assert_error_page(get_authorize(server, authz(server, client, drop=["redirect_uri"])), absent=("app.a.test",))
        assert_error_page(get_authorize(server, authz(server, client, redirect_uri="")), absent=("app.a.test",))
    assert code_count(server) == before


def test_A13_duplicated_parameters(server: Server) -> None:
    """A-13: a duplicated client_id or redirect_uri is ERROR-PAGE (in both orders, even when both
    copies are equal); any other duplicate is ERR-REDIRECT(invalid_request). With state sent
    twice there is no single state to echo, so the error carries none."""
    before = code_count(server)
    base = authz(server)
    good, evil = ("redirect_uri", "https://app.a.test/cb"), ("redirect_uri", "https://evil.test/cb")
    for extra in ([good, evil], [evil, good], [good, good]):
        pairs = [p for p in base if p[0] != "redirect_uri"] + extra
        assert_error_page(get_authorize(server, pairs), absent=("evil.test",))
    client = ("client_id", server.clients["c1"]["client_id"])
    for pairs in ([*base, client], [*base, ("client_id", server.clients["c2"]["client_id"])]):
        assert_error_page(get_authorize(server, pairs))
    assert_err_redirect(server, get_authorize(server, [*base, ("response_type", "token")]), "invalid_request")
    assert_err_redirect(server, get_authorize(server, [*base, ("response_type", "code")]), "invalid_request")
    assert_err_redirect(server, get_authorize(server, [*base, ("state", "other")]), "invalid_request", state=None)
    pkce = [("code_challenge", CHALLENGE), ("code_challenge_method", "S256")]
    twice = base + pkce + [("code_challenge", CHALLENGE)]
    assert_err_redirect(server, get_authorize(server, twice), "invalid_request")
    assert_err_redirect(server, get_authorize(server, [*base, ("scope", "all"), ("scope", "all")]), "invalid_request")
    assert code_count(server) == before


def test_A14_missing_response_type_redirects_invalid_request(server: Server) -> None:
    """A-14: without response_type: ERR-REDIRECT(invalid_request) with the state echoed."""
    assert_err_redirect(server, get_authorize(server, authz(server, drop=["response_type"])), "invalid_request")


@pytest.mark.parametrize("response_type", ["token", "id_token", "code token", "code id_token", "CODE", "none"])
def test_A15_unsupported_response_type_redirects(server: Server, response_type: str) -> None:
    """A-15: only response_type=code: ERR-REDIRECT(unsupported_response_type), never a token
    (and never a fragment)."""
    response = get_authorize(server, authz(server, response_type=response_type))
    params = assert_err_redirect(server, response, "unsupported_response_type")
    assert "token" not in " ".join(params)


def test_A15_empty_response_type_is_missing(server: Server) -> None:
    """A-15 (empty value): RFC 6749 3.1 treats a parameter without a value as omitted, so an
    empty response_type is the missing-parameter case: ERR-REDIRECT(invalid_request)."""
    assert_err_redirect(server, get_authorize(server, authz(server, response_type="")), "invalid_request")


def test_A16_other_errors_with_unregistered_redirect_uri_get_error_page(server: Server) -> None:
    """A-16: a bad response_type, scope or PKCE method together with an unregistered
    redirect_uri is ERROR-PAGE: nothing is ever sent to an unvalidated URI."""
    evil = "https://evil.test/cb"
    before = code_count(server)
    for overrides in (
        {"response_type": "token"},
        {"scope": "bogus"},
        {"code_challenge": CHALLENGE, "code_challenge_method": "plain"},
        {"response_mode": "fragment"},
    ):
        response = get_authorize(server, authz(server, redirect_uri=evil, **overrides))
        assert_error_page(response, absent=("evil.test",))
    assert code_count(server) == before


def test_A17_unknown_or_unallowed_scope_redirects_invalid_scope(server: Server) -> None:
    """A-17: our decision: a scope that is unknown (admin:all) or not allowed for the client
    (cs may use users/import and actors/read, not all) is ERR-REDIRECT(invalid_scope), never
    silently reduced. Allowed scopes pass (the login page is shown)."""
    assert_err_redirect(server, get_authorize(server, authz(server, scope="admin:all")), "invalid_scope")
    assert_err_redirect(server, get_authorize(server, authz(server, "cs", scope="all")), "invalid_scope", client="cs")
    mixed = authz(server, "cs", scope="users/import statements/write")
    assert_err_redirect(server, get_authorize(server, mixed), "invalid_scope", client="cs")
    allowed = get_authorize(server, authz(server, "cs", scope="users/import actors/read"))
    assert allowed.status_code == 200 and LOGIN_FORM in allowed.text


def test_A18_client_without_authorization_code_grant(server: Server) -> None:
    """A-18: registration refuses a client whose grants exclude authorization_code (so no such
    client can exist; tested through the CLI). cnr, registered without refresh_token, still uses
    the code grant. Defensively, a client whose stored grants lost authorization_code (edited in
    the database) gets ERR-REDIRECT(unauthorized_client)."""
    clients = client_count(server)
    refused = try_register(server, "--redirect-uri", "https://a18.a.test/cb", "--grant-type", "refresh_token")
    assert refused.returncode != 0 and refused.stdout == "" and "authorization_code" in refused.stderr
    assert client_count(server) == clients

    ok = get_authorize(server, authz(server, "cnr"))
    assert ok.status_code == 200 and LOGIN_FORM in ok.text

    client = create_client(server, "A18", name="Client A18")
    value = '["refresh_token"]'
    cast = "CAST(:g AS JSON)" if backend() == "postgresql" else ":g"
    server.sql(f"UPDATE clients SET grant_types = {cast} WHERE client_id = :c", {"g": value, "c": client["client_id"]})
    server.clients["A18"] = client
    try:
        response = get_authorize(server, authz(server, "A18"))
        assert_err_redirect(server, response, "unauthorized_client", client="A18")
    finally:
        del server.clients["A18"]


def test_A19_unknown_extra_parameter_is_ignored(server: Server) -> None:
    """A-19: an unrecognised parameter is ignored (RFC 6749 3.1): the login page is shown."""
    response = get_authorize(server, [*authz(server), ("extra", "foobar")])
    assert response.status_code == 200 and LOGIN_FORM in response.text
    assert "foobar" not in response.text


@pytest.mark.parametrize("mode", ["fragment", "form_post", "web_message", "QUERY"])
def test_A20_unsupported_response_mode_redirects_invalid_request(server: Server, mode: str) -> None:
    """A-20: query is the only response mode: any other is ERR-REDIRECT(invalid_request)."""
    assert_err_redirect(server, get_authorize(server, authz(server, response_mode=mode)), "invalid_request")


def test_A20_response_mode_query_is_accepted(server: Server) -> None:
    """A-20 (control): response_mode=query is the default and is accepted."""
    response = get_authorize(server, authz(server, response_mode="query"))
    assert response.status_code == 200 and LOGIN_FORM in response.text


def test_A21_iss_on_success_and_error_redirects_matches_metadata(server: Server, admin_browser: Browser) -> None:
    """A-21: RFC 9207: success and error redirects carry iss equal to the metadata issuer,
    and the metadata says so."""
    metadata = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server", timeout=30).json()
    assert metadata["issuer"] == server.base_url
    assert metadata["authorization_response_iss_parameter_supported"] is True
    success = admin_browser.approve(auth_params(server))
    assert query_of(success.headers["location"])["iss"] == [metadata["issuer"]]
    error = get_authorize(server, authz(server, response_type="token"))
    assert query_of(error.headers["location"])["iss"] == [metadata["issuer"]]
    denied = admin_browser.approve(auth_params(server), decision="deny")
    assert query_of(denied.headers["location"])["iss"] == [metadata["issuer"]]


def test_A22_user_denies_consent(server: Server, admin_browser: Browser) -> None:
    """A-22: pressing Deny is ERR-REDIRECT(access_denied) with the state echoed; no code row."""
    before = code_count(server)
    response = admin_browser.approve(auth_params(server, state="deny-me"), decision="deny")
    assert_err_redirect(server, response, "access_denied", state="deny-me")
    assert code_count(server) == before


def test_A23_redirects_after_posts_are_303(server: Server) -> None:
    """A-23: the login and consent POSTs answer 303 (never 307/308, which would re-post the
    password or the CSRF form to the client); the final redirect is 303 for allow and deny."""
    for decision in ("allow", "deny"):
        browser = Browser.open(server)
        try:
            page = browser.authorize(auth_params(server))
            logged_in = browser.login(page, "adminA")
            assert logged_in.status_code == 303
            assert logged_in.headers["location"].startswith("/auth/oauth/consent?interaction=")
            decided = browser.decide(browser.consent_page(logged_in), decision)
            assert decided.status_code == 303
            assert decided.headers["location"].startswith("https://app.a.test/cb?")
        finally:
            browser.close()


def test_A24_unauthenticated_user_sees_login_page_never_a_code(server: Server) -> None:
    """A-24: with no session the answer is our login page (200), never a redirect to the client."""
    before = code_count(server)
    response = get_authorize(server, authz(server))
    assert response.status_code == 200, response.text
    assert "location" not in response.headers
    assert LOGIN_FORM in response.text and CONSENT_FORM not in response.text
    fields = hidden_fields(response.text)
    assert fields["csrf_token"] and fields["interaction"]
    assert 'name="email"' in response.text and 'name="password"' in response.text
    assert code_count(server) == before


def test_A25_viewer_and_other_tenant_admin_cannot_approve(server: Server) -> None:
    """A-25: a viewer signs in but is sent back with ERR-REDIRECT(access_denied), never shown a
    consent form; an admin of another tenant cannot even sign in (logins are scoped to the
    client's tenant). No code either way."""
    before = code_count(server)
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server))
        response = browser.login(page, "viewerA")
        assert_err_redirect(server, response, "access_denied")
        assert CONSENT_FORM not in response.text
        # The viewer's session cannot reach a consent page for a new request either.
        again = browser.authorize(auth_params(server))
        assert again.status_code == 200 and CONSENT_FORM not in again.text
    finally:
        browser.close()
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server))
        response = browser.login(page, "adminB")
        assert response.status_code == 200
        assert "Incorrect email or password." in response.text and CONSENT_FORM not in response.text
    finally:
        browser.close()
    assert code_count(server) == before
