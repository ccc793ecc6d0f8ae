"""The signed-in admin a console request acts as, and the one gate every console route passes.

``@console_page(permission)`` runs, in this order, for every route: the tenant in the path
exists (else 404); a POST comes from our own origin and is a well-formed form; the browser has
a live session of an enabled account *of this tenant* (a GET without one goes to the sign-in
page; a POST without one is refused, since its CSRF token cannot be valid); a POST carries the
session's CSRF token; and the account's role holds ``permission`` (else 403). Only then does the
handler run, with a :class:`Console` that scopes everything it does to that tenant.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from openxp import audit
from openxp.errors import OpenXPError
from openxp.httpio import BodyTooLarge, media_type, read_body
from openxp.runtime import Runtime, client_ip, runtime
from openxp.store import accounts as account_store
from openxp.store import sessions as session_store
from openxp.store import tenants as tenant_store
from openxp.store.accounts import Account
from openxp.store.sessions import Session
from openxp.store.tenants import Tenant
from openxp.web import browser
from openxp.web.console import policy
from openxp.web.forms import current_session, read_form
from openxp.wire import WireError

Handler = Callable[["Console"], Awaitable[Response]]

# The pages in the navigation, in order: (path under the tenant, label, permission).
NAV = [
    ("/integrations", "Integrations", policy.READ),
    ("/connected", "Connected integrations", policy.READ),
    ("/keys", "API keys", policy.READ),
    ("/learners", "Learners", policy.READ),
    ("/records", "Learning records", policy.READ),
    ("/audit", "Audit log", policy.READ),
    ("/admins", "Admins", policy.MANAGE_ADMINS),
    ("/account", "My account", policy.READ),
]


class ConsoleNotFound(OpenXPError):
    """An id in the URL that is not this tenant's (or not at all): always 404, never 403."""

    status = 404
    code = "not_found"


@dataclass
class Console:
    rt: Runtime
    request: Request
    tenant: Tenant
    account: Account
    token: str
    session: Session
    form: dict[str, str] = field(default_factory=dict)
    # The bytes of the one file a multipart post carried (only routes that take uploads), or None.
    upload: bytes | None = None

    @property
    def ip(self) -> str:
        return client_ip(self.request, self.rt.settings)

    @property
    def csrf(self) -> str:
        return browser.csrf_token(self.token)

    @property
    def recently_authenticated(self) -> bool:
        """The admin typed the password on this session (sign-in or re-authentication) within the
        re-auth window (L-10). The time is the server's, stored with the session."""
        at = self.session.authenticated_at
        return at is not None and time.time() - at < self.rt.settings.console_reauth_window

    def may(self, permission: str) -> bool:
        return policy.allows(self.account.role, permission)

    def url(self, path: str = "/") -> str:
        return f"/console/{self.tenant.name}{path}"

    def audit(self, name: str, **fields: Any) -> None:
        """Every console change is recorded with who did it, for which tenant, from where."""
        audit.event(name, tenant=self.tenant.name, actor=self.account.email, ip=self.ip, **fields)

    def render(self, template: str, context: dict[str, Any], *, status: int = 200) -> Response:
        html, csp = self.page(template, context)
        return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": csp})

    def page(self, template: str, context: dict[str, Any]) -> tuple[str, str]:
        """A console page's HTML and its CSP header (with the page's own script nonce): for a
        page streamed in parts, which ``render`` cannot answer."""
        nonce = secrets.token_urlsafe(16)
        here = self.request.url.path
        nav = [
            (self.url(path), label, here.startswith(self.url(path)))
            for path, label, permission in NAV
            if self.may(permission)
        ]
        base = {
            "console": self,
            "tenant": self.tenant.name,
            "me": self.account,
            "role_label": policy.ROLE_LABELS.get(self.account.role, self.account.role),
            "csrf_token": self.csrf,
            "nonce": nonce,
            "nav": nav,
            "may_manage": self.may(policy.MANAGE),
            "may_admins": self.may(policy.MANAGE_ADMINS),
        }
        html = browser.templates.get_template(f"console/{template}").render(**(base | context))
        return html, browser.page_csp(None, nonce)

    def redirect(self, path: str) -> RedirectResponse:
        # 303: the browser follows with GET, so a reload never repeats the action.
        return RedirectResponse(self.url(path), status_code=303)

    def not_found(self) -> Response:
        return self.render("message.html", {"title": "Not found", "message": "There is nothing here."}, status=404)


async def find_tenant(rt: Runtime, name: str) -> Tenant | None:
    if not tenant_store.TENANT_NAME.fullmatch(name):
        return None
    async with rt.db.read() as conn:
        found = await tenant_store.find(conn, name)
    return None if found is None or found.disabled else found


def tenant_missing() -> Response:
    return browser.error_page("There is no tenant of that name here.", title="Not found", status=404)


def forbidden(message: str) -> Response:
    return browser.error_page(message, title="Forbidden", status=403)


# Room in a multipart body for the form's other fields, besides the file.
MULTIPART_FIELDS_BYTES = 64 * 1024
MULTIPART_MAX_FIELDS = 8


class UploadTooLarge(OpenXPError):
    status = 413
    code = "too_large"


async def read_multipart(request: Request, max_file_bytes: int) -> tuple[dict[str, str], bytes | None]:
    """A multipart form of text fields and at most one file (the field ``file``), read within
    ``max_file_bytes`` for the file: its fields and the file's bytes (None: no file chosen)."""
    try:
        raw = await read_body(request, max_file_bytes + MULTIPART_FIELDS_BYTES)
    except BodyTooLarge:
        raise UploadTooLarge from None
    sent = False

    async def replay() -> dict[str, Any]:
        # Starlette's parser reads the body as the server would hand it over; it was read already.
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    try:
        parsed = await Request(request.scope, replay).form(max_files=1, max_fields=MULTIPART_MAX_FIELDS)
    except Exception as exc:  # Starlette raises its own HTTPException / MultiPartException on a bad body
        raise WireError(f"the multipart body cannot be read ({str(exc)[:100]})") from None
    form: dict[str, str] = {}
    upload: bytes | None = None
    try:
        for key, value in parsed.multi_items():
            if isinstance(value, str):
                if "\x00" in key or "\x00" in value:
                    raise WireError("the form contains a NUL character")
                form.setdefault(key, value)
            elif key == "file":
                content = await value.read()
                if len(content) > max_file_bytes:
                    raise UploadTooLarge
                if content or value.filename:
                    upload = content
    finally:
        await parsed.close()
    return form, upload


async def checked_form(
    rt: Runtime, request: Request, token: str | None, *, uploads: bool = False
) -> tuple[dict[str, str], bytes | None] | Response:
    """Origin, form shape and CSRF token of a console POST (B-01); the form (and, on a route that
    takes ``uploads``, a multipart post's file), or the refusal. A multipart post passes the very
    same checks: the CSRF token is one of its fields."""
    ip = client_ip(request, rt.settings)
    if not browser.same_origin(request, rt.settings):
        audit.event("csrf_rejected", severity="warning", reason="origin", ip=ip, surface="console")
        return forbidden(
            f"This form was sent from another site, and only forms from {browser.origin_of(rt.settings.public_url)} "
            "are accepted."
        )
    upload: bytes | None = None
    limit = rt.settings.console_import_max_bytes
    try:
        if uploads and media_type(request) == "multipart/form-data":
            form, upload = await read_multipart(request, limit)
        else:
            form = await read_form(request)
    except UploadTooLarge:
        return browser.error_page(
            f"The file is larger than this console takes ({limit:,} bytes): nothing was read or imported. "
            "Split it, or import it with openxp users import or POST /api/import/users.",
            title="File too large",
            status=413,
        )
    except WireError as exc:
        return browser.error_page(f"The form submission is malformed: {exc}.")
    if token is None or not browser.csrf_valid(token, form.get("csrf_token")):
        audit.event("csrf_rejected", severity="warning", reason="token", ip=ip, surface="console")
        return forbidden("Your session expired or this form is not from this browser session. Sign in again.")
    return form, upload


async def signed_in_account(rt: Runtime, session: Session | None, tenant: Tenant) -> Account | None:
    """The session's account if it may use this tenant's console: one of its admins, enabled,
    with a role the console knows. Another tenant's admin is simply not signed in here."""
    if session is None or session.account_id is None:
        return None
    async with rt.db.read() as conn:
        account = await account_store.get_by_id(conn, session.account_id)
    if account is None or account.tenant_id != tenant.id or account.disabled:
        return None
    return account if account.role in policy.ROLE_PERMISSIONS else None


def console_page(
    permission: str, *, uploads: bool = False
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """``uploads``: the route also takes a multipart post with one file (``Console.upload``)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            rt = runtime(request)
            tenant = await find_tenant(rt, request.path_params["tenant"])
            if tenant is None:
                return tenant_missing()
            token, session = await current_session(rt, request)
            form: dict[str, str] = {}
            upload: bytes | None = None
            if request.method == "POST":
                checked = await checked_form(rt, request, token, uploads=uploads)
                if isinstance(checked, Response):
                    return checked
                form, upload = checked
            account = await signed_in_account(rt, session, tenant)
            if account is None or token is None or session is None:
                if request.method == "POST":
                    return forbidden("Sign in to this tenant's console first.")
                return RedirectResponse(f"/console/{tenant.name}/", status_code=303)
            ctx = Console(rt, request, tenant, account, token, session, form, upload)
            if not ctx.may(permission):
                ctx.audit("console_forbidden", severity="warning", path=request.url.path, role=account.role)
                return ctx.render(
                    "message.html",
                    {"title": "Not allowed", "message": "Your role does not allow this. Ask an owner of this tenant."},
                    status=403,
                )
            async with rt.db.write() as conn:
                await session_store.touch_session(conn, session.id_hash)
            try:
                return await handler(ctx)
            except ConsoleNotFound:
                return ctx.not_found()

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


def when(t: float | None) -> str:
    """A stored UNIX time as the console shows it: UTC, to the minute."""
    if t is None:
        return ""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


browser.templates.filters.setdefault("when", when)
