"""``openxp``: the operator's command line (the seed's "customer representative").

Every command that creates something takes ``--json`` and then prints exactly
one JSON object on stdout. Secrets are printed once, at creation. Passwords are
read from stdin (``--password-stdin``) or a prompt, never from the command line.
"""

from __future__ import annotations

import asyncio
import fcntl
import getpass
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from openxp import audit
from openxp import scopes as scope_vocabulary
from openxp.config import ConfigError, Settings
from openxp.store import Database
from openxp.store import accounts as account_store
from openxp.store import apikeys as apikey_store
from openxp.store import clients as client_store
from openxp.store import grants as grant_store
from openxp.store import sessions as session_store
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection
from openxp.store.errors import StoreError

app = typer.Typer(help="openxp: ClearXP-compatible OAuth server, ClearXP API and xAPI LRS.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
admin_app = typer.Typer(help="Admin accounts (who may sign in and authorize integrations).", no_args_is_help=True)
client_app = typer.Typer(help="OAuth clients (integrations).", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for Basic auth (deprecated, still served).", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(admin_app, name="admin")
app.add_typer(client_app, name="client")
app.add_typer(apikey_app, name="apikey")
users_app = typer.Typer(help="Learners (the users ClearXP's import creates).", no_args_is_help=True)
app.add_typer(users_app, name="users")

T = TypeVar("T")
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout and nothing else.")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        _fail(str(exc))
        raise


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _upgrade(settings: Settings) -> None:
    """Apply pending migrations. On PostgreSQL an advisory lock serialises concurrent runs
    (migrations/env.py). SQLite's migration transaction reads the schema version before it takes
    the write lock, so two processes starting on an empty file would both create the tables: a
    lock file beside the database serialises them (SQLite is one host, so a file lock suffices)."""
    from openxp.store.db import sqlite_path
    from openxp.store.migrate import upgrade

    path = sqlite_path(settings.database_url)
    if path is None:
        upgrade(settings.database_url)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".migrate-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        upgrade(settings.database_url)


def _with_db(work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run ``work`` in one write transaction on a migrated database."""
    settings = _settings()
    _upgrade(settings)

    async def run() -> T:
        db = Database(settings.database_url, pool_size=1)
        try:
            async with db.write() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    try:
        result = asyncio.run(run())
    except StoreError as exc:
        _fail(str(exc))
        raise
    _audit_command()
    return result


def _audit_command() -> None:
    """Operator changes are security events too (P-01). Passwords never reach argv."""
    words = sys.argv[1:]
    if len(words) >= 2 and words[1] == "list":
        return
    if not audit.logger.handlers:
        audit.logger.addHandler(logging.StreamHandler(sys.stderr))
        audit.logger.setLevel(logging.INFO)
        audit.logger.propagate = False
    audit.event("operator_command", command=" ".join(w for w in words if w != "--json")[:500])


def _emit(as_json: bool, payload: dict[str, Any], human: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        typer.echo(human)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        # Only the line ending is removed: a password is used exactly as typed (B-14).
        password = line[:-1] if line.endswith("\n") else line
        return password[:-1] if password.endswith("\r") else password
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        _fail("the passwords differ")
    return first


@app.command()
def migrate() -> None:
    """Apply pending database migrations (idempotent)."""
    settings = _settings()
    _upgrade(settings)
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
    settings = _settings()
    _upgrade(settings)
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
    settings = _settings()

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

    demo = _with_db(seed)
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


# ---- tenants -----------------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    name: str = typer.Argument(..., help="Tenant name: a DNS label, e.g. 'acme'."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a tenant."""
    tenant = _with_db(lambda conn: tenant_store.create(conn, name))
    _emit(as_json, {"name": tenant.name}, f"created tenant {tenant.name}")


@tenant_app.command("list")
def tenant_list(as_json: bool = JSON_OPTION) -> None:
    """List tenants."""
    found = _with_db(tenant_store.list_all)
    payload = {"tenants": [{"name": t.name, "user_id_attributes": t.user_id_attributes} for t in found]}
    _emit(as_json, payload, "\n".join(t.name for t in found) or "(no tenants)")


@tenant_app.command("set-id-attributes")
def tenant_set_id_attributes(
    name: str = typer.Argument(...),
    attributes: list[str] = typer.Argument(..., help="Attribute names identifying a learner, in order."),
) -> None:
    """Choose which import attributes identify a learner (default: Email)."""

    async def work(conn: Connection) -> None:
        tenant = await tenant_store.get(conn, name)
        await tenant_store.set_user_id_attributes(conn, tenant.id, attributes)

    _with_db(work)
    typer.echo(f"{name}: learners are identified by {', '.join(attributes)}")


# ---- admins ------------------------------------------------------------------------------------


@admin_app.command("create")
def admin_create(
    tenant: str = typer.Option(..., "--tenant", help="Tenant name."),
    email: str = typer.Option(..., "--email"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    role: str = typer.Option(account_store.DEFAULT_ROLE, "--role", help="owner, admin or viewer."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an admin account. Roles owner and admin may authorize integrations; viewer may not."""
    password = _read_password(password_stdin)

    async def work(conn: Connection) -> account_store.Account:
        found = await tenant_store.get(conn, tenant)
        return await account_store.create(conn, found.id, email, password, role)

    account = _with_db(work)
    _emit(
        as_json,
        {"email": account.email, "tenant": tenant, "role": account.role},
        f"created {account.role} {account.email} in {tenant}",
    )


@admin_app.command("list")
def admin_list(tenant: str = typer.Option(..., "--tenant"), as_json: bool = JSON_OPTION) -> None:
    """List a tenant's admin accounts."""

    async def work(conn: Connection) -> list[account_store.Account]:
        return await account_store.list_for_tenant(conn, (await tenant_store.get(conn, tenant)).id)

    found = _with_db(work)
    rows = [{"email": a.email, "role": a.role, "disabled": a.disabled} for a in found]
    _emit(
        as_json,
        {"admins": rows},
        "\n".join(f"{a.email}\t{a.role}\t{'disabled' if a.disabled else 'active'}" for a in found),
    )


def _set_admin_disabled(tenant: str, email: str, disabled: bool) -> None:
    async def work(conn: Connection) -> None:
        account = await account_store.get(conn, (await tenant_store.get(conn, tenant)).id, email)
        await account_store.set_disabled(conn, account.id, disabled)

    _with_db(work)


@admin_app.command("disable")
def admin_disable(tenant: str = typer.Option(..., "--tenant"), email: str = typer.Option(..., "--email")) -> None:
    """Disable an admin: ends their sessions and revokes every grant they approved."""
    _set_admin_disabled(tenant, email, True)
    typer.echo(f"disabled {email}; their sessions and grants are revoked")


@admin_app.command("enable")
def admin_enable(tenant: str = typer.Option(..., "--tenant"), email: str = typer.Option(..., "--email")) -> None:
    """Enable a disabled admin again (revoked grants stay revoked)."""
    _set_admin_disabled(tenant, email, False)
    typer.echo(f"enabled {email}")


@admin_app.command("set-password")
def admin_set_password(
    tenant: str = typer.Option(..., "--tenant"),
    email: str = typer.Option(..., "--email"),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
) -> None:
    """Set an admin's password; their sessions end and their grants are revoked."""
    password = _read_password(password_stdin)

    async def work(conn: Connection) -> None:
        account = await account_store.get(conn, (await tenant_store.get(conn, tenant)).id, email)
        await account_store.set_password(conn, account.id, password)

    _with_db(work)
    typer.echo(f"password changed for {email}")


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
        "disabled": client.disabled,
    }


@client_app.command("create")
def client_create(
    tenant: str = typer.Option(..., "--tenant"),
    name: str = typer.Option(..., "--name", help="Shown to the admin on the consent page."),
    redirect_uri: list[str] = typer.Option(..., "--redirect-uri", help="Exact redirect URI; repeat for several."),
    public: bool = typer.Option(False, "--public", help="A public client (no secret; PKCE required)."),
    require_pkce: bool = typer.Option(False, "--require-pkce", help="Require PKCE (S256) from this client."),
    scope: list[str] = typer.Option([], "--scope", help="Allowed scope; repeat. Default: all."),
    default_scope: list[str] = typer.Option([], "--default-scope", help="Scope granted when none is asked for."),
    grant_type: list[str] = typer.Option([], "--grant-type", help="authorization_code, refresh_token."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an OAuth client. The secret is printed once."""

    async def work(conn: Connection) -> tuple[client_store.Client, str | None]:
        found = await tenant_store.get(conn, tenant)
        return await client_store.create(
            conn,
            tenant_id=found.id,
            name=name,
            redirect_uris=redirect_uri,
            confidential=not public,
            require_pkce=require_pkce,
            allowed_scopes=scope or None,
            default_scopes=default_scope or None,
            grant_types=grant_type or None,
        )

    client, secret = _with_db(work)
    payload = {
        "client_id": client.client_id,
        "client_secret": secret,
        "tenant": tenant,
        "redirect_uris": client.redirect_uris,
        "name": client.name,
        "confidential": client.confidential,
        "scopes": client.scopes,
    }
    human = f"client_id: {client.client_id}\nclient_secret: {secret or '(public client: none)'}"
    _emit(as_json, payload, human)


@client_app.command("list")
def client_list(tenant: str = typer.Option(..., "--tenant"), as_json: bool = JSON_OPTION) -> None:
    """List a tenant's clients (secrets are never shown again)."""

    async def work(conn: Connection) -> list[client_store.Client]:
        return await client_store.list_for_tenant(conn, (await tenant_store.get(conn, tenant)).id)

    found = _with_db(work)
    _emit(
        as_json,
        {"clients": [_client_json(c, tenant) for c in found]},
        "\n".join(f"{c.client_id}\t{c.name}\t{'disabled' if c.disabled else 'active'}" for c in found)
        or "(no clients)",
    )


def _client_action(tenant: str, client_id: str, action: Callable[[Connection, client_store.Client], Awaitable[T]]) -> T:
    async def work(conn: Connection) -> T:
        found = await tenant_store.get(conn, tenant)
        client = await client_store.get(conn, client_id, found.id)
        return await action(conn, client)

    return _with_db(work)


@client_app.command("disable")
def client_disable(tenant: str = typer.Option(..., "--tenant"), client_id: str = typer.Argument(...)) -> None:
    """Disable a client: its codes and tokens stop working at once."""
    _client_action(tenant, client_id, lambda conn, c: client_store.set_disabled(conn, c, True))
    typer.echo(f"disabled {client_id}; its grants are revoked")


@client_app.command("enable")
def client_enable(tenant: str = typer.Option(..., "--tenant"), client_id: str = typer.Argument(...)) -> None:
    """Enable a disabled client (revoked grants stay revoked)."""
    _client_action(tenant, client_id, lambda conn, c: client_store.set_disabled(conn, c, False))
    typer.echo(f"enabled {client_id}")


@client_app.command("rotate-secret")
def client_rotate_secret(
    tenant: str = typer.Option(..., "--tenant"),
    client_id: str = typer.Argument(...),
    revoke_tokens: bool = typer.Option(False, "--revoke-tokens", help="Also revoke every token of the client."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a new client secret; the old one stops working at once."""
    secret = _client_action(
        tenant, client_id, lambda conn, c: client_store.rotate_secret(conn, c, revoke_tokens=revoke_tokens)
    )
    _emit(as_json, {"client_id": client_id, "client_secret": secret, "tenant": tenant}, f"client_secret: {secret}")


@client_app.command("delete")
def client_delete(tenant: str = typer.Option(..., "--tenant"), client_id: str = typer.Argument(...)) -> None:
    """Delete a client with all its codes and tokens."""
    _client_action(tenant, client_id, client_store.delete_client)
    typer.echo(f"deleted {client_id}")


# ---- API keys ----------------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    tenant: str = typer.Option(..., "--tenant"),
    name: str = typer.Option("", "--name", help="A label for the key."),
    scope: list[str] = typer.Option(
        [], "--scope", help=f"Scope; repeat. Default: all. Known: {', '.join(scope_vocabulary.SCOPES)}"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an API key and secret for Basic auth. The secret is printed once."""

    async def work(conn: Connection) -> tuple[apikey_store.ApiKey, str]:
        found = await tenant_store.get(conn, tenant)
        return await apikey_store.create(conn, found.id, name, scope or None)

    key, secret = _with_db(work)
    _emit(
        as_json,
        {"key": key.key, "secret": secret, "tenant": tenant, "name": key.name, "scopes": key.scopes},
        f"key: {key.key}\nsecret: {secret}",
    )


@apikey_app.command("list")
def apikey_list(tenant: str = typer.Option(..., "--tenant"), as_json: bool = JSON_OPTION) -> None:
    """List a tenant's API keys, with when each was last used."""

    async def work(conn: Connection) -> list[apikey_store.ApiKey]:
        return await apikey_store.list_for_tenant(conn, (await tenant_store.get(conn, tenant)).id)

    found = _with_db(work)
    rows = [
        {"key": k.key, "name": k.name, "scopes": k.scopes, "disabled": k.disabled, "last_used_at": k.last_used_at}
        for k in found
    ]
    _emit(
        as_json,
        {"keys": rows},
        "\n".join(f"{k.key}\t{k.name}\t{'disabled' if k.disabled else 'active'}" for k in found),
    )


def _key_action(tenant: str, key: str, action: Callable[[Connection, apikey_store.ApiKey], Awaitable[T]]) -> T:
    async def work(conn: Connection) -> T:
        found = await apikey_store.get(conn, key, (await tenant_store.get(conn, tenant)).id)
        return await action(conn, found)

    return _with_db(work)


@apikey_app.command("disable")
def apikey_disable(tenant: str = typer.Option(..., "--tenant"), key: str = typer.Argument(...)) -> None:
    """Disable an API key."""
    _key_action(tenant, key, lambda conn, k: apikey_store.set_disabled(conn, k.id, True))
    typer.echo(f"disabled {key}")


@apikey_app.command("rotate")
def apikey_rotate(
    tenant: str = typer.Option(..., "--tenant"), key: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """Issue a new secret for an API key; the old one stops working at once."""
    secret = _key_action(tenant, key, lambda conn, k: apikey_store.rotate(conn, k.id))
    _emit(as_json, {"key": key, "secret": secret, "tenant": tenant}, f"secret: {secret}")


# ---- learners ----------------------------------------------------------------------------------


@users_app.command("import")
def users_import(
    file: str = typer.Argument(..., help="A .csv (header row with 'name') or .json file (users array)."),
    tenant: str = typer.Option(..., "--tenant"),
    verify: bool = typer.Option(False, "--verify", help="Validate and report without writing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import learners exactly as POST /api/import/users does, in chunks, with a progress bar on stderr."""
    from pathlib import Path

    from openxp.api import users as user_import

    path = Path(file)
    kind = path.suffix.lower()
    if kind not in (".csv", ".json"):
        _fail("the file must end in .csv or .json")
    if not path.is_file():
        _fail(f"no such file: {file}")
    settings = _settings()
    _upgrade(settings)
    report = user_import.Report()

    async def run() -> None:
        db = Database(settings.database_url, pool_size=1)
        try:
            async with db.read() as conn:
                tenant_id = (await tenant_store.get(conn, tenant)).id
            with (
                path.open("rb") as handle,
                typer.progressbar(length=path.stat().st_size, label="importing", file=sys.stderr) as bar,
            ):

                async def batches() -> Any:
                    if kind == ".csv":
                        reader = user_import.CsvRecords()
                        while block := handle.read(1024 * 1024):
                            bar.update(len(block))
                            yield reader.feed(block)
                        yield reader.feed(b"", final=True)
                        return
                    try:
                        body = json.loads(handle.read())
                    except ValueError as exc:
                        raise user_import.MalformedInput(f"the file is not JSON: {exc}") from None
                    bar.update(path.stat().st_size)
                    rows = body.get("users") if isinstance(body, dict) else body
                    if not isinstance(rows, list):
                        raise user_import.MalformedInput("the JSON holds no users array")
                    async for chunk in user_import.chunked(rows):
                        yield chunk

                await user_import.run_import(
                    db, tenant_id, user_import.rechunk(batches()), verify=verify, report=report
                )
        finally:
            await db.dispose()

    failure = None
    try:
        asyncio.run(run())
    except StoreError as exc:
        _fail(str(exc))
    except user_import.MalformedInput as exc:
        failure = exc.message
    except user_import.ImportInterrupted:
        failure = "storage failed; each chunk of rows is written whole or not at all"
    _audit_command()
    result = {**report.as_dict(), "written": report.written, "verify": verify}
    if failure:
        result["failure"] = failure
    human = (
        f"{report.rows} rows: {report.new} new, {report.existing} existing, {report.skipped} skipped, "
        f"{report.error_count} errors, {report.warning_count} warnings; {report.written} written"
        + "".join(f"\n  row {e['row']}: {e['type']}: {e['message']}" for e in report.errors[:20])
    )
    _emit(as_json, result, human)
    if failure:
        _fail(f"{failure} ({report.written} rows were written)")


@app.command()
def purge() -> None:
    """Delete expired codes, tokens, sessions and pending authorizations (serve does this every 10 minutes)."""
    from openxp.store.db import now

    async def work(conn: Connection) -> None:
        cutoff = now() - 3600
        await grant_store.purge_expired(conn, cutoff)
        await session_store.purge_expired(conn, cutoff)

    _with_db(work)
    typer.echo("expired rows purged", err=True)


if __name__ == "__main__":
    app()
