"""Document resources (xAPI Communication 2.3, 2.6, 2.7): State, Activity
Profile and Agent Profile, with ETag concurrency and JSON merge on POST; and
the Activities and Agents (Person) resources."""

from __future__ import annotations

import hashlib
from email.utils import formatdate
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from openxp import wire
from openxp.auth.confine import confine_activity, confine_agent, confine_launch_data, confine_registration
from openxp.auth.errors import OutsideCredential
from openxp.httpio import JSON, media_type, read_body
from openxp.runtime import runtime
from openxp.store import activities as activity_store
from openxp.store import documents as store
from openxp.store import now
from openxp.xapi import shape
from openxp.xapi.endpoint import XContext, endpoint
from openxp.xapi.errors import BadRequest, DocumentConflict, InvalidStatement, NotFound, PreconditionFailed
from openxp.xapi.params import query_params
from openxp.xapi.validate import IFIS, UUID, Validator, timestamp

MAX_DOCUMENT = 16 * 1024 * 1024
# Writes that lose to concurrent writers look again; each round has a winner, so this bounds
# the wait of the unluckiest of that many writers at once.
MAX_ATTEMPTS = 32
JSON_TYPE = "application/json"


def _precondition(message: str) -> PreconditionFailed:
    return PreconditionFailed(message)


def _etag(content: bytes) -> str:
    return hashlib.sha1(content, usedforsecurity=False).hexdigest()


def _tags(value: str) -> set[str]:
    tags = set()
    for part in value.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tags.add(tag.strip('"'))
    return tags


def _since(params: dict[str, str]) -> float | None:
    if "since" not in params:
        return None
    try:
        return timestamp(params["since"].replace(" ", "+"), "since").timestamp()
    except InvalidStatement:
        raise BadRequest("since must be an ISO 8601 timestamp") from None


def _require(params: dict[str, str], *names: str) -> None:
    for name in names:
        if name not in params:
            raise BadRequest(f"the {name} parameter is required")


def _activity(params: dict[str, str]) -> str:
    _require(params, "activityId")
    if not shape.is_iri(params["activityId"]):
        raise BadRequest("activityId must be an IRI")
    return params["activityId"]


def _key(kind: str, params: dict[str, str]) -> store.Key:
    if kind == "state":
        _require(params, "activityId", "agent")
        registration = params.get("registration", "")
        if registration and not UUID.fullmatch(registration):
            raise BadRequest("registration must be a UUID")
        return store.Key(kind, _activity(params), shape.agent_param(params["agent"]), registration.lower())
    if kind == "activity_profile":
        return store.Key(kind, activity_id=_activity(params))
    _require(params, "agent")
    return store.Key(kind, agent_key=shape.agent_param(params["agent"]))


def _confine(request: Request, ctx: XContext, kind: str, key: store.Key, doc_id: str | None) -> None:
    """An actor-bound credential keeps to its actor's documents: its State (for
    its launch's activity and registration) and its Agent Profile; Activity
    Profiles, shared by every learner, it may only read (J-03)."""
    principal = ctx.principal
    if not principal.restricted:
        return
    if kind == "activity_profile":
        if request.method not in ("GET", "HEAD") and "actor_key" in principal.restrictions:
            raise OutsideCredential("this credential may not change activity profiles")
        confine_activity(principal, key.activity_id)
        return
    confine_agent(principal, key.agent_key)
    if kind == "state":
        confine_launch_data(principal, request.method, doc_id)
        confine_activity(principal, key.activity_id)
        # Every State request names the launch's registration: without one it would reach the
        # registration-less documents (and DELETE without stateId all of them) outside the launch.
        confine_registration(principal, key.registration or None)


async def _document(request: Request, ctx: XContext, kind: str, id_param: str, allowed: frozenset[str]) -> Response:
    params = query_params(request, allowed)
    key = _key(kind, params)
    doc_id = params.get(id_param)
    _confine(request, ctx, kind, key, doc_id)
    tenant_id = ctx.principal.tenant_id
    db = runtime(request).db
    method = "GET" if request.method == "HEAD" else request.method
    if method == "GET":
        async with db.read() as conn:
            if doc_id is None:
                return JSON(await store.ids(conn, tenant_id, key, _since(params)))
            found = await store.get(conn, tenant_id, key, doc_id)
        if found is None:
            raise NotFound("no such document")
        return Response(
            found.content,
            media_type=found.content_type,
            headers={"ETag": f'"{found.etag}"', "Last-Modified": formatdate(found.updated, usegmt=True)},
        )
    if method == "DELETE":
        if doc_id is None and kind != "state":
            raise BadRequest(f"the {id_param} parameter is required")
        async with db.write() as conn:
            if doc_id is None:
                _check_if_match(request, None)
                await store.remove(conn, tenant_id, key, None)
                return Response(status_code=204)
            for _ in range(MAX_ATTEMPTS):
                found = await store.get(conn, tenant_id, key, doc_id)
                _check_if_match(request, found)
                if found is None or await store.remove_one(conn, tenant_id, key, doc_id, etag=found.etag):
                    return Response(status_code=204)
        raise _too_busy()
    if doc_id is None:
        raise BadRequest(f"the {id_param} parameter is required")
    sent = await read_body(request, MAX_DOCUMENT)
    sent_type = media_type(request) or "application/octet-stream"
    async with db.write() as conn:
        # Optimistic: decide on the document as read, then write only if it is still that
        # document (store.write); a concurrent writer that got there first means read again
        # and decide again, so preconditions and merges always apply to what they replace.
        # (SQLite serialises writers: there the first attempt always stands.)
        for _ in range(MAX_ATTEMPTS):
            found = await store.get(conn, tenant_id, key, doc_id)
            _check_if_match(request, found)
            if method == "PUT":
                _check_put(request, ctx, kind, found)
                content, content_type = sent, sent_type
            else:
                content, content_type = _merge(found, sent, sent_type)
            doc = store.Document(doc_id, content_type, content, _etag(content), now())
            if await store.write(conn, tenant_id, key, doc, replacing=found.etag if found else None):
                return Response(status_code=204)
    raise _too_busy()


def _too_busy() -> DocumentConflict:
    return DocumentConflict("the document kept changing under concurrent writes; send the request again")


def _check_if_match(request: Request, found: store.Document | None) -> None:
    if_match = request.headers.get("if-match")
    if if_match is not None and (found is None or not ({"*", found.etag} & _tags(if_match))):
        raise _precondition("If-Match does not match the current document")
    if_none = request.headers.get("if-none-match")
    if if_none is not None and found is not None and ({"*", found.etag} & _tags(if_none)):
        raise _precondition("If-None-Match matches the current document")


def _check_put(request: Request, ctx: XContext, kind: str, found: store.Document | None) -> None:
    """Communication 3.1: a PUT that could overwrite must say what it expects."""
    guarded = "if-match" in request.headers or "if-none-match" in request.headers
    if guarded or (kind == "state" and not ctx.v2):
        return
    if found is not None:
        raise DocumentConflict("the document exists: send If-Match with its ETag (or If-None-Match: *)")
    if not ctx.v2 and kind != "state":
        raise BadRequest("send If-Match or If-None-Match: * when writing a profile document")


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = wire.parse_json(content)
    except wire.WireError:
        return None
    return value if isinstance(value, dict) else None


def _merge(found: store.Document | None, content: bytes, content_type: str) -> tuple[bytes, str]:
    """POST: merge the top-level keys of two JSON objects (new values win)."""
    new = _json_object(content) if content_type == JSON_TYPE else None
    if content_type == JSON_TYPE and new is None:
        raise BadRequest("the document is declared application/json but is not a JSON object")
    if found is None:
        return content, content_type
    old = _json_object(found.content) if found.content_type == JSON_TYPE else None
    if new is None or old is None:
        raise BadRequest("POST merges JSON objects only; the stored or sent document is not one")
    return shape.dumps({**old, **new}), JSON_TYPE


@endpoint({m: "state" for m in ("GET", "PUT", "POST", "DELETE")})
async def state(request: Request, ctx: XContext) -> Response:
    allowed = frozenset({"activityId", "agent", "registration", "stateId", "since"})
    return await _document(request, ctx, "state", "stateId", allowed)


@endpoint({m: "profile" for m in ("GET", "PUT", "POST", "DELETE")})
async def activity_profile(request: Request, ctx: XContext) -> Response:
    allowed = frozenset({"activityId", "profileId", "since"})
    return await _document(request, ctx, "activity_profile", "profileId", allowed)


@endpoint({m: "profile" for m in ("GET", "PUT", "POST", "DELETE")})
async def agent_profile(request: Request, ctx: XContext) -> Response:
    allowed = frozenset({"agent", "profileId", "since"})
    return await _document(request, ctx, "agent_profile", "profileId", allowed)


# -- Activities and Agents --------------------------------------------------

MERGE_LIMIT = 200


@endpoint({"GET": "statements/read"})
async def activities(request: Request, ctx: XContext) -> Response:
    """The Activity as the LRS knows it: definitions merged over the statements that name it."""
    params = query_params(request, frozenset({"activityId"}))
    activity_id = _activity(params)
    confine_activity(ctx.principal, activity_id)
    async with runtime(request).db.read() as conn:
        payloads = await activity_store.definition_payloads(conn, ctx.principal.tenant_id, activity_id, MERGE_LIMIT)
    definition: dict[str, Any] = {}
    for payload in payloads:
        incoming = orjson.loads(payload)["object"].get("definition") or {}
        for name, value in incoming.items():
            if isinstance(value, dict) and isinstance(definition.get(name), dict) and name != "extensions":
                definition[name] = {**definition[name], **value}
            else:
                definition[name] = value
    activity: dict[str, Any] = {"objectType": "Activity", "id": activity_id}
    if definition:
        activity["definition"] = definition
    return JSON(activity)


@endpoint({"GET": "statements/read"})
async def agents(request: Request, ctx: XContext) -> Response:
    """A Person built from the Agent asked about (its identifiers, as arrays)."""
    params = query_params(request, frozenset({"agent"}))
    _require(params, "agent")
    shape.agent_param(params["agent"])
    agent = orjson.loads(params["agent"])
    try:
        Validator(v2=True).agent(agent, "agent")
    except InvalidStatement:
        raise BadRequest("agent must be an Agent with one inverse functional identifier") from None
    person: dict[str, Any] = {"objectType": "Person"}
    if "name" in agent:
        person["name"] = [agent["name"]]
    for name in IFIS:
        if name in agent:
            person[name] = [agent[name]]
    return JSON(person)
