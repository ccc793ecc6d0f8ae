"""Connected integrations: every grant an admin of the tenant approved; revoking one ends
its codes, access and refresh tokens at once (the bearer check reads the grant's revocation)."""

from __future__ import annotations

from starlette.responses import Response

from openxp.store import connected as connected_store
from openxp.store import grants as grant_store
from openxp.web.console.context import Console, ConsoleNotFound, console_page
from openxp.web.console.policy import MANAGE, READ


@console_page(READ)
async def list_page(ctx: Console) -> Response:
    show_revoked = ctx.request.query_params.get("revoked") == "1"
    async with ctx.rt.db.read() as conn:
        found = await connected_store.list_for_tenant(conn, ctx.tenant.id, include_revoked=show_revoked)
    return ctx.render(
        "connected.html",
        {"grants": found, "show_revoked": show_revoked, "done": ctx.request.query_params.get("done", "")[:20]},
    )


@console_page(MANAGE)
async def revoke(ctx: Console) -> Response:
    raw = ctx.request.path_params["grant_id"]
    grant_id = int(raw) if raw.isdigit() and len(raw) < 18 else 0
    async with ctx.rt.db.write() as conn:
        found = await connected_store.find(conn, ctx.tenant.id, grant_id)
        if found is None:
            raise ConsoleNotFound
        await grant_store.revoke_grant(conn, found.grant_id, "revoked_in_console")
    ctx.audit("grant_revoked", grant=found.grant_id, client_id=found.client_id)
    return ctx.redirect("/connected?done=revoked")
