"""``openxp``: the operator's command line (the seed's "customer representative").

Every command that creates something takes ``--json`` and then prints exactly
one JSON object on stdout. Secrets are printed once, at creation. Passwords are
read from stdin (``--password-stdin``) or a prompt, never from the command line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer

from openxp.cli._common import load_settings, upgrade, with_db
from openxp.cli.admins import admin_app
from openxp.cli.apikeys import apikey_app
from openxp.cli.clients import client_app
from openxp.cli.tenants import tenant_app
from openxp.cli.users import users_app
from openxp.store import accounts as account_store
from openxp.store import apikeys as apikey_store
from openxp.store import clients as client_store
from openxp.store import grants as grant_store
from openxp.store import sessions as session_store
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection

app = typer.Typer(help="openxp: ClearXP-compatible OAuth server, ClearXP API and xAPI LRS.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(admin_app, name="admin")
app.add_typer(client_app, name="client")
app.add_typer(apikey_app, name="apikey")
app.add_typer(users_app, name="users")


@app.command()
def migrate() -> None:
    """Apply pending database migrations (idempotent)."""
    settings = load_settings()
    upgrade(settings)
    typer.echo("database is up to date", err=True)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes (use PostgreSQL, or SQLite on one host)."),
) -> None:
    """Run the service (applies pending migrations first)."""
    settings = load_settings()
    upgrade(settings)
    _run_server(host, port, workers)


def _run_server(host: str, port: int, workers: int) -> None:
    import uvicorn

    _configure_logging()
    uvicorn.run(
        "openxp.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # We log requests ourselves, without query strings (they may carry a code).
        access_log=False,
        # X-Forwarded-For is honoured only from OPENXP_TRUSTED_PROXIES, by openxp itself.
        proxy_headers=False,
        server_header=False,
        log_config=None,
    )


@app.command()
def quickstart(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
) -> None:
    """Migrate, create a demo tenant, admin, client and API key if the database is empty, and serve."""
    settings = load_settings()

    async def seed(conn: Connection) -> dict[str, Any] | None:
        if await tenant_store.count(conn) > 0:
            return None
        from openxp import crypto

        tenant = await tenant_store.create(conn, "demo")
        password = crypto.random_token(15)
        account = await account_store.create(conn, tenant.id, "admin@demo.example", password, "owner")
        client, secret = await client_store.create(
            conn, tenant_id=tenant.id, name="Demo integration", redirect_uris=[f"{settings.public_url}/demo/callback"]
        )
        key, key_secret = await apikey_store.create(conn, tenant.id, "Demo LRS key")
        return {
            "tenant": tenant.name,
            "admin_email": account.email,
            "admin_password": password,
            "client_id": client.client_id,
            "client_secret": secret,
            "redirect_uri": client.redirect_uris[0],
            "api_key": key.key,
            "api_secret": key_secret,
        }

    demo = with_db(seed)
    base = settings.public_url
    if demo is None:
        typer.echo("openxp: the database already has tenants; no demo data created.", err=True)
    else:
        typer.echo(
            "\n".join(
                [
                    "",
                    "openxp demo credentials (shown once; secrets are stored only as hashes):",
                    f"  Tenant name     {demo['tenant']}",
                    f"  Admin email     {demo['admin_email']}",
                    f"  Admin password  {demo['admin_password']}",
                    f"  Client ID       {demo['client_id']}",
                    f"  Client secret   {demo['client_secret']}",
                    f"  Redirect URI    {demo['redirect_uri']}",
                    f"  API key         {demo['api_key']}",
                    f"  API secret      {demo['api_secret']}",
                    "",
                    "Step 1 of the seed: open this URL in a browser and sign in as the admin:",
                    f"  {base}/auth/oauth/authorize?client_id={demo['client_id']}"
                    f"&redirect_uri={demo['redirect_uri']}&response_type=code",
                    "Then follow docs/integrating.md from step 3.",
                    "",
                ]
            )
        )
    _run_server(host, port, 1)


@app.command()
def purge() -> None:
    """Delete expired codes, tokens, sessions and pending authorizations (serve does this every 10 minutes)."""
    from openxp.store.db import now

    async def work(conn: Connection) -> None:
        cutoff = now() - 3600
        await grant_store.purge_expired(conn, cutoff)
        await session_store.purge_expired(conn, cutoff)

    with_db(work)
    typer.echo("expired rows purged", err=True)


if __name__ == "__main__":
    app()
