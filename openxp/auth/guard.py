"""The one guard every protected resource goes through."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from openxp.auth import basic, bearer, tenant
from openxp.auth.errors import InsufficientScope, InvalidAuthRequest, MissingCredentials
from openxp.auth.principal import Principal
from openxp.runtime import runtime


def _authorization(conn: HTTPConnection) -> str | None:
    values = conn.headers.getlist("authorization")
    if len(values) > 1:
        raise InvalidAuthRequest("send the Authorization header once")
    if conn.scope.get("query_string") and "access_token" in conn.query_params:
        if values:
            raise InvalidAuthRequest("send the access token in one place: the Authorization header")
        # RFC 9700 4.3.2: a token in the URL is not accepted; it is as if none was sent.
    return values[0] if values else None


async def authenticate(conn: HTTPConnection, required_scope: str | None = None) -> Principal:
    """Bearer (OAuth, X-CXP-Tenant required) or Basic (an API key: deprecated,
    X-CXP-Tenant optional but must match). Short-lived and launch credentials
    are LRS-only: here they hold no scope."""
    rt = runtime(conn)
    header = _authorization(conn)
    if header is None or not header.strip():
        raise MissingCredentials()
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() == "basic":
        principal = await basic.principal_for(conn, header)
        if principal.restricted:
            raise InsufficientScope(required_scope or "all")
        basic.mark_deprecated(conn)
    elif scheme.lower() == "bearer":
        token = credentials.strip()
        if not token or " " in token:
            raise InvalidAuthRequest("malformed Bearer credentials")
        principal = await bearer.principal_for(rt.db, token)
        tenant.check(conn, rt.settings, principal.tenant)
    else:
        raise MissingCredentials("this resource takes an OAuth access token (Authorization: Bearer)")
    if required_scope is not None and not principal.may(required_scope):
        raise InsufficientScope(required_scope)
    return principal
