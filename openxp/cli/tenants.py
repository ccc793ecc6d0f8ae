"""``openxp tenant ...``"""

from __future__ import annotations

import typer

from openxp.cli._common import DATABASE_HELP, JSON_OPTION, TYPER_STYLE, emit, table, with_db
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection

tenant_app = typer.Typer(help="Tenants.", epilog=DATABASE_HELP, **TYPER_STYLE)

# ---- tenants -----------------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    name: str = typer.Argument(..., metavar="NAME", help="Tenant name: a DNS label, e.g. 'acme'."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a tenant."""
    tenant = with_db(lambda conn: tenant_store.create(conn, name))
    emit(as_json, {"name": tenant.name}, f"created tenant {tenant.name}")


@tenant_app.command("list")
def tenant_list(as_json: bool = JSON_OPTION) -> None:
    """List tenants."""
    found = with_db(tenant_store.list_all)
    payload = {"tenants": [{"name": t.name, "user_id_attributes": t.user_id_attributes} for t in found]}
    rows = [[t.name, ", ".join(t.user_id_attributes)] for t in found]
    emit(as_json, payload, table(["NAME", "LEARNERS IDENTIFIED BY"], rows, "(no tenants)"))


@tenant_app.command("set-id-attributes")
def tenant_set_id_attributes(
    name: str = typer.Argument(..., metavar="NAME", help="The tenant's name."),
    attributes: list[str] = typer.Argument(
        ..., metavar="ATTRIBUTE", help="Attribute names identifying a learner, in order."
    ),
) -> None:
    """Choose which import attributes identify a learner (default: Email)."""

    async def work(conn: Connection) -> None:
        tenant = await tenant_store.get(conn, name)
        await tenant_store.set_user_id_attributes(conn, tenant.id, attributes)

    with_db(work)
    typer.echo(f"{name}: learners are identified by {', '.join(attributes)}")


@tenant_app.command("set-retention")
def tenant_set_retention(
    name: str = typer.Argument(..., metavar="NAME", help="The tenant's name."),
    days: int = typer.Option(
        ..., "--days", min=0, max=tenant_store.MAX_RETENTION_DAYS, metavar="N", help="Days to keep; 0 keeps everything."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Keep the tenant's statements and documents N days; housekeeping deletes older ones (0: keep all)."""

    async def work(conn: Connection) -> None:
        tenant = await tenant_store.get(conn, name)
        await tenant_store.set_retention(conn, tenant.id, days)

    with_db(work)
    human = f"{name}: statements and documents are kept " + (f"{days} days" if days else "forever")
    emit(as_json, {"name": name, "retention_days": days}, human)
