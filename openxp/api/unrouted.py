"""What ``/api/...`` answers when no route takes the request: ClearXP's error shape
(404 ``not_found``, or 405 ``method_not_allowed`` with ``Allow`` when the path exists),
not the generic body the rest of the app uses. A path that differs from a route only by
a trailing slash is still redirected to it, as the router does everywhere else."""

from __future__ import annotations

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

from openxp.api.errors import render


def _matching(request: Request, scope: Scope) -> list[Route]:
    return [
        route
        for route in request.app.router.routes
        if isinstance(route, Route) and route.endpoint is not unrouted and route.matches(scope)[0] is not Match.NONE
    ]


async def unrouted(request: Request) -> Response:
    allowed = sorted({method for route in _matching(request, request.scope) for method in route.methods or ()})
    if allowed:
        message = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        return render(405, "method_not_allowed", message, headers={"Allow": ", ".join(allowed)})
    path = request.scope["path"]
    other = {**request.scope, "path": path.rstrip("/") if path.endswith("/") else path + "/"}
    if _matching(request, other):
        return RedirectResponse(str(URL(scope=other)))
    return render(404, "not_found", "no such API endpoint")
