"""Issue 14, decision 1: each worker caches its bearer checks, and a revocation still takes effect
in every worker. Each test holds a kept-alive connection to each of the server's 2 workers
(``tests.support.workers``), warms both caches, ends the token one way, then asks every worker.

- Through openxp (RFC 7009 revocation, reuse detection on refresh, an admin revoking the grant
  in the console; from the CLI, another process: a disabled client, a disabled admin, a changed
  password), the request or command answers only once every worker has emptied its cache: the
  next request to any worker is refused.
- Behind openxp's back (an UPDATE in the database), every worker refuses within 1 second.
- Expiry stays exact. A change no trigger watches shows that the cache really answers repeat
  checks: without a cache the tests above would pass trivially.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.support.console import sign_in
from tests.support.flow import tokens
from tests.support.records import digest
from tests.support.server import PASSWORD, Server, served
from tests.support.workers import Pinned, one_per_worker

TTL = 8  # seconds: the access tokens of this module's server, so that expiry can be watched
WITHIN = 1.0


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with served({"OPENXP_ACCESS_TOKEN_TTL": str(TTL)}) as srv:
        yield srv


def new_client(server: Server) -> str:
    label = f"rl{secrets.token_hex(3)}"
    made = server.cli_json(
        "client", "create", "--tenant", "a", "--name", label, "--redirect-uri", f"https://{label}.a.test/cb"
    )
    server.clients[label] = made
    return label


def new_admin(server: Server) -> str:
    label = f"admin{secrets.token_hex(3)}"
    email = f"{label}@example.com"
    made = server.cli_json(
        "admin",
        "create",
        "--tenant",
        "a",
        "--email",
        email,
        "--password-stdin",
        "--role",
        "admin",
        stdin=PASSWORD + "\n",
    )
    server.admins[label] = made | {"email": email, "password": PASSWORD}
    return label


def me(pinned: Pinned, token: str) -> int:
    return pinned.status("GET", "/api/auth/me", Authorization=f"Bearer {token}", **{"X-CXP-Tenant": "a"})


def warmed(server: Server, token: str) -> list[Pinned]:
    pins = one_per_worker(server)
    for pinned in pins:
        for _ in range(3):
            assert me(pinned, token) == 200
    return pins


def seconds_until_refused(pins: list[Pinned], token: str, limit: float = 5.0) -> list[float]:
    """For each worker, how long after now its answer for ``token`` turned 401."""
    start = time.monotonic()
    ended: dict[int, float] = {}
    while len(ended) < len(pins) and time.monotonic() - start < limit:
        for i, pinned in enumerate(pins):
            if i not in ended and me(pinned, token) == 401:
                ended[i] = time.monotonic() - start
        time.sleep(0.01)
    assert len(ended) == len(pins), f"still accepted after {limit} s by {len(pins) - len(ended)} worker(s)"
    return [ended[i] for i in range(len(pins))]


def refused_by_every_worker(pins: list[Pinned], token: str) -> bool:
    return all(me(pinned, token) == 401 for pinned in pins)


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


def test_a_revoked_token_is_refused_by_every_worker_once_the_revocation_answers(server: Server) -> None:
    client = new_client(server)
    pair = tokens(server, client)
    pins = warmed(server, pair["access_token"])
    c = server.clients[client]
    revoked = pins[0].status(
        "POST",
        "/auth/oauth/revoke",
        form(token=pair["access_token"], client_id=c["client_id"], client_secret=c["client_secret"]),
        **{"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert revoked == 200
    assert refused_by_every_worker(pins, pair["access_token"])


def test_reuse_detection_ends_the_grant_everywhere(server: Server) -> None:
    client = new_client(server)
    pair = tokens(server, client)
    c = server.clients[client]
    body = json.dumps(
        {
            "grant_type": "refresh_token",
            "refresh_token": pair["refresh_token"],
            "client_id": c["client_id"],
            "client_secret": c["client_secret"],
        }
    ).encode()
    pins = warmed(server, pair["access_token"])
    json_type = {"Content-Type": "application/json"}
    assert pins[0].status("POST", "/auth/oauth/token", body, **json_type) == 200
    assert me(pins[1], pair["access_token"]) == 200  # rotation alone ends nothing
    assert pins[0].status("POST", "/auth/oauth/token", body, **json_type) == 400  # reuse: the grant is revoked
    assert refused_by_every_worker(pins, pair["access_token"])


def test_an_admin_revoking_the_grant_in_the_console(server: Server) -> None:
    client = new_client(server)
    pair = tokens(server, client)
    pins = warmed(server, pair["access_token"])
    grant_id = server.sql(
        "SELECT g.id FROM grants g JOIN clients c ON c.id = g.client_pk WHERE c.client_id = :c",
        {"c": server.clients[client]["client_id"]},
    )[0][0]
    http, csrf = sign_in(server, "a", "adminA")
    try:
        done = http.post(f"/console/a/connected/{grant_id}/revoke", data={"csrf_token": csrf})
        assert done.status_code in (200, 303), done.text
    finally:
        http.close()
    assert refused_by_every_worker(pins, pair["access_token"])


@pytest.mark.parametrize("how", ["client disabled", "admin disabled", "password changed"])
def test_the_cli_in_another_process_ends_tokens_in_every_worker(server: Server, how: str) -> None:
    client, admin = new_client(server), new_admin(server)
    pair = tokens(server, client, admin=admin)
    pins = warmed(server, pair["access_token"])
    email = server.admins[admin]["email"]
    if how == "client disabled":
        server.cli("client", "disable", "--tenant", "a", server.clients[client]["client_id"])
    elif how == "admin disabled":
        server.cli("admin", "disable", "--tenant", "a", "--email", email)
    else:
        server.cli(
            "admin",
            "set-password",
            "--tenant",
            "a",
            "--email",
            email,
            "--password-stdin",
            stdin="N3w-" + PASSWORD + "\n",
        )
    assert refused_by_every_worker(pins, pair["access_token"])


def test_a_revocation_behind_openxps_back_reaches_every_worker_within_a_second(server: Server) -> None:
    """An UPDATE made in the database directly (a DBA, another tool): the triggers bump the clock,
    and each worker reads it within POLL_SECONDS and serves nothing older than TRUST_SECONDS."""
    pair = tokens(server, new_client(server))
    pins = warmed(server, pair["access_token"])
    server.sql(
        "UPDATE access_tokens SET revoked_at = :t WHERE token_hash = :h",
        {"t": time.time(), "h": digest(pair["access_token"])},
    )
    assert max(seconds_until_refused(pins, pair["access_token"])) <= WITHIN


def test_expiry_stays_exact(server: Server) -> None:
    pair = tokens(server, new_client(server))
    issued = time.time()
    warmed(server, pair["access_token"])
    time.sleep(max(0.0, issued + pair["expires_in"] - time.time()) + 0.05)
    # The idle connections have closed meanwhile (keep-alive): new ones reach both workers again.
    for pinned in one_per_worker(server):
        assert me(pinned, pair["access_token"]) == 401


def test_the_cache_answers_repeat_checks(server: Server) -> None:
    """A change no trigger watches (the token's scope, edited in the database) is not seen while
    the worker's answer is cached: proof that the checks above ran against a cache."""
    pair = tokens(server, new_client(server))
    pins = warmed(server, pair["access_token"])
    server.sql(
        "UPDATE access_tokens SET scope = 'audit/read' WHERE token_hash = :h",
        {"h": digest(pair["access_token"])},
    )
    for pinned in pins:
        pinned.connection.request(
            "GET", "/api/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}", "X-CXP-Tenant": "a"}
        )
        answer = json.loads(pinned.connection.getresponse().read())
        assert answer["scope"] != "audit/read", answer
