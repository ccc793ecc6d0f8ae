"""``openxp``: the operator's command line (the seed's "customer representative").

Every command that creates something takes ``--json`` and then prints exactly
one JSON object on stdout. Secrets are printed once, at creation. Passwords are
read from stdin (``--password-stdin``) or a prompt, never from the command line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from typing import Any

import typer

from openxp.cli._common import (
    DATABASE_HELP,
    JSON_OPTION,
    TYPER_STYLE,
    cli_options,
    configure_logging,
    display_url,
    emit,
    fail,
    load_settings,
    program,
    upgrade,
    with_db,
)
from openxp.cli.admins import admin_app
from openxp.cli.apikeys import apikey_app
from openxp.cli.audit import audit as audit_command
from openxp.cli.clients import client_app
from openxp.cli.forwarding import forwarding_app
from openxp.cli.learners import learners_app
from openxp.cli.statements import statements_app
from openxp.cli.tenants import tenant_app
from openxp.cli.users import users_app
from openxp.config import Settings
from openxp.store import Database, housekeeping
from openxp.store import accounts as account_store
from openxp.store import apikeys as apikey_store
from openxp.store import clients as client_store
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection, sqlite_path

app = typer.Typer(
    help="openxp: ClearXP-compatible OAuth server, ClearXP API and xAPI LRS.\n\n" + DATABASE_HELP, **TYPER_STYLE
)
app.add_typer(tenant_app, name="tenant")
app.add_typer(admin_app, name="admin")
app.add_typer(client_app, name="client")
app.add_typer(apikey_app, name="apikey")
app.add_typer(users_app, name="users")
app.add_typer(learners_app, name="learners")
app.add_typer(statements_app, name="statements")
app.add_typer(forwarding_app, name="forwarding")
app.command("audit")(audit_command)

HOST_OPTION = typer.Option("127.0.0.1", "--host", metavar="HOST", help="Interface to listen on.")
PORT_OPTION = typer.Option(
    8000, "--port", metavar="PORT", help="TCP port. Without OPENXP_PUBLIC_URL the public URL is http://127.0.0.1:PORT."
)
DEMO_CLIENT = "Demo integration"
DEMO_KEY = "Demo LRS key"
DEMO_ADMIN = "admin@demo.example"


@app.callback()
def main(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Log on stderr what the command does (as OPENXP_LOG_LEVEL=info does)."
    ),
) -> None:
    cli_options.verbose = verbose


@app.command()
def migrate() -> None:
    """Apply pending database migrations (idempotent)."""
    settings = load_settings()
    configure_logging(settings)
    upgrade(settings)
    typer.echo("database is up to date", err=True)


def _server_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr, force=True
    )


def _port_problem(command: str, host: str, port: int) -> str | None:
    """Why openxp could not listen on host:port now, or None. Binding (as uvicorn will, with
    SO_REUSEADDR) and letting go at once: nothing is created before this passes."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError) as exc:
        return f"cannot listen on {host}: {exc}"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except PermissionError:
            return f"port {port} on {host} needs more privileges than this user has; choose a port above 1023"
        except OSError as exc:
            import errno

            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is in use by another program (another openxp?). Stop it, "
                    f"or choose another port: {program()} {command} --port {port + 1}"
                )
            return f"cannot listen on port {port} on {host}: {exc.strerror or exc}"
    return None


def _check_port(command: str, host: str, port: int) -> None:
    problem = _port_problem(command, host, port)
    if problem is not None:
        fail(f"{problem}. Nothing was created or changed.")


@app.command()
def serve(
    host: str = HOST_OPTION,
    port: int = PORT_OPTION,
    workers: int = typer.Option(
        1, "--workers", min=1, metavar="N", help="Worker processes (use PostgreSQL, or SQLite on one host)."
    ),
) -> None:
    """Run the service (applies pending migrations first)."""
    settings = load_settings(port=port)
    _check_port("serve", host, port)
    upgrade(settings)
    _run_server(settings, host, port, workers)


def _run_server(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    # Every worker reads its settings from the environment: hand it the URL derived from --port.
    os.environ["OPENXP_PUBLIC_URL"] = settings.public_url
    _server_logging()
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


def _start_over(settings: Settings) -> str:
    path = sqlite_path(settings.database_url)
    if path is not None:
        return f"stop openxp and delete {path.absolute()} (with its -wal and -shm files, or all of {settings.data_dir})"
    return f"stop openxp, then drop and re-create the database {display_url(settings.database_url)}"


def _already_seeded(settings: Settings, existing: dict[str, Any]) -> str:
    run = program()
    client_id = existing.get("client_id") or "CLIENT_ID"
    key = existing.get("api_key") or "KEY"
    admin = existing.get("admin_email") or DEMO_ADMIN
    return "\n".join(
        [
            f"openxp: the database {display_url(settings.database_url)} already has tenants, so no demo data "
            "was created. The demo's secrets were printed once, when they were created; only their hashes "
            "are kept. New ones:",
            f"  {run} client rotate-secret --tenant demo {client_id}",
            f"  {run} apikey rotate --tenant demo {key}",
            f"  printf '%s\\n' \"$NEW_PASSWORD\" | {run} admin set-password --tenant demo --email {admin} "
            "--password-stdin",
            f"To start over with a new demo instead: {_start_over(settings)}; then run the quickstart again.",
            "",
        ]
    )


@app.command()
def quickstart(host: str = HOST_OPTION, port: int = PORT_OPTION) -> None:
    """Migrate, create a demo tenant, admin, client and API key if the database is empty, and serve."""
    settings = load_settings(port=port)
    _check_port("quickstart", host, port)

    async def seed(conn: Connection) -> tuple[bool, dict[str, Any]]:
        if await tenant_store.count(conn) > 0:
            return False, await _demo_ids(conn)
        from openxp import crypto

        tenant = await tenant_store.create(conn, "demo")
        password = crypto.random_token(15)
        account = await account_store.create(conn, tenant.id, DEMO_ADMIN, password, "owner")
        client, secret = await client_store.create(
            conn, tenant_id=tenant.id, name=DEMO_CLIENT, redirect_uris=[f"{settings.public_url}/demo/callback"]
        )
        key, key_secret = await apikey_store.create(conn, tenant.id, DEMO_KEY)
        return True, {
            "tenant": tenant.name,
            "admin_email": account.email,
            "admin_password": password,
            "client_id": client.client_id,
            "client_secret": secret,
            "redirect_uri": client.redirect_uris[0],
            "api_key": key.key,
            "api_secret": key_secret,
        }

    created, demo = with_db(seed, settings)
    base = settings.public_url
    if not created:
        typer.echo(_already_seeded(settings, demo), err=True)
    else:
        run = program()
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
                    f"The tenant console (same admin): {base}/console/{demo['tenant']}/",
                    f"The operator commands are `{run} ...` (`{run} --help`); {_where_from(run)}",
                    "",
                ]
            )
        )
    _run_server(settings, host, port, 1)


def _where_from(run: str) -> str:
    if run == "openxp":
        return "they use this database when run with the same settings from this directory."
    return "`. .venv/bin/activate` puts `openxp` on your PATH."


async def _demo_ids(conn: Connection) -> dict[str, Any]:
    """The demo's client id, API key and owner, to name them in the commands that renew secrets."""
    tenant = await tenant_store.find(conn, "demo")
    if tenant is None:
        return {}
    found: dict[str, Any] = {}
    clients = [c for c in await client_store.list_for_tenant(conn, tenant.id) if c.name == DEMO_CLIENT]
    keys = [k for k in await apikey_store.list_for_tenant(conn, tenant.id) if k.name == DEMO_KEY]
    owners = [a for a in await account_store.list_for_tenant(conn, tenant.id) if a.role == "owner"]
    if len(clients) == 1:
        found["client_id"] = clients[0].client_id
    if len(keys) == 1:
        found["api_key"] = keys[0].key
    if owners:
        found["admin_email"] = owners[0].email
    return found


@app.command()
def purge(
    grace: int = typer.Option(
        housekeeping.GRACE,
        "--grace",
        min=0,
        metavar="SECONDS",
        help="Keep rows that died less than this many seconds ago.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete expired codes, tokens, sessions, pending authorizations and short-lived (launch)
    credentials once: what serve does every 10 minutes."""
    settings = load_settings()
    counts = with_db(
        lambda conn: housekeeping.purge(conn, grace, audit_retention_days=settings.audit_retention_days), settings
    )
    kept = asyncio.run(_retention(settings))
    emit(
        as_json,
        {"purged": counts, "retention": kept},
        "purged "
        + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items())
        + "\nretention: "
        + ", ".join(f"{n} {name}" for name, n in kept.items()),
    )


async def _retention(settings: Settings) -> dict[str, int]:
    """The tenants' retention periods, batch by batch (``housekeeping.retention``)."""
    db = Database(settings.database_url, pool_size=1)
    try:
        return await housekeeping.retention(db, batch=settings.retention_batch)
    finally:
        await db.dispose()


@app.command()
def status(as_json: bool = JSON_OPTION) -> None:
    """Show which database and public URL openxp uses from here, the database's schema revision and
    its number of tenants. Creates and changes nothing."""
    from openxp.store.migrate import current_head, schema_state

    settings = load_settings()
    configure_logging(settings)
    shown = display_url(settings.database_url)
    path = sqlite_path(settings.database_url)
    exists = path.is_file() if path is not None else True
    revision: str | None = None
    tenants: int | None = None
    if exists:
        try:
            revision, tenants = schema_state(settings.database_url)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            from sqlalchemy.engine import make_url

            password = make_url(settings.database_url).password
            if password:
                reason = reason.replace(str(password), "***")
            fail(f"cannot read the database {shown}: {reason}")
    head = current_head()
    default_url = settings.database_url == f"sqlite:///{settings.data_dir / 'openxp.sqlite3'}"
    payload = {
        "database_url": shown,
        "database_exists": exists,
        "database_from": "OPENXP_DATA_DIR" if default_url else "OPENXP_DATABASE_URL",
        "data_dir": str(settings.data_dir),
        "schema_revision": revision,
        "schema_head": head,
        "tenants": tenants or 0,
        "public_url": settings.public_url,
    }
    if not exists:
        schema = "none: the database does not exist yet (the first command creates it)"
    elif revision is None:
        schema = "none: not migrated yet (`openxp migrate`)"
    elif revision == head:
        schema = f"{revision} (up to date)"
    else:
        schema = f"{revision} (this openxp has {head}: run `openxp migrate`)"
    source = (
        f"the default: openxp.sqlite3 in OPENXP_DATA_DIR={settings.data_dir}"
        if default_url
        else "from OPENXP_DATABASE_URL"
    )
    human = "\n".join(
        [
            f"database    {shown}",
            f"            ({source})",
            f"schema      {schema}",
            f"tenants     {tenants or 0}",
            f"public URL  {settings.public_url}",
        ]
    )
    emit(as_json, payload, human)


if __name__ == "__main__":
    app()
