"""``/docs``: the guides openxp ships (package data, so any install serves them) and
an index page linking them and ``/openapi.json``. RFC 8414 ``service_documentation``
points at the index; the Basic ``Deprecation`` ``Link`` at ``/docs/integrating.md``."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from openxp.httpio import JSON
from openxp.web import browser

GUIDES_DIR = Path(__file__).parent / "guides"
# name -> what the index says about it; every name is a file in GUIDES_DIR.
GUIDES = {
    "integrating.md": "Integrating: the OAuth flow, the ClearXP API and the LRS, step by step with curl",
    "operating.md": "Operating: provisioning, configuration, PostgreSQL, workers and housekeeping",
    "conformance.md": "xAPI conformance: the ADL suite's results and where openxp differs",
}


async def index(request: Request) -> Response:
    return browser.render("docs.html", {"guides": GUIDES})


async def guide(request: Request) -> Response:
    name = request.path_params["name"]
    path = GUIDES_DIR / name
    if name not in GUIDES or not path.is_file():
        return JSON({"error": "not_found", "message": "no such document; see /docs"}, status_code=404)
    return Response(
        path.read_bytes(), media_type="text/markdown; charset=utf-8", headers={"Cache-Control": "public, max-age=3600"}
    )
