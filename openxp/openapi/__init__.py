"""``GET /openapi.json``: the OpenAPI 3.1 description of ``/auth/oauth``, ``/api`` and ``/xapi``.

The document is plain data built from small helpers (``schemas`` holds the
bodies, ``paths`` the operations). ``tests/test_openapi.py`` checks it against
the OpenAPI schema and against the app's route table both ways, and
``tests/test_openapi_fuzz.py`` fuzzes the running server with it, so a route
added without its description (or described but not routed) fails the suite.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from openxp.openapi.paths import paths
from openxp.openapi.schemas import components
from openxp.runtime import runtime

OPENAPI_VERSION = "3.1.0"


def _version() -> str:
    try:
        return importlib.metadata.version("openxp")
    except importlib.metadata.PackageNotFoundError:
        return "0"


@functools.lru_cache(maxsize=4)
def document(public_url: str) -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "openxp",
            "version": _version(),
            "summary": "ClearXP authentication: OAuth 2.0 authorization server, ClearXP API and xAPI LRS",
            "description": (
                "Three surfaces, each with its own error shape: `/auth/oauth` answers RFC 6749 errors "
                '(`{"error", "error_description"}`), `/api` answers ClearXP\'s error shape '
                '(`{"code", "name", "error", "message", "body"}`), `/xapi` answers `{"error", "message"}`. '
                "The integration guide is at `/docs/integrating.md`."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": public_url}],
        "externalDocs": {"description": "openxp's documentation", "url": f"{public_url}/docs"},
        "tags": [
            {"name": "oauth", "description": "The authorization server (RFC 6749, 7009, 7636, 7662, 8414, 9207)"},
            {"name": "api", "description": "The ClearXP API: Bearer + X-CXP-Tenant"},
            {"name": "xapi", "description": "The xAPI Learning Record Store (1.0.3 and 2.0.0)"},
            {"name": "service", "description": "About this service"},
        ],
        "paths": paths(),
        "components": components(),
    }


@functools.lru_cache(maxsize=4)
def _rendered(public_url: str) -> bytes:
    return orjson.dumps(document(public_url))


async def openapi_json(request: Request) -> Response:
    body = _rendered(runtime(request).settings.public_url)
    return Response(body, media_type="application/json", headers={"Cache-Control": "public, max-age=3600"})
