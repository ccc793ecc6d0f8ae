"""The frame every /xapi resource runs in: version, credential, scope, and the
response headers. Endpoints are plain Starlette functions wrapped by ``endpoint``;
they receive an ``XContext`` and return a Response or raise a refusal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from openxp.auth import guard
from openxp.auth.basic import DEPRECATED_FLAG
from openxp.auth.principal import Principal
from openxp.errors import OpenXPError
from openxp.runtime import runtime
from openxp.xapi import alternate, errors
from openxp.xapi.errors import MethodNotAllowed
from openxp.xapi.shape import iso_now
from openxp.xapi.version import VERSION_HEADER, default_version, resolve_version


@dataclass(frozen=True)
class XContext:
    version: str
    principal: Principal
    authority: dict[str, Any]

    @property
    def v2(self) -> bool:
        return self.version == "2.0.0"


def authority_for(conn: HTTPConnection, principal: Principal) -> dict[str, Any]:
    name = principal.key if principal.kind != "oauth" else principal.client_id
    home = runtime(conn).settings.public_url
    return {"objectType": "Agent", "account": {"homePage": home, "name": name or principal.tenant}}


Handler = Callable[[Request, XContext], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(scopes: dict[str, str], *, consistent_through: bool = False) -> Callable[[Handler], Endpoint]:
    """``scopes``: the scope each method needs."""

    def wrap(handler: Handler) -> Endpoint:
        async def run(original: Request) -> Response:
            request = original
            version = default_version(request)
            try:
                if alternate.requested(request):
                    request = await alternate.alternate(request)
                version = resolve_version(request.headers.get(VERSION_HEADER))
                principal = await guard.authenticate(request, guard.LRS)
                method = "GET" if request.method == "HEAD" else request.method
                if method not in scopes:
                    raise MethodNotAllowed(f"this resource does not take {method}")
                guard.require(principal, scopes[method])
                response = await handler(request, XContext(version, principal, authority_for(request, principal)))
            except OpenXPError as exc:
                if exc.status >= 500:
                    raise  # not the request's fault: logged and answered by openxp.app
                response = errors.render(exc)
            finally:
                # What the guard marked on a rewritten request belongs to the real one.
                if request is not original and request.scope.get(DEPRECATED_FLAG):
                    original.scope[DEPRECATED_FLAG] = True
            response.headers[VERSION_HEADER] = version
            if consistent_through:
                response.headers["X-Experience-API-Consistent-Through"] = iso_now()
            return response

        return run

    return wrap
