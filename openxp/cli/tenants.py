"""``openxp tenant ...``"""

from __future__ import annotations

import typer

from openxp.cli._common import JSON_OPTION, emit, with_db
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection

tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)

# ---- tenants -----------------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    name: str = typer.Argument(..., help="Tenant name: a DNS label, e.g. 'acme'."),
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
    emit(as_json, payload, "\n".join(t.name for t in found) or "(no tenants)")


@tenant_app.command("set-id-attributes")
def tenant_set_id_attributes(
    name: str = typer.Argument(...),
    attributes: list[str] = typer.Argument(..., help="Attribute names identifying a learner, in order."),
) -> None:
    """Choose which import attributes identify a learner (default: Email)."""

    async def work(conn: Connection) -> None:
        tenant = await tenant_store.get(conn, name)
        await tenant_store.set_user_id_attributes(conn, tenant.id, attributes)

    with_db(work)
    typer.echo(f"{name}: learners are identified by {', '.join(attributes)}")
