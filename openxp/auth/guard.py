"""The one guard every protected resource goes through: who is calling, by which
credential, for which tenant. A resource says which credential kinds it takes
with a ``Policy``; every rule about the caller lives here and in its siblings
(``bearer``, ``basic``, ``tenant``, ``confine``), none in the resources."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from openxp.auth import basic, bearer, bearer_cache, tenant
from openxp.auth.errors import InsufficientScope, InvalidAuthRequest, MissingCredentials
from openxp.auth.principal import Principal
from openxp.runtime import runtime


@dataclass(frozen=True)
class Policy:
    """Which credentials a resource accepts. ``kinds`` are ``Principal.kind`` values:
    ``oauth`` (Bearer), ``apikey`` (Basic, deprecated), ``shortlived`` and ``launch`` (Basic,
    actor-bound). ``challenge`` is the scheme a caller without credentials is told to use;
    a ``Basic`` resource also reads an unknown scheme as Basic, which then fails as such."""

    kinds: frozenset[str]
    challenge: str


# The ClearXP API: OAuth, and API keys while they last. A short-lived or launch credential
# authenticates but holds no scope here.
API = Policy(kinds=frozenset({"oauth", "apikey"}), challenge="Bearer")
# The LRS: every credential; what an actor-bound one may touch is held by ``confine``.
LRS = Policy(kinds=frozenset({"oauth", "apikey", "shortlived", "launch"}), challenge="Basic")


def _authorization(conn: HTTPConnection) -> str | None:
    values = conn.headers.getlist("authorization")
    if len(values) > 1:
        raise InvalidAuthRequest("send the Authorization header once")
    if conn.scope.get("query_string") and "access_token" in conn.query_params:
        if values:
            raise InvalidAuthRequest("send the access token in one place: the Authorization header")
        # RFC 9700 4.3.2: a token in the URL is not accepted; it is as if none was sent.
    return values[0] if values else None


def require(principal: Principal, scope: str) -> None:
    if not principal.may(scope):
        raise InsufficientScope(scope)


async def authenticate(conn: HTTPConnection, policy: Policy, required_scope: str | None = None) -> Principal:
    """Bearer (OAuth, X-CXP-Tenant required) or Basic (X-CXP-Tenant optional but must match).
    An API key over Basic is deprecated: the response carries the Deprecation headers."""
    header = (_authorization(conn) or "").strip()
    if not header:
        raise MissingCredentials(scheme=policy.challenge)
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        token = credentials.strip()
        if not token or " " in token:
            raise InvalidAuthRequest("malformed Bearer credentials")
        rt = runtime(conn)
        principal = await bearer.principal_for(rt.db, token, bearer_cache.of(conn))
        tenant.check(conn, rt.settings, principal.tenant)
    elif scheme.lower() == "basic" or policy.challenge == "Basic":
        principal = await basic.principal_for(conn, header)
        if principal.kind not in policy.kinds:
            raise InsufficientScope(required_scope or "all")
        if principal.kind == "apikey":
            basic.mark_deprecated(conn)
    else:
        raise MissingCredentials("this resource takes an OAuth access token (Authorization: Bearer)")
    if required_scope is not None:
        require(principal, required_scope)
    return principal
