"""The query string of an /xapi request: xAPI parameter names are case-sensitive, and
a parameter sent twice or one the resource does not know is refused, not ignored."""

from __future__ import annotations

from starlette.requests import Request

from openxp import wire
from openxp.xapi.errors import BadRequest


def query_params(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    try:
        params = wire.single_values(wire.parse_query(request.scope.get("query_string", b"")))
    except wire.WireError as exc:
        raise BadRequest(str(exc)) from None
    for name in params:
        if name not in allowed:
            raise BadRequest(f"unknown parameter {name[:40]!r} (names are case-sensitive)")
    return params
