"""My account: change the password (the current one required; every other session ends), and
the account's active sessions, each of which can be signed out.

The current password is checked as a re-authentication (``signin.reauthenticate``, L-10): a wrong
one counts toward the sign-in's lockout, so this form is no way around it to guess passwords."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from openxp import crypto
from openxp.store import accounts as account_store
from openxp.store import sessions as session_store
from openxp.store.errors import Invalid
from openxp.web import signin
from openxp.web.console import reauth
from openxp.web.console.context import Console, ConsoleNotFound, console_page
from openxp.web.console.policy import READ


async def _page(ctx: Console, errors: dict[str, str], *, status: int = 200, retry_after: int | None = None) -> Response:
    async with ctx.rt.db.read() as conn:
        found = await session_store.list_for_account(conn, ctx.account.id)
    listed = [(info, crypto.equals(digest, ctx.session.id_hash)) for digest, info in found]
    response = ctx.render(
        "account.html",
        {"sessions": listed, "errors": errors, "done": ctx.request.query_params.get("done", "")[:20]},
        status=status,
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@console_page(READ)
async def page(ctx: Console) -> Response:
    return await _page(ctx, {})


@console_page(READ)
async def change_password(ctx: Console) -> Response:
    current = ctx.form.get("current_password", "")
    new = ctx.form.get("new_password", "")
    errors: dict[str, str] = {}
    try:
        account_store.validate_password(new)
    except Invalid as exc:
        message = str(exc)
        errors["new_password"] = f"{message[:1].upper()}{message[1:]}."
    if new != ctx.form.get("confirm_password", ""):
        errors["confirm_password"] = "The two new passwords differ."
    # Checked even when the new password is already refused, so every mistake shows at once.
    try:
        await reauth.check_password(ctx, current, "password_change")
    except signin.SignInRefused as refused:
        errors["current_password"] = refused.message
        if refused.status == 429:
            return await _page(ctx, errors, status=429, retry_after=refused.retry_after)
    if errors:
        return await _page(ctx, errors, status=400)
    async with ctx.rt.password_slots:
        password_hash = await run_in_threadpool(crypto.hash_password, new)
    async with ctx.rt.db.write() as conn:
        ended = await account_store.change_own_password(conn, ctx.account.id, password_hash, ctx.session.id_hash)
    ctx.audit("password_changed", sessions_ended=ended)
    return ctx.redirect("/account?done=password")


@console_page(READ)
async def end_session(ctx: Console) -> Response:
    ref = ctx.request.path_params["ref"]
    async with ctx.rt.db.write() as conn:
        ended = await session_store.end_session_of_account(conn, ctx.account.id, ref)
    if not ended:
        raise ConsoleNotFound
    ctx.audit("session_ended", session=ref[:8])
    if ctx.session.id_hash.startswith(ref):
        return ctx.redirect("/")
    return ctx.redirect("/account?done=session")
