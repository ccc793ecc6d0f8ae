"""``openxp apikey ...``: keys for the deprecated Basic auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import typer

from openxp import audit
from openxp import scopes as scope_vocabulary
from openxp.cli._common import (
    DATABASE_HELP,
    JSON_OPTION,
    TENANT_OPTION,
    TYPER_STYLE,
    T,
    emit,
    iso,
    operator,
    table,
    with_db,
)
from openxp.store import apikeys as apikey_store
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection

apikey_app = typer.Typer(
    help="API keys for Basic auth (deprecated, still served).", epilog=DATABASE_HELP, **TYPER_STYLE
)
KEY_ARGUMENT = typer.Argument(..., metavar="KEY", help="The API key (its public part, as `apikey list` shows).")

# ---- API keys ----------------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    tenant: str = TENANT_OPTION,
    name: str = typer.Option("", "--name", metavar="LABEL", help="A label for the key."),
    scope: list[str] = typer.Option(
        [],
        "--scope",
        metavar="SCOPE",
        help=f"Scope; repeat. Default: all. Known: {', '.join(scope_vocabulary.SCOPES)}",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an API key and secret for Basic auth. The secret is printed once."""

    async def work(conn: Connection) -> tuple[apikey_store.ApiKey, str]:
        found = await tenant_store.get(conn, tenant)
        created = await apikey_store.create(conn, found.id, name, scope or None)
        audit.event("apikey_created", tenant=tenant, actor=operator(), key=created[0].key, label=name)
        return created

    key, secret = with_db(work)
    emit(
        as_json,
        {"key": key.key, "secret": secret, "tenant": tenant, "name": key.name, "scopes": key.scopes},
        f"key: {key.key}\nsecret: {secret}",
    )


@apikey_app.command("list")
def apikey_list(tenant: str = TENANT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List a tenant's API keys, with when each was last used."""

    async def work(conn: Connection) -> list[apikey_store.ApiKey]:
        return await apikey_store.list_for_tenant(conn, (await tenant_store.get(conn, tenant)).id)

    found = with_db(work)
    rows = [
        {"key": k.key, "name": k.name, "scopes": k.scopes, "disabled": k.disabled, "last_used_at": iso(k.last_used_at)}
        for k in found
    ]
    emit(
        as_json,
        {"keys": rows},
        table(
            ["KEY", "NAME", "STATE", "LAST USED"],
            [[r["key"], r["name"], "disabled" if r["disabled"] else "active", r["last_used_at"]] for r in rows],
            "(no API keys)",
        ),
    )


def _key_action(
    tenant: str, key: str, event: str, action: Callable[[Connection, apikey_store.ApiKey], Awaitable[T]]
) -> T:
    async def work(conn: Connection) -> T:
        found = await apikey_store.get(conn, key, (await tenant_store.get(conn, tenant)).id)
        result = await action(conn, found)
        audit.event(event, tenant=tenant, actor=operator(), key=found.key)
        return result

    return with_db(work)


@apikey_app.command("disable")
def apikey_disable(tenant: str = TENANT_OPTION, key: str = KEY_ARGUMENT) -> None:
    """Disable an API key."""
    _key_action(tenant, key, "apikey_disabled", lambda conn, k: apikey_store.set_disabled(conn, k.id, True))
    typer.echo(f"disabled {key}")


@apikey_app.command("rotate")
def apikey_rotate(tenant: str = TENANT_OPTION, key: str = KEY_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Issue a new secret for an API key; the old one stops working at once."""
    secret = _key_action(tenant, key, "apikey_rotated", lambda conn, k: apikey_store.rotate(conn, k.id))
    emit(as_json, {"key": key, "secret": secret, "tenant": tenant}, f"secret: {secret}")
