"""HTTP glue for the token, revocation, introspection and metadata endpoints.

Plain Starlette endpoints (these are hot paths). Every answer, success or
error, is JSON with ``Cache-Control: no-store`` (RFC 6749 5.1, 5.2).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from openxp import wire
from openxp.httpio import JSON, NO_STORE, BodyTooLarge, media_type, read_body
from openxp.oauth import rfc7009, rfc7662, rfc8414
from openxp.oauth.errors import InvalidRequest, OAuthError, PayloadTooLarge, ServerError, UnsupportedMediaType
from openxp.oauth.rfc6749 import token_endpoint
from openxp.runtime import client_ip, runtime
from openxp.store.errors import StorageUnavailable, UnstorableText

log = logging.getLogger("openxp.oauth")
FORM = "application/x-www-form-urlencoded"


def error_response(exc: OAuthError) -> Response:
    return JSON(exc.body(), status_code=exc.status, headers={**NO_STORE, **exc.headers})


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


async def _run(request: Request, action: str) -> Response:
    rt = runtime(request)
    try:
        params = await _params(request)
        authorization = request.headers.get("authorization")
        ip = client_ip(request, rt.settings)
        if action == "token":
            return JSON(await token_endpoint.exchange(rt.db, rt.settings, params, authorization, ip), headers=NO_STORE)
        if action == "revoke":
            await rfc7009.revoke(rt.db, rt.settings, params, authorization, ip)
            return Response(b"", status_code=200, headers=NO_STORE)
        return JSON(await rfc7662.introspect(rt.db, rt.settings, params, authorization, ip), headers=NO_STORE)
    except OAuthError as exc:
        return error_response(exc)
    except StorageUnavailable:
        raise  # a 503 with Retry-After, rendered by openxp.app like every surface's
    except UnstorableText as exc:
        # Refused before it reached the database, so nothing was counted or written.
        return error_response(InvalidRequest(str(exc)))
    except Exception:
        log.exception("unexpected error at the %s endpoint", action)
        return error_response(ServerError("the server could not complete the request"))


async def token(request: Request) -> Response:
    return await _run(request, "token")


async def revoke(request: Request) -> Response:
    return await _run(request, "revoke")


async def introspect(request: Request) -> Response:
    return await _run(request, "introspect")


async def metadata(request: Request) -> Response:
    return JSON(rfc8414.metadata(runtime(request).settings), headers={"Cache-Control": "public, max-age=3600"})
