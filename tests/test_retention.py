"""A tenant's retention period (issue 15, part 2): ``openxp tenant set-retention NAME --days N`` and
housekeeping deleting statements (by stored time) and documents (by updated time) older than it, in
batches of ``OPENXP_RETENTION_BATCH`` rows, with the attachment bodies left unused; ``0`` keeps all.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.server import Server, destroy_server, make_server
from tests.support.statements import post_with_parts
from tests.test_erasure import activity, attachment_of, mbox, stmt, verb
from tests.xapi.lrs import xapi

BATCH = 3
DAY = 86400


@pytest.fixture(scope="module")
def srv() -> Iterator[Server]:
    server = make_server({"OPENXP_RETENTION_BATCH": str(BATCH)})
    try:
        yield server
    finally:
        destroy_server(server)


def new_tenant(server: Server) -> tuple[str, dict[str, Any]]:
    name = "r" + secrets.token_hex(4)
    server.cli_json("tenant", "create", name)
    return name, server.cli_json("apikey", "create", "--tenant", name, "--name", "feed")


def age(server: Server, table: str, column: str, key: str, values: list[str], days: int) -> None:
    for value in values:
        server.sql(f"UPDATE {table} SET {column} = {column} - :s WHERE {key} = :v", {"s": days * DAY, "v": value})


def tenant_count(server: Server, table: str, tenant: str) -> int:
    sql = f"SELECT count(*) FROM {table} WHERE tenant_id = (SELECT id FROM tenants WHERE name = :n)"
    return int(server.sql(sql, {"n": tenant})[0][0])


def seed(server: Server, key: dict[str, Any]) -> dict[str, Any]:
    """Seven statements made 40 days old (one with an attachment only it uses, one with an
    attachment a new statement shares, one voided by a new voiding statement), three new ones,
    two old documents and one new."""
    tag = secrets.token_hex(4)
    only_old, shared = f"only old {tag}".encode(), f"shared {tag}".encode()
    learner = mbox(f"l-{tag}@example.com")
    old = [stmt(learner, attachments=[attachment_of(only_old)]), stmt(learner, attachments=[attachment_of(shared)])]
    old += [stmt(learner) for _ in range(5)]
    new_shared = stmt(learner, attachments=[attachment_of(shared)])
    voiding = stmt(learner, {"objectType": "StatementRef", "id": old[2]["id"]}, verb=verb("voided"))
    new = [new_shared, voiding, stmt(learner, activity())]
    post_with_parts(server, key, old, [only_old, shared])
    post_with_parts(server, key, new, [shared])
    age(server, "xapi_statements", "stored", "statement_id", [s["id"] for s in old], 40)
    agent = json.dumps({"mbox": learner["mbox"]})
    for profile in ("old1", "old2", "new"):
        made = xapi(
            server, "POST", "/agents/profile", key, params={"agent": agent, "profileId": profile}, json={"x": 1}
        )
        assert made.status_code == 204, made.text
    age(server, "xapi_documents", "updated", "doc_id", ["old1", "old2"], 40)
    return {"old": [s["id"] for s in old], "new": [s["id"] for s in new], "voiding": voiding["id"], "shared": shared}


def purge(server: Server) -> dict[str, int]:
    kept: dict[str, int] = server.cli_json("purge")["retention"]
    return kept


def test_old_rows_go_in_batches_and_new_ones_stay(srv: Server) -> None:
    tenant, key = new_tenant(srv)
    made = seed(srv, key)
    attachments_before = tenant_count(srv, "xapi_attachments", tenant)
    assert attachments_before == 2
    assert srv.cli_json("tenant", "set-retention", tenant, "--days", "30") == {"name": tenant, "retention_days": 30}
    done = purge(srv)
    # 7 statements in batches of 3 (3, 3, 1) and 2 documents in one batch, at least: other
    # tenants of the module may have rows of their own to go.
    assert done["statements"] >= 7 and done["documents"] >= 2 and done["batches"] >= 4
    assert tenant_count(srv, "xapi_statements", tenant) == 3
    assert tenant_count(srv, "xapi_documents", tenant) == 1
    assert tenant_count(srv, "xapi_attachments", tenant) == 1
    for sid in made["old"]:
        assert xapi(srv, "GET", "/statements", key, params={"statementId": sid}).status_code == 404
        assert xapi(srv, "GET", "/statements", key, params={"voidedStatementId": sid}).status_code == 404
    for sid in made["new"]:
        assert xapi(srv, "GET", "/statements", key, params={"statementId": sid}).status_code == 200
    listed = xapi(srv, "GET", "/statements", key, params={"limit": 2})
    assert listed.status_code == 200 and len(listed.json()["statements"]) == 2
    follow = xapi(srv, "GET", listed.json()["more"].removeprefix("/xapi"), key)
    assert follow.status_code == 200 and len(follow.json()["statements"]) == 1
    shared = xapi(srv, "GET", "/statements", key, params={"statementId": made["new"][0], "attachments": "true"})
    assert made["shared"] in shared.content
    # Nothing more to do: a second run deletes nothing of this tenant.
    purge(srv)
    assert tenant_count(srv, "xapi_statements", tenant) == 3


def test_zero_keeps_everything(srv: Server) -> None:
    tenant, key = new_tenant(srv)
    seed(srv, key)
    untouched, key2 = new_tenant(srv)
    seed(srv, key2)
    srv.cli_json("tenant", "set-retention", untouched, "--days", "30")
    srv.cli_json("tenant", "set-retention", untouched, "--days", "0")
    purge(srv)
    for name in (tenant, untouched):
        assert tenant_count(srv, "xapi_statements", name) == 10
        assert tenant_count(srv, "xapi_documents", name) == 3
        assert tenant_count(srv, "xapi_attachments", name) == 2


def test_set_retention_refuses_bad_input(srv: Server) -> None:
    assert srv.cli("tenant", "set-retention", "nosuch", "--days", "3", check=False).returncode == 1
    assert srv.cli("tenant", "set-retention", "a", "--days", "-1", check=False).returncode == 2
    assert srv.cli("tenant", "set-retention", "a", "--days", "100000", check=False).returncode == 2
