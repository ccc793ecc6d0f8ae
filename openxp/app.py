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

from openxp import audit, openapi, surfaces
from openxp.api import actors as api_actors
from openxp.api import audit as api_audit
from openxp.api import cmi5 as api_cmi5
from openxp.api import completions as api_completions
from openxp.api import credentials as api_credentials
from openxp.api import export as api_export
from openxp.api import users as api_users
from openxp.api.unrouted import unrouted
from openxp.audit_writer import AuditWriter
from openxp.auth.basic import DEPRECATED_FLAG, DEPRECATION_HEADERS
from openxp.auth.bearer_cache import BearerCache
from openxp.config import Settings
from openxp.errors import OpenXPError, ServerError
from openxp.forwarding.deliverer import Deliverer
from openxp.httpio import JSON
from openxp.oauth import endpoints as oauth
from openxp.runtime import Runtime
from openxp.store import Database, housekeeping
from openxp.web import console, docs, pages
from openxp.web.headers import SecurityHeaders
from openxp.xapi.routes import mount as xapi_mount

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
        Route("/api/import/users", api_users.import_users, methods=["POST", "PUT"]),
        Route("/api/actors/agents", api_actors.put_agent, methods=["PUT"]),
        Route("/api/actors/search", api_actors.search_actors, methods=["POST"]),
        Route("/api/actors/attributes", api_actors.attributes, methods=["GET"]),
        Route("/api/actors/completions", api_completions.completions, methods=["GET"]),
        Route("/api/actors/erase", api_actors.erase_actor, methods=["POST"]),
        Route("/api/auth/basic", api_credentials.create_basic, methods=["POST"]),
        Route("/api/auth/basic/{username}", api_credentials.revoke_basic, methods=["DELETE"]),
        Route("/api/launch", api_credentials.launch, methods=["POST"]),
        Route("/api/launch/fetch", api_cmi5.fetch, methods=["POST"]),
        Route("/api/audit", api_audit.list_audit, methods=["GET"]),
        Route("/api/export/statements", api_export.export_statements, methods=["GET"]),
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
                await housekeeping.purge(conn, audit_retention_days=settings.audit_retention_days)
            await housekeeping.retention(db, batch=settings.retention_batch)
        except Exception:
            log.exception("housekeeping failed; will retry")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSON({"error": error, "message": str(exc.detail)}, status_code=exc.status_code, headers=headers)


async def _refused(request: Request, exc: Exception) -> Response:
    """A refusal no endpoint frame rendered, in the error shape of the surface asked (see
    ``openxp.surfaces``). An outage (down, timed out, full, read-only) is 503 with Retry-After
    and a stable code, never a 500; a 500 is a bug, whatever raised it."""
    assert isinstance(exc, OpenXPError)
    if exc.status == 500:
        return await _unexpected(request, exc)
    if exc.status >= 500:
        cause = exc.__cause__ or exc
        log.warning("%s on %s %s: %s: %s", exc.code, request.method, request.url.path, type(cause).__name__, cause)
    elif exc.detail:
        log.info("%s on %s %s: %s", exc.code, request.method, request.url.path, exc.detail)
    return surfaces.render(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    """The one answer to an unexpected error: ``server_error`` in the surface's shape, an
    incident id to quote, the traceback in the log only."""
    incident = secrets.token_hex(6)
    log.error("unhandled error (incident %s) on %s %s", incident, request.method, request.url.path, exc_info=exc)
    return surfaces.render(request, ServerError(f"the server could not complete the request (incident {incident})"))


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
        writer = AuditWriter(db)
        writer.start()
        audit.install(writer.submit)
        forwarder = asyncio.create_task(Deliverer(db, settings).run())
        watcher = asyncio.create_task(app.state.bearer_cache.watch(db))
        try:
            yield
        finally:
            task.cancel()
            forwarder.cancel()
            watcher.cancel()
            audit.install(None)
            await writer.stop()
            await db.dispose()

    app = Starlette(routes=_routes(), lifespan=lifespan)
    app.state.openxp = Runtime(settings=settings, db=db)
    app.state.bearer_cache = BearerCache(enabled=settings.bearer_cache)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(OpenXPError, _refused)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies, flagged={DEPRECATED_FLAG: DEPRECATION_HEADERS})
    app.add_middleware(audit.RequestAddress, trusted_proxies=settings.trusted_proxies)
    if settings.access_log:
        app.add_middleware(AccessLog)
    return app
