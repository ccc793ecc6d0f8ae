"""Browser sessions, CSRF tokens, and rendering of our HTML pages.

The session cookie holds 256 random bits; the database holds their digest.
The CSRF token is an HMAC of the session secret, so it needs no storage, is
bound to the session (a token from another session fails, B-01), and cannot
be derived from a database dump.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from openxp import crypto
from openxp.config import Settings

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def cookie_name(settings: Settings) -> str:
    # The __Host- prefix requires Secure, which browsers only keep over https.
    return "__Host-openxp_session" if settings.secure_cookies else "openxp_session"


def session_token(request: Request, settings: Settings) -> str | None:
    value = request.cookies.get(cookie_name(settings))
    if value and 20 <= len(value) <= 100:
        return value
    return None


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        cookie_name(settings), token, path="/", httponly=True, secure=settings.secure_cookies, samesite="lax"
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings), path="/", httponly=True, secure=settings.secure_cookies, samesite="lax"
    )


def csrf_token(session: str) -> str:
    return crypto.keyed(session, "openxp-csrf")


def csrf_valid(session: str | None, presented: str | None) -> bool:
    if not session or not presented:
        return False
    return crypto.equals(csrf_token(session), presented)


def same_origin(request: Request, settings: Settings) -> bool:
    """A cross-site form post carries a foreign Origin (B-01 c). A missing Origin, or
    ``null`` (what browsers send under our ``Referrer-Policy: no-referrer``), proves
    nothing either way, so then only the CSRF token decides."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    public = urlsplit(settings.public_url)
    return origin == f"{public.scheme}://{public.netloc}"


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def page_csp(form_targets: list[str] | None = None, script_nonce: str | None = None) -> str:
    actions = " ".join(["'self'", *(form_targets or [])])
    # Scripts only by the page's own nonce (the console's copy button); none at all otherwise.
    scripts = f"script-src 'nonce-{script_nonce}'; " if script_nonce else ""
    return (
        f"default-src 'none'; {scripts}style-src 'self'; img-src 'self'; "
        f"form-action {actions}; frame-ancestors 'none'; base-uri 'none'"
    )


def render(
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    form_targets: list[str] | None = None,
    script_nonce: str | None = None,
) -> HTMLResponse:
    html = templates.get_template(name).render(**context)
    csp = page_csp(form_targets, script_nonce)
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": csp})


def error_page(
    message: str, *, title: str = "This request cannot be completed", status: int = 400, link: str = ""
) -> HTMLResponse:
    return render("error.html", {"title": title, "message": message, "link": link}, status=status)
