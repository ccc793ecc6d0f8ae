"""The one frame every ClearXP API endpoint runs in: authenticate the caller for
the endpoint's scope, run it, and turn the named errors of ``openxp.auth`` and
``openxp.api`` into their responses."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from openxp.api.errors import ApiError, InvalidText, api_error_response, auth_error_response
from openxp.auth import AuthError, Principal, authenticate
from openxp.store.errors import UnstorableText

Handler = Callable[[Request, Principal], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(scope: str | None) -> Callable[[Handler], Endpoint]:
    """``scope`` is what the credential must hold (None: any valid credential)."""

    def wrap(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            try:
                principal = await authenticate(request, scope)
                return await handler(request, principal)
            except AuthError as exc:
                return auth_error_response(exc)
            except ApiError as exc:
                return api_error_response(exc)
            except UnstorableText as exc:
                return api_error_response(InvalidText(str(exc)))

        return run

    return wrap
