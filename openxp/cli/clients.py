"""``openxp client ...``: OAuth clients (integrations)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import typer

from openxp import audit
from openxp.cli._common import (
    DATABASE_HELP,
    JSON_OPTION,
    TENANT_OPTION,
    TYPER_STYLE,
    T,
    emit,
    operator,
    table,
    with_db,
)
from openxp.store import clients as client_store
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection

client_app = typer.Typer(help="OAuth clients (integrations).", epilog=DATABASE_HELP, **TYPER_STYLE)
CLIENT_ARGUMENT = typer.Argument(..., metavar="CLIENT_ID", help="The client's id, as `client list` shows it.")

# ---- clients -----------------------------------------------------------------------------------


def _client_json(client: client_store.Client, tenant: str) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "tenant": tenant,
        "redirect_uris": client.redirect_uris,
        "confidential": client.confidential,
        "require_pkce": client.require_pkce,
        "scopes": client.scopes,
        "default_scopes": client.default_scopes,
        "grant_types": client.grant_types,
        "refresh_reuse_grace": client.refresh_reuse_grace,
        "disabled": client.disabled,
    }


@client_app.command("create")
def client_create(
    tenant: str = TENANT_OPTION,
    name: str = typer.Option(..., "--name", metavar="LABEL", help="Shown to the admin on the consent page."),
    redirect_uri: list[str] = typer.Option(
        [],
        "--redirect-uri",
        metavar="URI",
        help="Exact redirect URI; repeat for several. Required unless the only grant is client_credentials.",
    ),
    public: bool = typer.Option(False, "--public", help="A public client (no secret; PKCE required)."),
    require_pkce: bool = typer.Option(False, "--require-pkce", help="Require PKCE (S256) from this client."),
    scope: list[str] = typer.Option([], "--scope", metavar="SCOPE", help="Allowed scope; repeat. Default: all."),
    default_scope: list[str] = typer.Option(
        [], "--default-scope", metavar="SCOPE", help="Scope granted when none is asked for; repeat."
    ),
    grant_type: list[str] = typer.Option(
        [],
        "--grant-type",
        metavar="GRANT",
        help="authorization_code, refresh_token, client_credentials; repeat. Default: the first two."
        " client_credentials alone makes a service account (no admin, no redirect URI).",
    ),
    refresh_reuse_grace: int | None = typer.Option(
        None,
        "--refresh-reuse-grace",
        min=0,
        metavar="SECONDS",
        help="Seconds within which this client may re-present a refresh token it just rotated and get"
        " the same answer (a lost response). Default: OPENXP_REFRESH_REUSE_GRACE.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an OAuth client. The secret is printed once."""

    async def work(conn: Connection) -> tuple[client_store.Client, str | None]:
        found = await tenant_store.get(conn, tenant)
        created = await client_store.create(
            conn,
            tenant_id=found.id,
            name=name,
            redirect_uris=redirect_uri,
            confidential=not public,
            require_pkce=require_pkce,
            allowed_scopes=scope or None,
            default_scopes=default_scope or None,
            grant_types=grant_type or None,
            refresh_reuse_grace=refresh_reuse_grace,
        )
        audit.event("client_created", tenant=tenant, actor=operator(), client_id=created[0].client_id, label=name)
        return created

    client, secret = with_db(work)
    payload = {
        "client_id": client.client_id,
        "client_secret": secret,
        "tenant": tenant,
        "redirect_uris": client.redirect_uris,
        "name": client.name,
        "confidential": client.confidential,
        "scopes": client.scopes,
        "grant_types": client.grant_types,
        "refresh_reuse_grace": client.refresh_reuse_grace,
    }
    human = f"client_id: {client.client_id}\nclient_secret: {secret or '(public client: none)'}"
    emit(as_json, payload, human)


@client_app.command("list")
def client_list(tenant: str = TENANT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List a tenant's clients (secrets are never shown again)."""

    async def work(conn: Connection) -> list[client_store.Client]:
        return await client_store.list_for_tenant(conn, (await tenant_store.get(conn, tenant)).id)

    found = with_db(work)
    emit(
        as_json,
        {"clients": [_client_json(c, tenant) for c in found]},
        table(
            ["CLIENT ID", "NAME", "STATE"],
            [[c.client_id, c.name, "disabled" if c.disabled else "active"] for c in found],
            "(no clients)",
        ),
    )


def _client_action(
    tenant: str, client_id: str, event: str, action: Callable[[Connection, client_store.Client], Awaitable[T]]
) -> T:
    async def work(conn: Connection) -> T:
        found = await tenant_store.get(conn, tenant)
        client = await client_store.get(conn, client_id, found.id)
        result = await action(conn, client)
        audit.event(event, tenant=tenant, actor=operator(), client_id=client.client_id)
        return result

    return with_db(work)


@client_app.command("disable")
def client_disable(tenant: str = TENANT_OPTION, client_id: str = CLIENT_ARGUMENT) -> None:
    """Disable a client: its codes and tokens stop working at once."""
    _client_action(tenant, client_id, "client_disabled", lambda conn, c: client_store.set_disabled(conn, c, True))
    typer.echo(f"disabled {client_id}; its grants are revoked")


@client_app.command("enable")
def client_enable(tenant: str = TENANT_OPTION, client_id: str = CLIENT_ARGUMENT) -> None:
    """Enable a disabled client (revoked grants stay revoked)."""
    _client_action(tenant, client_id, "client_enabled", lambda conn, c: client_store.set_disabled(conn, c, False))
    typer.echo(f"enabled {client_id}")


@client_app.command("rotate-secret")
def client_rotate_secret(
    tenant: str = TENANT_OPTION,
    client_id: str = CLIENT_ARGUMENT,
    revoke_tokens: bool = typer.Option(False, "--revoke-tokens", help="Also revoke every token of the client."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a new client secret; the old one stops working at once."""
    secret = _client_action(
        tenant,
        client_id,
        "client_secret_rotated",
        lambda conn, c: client_store.rotate_secret(conn, c, revoke_tokens=revoke_tokens),
    )
    emit(as_json, {"client_id": client_id, "client_secret": secret, "tenant": tenant}, f"client_secret: {secret}")


@client_app.command("delete")
def client_delete(tenant: str = TENANT_OPTION, client_id: str = CLIENT_ARGUMENT) -> None:
    """Delete a client with all its codes and tokens."""
    _client_action(tenant, client_id, "client_deleted", client_store.delete_client)
    typer.echo(f"deleted {client_id}")
