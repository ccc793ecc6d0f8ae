"""What every /xapi request goes through: the version header, the credential,
the scope, CORS, and one error shape.

Endpoints are plain Starlette functions wrapped by ``endpoint``; they receive
an ``XContext`` and return a Response or raise ``XAPIError``/``AuthError``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openxp import wire
from openxp.auth import basic, bearer, tenant
from openxp.auth.errors import (
    AuthError,
    InsufficientScope,
    InvalidAuthRequest,
    MissingCredentials,
    OutsideCredential,
    VoidingForbidden,
)
from openxp.auth.principal import Principal
from openxp.httpio import JSON, BodyTooLarge, read_body
from openxp.runtime import runtime
from openxp.store.errors import UnstorableText
from openxp.xapi import shape
from openxp.xapi.errors import XAPIError, bad_request

VERSION_HEADER = "X-Experience-API-Version"
SUPPORTED = ("1.0.3", "2.0.0")
_V1 = re.compile(r"^1\.0(?:\.\d+)?$")
_V2 = re.compile(r"^2\.0(?:\.\d+)?$")


def default_version(request: Request) -> str:
    """What to echo when a request names no version (``OPENXP_XAPI_DEFAULT_VERSION``)."""
    return runtime(request).settings.xapi_default_version


MAX_ALTERNATE_BODY = 16 * 1024 * 1024

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": (
        "ETag, Last-Modified, X-Experience-API-Consistent-Through, X-Experience-API-Version"
    ),
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD, PUT, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Experience-API-Version, If-Match, If-None-Match",
    "Access-Control-Max-Age": "600",
}


def resolve_version(value: str | None) -> str:
    if value is None:
        raise bad_request("the X-Experience-API-Version header is required", "version_required")
    value = value.strip()
    if _V1.fullmatch(value):
        return "1.0.3"
    if _V2.fullmatch(value):
        return "2.0.0"
    raise bad_request(
        f"unsupported xAPI version {value[:20]!r}; this LRS speaks 1.0.3 and 2.0.0", "version_unsupported"
    )


def iso_now() -> str:
    return iso(datetime.now(UTC).timestamp())


def iso(ts: float) -> str:
    """UTC ISO 8601 with exactly three fractional digits (stored, Consistent-Through)."""
    ms = int(ts * 1000)
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


@dataclass(frozen=True)
class XContext:
    version: str
    principal: Principal
    authority: dict[str, Any]

    @property
    def v2(self) -> bool:
        return self.version == "2.0.0"


async def authenticate(conn: HTTPConnection) -> tuple[Principal, bool]:
    """(principal, came by Basic)."""
    values = conn.headers.getlist("authorization")
    if len(values) > 1:
        raise InvalidAuthRequest("send the Authorization header once")
    header = values[0].strip() if values else ""
    if not header:
        raise MissingCredentials(scheme="Basic")
    scheme = header.split(" ", 1)[0].lower()
    if scheme == "bearer":
        token = header[len("bearer") :].strip()
        if not token or " " in token:
            raise InvalidAuthRequest("malformed Bearer credentials")
        rt = runtime(conn)
        principal = await bearer.principal_for(rt.db, token)
        tenant.check(conn, rt.settings, principal.tenant)
        return principal, False
    principal = await basic.principal_for(conn, header)
    # Short-lived and launch credentials are the current launch mechanism, not deprecated.
    return principal, principal.kind == "apikey"


def authority_for(conn: HTTPConnection, principal: Principal) -> dict[str, Any]:
    name = principal.key if principal.kind != "oauth" else principal.client_id
    home = runtime(conn).settings.public_url
    return {"objectType": "Agent", "account": {"homePage": home, "name": name or principal.tenant}}


# -- what an actor-bound credential may do -----------------------------------
# A short-lived credential with data.actor, and every launch credential, acts
# only as its Agent. A launch credential is further held to its activity (the
# statement's object is that activity or an IRI under it, or its context names
# it) and, when the launch named one, its registration (SECURITY.md J-03).


def under(iri: str, activity: str) -> bool:
    """The launch activity itself, or an IRI beneath it (``activity/...``, ``#...``, ``?...``)."""
    return iri == activity or (iri.startswith(activity) and iri[len(activity)] in "/#?")


def confine_agent(principal: Principal, agent_key: str | None) -> None:
    bound = principal.restrictions.get("actor_key")
    if bound is not None and agent_key != bound:
        raise OutsideCredential("this credential may act only as its own actor")


def confine_registration(principal: Principal, registration: str | None, *, required: bool = True) -> None:
    bound = principal.restrictions.get("registration")
    if bound is None or (registration is None and not required):
        return
    if registration is None or registration.lower() != bound:
        raise OutsideCredential("this credential is limited to the registration of its launch")


def confine_activity(principal: Principal, activity_id: str | None) -> None:
    bound = principal.restrictions.get("activity")
    if bound is not None and (activity_id is None or not under(activity_id, bound)):
        raise OutsideCredential("this credential is limited to the activity of its launch")


def confine_people(principal: Principal, statement: dict[str, Any]) -> None:
    """An actor-bound credential speaks for its learner alone: its actor is that Agent (not a
    Group, whose members would be others), and every other Agent or Group the statement names
    (object, instructor, team, context agents and groups, members, a SubStatement's) is that
    Agent too. Otherwise one learner's content could put statements into other learners'
    ``agent`` and ``related_agents`` results."""
    bound = principal.restrictions.get("actor_key")
    if bound is None:
        return
    if (statement.get("actor") or {}).get("objectType") == "Group":
        raise OutsideCredential("this credential acts as its Agent, not as a Group")
    for agent in shape.named_agents(statement):
        if shape.agent_key(agent) != bound:
            raise OutsideCredential("this credential may not name other agents or groups in a statement")


def confine_statement(principal: Principal, statement: dict[str, Any]) -> None:
    if not principal.restricted:
        return
    confine_agent(principal, shape.agent_key(statement.get("actor")))
    confine_people(principal, statement)
    context: dict[str, Any] = statement.get("context") or {}
    confine_registration(principal, context.get("registration"))
    bound = principal.restrictions.get("activity")
    if bound is None:
        return
    obj = statement.get("object") or {}
    named = [obj.get("id")] if obj.get("objectType", "Activity") == "Activity" else []
    for group in (context.get("contextActivities") or {}).values():
        named += [a.get("id") for a in (group if isinstance(group, list) else [group]) if isinstance(a, dict)]
    if not any(isinstance(iri, str) and under(iri, bound) for iri in named):
        raise OutsideCredential("the statement is not about the activity of this launch")


def confines_voiding(principal: Principal) -> bool:
    """Learner-bound credentials and those that may read only their own statements."""
    return principal.restricted or not principal.may("statements/read")


def confine_voiding(
    principal: Principal, authority_key: str | None, target: dict[str, Any] | None, target_authority: str | None
) -> None:
    """A confined credential voids only what it could itself have written: for an actor-bound
    credential a statement passing ``confine_statement`` (its actor, registration, activity,
    no one else named), for a statements/read/mine credential one it wrote. An id it cannot
    see, existing or not, is refused alike, so the answer is no existence oracle."""
    if not confines_voiding(principal):
        return
    if target is None:
        raise VoidingForbidden()
    if not principal.may("statements/read") and target_authority != authority_key:
        raise VoidingForbidden()
    try:
        confine_statement(principal, target)
    except OutsideCredential:
        raise VoidingForbidden() from None


Handler = Callable[[Request, XContext], Awaitable[Response]]


def error_response(exc: Exception) -> Response:
    if isinstance(exc, XAPIError):
        return JSON(exc.body(), status_code=exc.status)
    if isinstance(exc, AuthError):
        return JSON({"error": exc.error, "message": exc.message}, status_code=exc.status, headers=exc.headers)
    assert isinstance(exc, BodyTooLarge)
    return JSON({"error": "too_large", "message": str(exc)}, status_code=413)


Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(scopes: dict[str, str], *, consistent_through: bool = False) -> Callable[[Handler], Endpoint]:
    """Wrap a handler: version -> credential -> scope, and the response headers."""

    def wrap(handler: Handler) -> Endpoint:
        async def run(request: Request) -> Response:
            version = default_version(request)
            deprecated = False
            try:
                if "method" in request.query_params:
                    request = await alternate(request)
                version = resolve_version(request.headers.get(VERSION_HEADER))
                principal, deprecated = await authenticate(request)
                method = "GET" if request.method == "HEAD" else request.method
                if method not in scopes:
                    # Only the alternate syntax gets here (the router answers the rest with 405).
                    raise XAPIError(405, "method_not_allowed", f"this resource does not take {method}")
                required = scopes[method]
                if not principal.may(required):
                    raise InsufficientScope(required)
                ctx = XContext(version, principal, authority_for(request, principal))
                response = await handler(request, ctx)
            except (XAPIError, AuthError, BodyTooLarge) as exc:
                response = error_response(exc)
            except UnstorableText as exc:
                response = error_response(bad_request(str(exc), "invalid_text"))
            response.headers[VERSION_HEADER] = version
            if deprecated:
                response.headers.update(basic.DEPRECATION_HEADERS)
            if consistent_through:
                response.headers["X-Experience-API-Consistent-Through"] = iso_now()
            return response

        return run

    return wrap


# Form fields of the alternate syntax that stand for request headers.
ALTERNATE_HEADERS = frozenset(
    {"authorization", "x-experience-api-version", "content-type", "content-length", "if-match", "if-none-match"}
)
ALTERNATE_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})


async def alternate(request: Request) -> Request:
    """xAPI 1.0.3 Communication 1.3: ``POST ?method=X`` with the parameters,
    headers and content in a form body, rewritten into the request it stands
    for. xAPI 2.0 removed it, so a 2.0 request naming ``method`` is refused."""
    params = query_params(request, frozenset({"method"}))
    if request.method != "POST":
        raise bad_request("the alternate request syntax is only POST ?method=...")
    method = params["method"].upper()
    if method not in ALTERNATE_METHODS:
        raise bad_request("method must be GET, HEAD, PUT, POST or DELETE", "invalid_method")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise bad_request("the alternate request syntax takes an application/x-www-form-urlencoded body")
    try:
        form = wire.single_values(wire.parse_query(await read_body(request, MAX_ALTERNATE_BODY)))
    except wire.WireError as exc:
        raise bad_request(str(exc)) from None
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in {"content-type", "content-length"}}
    query: list[tuple[str, str]] = []
    content = form.pop("content", None)
    for name, value in form.items():
        if name.lower() in ALTERNATE_HEADERS:
            headers[name.lower()] = value
        else:
            query.append((name, value))
    if _V2.fullmatch(headers.get("x-experience-api-version", "").strip()):
        raise bad_request("xAPI 2.0 does not accept the alternate request syntax")
    if method in {"PUT", "POST"} and content is None:
        raise bad_request("the alternate request syntax needs the content field for PUT and POST")
    body = (content or "").encode()
    headers["content-length"] = str(len(body))
    headers.setdefault("content-type", "application/json")
    scope = dict(request.scope)
    scope["method"] = method
    scope["query_string"] = urlencode(query).encode()
    scope["headers"] = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers.items()]
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def query_params(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    """Query parameters, case-sensitive, each at most once, none unknown."""
    try:
        params = wire.single_values(wire.parse_query(request.scope.get("query_string", b"")))
    except wire.WireError as exc:
        raise bad_request(str(exc)) from None
    for name in params:
        if name not in allowed:
            raise bad_request(f"unknown parameter {name[:40]!r} (names are case-sensitive)")
    return params


class CORS:
    """CORS for browser content: any origin, never credentials (cookies are not
    how /xapi authenticates, so there is nothing for a page to ride on)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.extra = [(k.lower().encode(), v.encode()) for k, v in CORS_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            response = Response(status_code=204, headers=PREFLIGHT_HEADERS)
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)
