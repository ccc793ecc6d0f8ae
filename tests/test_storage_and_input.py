"""SECURITY.md section M (credential storage: M-01, M-03, M-04, M-05), section O
(input handling: O-01, O-02, O-05) and P-02 (no secrets in logs)."""

from __future__ import annotations

import ast
import base64
import json
import re
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from openxp import crypto
from openxp.store.models import metadata
from tests.support.flow import (
    Browser,
    api,
    auth_params,
    exchange,
    hidden_fields,
    pkce_pair,
    query_of,
    refresh,
    token_post,
)
from tests.support.server import PASSWORD, Server

OPENXP_SRC = Path(__file__).resolve().parents[1] / "openxp"


def dump_database(server: Server) -> str:
    """Every row of every table, as one string (M-03's DB-dump grep helper)."""
    chunks = []
    for table in metadata.sorted_tables:
        for row in server.sql(f'SELECT * FROM "{table.name}"'):
            chunks.append(f"{table.name}: " + " | ".join(repr(value) for value in row))
    return "\n".join(chunks)


# ---- M-01: password hashing -------------------------------------------------------------------------


def test_M01_passwords_are_argon2id_with_current_parameters(server: Server) -> None:
    """M-01: every stored admin password is a PHC argon2id string, v=19, m >= 19456 KiB, t >= 2, p >= 1,
    with a salt of at least 16 bytes; the fixtures share one password but no two hashes are equal."""
    rows = server.sql("SELECT email, password_hash FROM accounts")
    assert len(rows) >= 3
    phc = re.compile(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)")
    for email, stored in rows:
        match = phc.fullmatch(stored)
        assert match, (email, stored[:20])
        m, t, p = (int(match.group(i)) for i in (1, 2, 3))
        assert m >= 19456 and t >= 2 and p >= 1, (m, t, p)
        salt = base64.b64decode(match.group(4) + "=" * (-len(match.group(4)) % 4))
        assert len(salt) >= 16
        assert PASSWORD not in stored
    hashes = [stored for _, stored in rows]
    assert len(set(hashes)) == len(hashes)


# ---- M-03 / P-02: no plaintext at rest, nothing secret in logs -------------------------------------


@pytest.fixture(scope="module")
def sentinels(server: Server) -> dict[str, str]:
    """Run one full flow (login, consent, code + PKCE, exchange, refresh, API call, revocation) and return
    every secret it touched."""
    found: dict[str, str] = {
        "admin password": PASSWORD,
        "client secret c1": server.clients["c1"]["client_secret"],
        "client secret c2": server.clients["c2"]["client_secret"],
        "api secret KA": server.apikeys["KA"]["secret"],
        "api secret KB": server.apikeys["KB"]["secret"],
    }
    verifier, challenge = pkce_pair()
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server, "c1", code_challenge=challenge, code_challenge_method="S256"))
        found["csrf token (login)"] = hidden_fields(page.text)["csrf_token"]
        found["interaction (login)"] = hidden_fields(page.text)["interaction"]
        consent = browser.consent_page(browser.login(page, "adminA"))
        found["csrf token (consent)"] = hidden_fields(consent.text)["csrf_token"]
        final = browser.decide(consent)
        for name, value in browser.http.cookies.items():
            found[f"cookie {name}"] = value
    finally:
        browser.close()
    code = query_of(final.headers["location"])["code"][0]
    found["code"] = code
    found["code verifier"] = verifier
    issued = exchange(server, code, code_verifier=verifier)
    assert issued.status_code == 200
    found["access token"] = issued.json()["access_token"]
    found["refresh token (rotated)"] = issued.json()["refresh_token"]
    rotated = refresh(server, issued.json()["refresh_token"])
    assert rotated.status_code == 200
    found["access token 2"] = rotated.json()["access_token"]
    found["refresh token 2"] = rotated.json()["refresh_token"]
    assert api(server, found["access token 2"]).status_code == 200
    c1 = server.clients["c1"]
    httpx.post(
        f"{server.base_url}/auth/oauth/introspect",
        data={"token": found["access token 2"], "client_id": c1["client_id"], "client_secret": c1["client_secret"]},
        timeout=30,
    )
    basic = base64.b64encode(f"{c1['client_id']}:{c1['client_secret']}".encode()).decode()
    httpx.post(
        f"{server.base_url}/auth/oauth/revoke",
        data={"token": found["refresh token 2"]},
        headers={"authorization": f"Basic {basic}"},
        timeout=30,
    )
    # A failed attempt too: wrong secrets must not be logged either.
    found["wrong secret"] = "wrong-" + c1["client_secret"]
    token_post(
        server,
        data={
            "grant_type": "refresh_token",
            "client_id": c1["client_id"],
            "client_secret": found["wrong secret"],
            "refresh_token": "cxr_x",
        },
    )
    return {name: value for name, value in found.items() if len(value) >= 8}


def test_M03_no_plaintext_secrets_at_rest(server: Server, sentinels: dict[str, str]) -> None:
    """M-03: after a full flow, no table holds any sentinel (password, client/API secrets, code, verifier,
    access/refresh tokens, CSRF tokens, interaction id, session cookie) in plain text."""
    dump = dump_database(server)
    assert "access_tokens" in dump and "refresh_tokens" in dump and "authorization_codes" in dump
    leaks = [name for name, value in sentinels.items() if value in dump]
    assert leaks == [], leaks
    # The digests are there instead (so the dump did include the rows that matter).
    assert crypto.digest(sentinels["access token"]) in dump
    assert crypto.digest(sentinels["code"]) in dump


def test_P02_no_secrets_in_the_server_log(server: Server, sentinels: dict[str, str]) -> None:
    """P-02: the server log (stdout + stderr of every worker) holds none of the sentinels."""
    log = server.log()
    leaks = [name for name, value in sentinels.items() if value in log]
    assert leaks == [], leaks


def test_P02_the_log_actually_records_the_flow(server: Server, sentinels: dict[str, str]) -> None:
    """P-02 (guard against a vacuous pass): the log does contain the flow's audit events."""
    log = server.log()
    assert '"event":"token_issued"' in log and "/auth/oauth/token" in log


# ---- M-04: a stored digest is not a credential --------------------------------------------------------


def test_M04_stored_digests_are_not_credentials(server: Server, sentinels: dict[str, str]) -> None:
    """M-04: the stored client secret digest as client_secret, a token digest as Bearer or refresh_token,
    and the stored PHC string as the password are all refused."""
    c1 = server.clients["c1"]
    (stored_secret,) = server.sql("SELECT secret_hash FROM clients WHERE client_id = :c", {"c": c1["client_id"]})[0]
    assert stored_secret and stored_secret != c1["client_secret"]
    response = token_post(
        server,
        json={
            "grant_type": "refresh_token",
            "client_id": c1["client_id"],
            "client_secret": stored_secret,
            "refresh_token": "cxr_x",
        },
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    basic = base64.b64encode(f"{c1['client_id']}:{stored_secret}".encode()).decode()
    response = token_post(
        server,
        data={"grant_type": "refresh_token", "refresh_token": "cxr_x"},
        headers={"authorization": f"Basic {basic}"},
    )
    assert response.status_code == 401
    token_hash = server.sql("SELECT token_hash FROM access_tokens LIMIT 1")[0][0]
    for bearer in (token_hash, "cxa_" + token_hash, crypto.digest(sentinels["access token"])):
        assert api(server, bearer).status_code == 401
    refresh_hash = server.sql("SELECT token_hash FROM refresh_tokens LIMIT 1")[0][0]
    assert refresh(server, refresh_hash).json()["error"] == "invalid_grant"
    assert refresh(server, "cxr_" + refresh_hash).json()["error"] == "invalid_grant"
    (phc,) = server.sql("SELECT password_hash FROM accounts WHERE email = :e", {"e": server.admins["adminA"]["email"]})[
        0
    ]
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server, "c1"))
        response = browser.login(page, "adminA", password=phc)
        assert "Incorrect email or password." in response.text
    finally:
        browser.close()


# ---- M-05: constant-time comparisons --------------------------------------------------------------

_SECRETISH = re.compile(r"secret|digest|hash|token|verifier|csrf|challenge|password|signature|code$", re.I)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return ""


# Reviewed exceptions, listed so that any new one is reviewed: comparisons with a module constant.
REVIEWED = {
    "xapi/attachments.py: attachment['usageType'] == SIGNATURE",
    "xapi/attachments.py: a.get('usageType') != SIGNATURE",
}


def _is_column(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "c"


def test_M05_secrets_are_never_compared_with_equals() -> None:
    """M-05 (gate): in openxp/, no == / != compares two non-literal values whose name looks like a secret
    (secret, digest, hash, token, verifier, csrf, challenge, password, code); those go through
    crypto.equals / hmac.compare_digest. Comparisons with literals and None are allowed."""
    offenders = []
    for path in OPENXP_SRC.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
                if not isinstance(op, ast.Eq | ast.NotEq):
                    continue
                if isinstance(left, ast.Constant) or isinstance(right, ast.Constant):
                    continue
                if any(_is_column(side) for side in (left, right)):
                    continue  # SQL: the database looks rows up by digest (M-06), not a Python comparison
                names = (_name(left), _name(right))
                if any(_SECRETISH.search(n) for n in names if n) and not any(
                    n.endswith(("_type", "_id", "_pk", "kind", "prefix", "method")) for n in names if n
                ):
                    if f"{path.relative_to(OPENXP_SRC)}: {ast.unparse(node)}" not in REVIEWED:
                        offenders.append(f"{path.relative_to(OPENXP_SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == [], offenders
    assert "hmac.compare_digest" in (OPENXP_SRC / "crypto.py").read_text()


def test_M05_wrong_first_byte_and_wrong_last_byte_take_the_same_time(server: Server) -> None:
    """M-05 (statistical, coarse): a client secret wrong in its first byte and one wrong in its last byte
    are refused in indistinguishable time (medians within 20 ms over 25 interleaved requests each)."""
    c2 = server.clients["c2"]
    secret = c2["client_secret"]
    first = ("A" if secret[0] != "A" else "B") + secret[1:]
    last = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    samples: dict[str, list[float]] = {first: [], last: []}
    with httpx.Client(timeout=30) as http:
        # Interleaved, so load from other processes on the machine hits both sides alike.
        for _ in range(25):
            for candidate in (first, last):
                start = time.perf_counter()
                response = http.post(
                    f"{server.base_url}/auth/oauth/revoke",
                    data={"token": "x", "client_id": c2["client_id"], "client_secret": candidate},
                )
                samples[candidate].append(time.perf_counter() - start)
                assert response.status_code == 401
    # Coarse on purpose: it catches a comparison that does real work per byte, not nanoseconds.
    assert abs(statistics.median(samples[first]) - statistics.median(samples[last])) < 0.02


# ---- O-01: SQL injection --------------------------------------------------------------------------

SQLI = [
    "' OR '1'='1",
    '" OR 1=1 --',
    "1;DROP TABLE clients",
    "' UNION SELECT client_id, secret_hash FROM clients --",
    "'; SELECT pg_sleep(5)--",
    "' AND randomblob(300000000)--",
    "%27",
    "x\\' OR 1=1 #",
]


@pytest.mark.parametrize("payload", SQLI)
def test_O01_sql_injection_in_every_identifier(server: Server, payload: str) -> None:
    """O-01: injection payloads in client_id, client_secret, code, refresh_token, redirect_uri, the login
    email, X-CXP-Tenant, the Bearer token and the revoked/introspected token are literals: the usual
    refusal, no 5xx, no latency spike, and the clients table is intact."""
    c1 = server.clients["c1"]
    before = server.sql("SELECT COUNT(*) FROM clients")[0][0]
    start = time.perf_counter()
    checks: list[tuple[httpx.Response, int]] = [
        (
            token_post(
                server,
                json={
                    "grant_type": "authorization_code",
                    "client_id": payload,
                    "client_secret": payload,
                    "code": "x",
                    "redirect_uri": "https://app.a.test/cb",
                },
            ),
            401,
        ),
        (
            token_post(
                server,
                data={
                    "grant_type": "authorization_code",
                    "client_id": c1["client_id"],
                    "client_secret": c1["client_secret"],
                    "code": payload,
                    "redirect_uri": payload,
                },
            ),
            400,
        ),
        (
            token_post(
                server,
                data={
                    "grant_type": "refresh_token",
                    "client_id": c1["client_id"],
                    "client_secret": c1["client_secret"],
                    "refresh_token": payload,
                },
            ),
            400,
        ),
        (
            httpx.post(
                f"{server.base_url}/auth/oauth/revoke",
                data={"token": payload, "client_id": c1["client_id"], "client_secret": c1["client_secret"]},
                timeout=30,
            ),
            200,
        ),
        (
            httpx.post(
                f"{server.base_url}/auth/oauth/introspect",
                data={"token": payload, "client_id": c1["client_id"], "client_secret": c1["client_secret"]},
                timeout=30,
            ),
            200,
        ),
        (api(server, "cxa_" + payload.replace(" ", "+"), tenant="a"), 401),
    ]
    tenant = httpx.post(
        f"{server.base_url}/api/import/users",
        json={"users": []},
        timeout=30,
        headers={"authorization": "Bearer cxa_x", "X-CXP-Tenant": payload.encode("utf-8")},
    )
    checks.append((tenant, 401))
    for response, status in checks:
        assert response.status_code == status, (response.request.url, response.text)
    introspected = checks[4][0].json()
    assert introspected == {"active": False}
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server, "c1"))
        fields = hidden_fields(page.text)
        login = browser.http.post("/auth/login", data={**fields, "email": payload, "password": payload})
        assert login.status_code < 500
        assert "Incorrect email or password." in login.text
        assert browser.authorize(auth_params(server, "c1", client_id=payload)).status_code == 400
        assert browser.authorize(auth_params(server, "c1", state=payload)).status_code == 200
    finally:
        browser.close()
    assert time.perf_counter() - start < 5
    assert server.sql("SELECT COUNT(*) FROM clients")[0][0] == before


# ---- O-02: oversized input --------------------------------------------------------------------------


def _quick(call: Any) -> httpx.Response:
    start = time.perf_counter()
    response = call()
    assert time.perf_counter() - start < 2.5, "oversized input was not refused quickly"
    assert response.status_code < 500, response.text[:300]
    return response


def raw_get(server: Server, target: str) -> tuple[int, bytes]:
    """GET byte for byte (httpx refuses URLs this long); returns the status and the response head."""
    host, port = server.base_url.removeprefix("http://").split(":")
    request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0]
    return int(head.split(b" ")[1]), head


def test_O02_oversized_authorization_request(server: Server) -> None:
    """O-02: a 100 KB state and a 10 KB redirect_uri/client_id at the authorization endpoint are refused
    (400/413/414/431), never followed and never 5xx."""
    for overrides in (
        {"state": "s" * 100_000},
        {"redirect_uri": "https://app.a.test/cb?" + "r" * 10_000},
        {"client_id": "c" * 10_000},
    ):
        query = str(httpx.QueryParams(auth_params(server, "c1", **overrides)))
        start = time.perf_counter()
        status, head = raw_get(server, f"/auth/oauth/authorize?{query}")
        assert time.perf_counter() - start < 2.5
        assert status in (400, 413, 414, 431), status
        assert b"\r\nlocation:" not in head.lower()


def test_O02_oversized_token_requests(server: Server) -> None:
    """O-02: a 10 MB token body is 413, a 10 KB client_id is invalid_client, 10,000-deep JSON is 400,
    1,000 form fields are 400, and a 64 KB header is refused; all quickly, none 5xx."""
    c1 = server.clients["c1"]
    big = _quick(
        lambda: token_post(
            server, content=b"a=" + b"x" * 10_000_000, headers={"content-type": "application/x-www-form-urlencoded"}
        )
    )
    assert big.status_code == 413 and big.json()["error"] == "invalid_request"
    long_id = _quick(
        lambda: token_post(
            server,
            data={
                "grant_type": "refresh_token",
                "client_id": "c" * 10_000,
                "client_secret": "x",
                "refresh_token": "cxr_x",
            },
        )
    )
    assert long_id.status_code == 401 and long_id.json()["error"] == "invalid_client"
    deep = _quick(
        lambda: token_post(server, content=b"[" * 10_000 + b"]" * 10_000, headers={"content-type": "application/json"})
    )
    assert deep.status_code == 400
    fields = "&".join(f"f{i}=v" for i in range(1000))
    many = _quick(
        lambda: token_post(
            server, content=fields.encode(), headers={"content-type": "application/x-www-form-urlencoded"}
        )
    )
    assert many.status_code == 400 and many.json()["error"] == "invalid_request"
    header = _quick(
        lambda: token_post(
            server,
            data={
                "grant_type": "refresh_token",
                **{"client_id": c1["client_id"], "client_secret": c1["client_secret"], "refresh_token": "cxr_x"},
            },
            headers={"x-filler": "h" * 65_536},
        )
    )
    assert header.status_code in (400, 413, 431)
    long_token = _quick(
        lambda: token_post(
            server,
            data={
                "grant_type": "refresh_token",
                "client_id": c1["client_id"],
                "client_secret": c1["client_secret"],
                "refresh_token": "cxr_" + "x" * 60_000,
            },
        )
    )
    assert long_token.status_code == 400 and long_token.json()["error"] == "invalid_grant"


def test_O02_oversized_api_and_login_input(server: Server) -> None:
    """O-02: a 1 MB password is refused without a 5xx (and is not argon2-hashed: it answers quickly); a
    25 MB import body is 413; a 10,000-deep import body is 400."""
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server, "c1"))
        fields = hidden_fields(page.text)
        response = _quick(
            lambda: browser.http.post(
                "/auth/login", data={**fields, "email": server.admins["adminA"]["email"], "password": "p" * 1_000_000}
            )
        )
        assert response.status_code in (200, 400, 413)
        assert "code=" not in response.headers.get("location", "")
    finally:
        browser.close()
    headers = {"authorization": "Bearer cxa_x", "X-CXP-Tenant": "a", "content-type": "application/json"}
    token = _first_token(server)
    headers["authorization"] = f"Bearer {token}"
    big = _quick(
        lambda: httpx.post(
            f"{server.base_url}/api/import/users", content=b"[" + b" " * 25_000_000 + b"]", headers=headers, timeout=60
        )
    )
    assert big.status_code == 413
    deep = _quick(
        lambda: httpx.post(
            f"{server.base_url}/api/import/users", content=b"[" * 10_000 + b"]" * 10_000, headers=headers, timeout=30
        )
    )
    assert deep.status_code == 400


def _first_token(server: Server) -> str:
    from tests.support.flow import tokens

    return str(tokens(server)["access_token"])


# ---- O-05: invalid encodings ------------------------------------------------------------------------


def test_O05_invalid_utf8_in_query_form_and_json(server: Server) -> None:
    """O-05: invalid UTF-8 in the authorization query, a token form body, a token JSON body and an import
    JSON body is 400."""
    c1 = server.clients["c1"]
    query = f"response_type=code&client_id={c1['client_id']}&redirect_uri=https%3A%2F%2Fapp.a.test%2Fcb&state=%FF%FE"
    response = httpx.get(f"{server.base_url}/auth/oauth/authorize?{query}", timeout=30)
    assert response.status_code == 400
    assert "location" not in response.headers
    form = f"grant_type=refresh_token&client_id={c1['client_id']}&client_secret={c1['client_secret']}"
    for body in (form + "&refresh_token=%C3%28", form.encode() + b"&refresh_token=\xff"):
        response = token_post(
            server,
            content=body if isinstance(body, bytes) else body.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400 and response.json()["error"] == "invalid_request", response.text
    response = token_post(
        server,
        content=b'{"grant_type": "refresh_token", "refresh_token": "\xc3\x28"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    response = api(
        server,
        _first_token(server),
        content=b'{"users": [{"name": "\xff"}]}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"] == "validation_error"


@pytest.mark.parametrize("field", ["client_id", "client_secret", "refresh_token", "grant_type", "token"])
def test_O05_lone_surrogates_in_json(server: Server, field: str) -> None:
    """O-05: a lone surrogate (\\ud800) in any JSON member of the token, revocation and introspection
    requests is 400 invalid_request, not a 5xx from the database driver."""
    c1 = server.clients["c1"]
    body = {
        "grant_type": "refresh_token",
        "client_id": c1["client_id"],
        "client_secret": c1["client_secret"],
        "refresh_token": "cxr_x",
        "token": "cxa_x",
    }
    raw = json.dumps(body).replace(json.dumps(body[field]), '"\\ud800x"', 1).encode()
    for path in ("/auth/oauth/token", "/auth/oauth/revoke", "/auth/oauth/introspect"):
        response = httpx.post(
            f"{server.base_url}{path}", content=raw, headers={"content-type": "application/json"}, timeout=30
        )
        assert response.status_code in (400, 401), (path, response.text)
        assert response.json()["error"] in ("invalid_request", "invalid_client")


def test_O05_lone_surrogates_in_an_import(server: Server) -> None:
    """O-05: lone surrogates in an import body's names, attribute names and values are reported or
    refused (400/200 with errors), never a 5xx, and nothing with a surrogate is stored."""
    raw = b'{"users": [{"name": "Bad \\udc00", "attributes": {"Email": "sur\\ud800@example.com", "X\\udfff": "y"}}]}'
    response = api(server, _first_token(server), content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["errorCount"] >= 1 and response.json()["new"] == 0


def test_O05_percent_at_the_end(server: Server) -> None:
    """O-05: a trailing % in form values and in the authorization query is a literal (or an error), never
    a 5xx: a code ending in % is invalid_grant; a client_id ending in % is the error page."""
    c1 = server.clients["c1"]
    form = (
        f"grant_type=authorization_code&client_id={c1['client_id']}&client_secret={c1['client_secret']}"
        "&redirect_uri=https%3A%2F%2Fapp.a.test%2Fcb&code=abc%"
    )
    response = token_post(server, content=form.encode(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    query = f"response_type=code&client_id={c1['client_id']}%&redirect_uri=https%3A%2F%2Fapp.a.test%2Fcb%"
    response = httpx.get(f"{server.base_url}/auth/oauth/authorize?{query}", timeout=30)
    assert response.status_code == 400
    assert "location" not in response.headers
