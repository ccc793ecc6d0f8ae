"""``openxp admin ...``: the accounts that sign in and authorize integrations."""

from __future__ import annotations

import typer

from openxp import audit
from openxp.cli._common import (
    DATABASE_HELP,
    EMAIL_OPTION,
    JSON_OPTION,
    TENANT_OPTION,
    TYPER_STYLE,
    emit,
    operator,
    read_password,
    table,
    with_db,
)
from openxp.store import accounts as account_store
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection

admin_app = typer.Typer(
    help="Admin accounts (who may sign in and authorize integrations).", epilog=DATABASE_HELP, **TYPER_STYLE
)
PASSWORD_STDIN = typer.Option(
    False, "--password-stdin", help="Read the password from stdin (one line); without it you are prompted twice."
)

# ---- admins ------------------------------------------------------------------------------------


@admin_app.command("create")
def admin_create(
    tenant: str = TENANT_OPTION,
    email: str = EMAIL_OPTION,
    password_stdin: bool = PASSWORD_STDIN,
    role: str = typer.Option(account_store.DEFAULT_ROLE, "--role", metavar="ROLE", help="owner, admin or viewer."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an admin account. Roles owner and admin may authorize integrations; viewer may not."""
    password = read_password(password_stdin)

    async def work(conn: Connection) -> account_store.Account:
        found = await tenant_store.get(conn, tenant)
        created = await account_store.create(conn, found.id, email, password, role)
        audit.event("admin_created", tenant=tenant, actor=operator(), admin=created.email, role=created.role)
        return created

    account = with_db(work)
    emit(
        as_json,
        {"email": account.email, "tenant": tenant, "role": account.role},
        f"created {account.role} {account.email} in {tenant}",
    )


@admin_app.command("list")
def admin_list(tenant: str = TENANT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List a tenant's admin accounts."""

    async def work(conn: Connection) -> list[account_store.Account]:
        return await account_store.list_for_tenant(conn, (await tenant_store.get(conn, tenant)).id)

    found = with_db(work)
    rows = [{"email": a.email, "role": a.role, "disabled": a.disabled} for a in found]
    emit(
        as_json,
        {"admins": rows},
        table(
            ["EMAIL", "ROLE", "STATE"],
            [[a.email, a.role, "disabled" if a.disabled else "active"] for a in found],
            "(no admins)",
        ),
    )


def _set_admin_disabled(tenant: str, email: str, disabled: bool) -> None:
    async def work(conn: Connection) -> None:
        account = await account_store.get(conn, (await tenant_store.get(conn, tenant)).id, email)
        await account_store.set_disabled(conn, account.id, disabled)
        audit.event(
            "admin_disabled" if disabled else "admin_enabled", tenant=tenant, actor=operator(), admin=account.email
        )

    with_db(work)


@admin_app.command("disable")
def admin_disable(tenant: str = TENANT_OPTION, email: str = EMAIL_OPTION) -> None:
    """Disable an admin: ends their sessions and revokes every grant they approved."""
    _set_admin_disabled(tenant, email, True)
    typer.echo(f"disabled {email}; their sessions and grants are revoked")


@admin_app.command("enable")
def admin_enable(tenant: str = TENANT_OPTION, email: str = EMAIL_OPTION) -> None:
    """Enable a disabled admin again (revoked grants stay revoked)."""
    _set_admin_disabled(tenant, email, False)
    typer.echo(f"enabled {email}")


@admin_app.command("set-password")
def admin_set_password(
    tenant: str = TENANT_OPTION,
    email: str = EMAIL_OPTION,
    password_stdin: bool = PASSWORD_STDIN,
) -> None:
    """Set an admin's password; their sessions end and their grants are revoked."""
    password = read_password(password_stdin)

    async def work(conn: Connection) -> None:
        account = await account_store.get(conn, (await tenant_store.get(conn, tenant)).id, email)
        await account_store.set_password(conn, account.id, password)
        audit.event("admin_password_set", tenant=tenant, actor=operator(), admin=account.email)

    with_db(work)
    typer.echo(f"password changed for {email}")
