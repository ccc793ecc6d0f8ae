"""HTTP glue for the token, revocation, introspection and metadata endpoints.

Plain Starlette endpoints (these are hot paths). Every answer, success or
error, is JSON with ``Cache-Control: no-store`` (RFC 6749 5.1, 5.2).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from openxp import wire
from openxp.errors import OpenXPError
from openxp.httpio import JSON, NO_STORE, BodyTooLarge, media_type, read_body
from openxp.oauth import errors, rfc7009, rfc7662, rfc8414
from openxp.oauth.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from openxp.oauth.rfc6749 import token_endpoint
from openxp.runtime import client_ip, runtime

FORM = "application/x-www-form-urlencoded"
Endpoint = Callable[[Request], Awaitable[Response]]


def _refusals_rendered(endpoint: Endpoint) -> Endpoint:
    """A refusal becomes its RFC 6749 5.2 answer. A 5xx is not the request's fault: a store
    outage and an unexpected error are logged and answered by openxp.app, like every
    surface's (nothing was counted or written for an unstorable value: it is a 400 here)."""

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except OpenXPError as exc:
            if exc.status >= 500:
                raise
            return errors.render(exc)

    return run


async def _params(request: Request) -> dict[str, str]:
    """The request's parameters from a JSON (the seed) or form (RFC 6749) body."""
    if request.url.query:
        # RFC 6749 2.3.1 / 3.2: credentials and grant parameters never travel in the URL.
        raise InvalidRequest("send parameters in the request body, not in the URL")
    kind = media_type(request)
    if kind not in ("application/json", FORM):
        raise UnsupportedMediaType("send application/json or application/x-www-form-urlencoded")
    try:
        raw = await read_body(request, wire.MAX_FORM_BODY)
    except BodyTooLarge:
        raise PayloadTooLarge("request body too large") from None
    if kind == FORM and raw.lstrip()[:1] in (b"{", b"["):
        # curl -d sends this content type by default; no form parameter name starts with a bracket.
        raise InvalidRequest("the body is JSON but was sent as a form: send it with Content-Type: application/json")
    try:
        if kind == FORM:
            return wire.single_values(wire.parse_query(raw))
        return wire.flat_string_object(wire.parse_json(raw))
    except wire.WireError as exc:
        raise InvalidRequest(str(exc)) from None


async def _call(request: Request) -> tuple[dict[str, str], str | None, str]:
    """(parameters, Authorization header, client address) of a POST to an endpoint."""
    params = await _params(request)
    return params, request.headers.get("authorization"), client_ip(request, runtime(request).settings)


@_refusals_rendered
async def token(request: Request) -> Response:
    rt = runtime(request)
    return JSON(await token_endpoint.exchange(rt.db, rt.settings, *await _call(request)), headers=NO_STORE)


@_refusals_rendered
async def revoke(request: Request) -> Response:
    rt = runtime(request)
    await rfc7009.revoke(rt.db, rt.settings, *await _call(request))
    return Response(b"", status_code=200, headers=NO_STORE)


@_refusals_rendered
async def introspect(request: Request) -> Response:
    rt = runtime(request)
    return JSON(await rfc7662.introspect(rt.db, rt.settings, *await _call(request)), headers=NO_STORE)


async def metadata(request: Request) -> Response:
    return JSON(rfc8414.metadata(runtime(request).settings), headers={"Cache-Control": "public, max-age=3600"})
