"""Admins (owners only): create an admin with a role, change a role, disable, enable.

The tenant always keeps an enabled owner: demoting or disabling the last one is refused by the
store, under a lock, so two owners cannot demote each other at once. Every change here grants or
takes away access, so each asks for the password outside the re-auth window (``reauth``).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from openxp import crypto
from openxp.store import accounts as account_store
from openxp.store.accounts import Account
from openxp.store.errors import AlreadyExists, Invalid
from openxp.web.console import reauth
from openxp.web.console.context import Console, ConsoleNotFound, console_page
from openxp.web.console.policy import MANAGE_ADMINS, ROLE_LABELS

ACTIONS = ("role", "disable", "enable")


async def _page(
    ctx: Console, values: dict[str, Any], errors: dict[str, str], *, status: int = 200, problem: str = ""
) -> Response:
    async with ctx.rt.db.read() as conn:
        found = await account_store.list_for_tenant(conn, ctx.tenant.id)
    return ctx.render(
        "admins.html",
        {
            "accounts": found,
            "values": values,
            "errors": errors,
            "roles": ROLE_LABELS,
            "problem": problem,
            "done": ctx.request.query_params.get("done", "")[:20],
        },
        status=status,
    )


async def _account(ctx: Console) -> Account:
    raw = ctx.request.path_params["account_id"]
    async with ctx.rt.db.read() as conn:
        found = await account_store.get_by_id(conn, int(raw)) if raw.isdigit() and len(raw) < 18 else None
    if found is None or found.tenant_id != ctx.tenant.id:
        raise ConsoleNotFound
    return found


@console_page(MANAGE_ADMINS)
async def list_page(ctx: Console) -> Response:
    return await _page(ctx, {"role": "admin"}, {})


@console_page(MANAGE_ADMINS)
async def create(ctx: Console) -> Response:
    email = ctx.form.get("email", "").strip()[:320]
    password = ctx.form.get("password", "")
    role = ctx.form.get("role", "")
    values = {"email": email, "role": role}
    errors: dict[str, str] = {}
    if role not in ROLE_LABELS:
        errors["role"] = "Choose a role."
    try:
        account_store.validate_password(password)
    except Invalid as exc:
        errors["password"] = f"The password is too {'short' if len(password) < 12 else 'long'}: {exc}."
    if errors:
        return await _page(ctx, values, errors, status=400)
    what = f"create the admin {email} ({ROLE_LABELS[role].lower()})"
    refusal = await reauth.confirm(ctx, action="admin_create", what=what, back="/admins")
    if refusal is not None:
        return refusal
    try:
        async with ctx.rt.password_slots:
            # argon2 off the event loop, as at sign-in.
            password_hash = await run_in_threadpool(crypto.hash_password, password)
        async with ctx.rt.db.write() as conn:
            created = await account_store.create(
                conn, ctx.tenant.id, email, password, role, password_hash=password_hash
            )
    except AlreadyExists:
        return await _page(ctx, values, {"email": "That email is already an admin of this tenant."}, status=400)
    except Invalid as exc:
        return await _page(ctx, values, {"email": f"{str(exc)[:300]}."}, status=400)
    ctx.audit("admin_created", account=created.id, email=created.email, role=created.role)
    return ctx.redirect("/admins?done=created")


@console_page(MANAGE_ADMINS)
async def act(ctx: Console) -> Response:
    target = await _account(ctx)
    action = ctx.request.path_params["action"]
    if action not in ACTIONS:
        raise ConsoleNotFound
    role = ctx.form.get("role", "")
    if action == "role":
        what = f"change the role of {target.email} to {ROLE_LABELS.get(role, role[:40])}"
    else:
        what = f"{action} {target.email}"
    refusal = await reauth.confirm(ctx, action=f"admin_{action}", what=what, back="/admins")
    if refusal is not None:
        return refusal
    try:
        async with ctx.rt.db.write() as conn:
            if action == "role":
                await account_store.change_role(conn, target, role)
            elif action == "disable":
                await account_store.disable_unless_last_owner(conn, target)
            else:
                await account_store.set_disabled(conn, target.id, False)
    except Invalid as exc:
        return await _page(ctx, {"role": "admin"}, {}, status=400, problem=f"{str(exc)[:300]}.")
    if action == "role":
        ctx.audit("admin_role_changed", account=target.id, email=target.email, role=role)
    else:
        ctx.audit(f"admin_{action}d", account=target.id, email=target.email)
    return ctx.redirect(f"/admins?done={'changed' if action == 'role' else action + 'd'}")
