"""examples/ against a live server: the integrations a ClearXP integrator would copy.

A server of its own with short access tokens (OPENXP_ACCESS_TOKEN_TTL=8) and a reuse grace
(OPENXP_REFRESH_REUSE_GRACE=30). ``examples/keep_alive.py`` (Authlib's httpx client, token set in a
locked file) does the seed's flow once, then: refreshes across an access token's expiry, refreshes on
a 401, survives a refresh answer that is lost on the way back (retried with the same refresh token:
the grace answers it the same way; a strict client loses its grant instead), and two processes
refreshing at once both carry on. ``examples/service_account.py`` (client_credentials) posts
statements to /xapi, as a script and in process across its token's expiry. Ids: E-01, E-02, E-04.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError

from tests.support.flow import LOGIN_FORM, Browser, query_of
from tests.support.provision import dedicated_client
from tests.support.server import ROOT, Server, destroy_server, make_server

EXAMPLES = ROOT / "examples"
ACCESS_TTL = 8


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


keep_alive = load("keep_alive")
service_account = load("service_account")


@pytest.fixture(scope="module")
def live() -> Iterator[Server]:
    srv = make_server({"OPENXP_ACCESS_TOKEN_TTL": str(ACCESS_TTL), "OPENXP_REFRESH_REUSE_GRACE": "30"})
    try:
        yield srv
    finally:
        destroy_server(srv)


@pytest.fixture(autouse=True)
def _plain_http_and_no_leeway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the test server is plain http on loopback
    monkeypatch.setenv("CXP_REFRESH_LEEWAY", "0")  # tokens live 8 s here; refresh when expired


def config_for(server: Server, client: str, token_file: Path) -> Any:
    c = server.clients[client]
    return keep_alive.Config(
        server.base_url, "a", c["client_id"], c["client_secret"], c["redirect_uris"][0], token_file
    )


def approve(server: Server, url: str) -> str:
    browser = Browser.open(server)
    try:
        page = browser.http.get(url)
        assert page.status_code == 200, page.text
        if LOGIN_FORM in page.text:
            page = browser.consent_page(browser.login(page, "adminA"))
        final = browser.decide(page)
        assert final.status_code == 303, final.text
        location = str(final.headers["location"])
        assert "code" in query_of(location), location
        return location
    finally:
        browser.close()


def authorized(server: Server, client: str, token_file: Path) -> Any:
    """The seed's flow once, through the example: the URL it builds, an admin's approval, the exchange."""
    config = config_for(server, client, token_file)
    with keep_alive.client(config, keep_alive.TokenFile(token_file)) as session:
        keep_alive.finish_authorization(config, session, approve(server, keep_alive.authorization_url(config, session)))
    return config


def stored(token_file: Path) -> dict[str, Any]:
    token: dict[str, Any] = json.loads(token_file.read_text())
    return token


def expire_stored(token_file: Path) -> None:
    """As if the process had been asleep past the access token's expiry (the server's clock is
    not touched: the refresh that follows is real)."""
    token = stored(token_file)
    token["expires_at"] = int(time.time()) - 1
    token_file.write_text(json.dumps(token))


class LosingTransport(httpx.HTTPTransport):
    """Delivers the first token request to the server, then loses its answer (a timeout on the way back)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: dict[str, Any] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path == "/auth/oauth/token" and self.lost is None:
            response.read()
            self.lost = json.loads(response.content)
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


def test_keep_alive_seed_flow_then_refresh_across_expiry(live: Server, tmp_path: Path) -> None:
    """E-01: the token set is stored (owner-only file) and works; once the access token has expired
    (waited out for real), Authlib refreshes before the call and the hook stores the rotated set."""
    token_file = tmp_path / "token.json"
    config = authorized(live, "c1", token_file)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    first = stored(token_file)
    store = keep_alive.TokenFile(token_file)
    with keep_alive.client(config, store) as session:
        assert keep_alive.call_api(config, session, store, "GET", "/api/actors").status_code == 200
        deadline = time.time() + 60
        while time.time() <= float(first["expires_at"]) + 1:
            assert time.time() < deadline
            time.sleep(0.5)
        response = keep_alive.call_api(config, session, store, "GET", "/api/actors")
        assert response.status_code == 200, response.text
    renewed = stored(token_file)
    assert renewed["refresh_token"] != first["refresh_token"]
    assert renewed["access_token"] != first["access_token"]


def test_keep_alive_refreshes_on_401(live: Server, tmp_path: Path) -> None:
    """A revoked access token (RFC 7009) answers 401; the example refreshes once and retries."""
    token_file = tmp_path / "token.json"
    config = authorized(live, "c1", token_file)
    first = stored(token_file)
    revoked = httpx.post(
        f"{live.base_url}/auth/oauth/revoke",
        data={"token": first["access_token"]},
        auth=(config.client_id, config.client_secret),
        timeout=30,
    )
    assert revoked.status_code == 200
    store = keep_alive.TokenFile(token_file)
    with keep_alive.client(config, store) as session:
        response = keep_alive.call_api(config, session, store, "GET", "/api/actors")
        assert response.status_code == 200, response.text
    assert stored(token_file)["refresh_token"] != first["refresh_token"]


def test_keep_alive_lost_refresh_answer_with_the_grace(live: Server, tmp_path: Path) -> None:
    """E-02 relaxed by the grace: the refresh reaches the server, its answer is lost, the example
    retries with the same refresh token and gets exactly the answer it lost; the grant lives on."""
    token_file = tmp_path / "token.json"
    config = authorized(live, "c1", token_file)
    expire_stored(token_file)
    transport = LosingTransport()
    store = keep_alive.TokenFile(token_file)
    with keep_alive.client(config, store, transport=transport) as session:
        response = keep_alive.call_api(config, session, store, "GET", "/api/actors")
        assert response.status_code == 200, response.text
    assert transport.lost is not None
    now = stored(token_file)
    assert now["refresh_token"] == transport.lost["refresh_token"]
    assert now["access_token"] == transport.lost["access_token"]
    expire_stored(token_file)
    with keep_alive.client(config, store) as session:  # the chain goes on
        assert keep_alive.call_api(config, session, store, "GET", "/api/actors").status_code == 200


def test_keep_alive_lost_refresh_answer_without_a_grace(live: Server, tmp_path: Path) -> None:
    """E-02 strict (a client with --refresh-reuse-grace 0): the same lost answer ends the grant; the
    retry is taken for a thief. This is what the grace is for."""
    strict = dedicated_client(live, "strict-example", "--refresh-reuse-grace", "0")
    token_file = tmp_path / "token.json"
    config = authorized(live, strict, token_file)
    expire_stored(token_file)
    store = keep_alive.TokenFile(token_file)
    with keep_alive.client(config, store, transport=LosingTransport()) as session, pytest.raises(OAuthError) as refused:
        keep_alive.call_api(config, session, store, "GET", "/api/actors")
    assert refused.value.error == "invalid_grant"


def test_keep_alive_two_processes_refresh_at_once(live: Server, tmp_path: Path) -> None:
    """E-04 with the grace: two runs of `keep_alive.py call` share one token file with an expired
    access token, refresh with the same refresh token at once, and both succeed; the file ends with
    a working set."""
    token_file = tmp_path / "token.json"
    config = authorized(live, "c1", token_file)
    expire_stored(token_file)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENXP_", "CXP_"))},
        "OPENXP_URL": live.base_url,
        "CXP_TENANT": "a",
        "CXP_CLIENT_ID": config.client_id,
        "CXP_CLIENT_SECRET": config.client_secret,
        "CXP_TOKEN_FILE": str(token_file),
        "CXP_REFRESH_LEEWAY": "0",
        "AUTHLIB_INSECURE_TRANSPORT": "1",
    }
    runs = [
        subprocess.Popen(
            [sys.executable, str(EXAMPLES / "keep_alive.py"), "call"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, (out, err)
        assert json.loads(out)["status"] == 200
    store = keep_alive.TokenFile(token_file)
    with keep_alive.client(config, store) as session:
        assert keep_alive.call_api(config, session, store, "GET", "/api/actors").status_code == 200


def service(live: Server) -> dict[str, Any]:
    created = live.cli_json(
        "client", "create", "--tenant", "a", "--name", "Example service", "--grant-type", "client_credentials",
        "--scope", "statements/write",
    )  # fmt: skip
    return created


def test_service_account_script_posts_statements(live: Server) -> None:
    """`service_account.py` as an integrator runs it: a client_credentials token, one statement to /xapi."""
    svc = service(live)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENXP_", "CXP_"))},
        "OPENXP_URL": live.base_url,
        "CXP_TENANT": "a",
        "CXP_CLIENT_ID": svc["client_id"],
        "CXP_CLIENT_SECRET": svc["client_secret"],
        "AUTHLIB_INSECURE_TRANSPORT": "1",
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "service_account.py"), "hr-sync@example.com", "https://courses.example.com/a"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    ids = json.loads(result.stdout)["stored"]
    assert len(ids) == 1
    rows = live.sql("SELECT authority_key FROM xapi_statements WHERE statement_id = :i", {"i": ids[0]})
    assert len(rows) == 1 and svc["client_id"] in rows[0][0]


def test_service_account_fetches_a_new_token_at_expiry(live: Server) -> None:
    """Authlib, told grant_type=client_credentials, fetches a new token by itself once the old one
    expired (there is no refresh token); the statements keep going in."""
    svc = service(live)
    with service_account.service_client(live.base_url, svc["client_id"], svc["client_secret"]) as session:
        session.fetch_token(grant_type="client_credentials")
        first = session.token["access_token"]
        assert "refresh_token" not in session.token
        ids = service_account.post_statements(
            session, live.base_url, "a", [service_account.completed("a@example.com", "https://x.example.com/1")]
        )
        assert len(ids) == 1
        session.token["expires_at"] = int(time.time()) - 1
        ids = service_account.post_statements(
            session, live.base_url, "a", [service_account.completed("b@example.com", "https://x.example.com/2")]
        )
        assert len(ids) == 1
        assert session.token["access_token"] != first
