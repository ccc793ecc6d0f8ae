"""The ASGI application: routes, middleware and the one place errors become
responses. ``create_app`` is the uvicorn factory (``openxp serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openxp import openapi
from openxp.api import actors as api_actors
from openxp.api import credentials as api_credentials
from openxp.api import errors as api_errors
from openxp.api import routes as api_routes
from openxp.api.unrouted import unrouted
from openxp.auth.basic import DEPRECATED_FLAG, DEPRECATION_HEADERS
from openxp.config import Settings
from openxp.httpio import JSON, NO_STORE
from openxp.oauth import endpoints as oauth
from openxp.runtime import Runtime
from openxp.store import Database, housekeeping
from openxp.store.errors import StorageUnavailable, UnstorableText
from openxp.web import browser, console, docs, pages
from openxp.web.headers import SecurityHeaders
from openxp.xapi import mount as xapi_mount
from openxp.xapi.http import CORS_HEADERS, VERSION_HEADER

log = logging.getLogger("openxp")
access_log = logging.getLogger("openxp.access")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def healthz(request: Request) -> Response:
    ok = await request.app.state.openxp.db.ping()
    return JSON({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)


def _routes() -> list[BaseRoute]:
    # Starlette tries routes in order: the hot ones (token, introspection, the LRS, the
    # bearer-checked API) come first, so they are matched after the fewest misses.
    return [
        Route("/auth/oauth/token", oauth.token, methods=["POST"]),
        Route("/auth/oauth/introspect", oauth.introspect, methods=["POST"]),
        xapi_mount(),
        Route("/api/auth/me", api_credentials.whoami, methods=["GET"]),
        Route("/api/actors", api_actors.list_actors, methods=["GET"]),
        Route("/api/import/users", api_routes.import_users, methods=["POST", "PUT"]),
        Route("/api/actors/agents", api_actors.put_agent, methods=["PUT"]),
        Route("/api/actors/search", api_actors.search_actors, methods=["POST"]),
        Route("/api/actors/attributes", api_actors.attributes, methods=["GET"]),
        Route("/api/auth/basic", api_credentials.create_basic, methods=["POST"]),
        Route("/api/auth/basic/{username}", api_credentials.revoke_basic, methods=["DELETE"]),
        Route("/api/launch", api_credentials.launch, methods=["POST"]),
        Route("/auth/oauth/revoke", oauth.revoke, methods=["POST"]),
        Route("/auth/oauth/authorize", pages.authorize, methods=["GET"]),
        Route("/auth/login", pages.login, methods=["POST"]),
        Route("/auth/oauth/consent", pages.consent_page, methods=["GET"]),
        Route("/auth/oauth/consent", pages.consent, methods=["POST"]),
        Route("/auth/logout", pages.logout, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", oauth.metadata, methods=["GET"]),
        Route("/demo/callback", pages.demo_callback, methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/docs", docs.index, methods=["GET"]),
        Route("/docs/{name}", docs.guide, methods=["GET"]),
        *console.routes(),
        # Last: whatever /api/... no route above took gets ClearXP's 404/405.
        *(Route(path, unrouted, methods=ALL_METHODS) for path in ("/api", "/api/{rest:path}")),
    ]


async def _housekeeping(db: Database, settings: Settings) -> None:
    while True:
        await asyncio.sleep(housekeeping.INTERVAL)
        try:
            async with db.write() as conn:
                await housekeeping.purge(conn)
        except Exception:
            log.exception("housekeeping failed; will retry")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSON({"error": error, "message": str(exc.detail)}, status_code=exc.status_code, headers=headers)


# Browser pages answer a database outage with the HTML error page; the other /auth paths are
# the OAuth endpoints (RFC 6749 JSON).
_PAGE_PATHS = ("/auth/oauth/authorize", "/auth/oauth/consent", "/auth/login", "/auth/logout", "/console", "/demo")


async def _storage_unavailable(request: Request, exc: Exception) -> Response:
    """The database cannot serve (down, timed out, full, read-only): 503 with Retry-After and
    a stable code, in the error shape of the surface asked, never a 500."""
    assert isinstance(exc, StorageUnavailable)
    path = request.url.path
    cause = exc.__cause__ or exc
    log.warning("%s on %s %s: %s: %s", exc.code, request.method, path, type(cause).__name__, cause)
    retry = {"Retry-After": str(exc.retry_after)}
    if path.startswith("/api/"):
        return api_errors.render(503, exc.code, exc.message, headers=retry)
    if path == "/xapi" or path.startswith("/xapi/"):
        version = request.app.state.openxp.settings.xapi_default_version
        headers = {**retry, **CORS_HEADERS, VERSION_HEADER: version}
        return JSON({"error": exc.code, "message": exc.message}, status_code=503, headers=headers)
    wants_html = "text/html" in request.headers.get("accept", "")
    if path.startswith(_PAGE_PATHS) or (wants_html and not path.startswith("/auth/")):
        page = browser.error_page(
            "The service is temporarily unavailable. Please try again in a moment.",
            title="Temporarily unavailable",
            status=503,
        )
        page.headers.update(retry)
        return page
    if path.startswith(("/auth/", "/.well-known/")):
        body = {"error": "temporarily_unavailable", "error_description": exc.message, "reason": exc.code}
        return JSON(body, status_code=503, headers={**NO_STORE, **retry})
    return JSON({"error": exc.code, "message": exc.message}, status_code=503, headers=retry)


async def _unstorable(request: Request, exc: Exception) -> Response:
    """A value no column can hold, on a route without an error shape of its own."""
    return JSON({"error": "invalid_text", "message": str(exc)}, status_code=400)


async def _unexpected(request: Request, exc: Exception) -> Response:
    incident = secrets.token_hex(6)
    log.exception("unhandled error (incident %s) on %s %s", incident, request.method, request.url.path)
    return JSON(
        {"error": "server_error", "message": f"the server could not complete the request (incident {incident})"},
        status_code=500,
    )


class AccessLog:
    """One line per request: method, path (never the query, which may carry a
    code), status and time. Plain ASGI to stay off the hot path's budget."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            access_log.info(
                '%s "%s %s" %d %.1fms',
                scope["client"][0] if scope.get("client") else "-",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - start) * 1000,
            )


def configure_logging() -> None:
    """Every process logs: uvicorn's worker processes do not inherit the parent's set-up."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    configure_logging()
    db = Database(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(_housekeeping(db, settings))
        try:
            yield
        finally:
            task.cancel()
            await db.dispose()

    app = Starlette(routes=_routes(), lifespan=lifespan)
    app.state.openxp = Runtime(settings=settings, db=db)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(StorageUnavailable, _storage_unavailable)
    app.add_exception_handler(UnstorableText, _unstorable)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies, flagged={DEPRECATED_FLAG: DEPRECATION_HEADERS})
    if settings.access_log:
        app.add_middleware(AccessLog)
    return app
