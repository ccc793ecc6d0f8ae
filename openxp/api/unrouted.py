"""What ``/api/...`` answers when no route takes the request: ClearXP's error shape
(404 ``not_found``, or 405 ``method_not_allowed`` with ``Allow`` when the path exists),
not the generic body the rest of the app uses."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from openxp.api.errors import render


def _allowed(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.endpoint is not unrouted and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return methods


async def unrouted(request: Request) -> Response:
    allowed = _allowed(request)
    if allowed:
        return render(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed here; allowed: {', '.join(sorted(allowed))}",
            headers={"Allow": ", ".join(sorted(allowed))},
        )
    return render(404, "not_found", "no such API endpoint")
