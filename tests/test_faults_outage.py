"""A PostgreSQL outage: the database stops while clients call every surface.

openxp runs on a private PostgreSQL cluster (tests/support/pgcluster.py), never the shared
one, which is stopped and started again under it. While it is down every answer comes
within 10 s and is 503 with Retry-After and a stable code in the surface's error shape
(RFC 6749's ``temporarily_unavailable`` on the token endpoint, ClearXP's shape on /api,
``{"error","message"}`` on /xapi, the HTML error page on the authorization page), never a
500 and never a hang; /healthz is 503. When the cluster is back, openxp serves again within
15 s without a restart.

PostgreSQL pass only. With CI=true a missing initdb fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.flow import AUTHORIZE, Browser, auth_params, code_body, new_code, pkce_pair, token_post
from tests.support.pgcluster import Cluster, create_cluster, find_bin
from tests.support.server import PASSWORD, Server, backend, make_server
from tests.xapi.lrs import VERSION, basic, new_id, statement

pytestmark = pytest.mark.skipif(backend() != "postgresql", reason="a PostgreSQL outage (PostgreSQL pass only)")

ANSWER_WITHIN = 10.0
RECOVER_WITHIN = 15.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bin_dir = find_bin()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and PostgreSQL's initdb/pg_ctl are not installed (/usr/lib/postgresql/*/bin)")
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed")
    made = create_cluster(bin_dir)
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture(scope="module")
def outage_server(cluster: Cluster) -> Iterator[Server]:
    server = make_server(database_url=cluster.url, provision=False)
    # Only what the test uses (each CLI call is a process start): tenant a, adminA, c1, KA.
    server.tenants["a"] = server.cli_json("tenant", "create", "a")["name"]
    email = "admina@example.com"
    admin = server.cli_json(
        "admin", "create", "--tenant", "a", "--email", email, "--password-stdin", stdin=PASSWORD + "\n"
    )
    server.admins["adminA"] = admin | {"password": PASSWORD}
    server.clients["c1"] = server.cli_json(
        "client", "create", "--tenant", "a", "--name", "Client c1", "--redirect-uri", "https://app.a.test/cb"
    )
    server.apikeys["KA"] = server.cli_json("apikey", "create", "--tenant", "a", "--name", "KA")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


def _calls(server: Server, access_token: str, code: str, verifier: str) -> dict[str, Callable[[], httpx.Response]]:
    """One request per surface, each needing the database."""
    base = server.base_url
    bearer = {"authorization": f"Bearer {access_token}", "X-CXP-Tenant": "a"}
    key = basic(server.apikeys["KA"])
    timeout = httpx.Timeout(ANSWER_WITHIN)
    return {
        "api_me": lambda: httpx.get(f"{base}/api/auth/me", headers=bearer, timeout=timeout),
        "api_import": lambda: httpx.post(
            f"{base}/api/import/users",
            headers=bearer,
            json={"users": [{"name": "Ann", "attributes": {"Email": "ann@example.com"}}]},
            timeout=timeout,
        ),
        "xapi_get": lambda: httpx.get(f"{base}/xapi/statements", auth=key, headers=VERSION, timeout=timeout),
        "xapi_put": lambda: httpx.put(
            f"{base}/xapi/statements",
            params={"statementId": new_id()},
            json=statement(),
            auth=key,
            headers=VERSION,
            timeout=timeout,
        ),
        "token": lambda: token_post(server, json=code_body(server, code, code_verifier=verifier)),
        "page": lambda: httpx.get(f"{base}{AUTHORIZE}", params=auth_params(server), timeout=timeout),
    }


def _check_unavailable(name: str, answer: httpx.Response) -> None:
    assert answer.status_code == 503, (name, answer.status_code, answer.text)
    assert int(answer.headers["retry-after"]) > 0, (name, answer.headers)
    if name == "page":
        assert answer.headers["content-type"].startswith("text/html"), answer.headers
        assert "temporarily unavailable" in answer.text, answer.text
        return
    body = answer.json()
    if name == "token":
        assert body["error"] == "temporarily_unavailable", body
        assert body["reason"] == "database_unavailable", body
        assert answer.headers["cache-control"] == "no-store"
    elif name.startswith("api"):
        assert body["code"] == 503 and body["name"] == "Service Unavailable", body
        assert body["error"] == "database_unavailable" and body["message"], body
    else:
        assert body["error"] == "database_unavailable" and body["message"], body
        assert answer.headers["x-experience-api-version"] == "1.0.3"


def test_outage_answers_503_with_retry_after_on_every_surface_and_recovers(
    cluster: Cluster, outage_server: Server
) -> None:
    server = outage_server
    browser = Browser.open(server)
    try:
        verifier, challenge = pkce_pair()
        token_code = new_code(browser, code_challenge=challenge, code_challenge_method="S256")
        exchanged = token_post(server, json=code_body(server, token_code, code_verifier=verifier))
        assert exchanged.status_code == 200, exchanged.text
        access_token = exchanged.json()["access_token"]
        # A code to exchange during the outage; it must still work after it (nothing was claimed).
        verifier, challenge = pkce_pair()
        pending_code = new_code(browser, code_challenge=challenge, code_challenge_method="S256")
    finally:
        browser.close()
    calls = _calls(server, access_token, pending_code, verifier)
    for name in ("api_me", "xapi_get", "xapi_put"):
        assert calls[name]().status_code < 300, name  # pooled connections exist before the outage

    cluster.stop("fast")
    try:
        # Two rounds: the first meets the pooled connections the stop cut, the second new connects refused.
        for _ in range(2):
            for name, call in calls.items():
                started = time.monotonic()
                answer = call()
                assert time.monotonic() - started < ANSWER_WITHIN, name
                _check_unavailable(name, answer)
            health = httpx.get(f"{server.base_url}/healthz", timeout=ANSWER_WITHIN)
            assert health.status_code == 503, health.text
    finally:
        cluster.start()

    deadline = time.monotonic() + RECOVER_WITHIN
    pending = dict(calls)
    while pending and time.monotonic() < deadline:
        for name, call in list(pending.items()):
            if call().status_code < 300:
                del pending[name]
        if pending:
            time.sleep(0.2)
    assert not pending, f"still failing {RECOVER_WITHIN}s after the database came back: {sorted(pending)}"
    assert httpx.get(f"{server.base_url}/healthz", timeout=ANSWER_WITHIN).status_code == 200
    assert server.process is not None and server.process.poll() is None  # never restarted
    log = server.log()
    assert "unhandled error" not in log and "unexpected error at the" not in log, log[-4000:]
