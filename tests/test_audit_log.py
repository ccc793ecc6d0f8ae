"""The persisted audit log (issue 12, deliverable 1): ``GET /api/audit`` and ``openxp audit``.

SECURITY.md P-01 (each required event is recorded with who, when and where), I-01/I-09 (a tenant
sees its own events only), P-02 and M-03 (no secret in the log or anywhere in the database:
sentinel values searched for in every table and column and in the server log).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from openxp import crypto
from openxp.audit import Record
from openxp.audit_writer import AuditWriter
from openxp.store import Database
from openxp.store.accounts import normalize_email
from openxp.store.migrate import upgrade
from tests.support.flow import (
    Browser,
    auth_params,
    exchange,
    get_code,
    hidden_fields,
    pkce_pair,
    query_of,
    refresh,
    token_post,
    tokens,
)
from tests.support.provision import create_client, dedicated_admin
from tests.support.server import PASSWORD, Server

Event = dict[str, Any]
LOCAL = "127.0.0.1"


def _token(server: Server, client: str, admin: str) -> str:
    cached = server.__dict__.setdefault("_audit_tokens", {})
    if client not in cached:
        cached[client] = tokens(server, client, admin=admin)["access_token"]
    token: str = cached[client]
    return token


def reader(server: Server, tenant: str = "a") -> str:
    """An access token of the tenant's own integration (scope all, which includes audit/read)."""
    return _token(server, "c1" if tenant == "a" else "cb", "adminA" if tenant == "a" else "adminB")


def audit_get(server: Server, token: str, tenant: str | None = "a", **params: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"}
    if tenant is not None:
        headers["X-CXP-Tenant"] = tenant
    return httpx.get(f"{server.base_url}/api/audit", params=params, headers=headers, timeout=30)


def listed(server: Server, tenant: str = "a", **params: Any) -> list[Event]:
    response = audit_get(server, reader(server, tenant), tenant, **params)
    assert response.status_code == 200, response.text
    events: list[Event] = response.json()["events"]
    return events


def wait_event(
    server: Server, kind: str, match: Callable[[Event], bool] = lambda e: True, tenant: str = "a", timeout: float = 15
) -> Event:
    """The newest ``kind`` event matching, once the background writer has stored it."""
    deadline = time.time() + timeout
    while True:
        found = [e for e in listed(server, tenant, type=kind, limit=1000) if match(e)]
        if found:
            return found[0]
        if time.time() > deadline:
            raise AssertionError(f"no stored {kind!r} event matched in tenant {tenant}")
        time.sleep(0.2)


def from_here(event: Event) -> None:
    """Who, when and where: an actor, an ISO 8601 UTC time, the caller's address."""
    assert event["actor"], event
    assert event["at"].endswith("Z") and "T" in event["at"], event
    assert event["ip"] == LOCAL, event


def basic(key: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def revoke(server: Server, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/auth/oauth/revoke", timeout=30, **kwargs)


# ---- P-01: each event after the action that causes it ---------------------------------------


def test_P01_sign_in_consent_code_and_token_events(server: Server) -> None:
    admin = server.admins["adminA"]["email"]
    client = server.clients["c1"]["client_id"]
    issued = tokens(server, "c1")
    for kind in ("login_succeeded", "consent_given", "code_issued"):
        event = wait_event(server, kind, lambda e: e["actor"] == admin)
        from_here(event)
        assert event["tenant"] == "a"
    assert wait_event(server, "consent_given", lambda e: e["actor"] == admin)["details"]["client_id"] == client
    # The exchange is one record: the token issued by redeeming the code.
    event = wait_event(server, "token_issued", lambda e: e["actor"] == client)
    from_here(event)
    assert event["details"]["via"] == "authorization_code"
    refreshed = refresh(server, issued["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    from_here(wait_event(server, "token_refreshed", lambda e: e["actor"] == client))
    secret = server.clients["c1"]["client_secret"]
    token = refreshed.json()["access_token"]
    revoked = revoke(server, data={"token": token, "client_id": client, "client_secret": secret})
    assert revoked.status_code == 200, revoked.text
    event = wait_event(server, "token_revoked", lambda e: e["details"].get("kind") == "access_token")
    from_here(event)


def test_P01_sign_in_failure_and_consent_denied(server: Server) -> None:
    key = dedicated_admin(server, "auditfail")
    email = server.admins[key]["email"]
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server, "c1"))
        failed = browser.login(page, key, password="not the password")
        assert failed.status_code == 200
        from_here(wait_event(server, "login_failed", lambda e: e["actor"] == email))
        denied = browser.approve(auth_params(server, "c1"), admin=key, decision="deny")
        assert denied.status_code == 303
    finally:
        browser.close()
    event = wait_event(server, "consent_denied", lambda e: e["actor"] == email)
    from_here(event)
    assert event["details"]["client_id"] == server.clients["c1"]["client_id"]


def test_P01_lockout_is_recorded(server: Server) -> None:
    """An account under a lock (its throttle row as failed sign-ins leave it) is refused, and recorded."""
    key = dedicated_admin(server, "auditlock")
    email = server.admins[key]["email"]
    tenant_id = server.sql("SELECT id FROM tenants WHERE name = 'a'")[0][0]
    counter = f"login:{tenant_id}:{crypto.digest(normalize_email(email))[:32]}"
    server.sql(
        "INSERT INTO throttles (key, window_start, failures, locked_until) VALUES (:k, :t, 99, :until)",
        {"k": counter, "t": time.time(), "until": time.time() + 3600},
    )
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        page = http.get("/auth/oauth/authorize", params=auth_params(server, "c1"))
        fields = hidden_fields(page.text)
        locked = http.post("/auth/login", data={**fields, "email": email, "password": PASSWORD})
    assert locked.status_code == 429
    event = wait_event(server, "login_throttled", lambda e: e["at"] >= _iso(time.time() - 60))
    assert event["ip"] == LOCAL and event["severity"] == "high"


def _iso(at: float) -> str:
    from openxp.cli._common import iso

    text = iso(at)
    assert text is not None
    return text


def test_P01_reuse_and_replay_are_recorded(server: Server) -> None:
    client = server.clients["c1"]["client_id"]
    verifier, challenge = pkce_pair()
    code = get_code(server, "c1", code_challenge=challenge, code_challenge_method="S256")
    first = exchange(server, code, code_verifier=verifier)
    assert first.status_code == 200
    assert exchange(server, code, code_verifier=verifier).status_code == 400
    replay = wait_event(server, "code_replay_detected", lambda e: e["actor"] == client)
    assert replay["severity"] == "high" and replay["ip"] == LOCAL
    rt = tokens(server, "c1")["refresh_token"]
    assert refresh(server, rt).status_code == 200
    assert refresh(server, rt).status_code == 400
    reuse = wait_event(server, "refresh_reuse_detected", lambda e: e["details"]["grant"] != replay["details"]["grant"])
    assert reuse["severity"] == "high"


def test_P01_operator_changes_to_clients_keys_and_admins(server: Server) -> None:
    """Created, rotated, disabled: each written by the command, in its own transaction, before it exits."""
    client = create_client(server, "auditcli")["client_id"]
    server.cli("client", "rotate-secret", "--tenant", "a", client)
    server.cli("client", "disable", "--tenant", "a", client)
    key = server.cli_json("apikey", "create", "--tenant", "a", "--name", "audit key")["key"]
    server.cli("apikey", "rotate", "--tenant", "a", key)
    server.cli("apikey", "disable", "--tenant", "a", key)
    email = server.admins[dedicated_admin(server, "auditadm")]["email"]
    server.cli("admin", "disable", "--tenant", "a", "--email", email)
    # No waiting: the command line stores its events before it exits.
    events = listed(server, limit=1000)
    for kind, field, value in (
        ("client_created", "client_id", client),
        ("client_secret_rotated", "client_id", client),
        ("client_disabled", "client_id", client),
        ("apikey_created", "key", key),
        ("apikey_rotated", "key", key),
        ("apikey_disabled", "key", key),
        ("admin_created", "admin", email),
        ("admin_disabled", "admin", email),
    ):
        matching = [e for e in events if e["type"] == kind and e["details"].get(field) == value]
        assert len(matching) == 1, (kind, value)
        assert matching[0]["actor"].startswith("operator"), matching[0]
        assert matching[0]["ip"] is None  # not a request


def test_P01_basic_key_use_and_shortlived_credentials(server: Server) -> None:
    created = server.cli_json("apikey", "create", "--tenant", "a", "--name", "audit basic")
    used = httpx.get(
        f"{server.base_url}/api/auth/me",
        headers={**basic(created["key"], created["secret"]), "X-CXP-Tenant": "a"},
        timeout=30,
    )
    assert used.status_code == 200, used.text
    from_here(wait_event(server, "basic_auth_used", lambda e: e["actor"] == created["key"]))
    token = reader(server)
    made = httpx.post(
        f"{server.base_url}/api/auth/basic",
        json={"username": "audit-shortlived", "ttlMins": 5},
        headers={"authorization": f"Bearer {token}", "X-CXP-Tenant": "a"},
        timeout=30,
    )
    assert made.status_code == 200, made.text
    event = wait_event(
        server, "shortlived_credential_created", lambda e: e["details"]["username"] == "audit-shortlived"
    )
    assert event["actor"] == server.clients["c1"]["client_id"] and event["ip"] == LOCAL


# ---- I-01: a tenant's events only ------------------------------------------------------------


def test_I01_a_tenant_never_sees_another_tenants_events(server: Server) -> None:
    client = create_client(server, "auditiso")["client_id"]
    in_a = [e for e in listed(server, "a", type="client_created", limit=1000) if e["details"]["client_id"] == client]
    assert len(in_a) == 1
    for params in ({}, {"type": "client_created"}, {"actor": in_a[0]["actor"]}, {"limit": 1000}):
        seen = listed(server, "b", **params)
        assert all(e["tenant"] == "b" for e in seen), params
        assert not [e for e in seen if e["details"].get("client_id") == client]
    # Tenant a's token naming tenant b is refused, as everywhere (I-01).
    assert audit_get(server, reader(server, "a"), "b").status_code == 403


def test_events_without_a_tenant_are_kept_and_shown_to_none(server: Server) -> None:
    """A failed client authentication for a client that does not exist belongs to no tenant."""
    unknown = "no-such-client-" + crypto.random_token(6)
    failed = token_post(server, data={"grant_type": "refresh_token", "client_id": unknown, "client_secret": "x"})
    assert failed.status_code == 401
    reference = "unknown:" + crypto.digest(unknown)[:16]
    deadline = time.time() + 15
    while not server.sql(
        "SELECT id FROM audit_events WHERE type = 'client_auth_failed' AND tenant IS NULL AND actor = :a",
        {"a": reference},
    ):
        assert time.time() < deadline, "the event was not stored"
        time.sleep(0.2)
    for tenant in ("a", "b"):
        assert not [e for e in listed(server, tenant, type="client_auth_failed", limit=1000) if e["actor"] == reference]


def test_audit_read_needs_its_scope(server: Server) -> None:
    narrow = _token(server, "cs", "adminA")  # users/import and actors/read only
    response = audit_get(server, narrow)
    assert response.status_code == 403, response.text
    assert httpx.get(f"{server.base_url}/api/audit", headers={"X-CXP-Tenant": "a"}, timeout=30).status_code == 401


# ---- filters and their refusals --------------------------------------------------------------


def test_filters_type_actor_time_and_paging(server: Server) -> None:
    create_client(server, "auditfilter")
    # Let the writer store what earlier requests raised, so that two listings agree.
    everything, previous = listed(server, limit=1000), None
    while everything != previous:
        time.sleep(1)
        everything, previous = listed(server, limit=1000), everything
    assert [e["at"] for e in everything] == sorted((e["at"] for e in everything), reverse=True)
    newest = everything[0]
    only = listed(server, type="client_created", limit=1000)
    assert only and all(e["type"] == "client_created" for e in only)
    two = listed(server, type=["client_created", "admin_created"], limit=1000)
    assert {e["type"] for e in two} == {"client_created", "admin_created"}
    by = listed(server, actor=newest["actor"], limit=1000)
    assert by and all(e["actor"] == newest["actor"] for e in by)
    since = listed(server, since=newest["at"], limit=1000)
    assert newest["id"] in [e["id"] for e in since] and all(e["at"] >= newest["at"] for e in since)
    assert newest["id"] not in [e["id"] for e in listed(server, until=newest["at"], limit=1000)]
    assert listed(server, since="2999-01-01T00:00:00Z") == []
    page = listed(server, limit=2, skip=1)
    assert [e["id"] for e in page] == [e["id"] for e in everything[1:3]]


@pytest.mark.parametrize(
    "params, prop",
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-40"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"skip": "-1"}, "skip"),
        ({"limit": ["1", "2"]}, "limit"),
        ({"actor": "x" * 400}, "actor"),
        ({"type": "x" * 65}, "type"),
        ({"order": "asc"}, "order"),
    ],
)
def test_bad_parameters_answer_400_in_clearxp_shape(server: Server, params: dict[str, Any], prop: str) -> None:
    response = audit_get(server, reader(server), **params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_parameter" and body["code"] == 400
    assert body["body"][0]["property"] == prop


def test_nul_in_a_parameter_is_a_400(server: Server) -> None:
    response = audit_get(server, reader(server), actor="a\x00b")
    assert response.status_code == 400, response.text


# ---- the command line ------------------------------------------------------------------------


def test_cli_lists_the_tenants_events_as_json(server: Server) -> None:
    client = create_client(server, "auditjson")["client_id"]
    out = server.cli_json("audit", "--tenant", "a", "--type", "client_created")
    assert set(out) == {"events"}
    events = out["events"]
    assert events[0]["details"]["client_id"] == client  # newest first
    assert all(e["type"] == "client_created" and e["tenant"] == "a" for e in events)
    assert {"type", "at", "actor", "ip"} <= set(events[0])
    later = server.cli_json("audit", "--tenant", "a", "--since", "2999-01-01T00:00:00Z")
    assert later == {"events": []}
    other = server.cli_json("audit", "--tenant", "b", "--type", "client_created")
    assert not [e for e in other["events"] if e["details"]["client_id"] == client]
    bad = server.cli("audit", "--tenant", "a", "--since", "soon", check=False)
    assert bad.returncode != 0 and "ISO 8601" in bad.stderr
    text = server.cli("audit", "--tenant", "a", "--type", "client_created").stdout
    assert client in text and "AT" in text.splitlines()[0]


# ---- retention -------------------------------------------------------------------------------


def test_retention_purges_events_older_than_the_setting(server: Server) -> None:
    now = time.time()
    for age_days, marker in ((400, "old"), (10, "recent")):
        server.sql(
            "INSERT INTO audit_events (tenant, at, type, severity, actor, ip, details)"
            " VALUES ('a', :at, 'retention_probe', 'info', :m, NULL, '{}')",
            {"at": now - age_days * 86400, "m": marker},
        )
    purged = server.cli_json("purge")["purged"]
    assert purged["audit_events"] >= 1
    kept = [r[0] for r in server.sql("SELECT actor FROM audit_events WHERE type = 'retention_probe'")]
    assert kept == ["recent"]
    env = {**server.env, "OPENXP_AUDIT_RETENTION_DAYS": "5"}
    import subprocess

    from tests.support.server import OPENXP

    subprocess.run([*OPENXP, "purge"], env=env, check=True, capture_output=True, cwd=server.data_dir, timeout=120)
    assert server.sql("SELECT actor FROM audit_events WHERE type = 'retention_probe'") == []


# ---- the queue: bounded, never in the request's way ------------------------------------------


def _record(i: int) -> Record:
    return Record(time.time(), "queue_probe", "info", "a", None, f"actor-{i}", None, {"i": i})


def test_a_full_queue_drops_and_counts_and_never_raises(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    upgrade(url)

    async def run() -> tuple[int, int, int]:
        db = Database(url)
        writer = AuditWriter(db, capacity=5, batch=100, interval=60)
        try:
            for i in range(12):
                writer.submit(_record(i))  # the sink a request calls: must never wait nor raise
            dropped, pending = writer.dropped, writer.pending
            await writer.flush()
            async with db.read() as conn:
                stored = await conn.fetch_all("SELECT actor FROM audit_events ORDER BY id")
            return dropped, pending, len(stored)
        finally:
            await db.dispose()

    assert asyncio.run(run()) == (7, 5, 5)


def test_a_flush_writes_what_was_queued_when_it_began(tmp_path: Path) -> None:
    """Requests served while a batch is written add records; the flush leaves them for the next
    turn instead of writing a transaction per request (which cost the code exchange a quarter of
    its time). Here a request lands during each batch's write."""
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    upgrade(url)

    async def run() -> tuple[int, int, int]:
        db = Database(url)
        writer = AuditWriter(db, batch=2, interval=60)
        arriving = iter(range(100, 200))

        async def request_during_writes() -> None:
            while True:
                writer.submit(_record(next(arriving)))
                await asyncio.sleep(0)

        try:
            for i in range(6):
                writer.submit(_record(i))
            other = asyncio.create_task(request_during_writes())  # runs once the flush first waits
            await writer.flush()
            other.cancel()
            async with db.read() as conn:
                stored = await conn.fetch_all("SELECT actor FROM audit_events ORDER BY id")
            return len(stored), sum(1 for (a,) in stored if a in {f"actor-{i}" for i in range(6)}), writer.pending
        finally:
            await db.dispose()

    written, first_six, left = asyncio.run(run())
    assert (written, first_six) == (6, 6), "the flush wrote records that arrived after it began"
    assert left > 0


def test_a_database_that_is_down_keeps_the_events_queued(tmp_path: Path) -> None:
    """PostgreSQL not answering (nothing listens on the port): the flush fails quietly, the events
    wait for the next turn, and the queue stays bounded."""

    async def run() -> tuple[int, int]:
        db = Database("postgresql://openxp@127.0.0.1:1/none")
        writer = AuditWriter(db, capacity=5, batch=2, interval=60)
        try:
            for i in range(4):
                writer.submit(_record(i))
            await writer.flush()
            for i in range(4, 8):
                writer.submit(_record(i))
            return writer.pending, writer.dropped
        finally:
            await db.dispose()

    assert asyncio.run(run()) == (5, 3)


# ---- P-02 / M-03: sentinel values are stored nowhere -----------------------------------------


def _tables(server: Server) -> list[str]:
    if server.database_url.startswith("sqlite"):
        rows = server.sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    else:
        rows = server.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    return [r[0] for r in rows]


def _stored_text(server: Server) -> dict[str, str]:
    """Every value of every column of every table, as text, by table."""
    dump: dict[str, str] = {}
    for table in _tables(server):
        parts = []
        for row in server.sql(f'SELECT * FROM "{table}"'):
            for value in row:
                parts.append(bytes(value).decode("latin-1") if isinstance(value, bytes | memoryview) else str(value))
        dump[table] = "\n".join(parts)
    return dump


def test_P02_M03_no_secret_code_token_or_password_is_stored_or_logged(server: Server) -> None:
    sentinels: dict[str, str] = {}
    password = "Sentinel-Password-" + crypto.random_token(12)
    wrong_password = "Sentinel-Wrong-" + crypto.random_token(12)
    key = dedicated_admin(server, "sentinel", password=password)
    sentinels |= {"password": password, "wrong password": wrong_password}
    created = create_client(server, "sentinel")
    server.clients["sentinel"] = created
    sentinels["client secret"] = created["client_secret"]
    browser = Browser.open(server)
    try:
        page = browser.authorize(auth_params(server, "sentinel"))
        sentinels["csrf token"] = hidden_fields(page.text)["csrf_token"]
        assert browser.login(page, key, password=wrong_password).status_code == 200
        # A password typed into the email field.
        page = browser.authorize(auth_params(server, "sentinel"))
        fields = hidden_fields(page.text)
        assert browser.http.post("/auth/login", data={**fields, "email": password, "password": password}).status_code
        verifier, challenge = pkce_pair()
        sentinels["code verifier"] = verifier
        done = browser.approve(
            auth_params(server, "sentinel", code_challenge=challenge, code_challenge_method="S256"), admin=key
        )
        assert done.status_code == 303
    finally:
        browser.close()
    code = query_of(done.headers["location"])["code"][0]
    sentinels["code"] = code
    issued = exchange(server, code, "sentinel", code_verifier=verifier)
    assert issued.status_code == 200, issued.text
    sentinels |= {"access token": issued.json()["access_token"], "refresh token": issued.json()["refresh_token"]}
    client_id = created["client_id"]
    wrong_secret = "Sentinel-Secret-" + crypto.random_token(12)
    sentinels["wrong client secret"] = wrong_secret
    token_post(server, data={"grant_type": "refresh_token", "client_id": client_id, "client_secret": wrong_secret})
    token_post(server, data={"grant_type": "refresh_token", "client_id": wrong_secret, "client_secret": wrong_secret})
    renewed = refresh(server, sentinels["refresh token"], "sentinel")
    assert renewed.status_code == 200
    sentinels["refreshed access token"] = renewed.json()["access_token"]
    sentinels["second refresh token"] = renewed.json()["refresh_token"]
    refresh(server, sentinels["refresh token"], "sentinel")  # reuse
    exchange(server, code, "sentinel", code_verifier=verifier)  # a replay
    bearer = {"authorization": f"Bearer {sentinels['access token']}", "X-CXP-Tenant": "a"}
    httpx.get(f"{server.base_url}/api/auth/me", headers=bearer, timeout=30)
    revoke(server, data={"token": sentinels["refreshed access token"], "client_id": client_id,
                             "client_secret": created["client_secret"]})  # fmt: skip
    apikey = server.cli_json("apikey", "create", "--tenant", "a", "--name", "sentinel key")
    sentinels["api key secret"] = apikey["secret"]
    basic_me = {**basic(apikey["key"], apikey["secret"]), "X-CXP-Tenant": "a"}
    assert httpx.get(f"{server.base_url}/api/auth/me", headers=basic_me, timeout=30).status_code == 200
    wrong_key_secret = "Sentinel-KeySecret-" + crypto.random_token(12)
    sentinels["wrong api key secret"] = wrong_key_secret
    httpx.get(f"{server.base_url}/api/auth/me", headers={**basic(apikey["key"], wrong_key_secret)}, timeout=30)
    rotated = server.cli_json("apikey", "rotate", "--tenant", "a", apikey["key"])
    sentinels["rotated api key secret"] = rotated["secret"]
    new_client_secret = server.cli_json("client", "rotate-secret", "--tenant", "a", client_id)["client_secret"]
    sentinels["rotated client secret"] = new_client_secret
    short_password = "Sentinel-Short-" + crypto.random_token(12)
    sentinels["short-lived password"] = short_password
    made = httpx.post(
        f"{server.base_url}/api/auth/basic",
        json={"username": "sentinel-" + crypto.random_token(4), "password": short_password, "ttlMins": 5},
        headers={"authorization": f"Bearer {reader(server)}", "X-CXP-Tenant": "a"},
        timeout=30,
    )
    assert made.status_code == 200, made.text
    launched = httpx.post(
        f"{server.base_url}/api/launch",
        json={
            "url": "https://content.a.test/start",
            "actor": {"mbox": "mailto:l@a.test"},
            "activity_id": "https://a.test/x",
        },
        headers={"authorization": f"Bearer {reader(server)}", "X-CXP-Tenant": "a"},
        timeout=30,
    )
    assert launched.status_code == 200, launched.text
    auth = httpx.QueryParams(httpx.URL(launched.json()["url"]).query).get("auth", "")
    sentinels["launch credential"] = base64.b64decode(auth.split(" ", 1)[1]).decode().split(":", 1)[1]

    # The events of all this are stored: wait for the writer, then look everywhere.
    wait_event(server, "launch_created", lambda e: e["at"] >= _iso(time.time() - 120))
    wait_event(server, "refresh_reuse_detected", lambda e: e["details"].get("client_id") == client_id)
    stored = _stored_text(server)
    assert "audit_events" in stored and client_id in stored["audit_events"]
    log = server.log()
    for label, value in sentinels.items():
        assert len(value) >= 16, label
        where = [table for table, text in stored.items() if value in text]
        assert where == [], f"the {label} is stored in {where}"
        assert value not in log, f"the {label} is in the server log"
