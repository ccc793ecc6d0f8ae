"""The one frame every ClearXP API endpoint runs in: authenticate the caller for
the endpoint's scope (``openxp.auth.guard``, policy ``API``), run it, and render
whatever it refuses in ClearXP's error body."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from openxp.api.errors import render_error
from openxp.auth import Principal, guard
from openxp.errors import OpenXPError

Handler = Callable[[Request, Principal], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(scope: str | None) -> Callable[[Handler], Endpoint]:
    """``scope`` is what the credential must hold (None: any valid credential)."""

    def wrap(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            try:
                principal = await guard.authenticate(request, guard.API, scope)
                return await handler(request, principal)
            except OpenXPError as exc:
                if exc.status >= 500:
                    raise  # not the request's fault: logged and answered by openxp.app
                return render_error(exc)

        return run

    return wrap
