"""GET /xapi/about: the versions this LRS speaks; no credential, no version header."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openxp.httpio import JSON
from openxp.xapi.errors import XAPIError
from openxp.xapi.version import SUPPORTED, VERSION_HEADER, default_version, resolve_version


async def about(request: Request) -> Response:
    try:
        version = resolve_version(request.headers.get(VERSION_HEADER, default_version(request)))
    except XAPIError:
        version = default_version(request)  # /about answers whatever version the caller claims
    return JSON({"version": list(SUPPORTED)}, headers={VERSION_HEADER: version})
