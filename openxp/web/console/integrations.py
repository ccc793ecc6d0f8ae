"""Integrations: the tenant's OAuth clients. List, create (the secret shown once), disable,
enable, rotate the secret, delete; the same store functions as ``openxp client ...``. Creating a
confidential client and rotating a secret hand out a secret: both ask for the password outside the
re-auth window (``reauth``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from openxp.store import clients as client_store
from openxp.store.clients import Client
from openxp.store.errors import Invalid
from openxp.web.console import forms, reauth
from openxp.web.console.context import Console, ConsoleNotFound, console_page
from openxp.web.console.policy import MANAGE, READ

ACTIONS = ("disable", "enable", "rotate", "delete")


async def _client(ctx: Console) -> Client:
    """The client the URL names, if it is this tenant's; another tenant's is 404 like a missing one."""
    async with ctx.rt.db.read() as conn:
        found = await client_store.find(conn, ctx.request.path_params["client_id"][:64])
    if found is None or found.tenant_id != ctx.tenant.id:
        raise ConsoleNotFound
    return found


@console_page(READ)
async def list_page(ctx: Console) -> Response:
    async with ctx.rt.db.read() as conn:
        found = await client_store.list_for_tenant(conn, ctx.tenant.id)
    return ctx.render("integrations.html", {"clients": found, "done": ctx.request.query_params.get("done", "")[:20]})


def _new_form(ctx: Console, values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Response:
    return ctx.render(
        "integration_new.html",
        {
            "values": values,
            "errors": errors,
            "scope_choices": forms.scope_choices(values.get("scopes", ["all"])),
        },
        status=status,
    )


@console_page(MANAGE)
async def new_page(ctx: Console) -> Response:
    return _new_form(ctx, {"kind": "confidential", "refresh": True, "scopes": ["all"]}, {})


@console_page(MANAGE)
async def create(ctx: Console) -> Response:
    form = ctx.form
    values: dict[str, Any] = {
        "name": form.get("name", "").strip()[:200],
        "redirect_uris": form.get("redirect_uris", "")[:20000],
        "kind": "public" if form.get("kind") == "public" else "confidential",
        "require_pkce": form.get("require_pkce") == "on",
        "refresh": form.get("refresh") == "on",
        "scopes": forms.chosen_scopes(form),
    }
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = "Give the integration a name; admins see it when they approve it."
    uris = forms.lines(values["redirect_uris"])
    if not uris:
        errors["redirect_uris"] = "Add at least one redirect URI, one per line."
    for uri in uris:
        try:
            client_store.validate_redirect_uri(uri)
        except Invalid as exc:
            message = str(exc)[:300]
            errors.setdefault("redirect_uris", f"{message[:1].upper()}{message[1:]}.")
    if not values["scopes"]:
        errors["scopes"] = "Choose at least one scope."
    if errors:
        return _new_form(ctx, values, errors, status=400)
    if values["kind"] == "confidential":
        what = f"create the integration {values['name']} with a client secret"
        refusal = await reauth.confirm(ctx, action="client_create", what=what, back="/integrations/new")
        if refusal is not None:
            return refusal
    grant_types = ["authorization_code", "refresh_token"] if values["refresh"] else ["authorization_code"]
    try:
        async with ctx.rt.db.write() as conn:
            client, secret = await client_store.create(
                conn,
                tenant_id=ctx.tenant.id,
                name=values["name"],
                redirect_uris=uris,
                confidential=values["kind"] == "confidential",
                require_pkce=values["require_pkce"],
                allowed_scopes=values["scopes"],
                grant_types=grant_types,
            )
    except Invalid as exc:
        return _new_form(ctx, values, {"form": str(exc)[:300]}, status=400)
    ctx.audit("client_created", client_id=client.client_id, scopes=client.scopes)
    return ctx.render("integration_secret.html", {"client": client, "secret": secret, "rotated": False})


@console_page(READ)
async def detail(ctx: Console) -> Response:
    client = await _client(ctx)
    return ctx.render("integration.html", {"client": client, "done": ctx.request.query_params.get("done", "")[:20]})


@console_page(MANAGE)
async def act(ctx: Console) -> Response:
    client = await _client(ctx)
    action = ctx.request.path_params["action"]
    if action not in ACTIONS:
        raise ConsoleNotFound
    if action == "rotate":
        if client.confidential:
            back = f"/integrations/{client.client_id}"
            what = f"rotate the client secret of {client.name}"
            refusal = await reauth.confirm(ctx, action="client_secret_rotate", what=what, back=back)
            if refusal is not None:
                return refusal
        try:
            async with ctx.rt.db.write() as conn:
                secret = await client_store.rotate_secret(conn, client)
        except Invalid:
            return ctx.render(
                "message.html",
                {"title": "No secret to rotate", "message": "A public client has no secret; it uses PKCE."},
                status=400,
            )
        ctx.audit("client_secret_rotated", client_id=client.client_id)
        return ctx.render("integration_secret.html", {"client": client, "secret": secret, "rotated": True})
    async with ctx.rt.db.write() as conn:
        if action == "delete":
            await client_store.delete_client(conn, client)
        else:
            await client_store.set_disabled(conn, client, action == "disable")
    ctx.audit(f"client_{action}d", client_id=client.client_id)
    if action == "delete":
        return ctx.redirect("/integrations?done=deleted")
    return ctx.redirect(f"/integrations/{client.client_id}?done={action}d")
