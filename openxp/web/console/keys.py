"""API keys: the deprecated Basic credentials. Create with scopes (the secret shown once),
disable, enable, rotate, last use; the page says plainly that Basic is on its way out. Creating
and rotating hand out a secret: both ask for the password outside the re-auth window (``reauth``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from openxp.store import apikeys as key_store
from openxp.store.apikeys import ApiKey
from openxp.store.errors import Invalid
from openxp.web.console import forms, reauth
from openxp.web.console.context import Console, ConsoleNotFound, console_page
from openxp.web.console.policy import MANAGE, READ

ACTIONS = ("disable", "enable", "rotate")


async def _key(ctx: Console) -> ApiKey:
    async with ctx.rt.db.read() as conn:
        found = await key_store.find(conn, ctx.request.path_params["key"][:64])
    if found is None or found.tenant_id != ctx.tenant.id:
        raise ConsoleNotFound
    return found


async def _page(ctx: Console, values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Response:
    async with ctx.rt.db.read() as conn:
        found = await key_store.list_for_tenant(conn, ctx.tenant.id)
    return ctx.render(
        "keys.html",
        {
            "keys": found,
            "values": values,
            "errors": errors,
            "scope_choices": forms.scope_choices(values.get("scopes", [])),
            "done": ctx.request.query_params.get("done", "")[:20],
            "base": ctx.rt.settings.public_url,
        },
        status=status,
    )


@console_page(READ)
async def list_page(ctx: Console) -> Response:
    return await _page(ctx, {"scopes": ["statements/write"]}, {})


@console_page(MANAGE)
async def create(ctx: Console) -> Response:
    values: dict[str, Any] = {"name": ctx.form.get("name", "").strip()[:200], "scopes": forms.chosen_scopes(ctx.form)}
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = "Name the key after the system that will use it."
    if not values["scopes"]:
        errors["scopes"] = "Choose at least one scope."
    if errors:
        return await _page(ctx, values, errors, status=400)
    what = f"create the API key {values['name']}"
    refusal = await reauth.confirm(ctx, action="apikey_create", what=what, back="/keys")
    if refusal is not None:
        return refusal
    try:
        async with ctx.rt.db.write() as conn:
            key, secret = await key_store.create(conn, ctx.tenant.id, values["name"], values["scopes"])
    except Invalid as exc:
        return await _page(ctx, values, {"name": str(exc)[:300]}, status=400)
    ctx.audit("apikey_created", key=key.key, scopes=key.scopes)
    return ctx.render("key_secret.html", {"key": key, "secret": secret, "rotated": False})


@console_page(MANAGE)
async def act(ctx: Console) -> Response:
    key = await _key(ctx)
    action = ctx.request.path_params["action"]
    if action not in ACTIONS:
        raise ConsoleNotFound
    if action == "rotate":
        what = f"rotate the secret of the API key {key.name}"
        refusal = await reauth.confirm(ctx, action="apikey_rotate", what=what, back="/keys")
        if refusal is not None:
            return refusal
        async with ctx.rt.db.write() as conn:
            secret = await key_store.rotate(conn, key.id)
        ctx.audit("apikey_rotated", key=key.key)
        return ctx.render("key_secret.html", {"key": key, "secret": secret, "rotated": True})
    async with ctx.rt.db.write() as conn:
        await key_store.set_disabled(conn, key.id, action == "disable")
    ctx.audit(f"apikey_{action}d", key=key.key)
    return ctx.redirect(f"/keys?done={action}d")
