"""Signing in to and out of a tenant's console.

The sign-in form posts the same fields as the authorization flow's (``email``, ``password``)
and goes through the same :func:`openxp.web.signin.sign_in`: the same lockout, the same single
argon2 check, the same fresh session id. The CSRF token of the sign-in form is bound to a
not-yet-signed-in session, as on the authorization flow's login page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from openxp import audit
from openxp.runtime import Runtime, client_ip, runtime
from openxp.store import sessions as session_store
from openxp.store.tenants import Tenant
from openxp.web import browser, signin
from openxp.web.console import context
from openxp.web.console.context import Console, console_page
from openxp.web.console.policy import READ
from openxp.web.forms import current_session


def _login_page(
    rt: Runtime, tenant: Tenant, token: str, *, error: str = "", email: str = "", status: int = 200
) -> Response:
    return browser.render(
        "console/login.html",
        {"tenant": tenant.name, "csrf_token": browser.csrf_token(token), "error": error, "email": email},
        status=status,
    )


async def home(request: Request) -> Response:
    """``/console/{tenant}/``: the sign-in form, or straight to the console when signed in."""
    rt = runtime(request)
    tenant = await context.find_tenant(rt, request.path_params["tenant"])
    if tenant is None:
        return context.tenant_missing()
    token, session = await current_session(rt, request)
    if await context.signed_in_account(rt, session, tenant) is not None:
        return RedirectResponse(f"/console/{tenant.name}/integrations", status_code=303)
    if token is None:
        async with rt.db.write() as conn:
            token = await session_store.start_session(conn, None, rt.settings.session_absolute_ttl)
    response = _login_page(rt, tenant, token)
    browser.set_session_cookie(response, rt.settings, token)
    return response


async def login(request: Request) -> Response:
    rt = runtime(request)
    tenant = await context.find_tenant(rt, request.path_params["tenant"])
    if tenant is None:
        return context.tenant_missing()
    token, session = await current_session(rt, request)
    result = await context.checked_form(rt, request, token)
    if isinstance(result, Response):
        return result
    checked = result[0]
    assert token is not None and session is not None
    email = checked.get("email", "").strip()
    try:
        signed_in = await signin.sign_in(
            rt,
            request,
            tenant_id=tenant.id,
            tenant=tenant.name,
            email=email,
            password=checked.get("password", ""),
            old_session_hash=session.id_hash,
        )
    except signin.SignInRefused as refused:
        response = _login_page(rt, tenant, token, error=refused.message, email=email[:320], status=refused.status)
        if refused.retry_after is not None:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    audit.event(
        "console_signed_in", tenant=tenant.name, actor=signed_in.account.email, ip=client_ip(request, rt.settings)
    )
    response = RedirectResponse(f"/console/{tenant.name}/integrations", status_code=303)
    browser.set_session_cookie(response, rt.settings, signed_in.token)
    return response


@console_page(READ)
async def logout(ctx: Console) -> Response:
    """Ends the session in the database, not only in the browser: the cookie is dead everywhere."""
    async with ctx.rt.db.write() as conn:
        await session_store.end_session(conn, ctx.session.id_hash)
    ctx.audit("console_signed_out")
    response = browser.render("console/signed_out.html", {"tenant": ctx.tenant.name, "sign_in": ctx.url("/")})
    browser.clear_session_cookie(response, ctx.rt.settings)
    return response
