"""Which error shape a refusal takes, chosen by where the request went.

The refusal classes (``openxp.errors``) say what went wrong; the surface the
request was for says how it looks: ClearXP's body on /api, the xAPI body on
/xapi, RFC 6749 JSON on the OAuth endpoints, the HTML error page on the pages a
browser opens. Endpoint wrappers render with their own surface directly; this is
for what reaches ``openxp.app``'s handlers (outages, unexpected errors).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from openxp.api import errors as api_errors
from openxp.errors import OpenXPError
from openxp.oauth import errors as oauth_errors
from openxp.web import browser
from openxp.xapi import errors as xapi_errors
from openxp.xapi.cors import CORS_HEADERS
from openxp.xapi.version import VERSION_HEADER, default_version

Renderer = Callable[[Request, OpenXPError], Response]

# The pages a browser opens; the other /auth paths are the OAuth endpoints.
PAGE_PATHS = ("/auth/oauth/authorize", "/auth/oauth/consent", "/auth/login", "/auth/logout", "/console", "/demo")
_PAGE_TEXT = {
    500: ("Something went wrong", "The server could not complete the request. Please try again."),
    503: ("Temporarily unavailable", "The service is temporarily unavailable. Please try again in a moment."),
}


def _api(request: Request, exc: OpenXPError) -> Response:
    return api_errors.render_error(exc)


def _xapi(request: Request, exc: OpenXPError) -> Response:
    # Outside the LRS's own frame (and its CORS middleware): add what that frame would.
    response = xapi_errors.render(exc)
    response.headers.update({**CORS_HEADERS, VERSION_HEADER: default_version(request)})
    return response


def _oauth(request: Request, exc: OpenXPError) -> Response:
    return oauth_errors.render(exc)


def _page(request: Request, exc: OpenXPError) -> Response:
    title, text = _PAGE_TEXT.get(exc.status, ("This request cannot be completed", exc.description))
    page = browser.error_page(text, title=title, status=exc.status)
    page.headers.update(exc.headers)
    return page


def _plain(request: Request, exc: OpenXPError) -> Response:
    """Everything else (/healthz, /docs, ...): the xAPI body, the simplest of the three."""
    return xapi_errors.render(exc)


def renderer_for(request: Request) -> Renderer:
    path = request.url.path
    if path.startswith("/api/") or path == "/api":
        return _api
    if path == "/xapi" or path.startswith("/xapi/"):
        return _xapi
    wants_html = "text/html" in request.headers.get("accept", "")
    if path.startswith(PAGE_PATHS) or (wants_html and not path.startswith("/auth/")):
        return _page
    if path.startswith(("/auth/", "/.well-known/")):
        return _oauth
    return _plain


def render(request: Request, exc: OpenXPError) -> Response:
    return renderer_for(request)(request, exc)
