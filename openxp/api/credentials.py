"""Short-lived Basic credentials and content launch (ClearXP API).

- ``POST /api/auth/basic`` ``{"username", "password"?, "ttlMins", "data": {"actor"}?}`` ->
  ``{"username"}`` (plus ``"password"`` once, when the caller let us generate it).
- ``DELETE /api/auth/basic/{username}`` revokes a live credential of the tenant.
- ``GET /api/auth/me`` -> ``{"tenant", "kind", "scope", "client_id" | "key"}``: the caller.
- ``POST /api/launch`` ``{"url", "actor", "activity_id", "registration"?}`` ->
  ``{"url", "expires_in", "username"}``: the content URL with the Rustici launch
  parameters (``endpoint``, ``auth``, ``actor``, ``activity_id``, ``registration``);
  with ``"mode": "cmi5"`` (and ``publisher_id``, ...) the cmi5 launch of ``openxp.api.cmi5``.

The last three need the ``launch`` scope (``all`` includes it). The credentials they
make work only on /xapi (``openxp.auth.launch``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import Response

from openxp import audit
from openxp.api import cmi5
from openxp.api.body import json_body
from openxp.api.errors import NotFound, UsernameTaken, ValidationFailed
from openxp.api.http import endpoint
from openxp.auth import Principal
from openxp.auth import launch as launch_auth
from openxp.httpio import JSON, NO_STORE
from openxp.runtime import runtime
from openxp.store import launches
from openxp.store.errors import AlreadyExists
from openxp.xapi import shape
from openxp.xapi.errors import InvalidStatement
from openxp.xapi.validate import UUID, Validator

SCOPE = "launch"
MAX_BODY = 64 * 1024
MAX_URL = 4096
MIN_TTL_MINS, MAX_TTL_MINS = 1, 1440
MIN_PASSWORD, MAX_PASSWORD = 16, 256
# Survives the form-decoding wire.parse_basic applies to Basic usernames unchanged.
USERNAME = re.compile(r"^[A-Za-z0-9._~@-]{1,64}$")
# Printable ASCII without spaces; a colon is fine (Basic splits on the first one).
PASSWORD = re.compile(r"^[!-~]+$")
LAUNCH_PARAMETERS = ("endpoint", "auth", "actor", "activity_id", "registration")
LAUNCH_MODES = ("rustici", "cmi5")


def _creator(principal: Principal) -> str:
    return principal.key or principal.client_id or principal.tenant


def _actor(value: Any, prop: str) -> tuple[dict[str, Any], str]:
    """A validated xAPI Agent and its inverse functional identifier."""
    try:
        agent = Validator(v2=True).agent(value, prop)
    except InvalidStatement as exc:
        raise ValidationFailed(f"{prop} must be an xAPI Agent: {exc}", prop=prop) from None
    key = shape.agent_key(agent)
    if key is None:
        raise ValidationFailed(f"{prop} must have an inverse functional identifier", prop=prop)
    return agent, key


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", prop="body")
    return body


@endpoint(None)
async def whoami(request: Request, principal: Principal) -> Response:
    """GET /api/auth/me: what the presented credential is (its tenant, kind, client and
    scopes), for an integration checking its token. Any valid API credential may ask."""
    body: dict[str, Any] = {
        "tenant": principal.tenant,
        "kind": principal.kind,
        "scope": " ".join(sorted(principal.scopes)),
    }
    if principal.client_id is not None:
        body["client_id"] = principal.client_id
    if principal.key is not None:
        body["key"] = principal.key
    return JSON(body, headers=NO_STORE)


@endpoint(SCOPE)
async def create_basic(request: Request, principal: Principal) -> Response:
    """POST /api/auth/basic: ClearXP's short-lived Basic credentials."""
    rt = runtime(request)
    body = _object(await json_body(request, MAX_BODY))
    username = body.get("username")
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise ValidationFailed("username must be 1-64 characters of A-Z a-z 0-9 . _ ~ @ -", prop="username")
    password = body.get("password")
    generated = password is None
    if generated:
        password = launch_auth.new_launch_pair()[1]
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationFailed(
            f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters (or omitted: one is generated)",
            prop="password",
        )
    if not PASSWORD.fullmatch(password):
        raise ValidationFailed("password must be printable ASCII without spaces", prop="password")
    ttl = body.get("ttlMins")
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not MIN_TTL_MINS <= ttl <= MAX_TTL_MINS:
        raise ValidationFailed(
            f"ttlMins must be a whole number from {MIN_TTL_MINS} to {MAX_TTL_MINS}", prop="ttlMins", value=None
        )
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise ValidationFailed("data must be an object", prop="data")
    actor, actor_key = _actor(data["actor"], "data.actor") if data.get("actor") is not None else (None, None)
    try:
        async with rt.db.write() as conn:
            await launches.create(
                conn,
                principal.tenant_id,
                username=username,
                secret_hash=launch_auth.password_digest(password),
                kind="basic",
                ttl=ttl * 60,
                created_by=_creator(principal),
                actor=actor,
                actor_key=actor_key,
            )
    except AlreadyExists as exc:
        raise UsernameTaken(str(exc)) from None
    audit.event(
        "shortlived_credential_created",
        tenant=principal.tenant,
        by=_creator(principal),
        username=username,
        ttl_mins=ttl,
        bound=actor is not None,
    )
    answer: dict[str, Any] = {"username": username}
    if generated:
        answer["password"] = password
    return JSON(answer, headers=NO_STORE)


@endpoint(SCOPE)
async def revoke_basic(request: Request, principal: Principal) -> Response:
    """DELETE /api/auth/basic/{username}: ends a live short-lived or launch credential now."""
    rt = runtime(request)
    username = request.path_params["username"]
    async with rt.db.write() as conn:
        found = await launches.revoke(conn, principal.tenant_id, username)
    if not found:
        raise NotFound("no live credential of that username in this tenant")
    audit.event("shortlived_credential_revoked", tenant=principal.tenant, by=_creator(principal), username=username)
    return Response(status_code=204, headers=NO_STORE)


def _content_url(value: Any, ours: tuple[str, ...]) -> tuple[str, str, str, list[tuple[str, str]], str]:
    if not isinstance(value, str) or len(value) > MAX_URL:
        raise ValidationFailed(f"url must be a string of at most {MAX_URL} characters", prop="url")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationFailed("url must be an absolute http(s) URL", prop="url", value=value[:200])
    # The query the content already has is kept, except our own parameter names.
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    return parts.scheme, parts.netloc, parts.path, kept, parts.fragment


@endpoint(SCOPE)
async def launch(request: Request, principal: Principal) -> Response:
    """POST /api/launch: a launch credential and the content URL that carries it, by the Rustici
    mechanism or, with ``"mode": "cmi5"``, by cmi5's (``openxp.api.cmi5``)."""
    rt = runtime(request)
    body = _object(await json_body(request, MAX_BODY))
    mode = body.get("mode", "rustici")
    if mode not in LAUNCH_MODES:
        raise ValidationFailed(f"mode must be one of {', '.join(LAUNCH_MODES)}", prop="mode")
    ours = cmi5.PARAMETERS if mode == "cmi5" else LAUNCH_PARAMETERS
    scheme, netloc, path, query, fragment = _content_url(body.get("url"), ours)
    actor, actor_key = _actor(body.get("actor"), "actor")
    activity_id = body.get("activity_id")
    if not isinstance(activity_id, str) or not shape.is_iri(activity_id) or len(activity_id) > 2048:
        raise ValidationFailed("activity_id must be an IRI", prop="activity_id")
    registration = body.get("registration")
    if registration is not None and (not isinstance(registration, str) or not UUID.fullmatch(registration)):
        raise ValidationFailed("registration must be a UUID", prop="registration")
    registration = str(uuid.UUID(registration)) if registration else None
    if mode == "cmi5":
        content_url = urlunsplit((scheme, netloc, path, urlencode(query), fragment))
        wanted = cmi5.read_launch(body, content_url, actor, actor_key, activity_id, registration)
        answer = await cmi5.start(request, principal, wanted, _creator(principal))
        params = answer.pop("params")
        url = urlunsplit((scheme, netloc, path, urlencode(query + params), fragment))
        return JSON({"url": url, **answer}, headers=NO_STORE)
    ttl = rt.settings.launch_token_ttl
    username, password = launch_auth.new_launch_pair()
    async with rt.db.write() as conn:
        await launches.create(
            conn,
            principal.tenant_id,
            username=username,
            secret_hash=launch_auth.password_digest(password),
            kind="launch",
            ttl=ttl,
            created_by=_creator(principal),
            actor=actor,
            actor_key=actor_key,
            activity_id=activity_id,
            registration=registration,
        )
    params = [
        ("endpoint", rt.settings.public_url + "/xapi/"),
        ("auth", launch_auth.basic_value(username, password)),
        ("actor", json.dumps(actor, separators=(",", ":"))),
        ("activity_id", activity_id),
    ]
    if registration:
        params.append(("registration", registration))
    url = urlunsplit((scheme, netloc, path, urlencode(query + params), fragment))
    audit.event(
        "launch_created", tenant=principal.tenant, by=_creator(principal), username=username, activity=activity_id
    )
    return JSON({"url": url, "expires_in": ttl, "username": username}, headers=NO_STORE)
