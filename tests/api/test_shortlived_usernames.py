"""Short-lived usernames (``POST /api/auth/basic``): unique per tenant, enforced by the database, and
never a way for one tenant to block or break another's.

SECURITY.md I-11 (tenants share nothing through a username), J-02 (an expired credential is dead,
its name free again), J-06 (revocation) and N-02 (nobody else can make the rightful caller's
credential stop working).
"""

from __future__ import annotations

import base64
import secrets
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import httpx
import pytest

from tests.support.server import Server
from tests.xapi.lrs import VERSION


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.fixture(scope="module")
def tenant_keys(server: Server) -> dict[str, dict[str, Any]]:
    """Nine more tenants, each with an API key that may create short-lived credentials."""
    keys = {}
    for i in range(9):
        name = f"sl{i}-{secrets.token_hex(3)}"
        server.cli_json("tenant", "create", name)
        keys[name] = server.cli_json("apikey", "create", "--tenant", name, "--name", "launcher")
    return keys


def create(server: Server, key: dict[str, Any], **body: Any) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/auth/basic",
        json=body,
        headers={"Authorization": basic(key["key"], key["secret"])},
        timeout=30,
    )


def lrs_whoami(server: Server, username: str, password: str, tenant: str | None = None) -> httpx.Response:
    """A read on /xapi with the short-lived credential (and, if given, the tenant named)."""
    headers = {**VERSION, "Authorization": basic(username, password)}
    if tenant is not None:
        headers["X-CXP-Tenant"] = tenant
    return httpx.get(f"{server.base_url}/xapi/statements", params={"limit": "1"}, headers=headers, timeout=30)


def live_rows(server: Server, username: str) -> list[Any]:
    return server.sql("SELECT tenant_id FROM short_lived_credentials WHERE username = :u", {"u": username})


def test_I11_N02_nine_tenants_may_each_use_one_username(server: Server, tenant_keys: dict[str, Any]) -> None:
    """I-11, N-02: nine tenants each create ``scorm-player``; every one gets 200 and a password that works,
    with or without naming its tenant (before: only 8 live rows per username were looked at, so the
    ninth tenant's password always answered 401)."""
    username = f"scorm-player-{secrets.token_hex(3)}"
    passwords = {}
    for tenant, key in tenant_keys.items():
        passwords[tenant] = secrets.token_urlsafe(24)
        created = create(server, key, username=username, password=passwords[tenant], ttlMins=30)
        assert created.status_code == 200, (tenant, created.text)
    for tenant, password in passwords.items():
        assert lrs_whoami(server, username, password).status_code == 200, tenant
        assert lrs_whoami(server, username, password, tenant).status_code == 200, tenant
    # Naming another tenant with a tenant's credential is refused as a mismatch (I-11).
    first, second = list(passwords)[:2]
    mismatch = lrs_whoami(server, username, passwords[first], second)
    assert mismatch.status_code == 403 and mismatch.json()["error"] == "tenant_mismatch"


def test_I11_parallel_creates_of_one_name_leave_one_credential(server: Server, tenant_keys: dict[str, Any]) -> None:
    """I-11: 20 parallel creates of one username in one tenant (five rounds, five names): each time exactly
    one 200, the others 409 ``username_taken``, and one row (before, on PostgreSQL: up to 8 live
    duplicates, from a check-then-insert)."""
    key = next(iter(tenant_keys.values()))
    for _ in range(5):
        username = f"race-{secrets.token_hex(4)}"
        start = Barrier(20)

        def attempt(i: int, username: str = username, start: Barrier = start) -> httpx.Response:
            start.wait()
            return create(server, key, username=username, password=f"password-number-{i:04d}", ttlMins=30)

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(attempt, range(20)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [409] * 19, statuses
        assert {a.json()["error"] for a in answers if a.status_code == 409} == {"username_taken"}
        assert len(live_rows(server, username)) == 1
        winner = next(i for i, a in enumerate(answers) if a.status_code == 200)
        assert lrs_whoami(server, username, f"password-number-{winner:04d}").status_code == 200


def test_J02_J06_a_dead_name_can_be_reused_and_a_live_one_cannot(server: Server, tenant_keys: dict[str, Any]) -> None:
    """J-02, J-06: a live name is 409 ``username_taken`` (the old password keeps working); once it expired
    or was revoked, the same tenant may create it again, and only the new password works."""
    key = list(tenant_keys.values())[1]
    username = f"reuse-{secrets.token_hex(4)}"
    first, second, third = (secrets.token_urlsafe(24) for _ in range(3))
    assert create(server, key, username=username, password=first, ttlMins=5).status_code == 200
    taken = create(server, key, username=username, password=second, ttlMins=5)
    assert taken.status_code == 409 and taken.json()["error"] == "username_taken", taken.text
    assert lrs_whoami(server, username, first).status_code == 200
    server.sql("UPDATE short_lived_credentials SET expires_at = 1 WHERE username = :u", {"u": username})
    assert create(server, key, username=username, password=second, ttlMins=5).status_code == 200
    assert lrs_whoami(server, username, first).status_code == 401
    assert lrs_whoami(server, username, second).status_code == 200
    revoked = httpx.delete(
        f"{server.base_url}/api/auth/basic/{username}",
        headers={"Authorization": basic(key["key"], key["secret"])},
        timeout=30,
    )
    assert revoked.status_code == 204
    assert create(server, key, username=username, password=third, ttlMins=5).status_code == 200
    assert lrs_whoami(server, username, third).status_code == 200
    assert len(live_rows(server, username)) == 1


def test_I11_one_password_in_two_tenants_needs_the_tenant_named(server: Server, tenant_keys: dict[str, Any]) -> None:
    """I-11: if two tenants chose the same username *and* password, a request that names no tenant cannot
    tell them apart and is refused (401); naming the tenant picks the right one."""
    (t1, k1), (t2, k2) = list(tenant_keys.items())[2:4]
    username, password = f"twin-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    assert create(server, k1, username=username, password=password, ttlMins=5).status_code == 200
    assert create(server, k2, username=username, password=password, ttlMins=5).status_code == 200
    assert lrs_whoami(server, username, password).status_code == 401
    assert lrs_whoami(server, username, password, t1).status_code == 200
    assert lrs_whoami(server, username, password, t2).status_code == 200
