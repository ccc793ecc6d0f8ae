"""``GET /api/export/statements``: the tenant's statements matching the xAPI filters, oldest first,
streamed as NDJSON (default) or CSV (../shared/CONTRACT.md, "Export"; openxp.exports.statements).

Query parameters: the filters of GET /xapi/statements (``agent``, ``verb``, ``activity``,
``registration``, ``related_agents``, ``related_activities``, ``since``, ``until``, parsed by the
same ``openxp.xapi.filters``) and ``format`` (``ndjson`` or ``csv``). Every parameter is checked
before the first byte is sent: a bad one is a 400 in the /api error shape. Needs
``statements/read`` (``all/read`` and ``all`` include it); the statements are the credential's
tenant's only (I-01).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openxp import wire
from openxp.api.errors import InvalidParameter
from openxp.api.http import endpoint
from openxp.auth import Principal
from openxp.exports import statements as export
from openxp.runtime import runtime
from openxp.store import statements as store
from openxp.xapi import filters as statement_filters
from openxp.xapi.errors import BadRequest

SCOPE = "statements/read"
KNOWN_PARAMETERS = statement_filters.NAMES | {"format"}


def read_filters(query_string: bytes) -> tuple[store.Filters, str]:
    """The filters and format a query string names; InvalidParameter for the first bad one."""
    try:
        params = wire.single_values(wire.parse_query(query_string))
    except wire.WireError as exc:
        raise InvalidParameter(str(exc), prop="") from None
    unknown = sorted(set(params) - KNOWN_PARAMETERS)
    if unknown:
        raise InvalidParameter(
            f"unknown parameter {unknown[0][:40]!r}; known: {', '.join(sorted(KNOWN_PARAMETERS))}", prop=unknown[0][:40]
        )
    fmt = params.get("format", "ndjson")
    if fmt not in export.FORMATS:
        raise InvalidParameter("format must be ndjson or csv", prop="format")
    try:
        return statement_filters.parse(params), fmt
    except BadRequest as exc:
        raise InvalidParameter(exc.description, prop=exc.prop or "") from None


@endpoint(SCOPE)
async def export_statements(request: Request, principal: Principal) -> Response:
    filters, fmt = read_filters(request.scope.get("query_string", b""))
    body = export.encoded(runtime(request).db, principal.tenant_id, filters, fmt)
    return export.response(body, fmt, f"statements-{principal.tenant}")
