"""``openxp forwarding ...``: send every statement a tenant accepts to another LRS or a webhook."""

from __future__ import annotations

import asyncio
import base64
import sys
from typing import Any

import typer

from openxp import audit, crypto
from openxp.cli._common import (
    DATABASE_HELP,
    JSON_OPTION,
    TENANT_OPTION,
    TYPER_STYLE,
    emit,
    fail,
    iso,
    load_settings,
    operator,
    table,
    with_db,
)
from openxp.forwarding import sealing
from openxp.forwarding.destinations import vet
from openxp.forwarding.errors import ForwardingError
from openxp.store import forwarding as forwarding_store
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection, now

forwarding_app = typer.Typer(
    help="Forward every statement a tenant accepts to another LRS or a webhook (at least once).",
    epilog=DATABASE_HELP,
    **TYPER_STYLE,
)
TARGET_ARGUMENT = typer.Argument(..., metavar="ID", help="The target's id, as `forwarding list` shows.")
OPTIONAL_TENANT = typer.Option(None, "--tenant", metavar="TENANT", help="Only this tenant's targets.")


def _authorization(line: str) -> str:
    """``Basic ...`` or ``Bearer ...`` as given, or ``user:password`` made into Basic."""
    value = line.rstrip("\r\n").strip()
    scheme = value.split(" ", 1)[0].lower()
    if scheme in {"basic", "bearer"} and " " in value:
        return value
    if ":" in value:
        return "Basic " + base64.b64encode(value.encode("utf-8")).decode("ascii")
    fail("--auth-stdin takes one line: 'Basic <base64>', 'Bearer <token>' or '<user>:<password>'")
    raise AssertionError


@forwarding_app.command("add")
def forwarding_add(
    tenant: str = TENANT_OPTION,
    url: str = typer.Option(
        ..., "--url", metavar="URL", help="xapi: the LRS's xAPI endpoint (…/xapi); webhook: the URL to POST to."
    ),
    kind: str = typer.Option("xapi", "--kind", metavar="xapi|webhook", help="Another LRS, or a webhook."),
    auth_stdin: bool = typer.Option(
        False, "--auth-stdin", help="Read the credentials from stdin: 'Basic …', 'Bearer …' or 'user:password'."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Forward the tenant's statements from now on. A webhook's signing secret is printed once."""
    if kind not in forwarding_store.KINDS:
        fail("--kind must be xapi or webhook")
    settings = load_settings()
    authorization = _authorization(sys.stdin.readline()) if auth_stdin else None
    try:
        vetted = asyncio.run(vet(url, settings.forwarding_allow_networks))
        sealer = sealing.sealer(settings)
    except ForwardingError as exc:
        fail(exc.message)
        raise
    secret = crypto.new_credential("whsec_") if kind == "webhook" else None

    async def work(conn: Connection) -> int:
        found = await tenant_store.get(conn, tenant)
        target_id = await forwarding_store.create_target(
            conn,
            found.id,
            kind,
            vetted.origin,
            sealer.seal(vetted.url),
            sealer.seal(authorization) if authorization else None,
            sealer.seal(secret) if secret else None,
        )
        audit.event(
            "forwarding_target_added",
            tenant=tenant,
            actor=operator(),
            target=target_id,
            kind=kind,
            origin=vetted.origin,
        )
        return target_id

    target_id = with_db(work, settings)
    payload: dict[str, Any] = {
        "id": target_id,
        "tenant": tenant,
        "kind": kind,
        "origin": vetted.origin,
        "enabled": True,
    }
    human = f"added forwarding target {target_id}: {kind} {vetted.origin}"
    if secret is not None:
        payload["secret"] = secret
        human += f"\nsigning secret (shown once): {secret}"
    emit(as_json, payload, human)


def _described(target: forwarding_store.Target) -> dict[str, Any]:
    return {
        "id": target.id,
        "tenant": target.tenant,
        "kind": target.kind,
        "origin": target.origin,
        "enabled": target.enabled,
        "authenticated": target.auth_sealed is not None,
        "created_at": iso(target.created_at),
    }


async def _tenant_id(conn: Connection, tenant: str | None) -> int | None:
    return None if tenant is None else (await tenant_store.get(conn, tenant)).id


@forwarding_app.command("list")
def forwarding_list(tenant: str | None = OPTIONAL_TENANT, as_json: bool = JSON_OPTION) -> None:
    """List forwarding targets (never their credentials, secrets or URL paths)."""

    async def work(conn: Connection) -> list[forwarding_store.Target]:
        return await forwarding_store.list_targets(conn, await _tenant_id(conn, tenant))

    found = [_described(t) for t in with_db(work)]
    rows = [[t["id"], t["tenant"], t["kind"], t["origin"], "enabled" if t["enabled"] else "disabled"] for t in found]
    emit(as_json, {"targets": found}, table(["ID", "TENANT", "KIND", "ORIGIN", "STATE"], rows, "(no targets)"))


@forwarding_app.command("status")
def forwarding_status(tenant: str | None = OPTIONAL_TENANT, as_json: bool = JSON_OPTION) -> None:
    """Per target: statements pending, failing (retrying), dead, and the lag (age of the oldest pending)."""

    async def work(conn: Connection) -> list[dict[str, Any]]:
        found = await forwarding_store.list_targets(conn, await _tenant_id(conn, tenant))
        backlog = await forwarding_store.backlog(conn, [t.id for t in found])
        at = now()
        described = []
        for target in found:
            b = backlog[target.id]
            lag = round(max(0.0, at - b.oldest), 3) if b.oldest is not None else 0.0
            described.append(
                _described(target)
                | {
                    "pending": b.pending,
                    "failing": b.failing,
                    "dead": b.dead,
                    "lag_seconds": lag,
                    "last_error": b.last_error,
                }
            )
        return described

    found = with_db(work)
    rows = [[t["id"], t["tenant"], t["origin"], t["pending"], t["failing"], t["dead"], t["lag_seconds"]] for t in found]
    emit(
        as_json,
        {"targets": found},
        table(["ID", "TENANT", "ORIGIN", "PENDING", "FAILING", "DEAD", "LAG (S)"], rows, "(no targets)"),
    )


@forwarding_app.command("retry")
def forwarding_retry(tenant: str = TENANT_OPTION, target: int = TARGET_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Send a target's dead statements again (their attempts start over)."""

    async def work(conn: Connection) -> int:
        found = await forwarding_store.get_target(conn, (await tenant_store.get(conn, tenant)).id, target)
        count = await forwarding_store.retry(conn, found.id)
        audit.event("forwarding_retried", tenant=tenant, actor=operator(), target=found.id, count=count)
        return count

    count = with_db(work)
    emit(as_json, {"id": target, "requeued": count}, f"target {target}: {count} dead statements queued again")


@forwarding_app.command("remove")
def forwarding_remove(tenant: str = TENANT_OPTION, target: int = TARGET_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Stop forwarding to a target; its undelivered statements are dropped."""

    async def work(conn: Connection) -> None:
        await forwarding_store.remove_target(conn, (await tenant_store.get(conn, tenant)).id, target)
        audit.event("forwarding_target_removed", tenant=tenant, actor=operator(), target=target)

    with_db(work)
    emit(as_json, {"id": target, "removed": True}, f"removed forwarding target {target}")
