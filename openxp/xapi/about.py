"""GET /xapi/about: the versions this LRS speaks; no credential, no version header."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openxp.httpio import JSON
from openxp.xapi.errors import XAPIError
from openxp.xapi.http import DEFAULT_VERSION, SUPPORTED, VERSION_HEADER, resolve_version


async def about(request: Request) -> Response:
    try:
        version = resolve_version(request.headers.get(VERSION_HEADER, DEFAULT_VERSION))
    except XAPIError:
        version = DEFAULT_VERSION  # /about answers whatever version the caller claims
    return JSON({"version": list(SUPPORTED)}, headers={VERSION_HEADER: version})
