"""What every form post of the sign-in pages must pass before it is read: the same origin
(B-01), a well-formed form, a live browser session and its CSRF token (B-02, B-03)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from openxp import audit
from openxp.errors import OpenXPError
from openxp.httpio import BodyTooLarge, read_body
from openxp.runtime import Runtime, client_ip
from openxp.store import clients as client_store
from openxp.store import sessions as session_store
from openxp.store.sessions import Session
from openxp.web import browser
from openxp.wire import WireError, parse_query, single_values

MAX_FORM = 16 * 1024


class Refused(OpenXPError):
    """The request is refused with ``response`` (an error page, already rendered), before it
    changes anything."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.status = response.status_code
        self.response = response


async def current_session(rt: Runtime, request: Request) -> tuple[str | None, Session | None]:
    token = browser.session_token(request, rt.settings)
    if token is None:
        return None, None
    async with rt.db.read() as conn:
        session = await session_store.load_session(conn, token, rt.settings.session_idle_ttl)
    return (token, session) if session else (None, None)


async def read_form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise WireError("expected a form submission")
    try:
        raw = await read_body(request, MAX_FORM)
    except BodyTooLarge:
        raise WireError("form too large") from None
    form = single_values(parse_query(raw))
    # No browser sends NUL from a form field, and PostgreSQL text cannot hold one.
    if any("\x00" in key or "\x00" in value for key, value in form.items()):
        raise WireError("the form contains a NUL character")
    return form


async def posted(rt: Runtime, request: Request) -> tuple[dict[str, str], str, Session]:
    """Common checks of every form post: origin, form shape, session, CSRF."""
    if not browser.same_origin(request, rt.settings):
        audit.event("csrf_rejected", severity="warning", reason="origin", ip=client_ip(request, rt.settings))
        raise Refused(await other_origin_page(rt, request))
    try:
        form = await read_form(request)
    except WireError as exc:
        raise Refused(browser.error_page(f"The form submission is malformed: {exc}.")) from None
    token, session = await current_session(rt, request)
    if token is None or session is None or not browser.csrf_valid(token, form.get("csrf_token")):
        audit.event("csrf_rejected", severity="warning", reason="token", ip=client_ip(request, rt.settings))
        raise Refused(
            browser.error_page(
                "Your session expired or this form is not from this browser session. Start again from the application.",
                title="Forbidden",
                status=403,
            )
        )
    return form, token, session


async def other_origin_page(rt: Runtime, request: Request) -> Response:
    """The refusal of a form posted from another origin (B-01 c). Often that origin is this very
    server under another name (http://localhost:8000 for http://127.0.0.1:8000): the page names the
    public address and links to the same authorization request there. The link only ever points at
    our own public URL, and the form's session and CSRF checks still apply there."""
    public = browser.origin_of(rt.settings.public_url)
    sent_from = request.headers.get("origin", "")[:200]
    restart = f"{public}/..."
    link = ""
    try:
        form = await read_form(request)
        async with rt.db.read() as conn:
            found = await session_store.find_interaction(conn, form.get("interaction", "")[:100])
            client = await client_store.find_by_pk(conn, found.client_pk) if found else None
        if found is not None and client is not None:
            query = {"response_type": "code", "client_id": client.client_id, "redirect_uri": found.redirect_uri}
            if found.scope:
                query["scope"] = found.scope
            if found.state is not None:
                query["state"] = found.state
            if found.code_challenge:
                query.update(code_challenge=found.code_challenge, code_challenge_method="S256")
            link = restart = f"{rt.settings.public_url}/auth/oauth/authorize?{urlencode(query)}"
    except WireError:
        pass
    message = (
        f"This form was sent from {sent_from or 'another site'}, but this server's address is {public} "
        f"(its OPENXP_PUBLIC_URL), and a form from any other address is refused. If you opened this page "
        f"under another name, open {restart} instead and sign in there."
    )
    return browser.error_page(message, title="Forbidden", status=403, link=link)
