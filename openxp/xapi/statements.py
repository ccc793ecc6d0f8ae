"""The Statement resource (xAPI Communication 2.1): PUT, POST and GET.

Writes validate the whole request first, then store it in one transaction
with one multi-row INSERT per table; any invalid statement rejects the batch.
Reads serve the stored JSON text as it is (format=exact) or reshape it
(ids, canonical).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import math
import re
import uuid as uuidlib
from collections.abc import Callable
from email.utils import formatdate
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from openxp import wire
from openxp.auth.confine import (
    confine_agent,
    confine_registration,
    confine_statement,
    confine_voiding,
    confines_voiding,
)
from openxp.auth.errors import OutsideCredential
from openxp.httpio import JSON, media_type, read_body
from openxp.runtime import runtime
from openxp.store import attachments as attachment_store
from openxp.store import launches, now
from openxp.store import statements as store
from openxp.xapi import attachments, compare, completions, shape
from openxp.xapi import filters as statement_filters
from openxp.xapi.endpoint import XContext, endpoint
from openxp.xapi.errors import (
    BadRequest,
    InvalidJson,
    InvalidStatement,
    NotFound,
    StatementConflict,
    TooManyStatements,
    UnsupportedContentType,
)
from openxp.xapi.params import query_params
from openxp.xapi.shape import iso
from openxp.xapi.validate import UUID, VOIDED, Validator, normalize, parse_time

T = TypeVar("T")
TERMINATED = "http://adlnet.gov/expapi/verbs/terminated"
MAX_BODY = 16 * 1024 * 1024
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
QUERY_PARAMS = frozenset(
    {
        "statementId",
        "voidedStatementId",
        "agent",
        "verb",
        "activity",
        "registration",
        "related_activities",
        "related_agents",
        "since",
        "until",
        "limit",
        "format",
        "attachments",
        "ascending",
    }
)
SINGLE_PARAMS = frozenset({"statementId", "voidedStatementId", "format", "attachments"})
FORMATS = frozenset({"exact", "ids", "canonical"})
# Properties the LRS sets; a re-sent statement is "the same" regardless of them.

# statements/read permits statements/read/mine; a "mine" credential is narrowed in _confined.
SCOPES = {"GET": "statements/read/mine", "PUT": "statements/write", "POST": "statements/write"}


# -- writing ---------------------------------------------------------------


# Statement bodies larger than this are parsed and validated on a worker thread, so that a
# big batch never holds the event loop (docs/security.md, Input limits on /xapi).
OFFLOAD_BYTES = 256 * 1024


async def _read_statements(request: Request) -> tuple[bytes, dict[str, tuple[str, bytes]]]:
    """The statements' JSON text and, for multipart/mixed, the attachment parts by sha2."""
    kind = media_type(request)
    if kind not in {"application/json", "multipart/mixed"}:
        raise UnsupportedContentType("send statements as application/json or multipart/mixed")
    raw = await read_body(request, MAX_BODY)
    files: dict[str, tuple[str, bytes]] = {}
    if kind == "multipart/mixed":
        max_parts = runtime(request).settings.xapi_max_parts
        raw, files = attachments.parse(request.headers.get("content-type", ""), raw, max_parts)
    return raw, files


_DECODER = json.JSONDecoder()
_BLANKS = re.compile(r"[ \t\n\r]*")


def _array_longer_than(raw: bytes, limit: int) -> bool:
    """Whether ``raw`` is a JSON array of more than ``limit`` elements, found by decoding at
    most ``limit + 1`` of them one at a time (and keeping none). Run before the strict parse
    of a large body that might be one: that parse is a single C call which holds the GIL, and
    so the event loop, for as long as the whole body takes. Anything this loose reader cannot
    follow is left to the strict parse to judge."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    at = _BLANKS.match(text).end()  # type: ignore[union-attr]
    if not text.startswith("[", at):
        return False
    at = _BLANKS.match(text, at + 1).end()  # type: ignore[union-attr]
    count = 0
    while not text.startswith("]", at):
        try:
            _, at = _DECODER.raw_decode(text, at)
        except ValueError:
            return False
        count += 1
        if count > limit:
            return True
        at = _BLANKS.match(text, at).end()  # type: ignore[union-attr]
        if not text.startswith(",", at):
            return False
        at = _BLANKS.match(text, at + 1).end()  # type: ignore[union-attr]
    return False


def _too_many(max_statements: int) -> TooManyStatements:
    return TooManyStatements(
        f"a request may carry at most {max_statements:,} statements; send them in several requests",
    )


def _parse_statements(raw: bytes, max_statements: int) -> Any:
    # An array of more elements than the limit has at least as many commas.
    if len(raw) > OFFLOAD_BYTES and raw.count(b",") >= max_statements and _array_longer_than(raw, max_statements):
        raise _too_many(max_statements)
    try:
        body = wire.parse_json(raw)
    except wire.WireError as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None
    if isinstance(body, list) and len(body) > max_statements:
        # Freed here, on the worker thread: the exception's traceback would otherwise keep the
        # parsed batch alive until the event loop handles it, and free it there.
        del body
        raise _too_many(max_statements)
    return body


async def _off_loop(size: int, work: Callable[[], T]) -> T:
    """Run ``work`` inline when the request is small (a thread hop costs more than it), else on
    a worker thread."""
    if size <= OFFLOAD_BYTES:
        return work()
    return await asyncio.to_thread(work)


def _prepare(
    items: list[Any], ctx: XContext, paths: list[str], files: dict[str, tuple[str, bytes]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Validate every statement and its attachment parts, then complete it: (as sent, as stored)."""
    validator = Validator(v2=ctx.v2)
    for item, path in zip(items, paths, strict=True):
        validator.statement(item, path)
    attachments.check(items, paths, files, ctx.version)
    stored_at = math.floor(now() * 1000) / 1000
    stored_text = iso(stored_at)
    seen: set[str] = set()
    prepared = []
    for item, path in zip(items, paths, strict=True):
        # Validated dicts are ours: normalize in place, and complete a shallow copy
        # (only top-level keys are added), keeping ``sent`` for the conflict check.
        sent = item
        normalize(sent)
        statement = dict(sent)
        confine_statement(ctx.principal, statement)
        statement.setdefault("id", str(uuidlib.uuid4()))
        key = statement["id"].lower()
        if key in seen:
            raise InvalidStatement(f"{path}.id" if path else "id", "the same id appears twice in this batch")
        seen.add(key)
        statement["stored"] = stored_text
        statement.setdefault("timestamp", stored_text)
        statement["authority"] = ctx.authority
        statement.setdefault("version", ctx.version)
        prepared.append((sent, statement))
    return prepared


async def _store(
    request: Request,
    ctx: XContext,
    prepared: list[tuple[dict[str, Any], dict[str, Any]]],
    files: dict[str, tuple[str, bytes]],
) -> None:
    rt = runtime(request)
    tenant_id = ctx.principal.tenant_id
    stored_at = parse_time(prepared[0][1]["stored"]).timestamp() if prepared else now()
    batch = [shape.row(statement, stored_at) for _, statement in prepared]
    async with rt.db.write() as conn:
        # The INSERT skips ids already held (or being committed by a concurrent request);
        # those must hold the same statement (Communication 2.1.1), or the whole batch is refused.
        stored = await store.insert_many(conn, tenant_id, batch)
        inserted = stored.ids
        held = [
            (sent, s.statement_id)
            for (sent, _), s in zip(prepared, batch, strict=True)
            if s.statement_id not in inserted
        ]
        if held:
            existing = await store.find_many(conn, tenant_id, [sid for _, sid in held])
            for sent, sid in held:
                found = existing.get(sid)
                if found is None:
                    raise StatementConflict(f"statement {sent.get('id', sid)} already exists with different content")
                # An id taken by a statement this credential may not read answers as a free id
                # would (and stores nothing): a 409 would tell it the statement exists.
                if _visible(ctx, found) and not compare.same_statement(sent, json.loads(found.payload), ctx.version):
                    raise StatementConflict(f"statement {sent.get('id', sid)} already exists with different content")
        new = [s for s in batch if s.statement_id in inserted]
        if _terminates_session(ctx, new):
            await launches.end_session(conn, tenant_id, ctx.principal.key or "", rt.settings.cmi5_terminate_grace)
        targets = {s.voids for s in new if s.voids} - inserted
        if targets:
            found_targets = await store.find_many(conn, tenant_id, targets)
            for target in found_targets.values():
                if target.verb_id == VOIDED:
                    raise InvalidStatement("object.id", "a voiding statement cannot itself be voided")
            if confines_voiding(ctx.principal):
                _confine_voiding(ctx, targets, found_targets, prepared)
        await attachment_store.save(conn, tenant_id, files, shape.agent_key(ctx.authority) or "")
        await completions.record(conn, tenant_id, (st for _, st in prepared if st["id"].lower() in inserted))
        await completions.refold(conn, tenant_id, stored.voided)
    if not rt.db.is_sqlite:
        # A target and its voiding statement committed at once miss each other inside their
        # transactions; run after the commit, one of the two always sees the other (SQLite
        # serialises writers, so there the in-transaction pass is enough).
        async with rt.db.write() as conn:
            await completions.refold(conn, tenant_id, await store.apply_voiding(conn, tenant_id, batch))


def _terminates_session(ctx: XContext, new: list[store.NewStatement]) -> bool:
    """cmi5 9.3.8: a "terminated" statement about the launched AU ends its session."""
    restrictions = ctx.principal.restrictions
    if "session" not in restrictions:
        return False
    return any(s.verb_id == TERMINATED and s.object_activity == restrictions.get("activity") for s in new)


def _confine_voiding(
    ctx: XContext,
    targets: set[str],
    found: dict[str, store.Stored],
    prepared: list[tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """Each statement a confined credential voids must be one it could have written: stored
    (and visible to it) or written in this very batch."""
    own = shape.agent_key(ctx.authority)
    in_batch = {statement["id"].lower(): statement for _, statement in prepared}
    for target_id in sorted(targets):
        stored = found.get(target_id)
        if stored is not None:
            visible = _visible(ctx, stored)
            confine_voiding(ctx.principal, own, json.loads(stored.payload) if visible else None, stored.authority_key)
        else:
            confine_voiding(ctx.principal, own, in_batch.get(target_id), own)


async def _put(request: Request, ctx: XContext) -> Response:
    params = query_params(request, frozenset({"statementId"}))
    if "statementId" not in params:
        raise BadRequest("PUT /statements needs the statementId parameter")
    statement_id = params["statementId"]
    if not UUID.fullmatch(statement_id):
        raise BadRequest("statementId must be a UUID")
    raw, files = await _read_statements(request)
    max_statements = runtime(request).settings.xapi_max_statements

    def prepare() -> list[tuple[dict[str, Any], dict[str, Any]]]:
        body = _parse_statements(raw, max_statements)
        if not isinstance(body, dict):
            raise InvalidStatement("", "PUT takes one statement (a JSON object)")
        if "id" in body and (not isinstance(body["id"], str) or body["id"].lower() != statement_id.lower()):
            raise InvalidStatement("id", "differs from the statementId parameter")
        body = {**body, "id": body.get("id", statement_id)}
        return _prepare([body], ctx, [""], files)

    await _store(request, ctx, await _off_loop(_size(raw, files), prepare), files)
    return Response(status_code=204)


def _size(raw: bytes, files: dict[str, tuple[str, bytes]]) -> int:
    return len(raw) + sum(len(content) for _, content in files.values())


async def _post(request: Request, ctx: XContext) -> Response:
    query_params(request, frozenset())
    raw, files = await _read_statements(request)
    max_statements = runtime(request).settings.xapi_max_statements

    def prepare() -> list[tuple[dict[str, Any], dict[str, Any]]]:
        body = _parse_statements(raw, max_statements)
        items = body if isinstance(body, list) else [body]
        paths = [f"[{i}]" for i in range(len(items))] if isinstance(body, list) else [""]
        return _prepare(items, ctx, paths, files)

    prepared = await _off_loop(_size(raw, files), prepare)
    await _store(request, ctx, prepared, files)
    return JSON([s["id"] for _, s in prepared])


# -- reading ---------------------------------------------------------------


def _limit(params: dict[str, str]) -> int:
    raw = params.get("limit", "0")
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequest("limit must be a non-negative integer")
    value = int(raw)
    return MAX_LIMIT if value == 0 else min(value, MAX_LIMIT)


def _encode_more(params: dict[str, str], after: int) -> str:
    token = orjson.dumps({"p": params, "a": after})
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def _decode_more(token: str) -> tuple[dict[str, str], int]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        params, after = data["p"], data["a"]
        if (
            not isinstance(params, dict)
            or not isinstance(after, int)
            or not 0 <= after < 2**62
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
        ):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("more is not a valid continuation token") from None
    if not set(params) <= (QUERY_PARAMS - SINGLE_PARAMS) | {"format", "attachments"}:
        raise BadRequest("more is not a valid continuation token")
    return params, after


async def _get(request: Request, ctx: XContext) -> Response:
    params = query_params(request, QUERY_PARAMS | {"more"})
    after = None
    if "more" in params:
        if len(params) > 1:
            raise BadRequest("more takes no other parameters")
        params, after = _decode_more(params["more"])
    fmt = params.get("format", "exact")
    if fmt not in FORMATS:
        raise BadRequest("format must be exact, ids or canonical")
    with_attachments = statement_filters.bool_param(params, "attachments")
    languages = shape.accept_languages(request.headers.get("accept-language", ""))
    if "statementId" in params or "voidedStatementId" in params:
        if any(name not in SINGLE_PARAMS for name in params) or (
            "statementId" in params and "voidedStatementId" in params
        ):
            raise BadRequest("statementId and voidedStatementId take only format and attachments")
        return await _get_one(request, ctx, params, fmt, languages, with_attachments)
    filters = _confined(ctx, statement_filters.parse(params))
    limit = _limit(params)
    ascending = statement_filters.bool_param(params, "ascending")
    async with runtime(request).db.read() as conn:
        rows = await store.query(
            conn, ctx.principal.tenant_id, filters, limit=limit + 1, ascending=ascending, after_seq=after
        )
    more = ""
    if len(rows) > limit:
        rows = rows[:limit]
        more = f"{request.scope.get('root_path', '')}/statements?more={_encode_more(params, rows[-1].seq)}"

    def render() -> list[bytes]:
        return [shape.render(r.payload, fmt, languages) for r in rows]

    # format=exact serves the stored text; the other formats reshape every statement of the page.
    payloads = await _off_loop(0 if fmt == "exact" else sum(len(r.payload) for r in rows), render)
    body = b'{"statements":[' + b",".join(payloads) + b'],"more":' + orjson.dumps(more) + b"}"
    return await _respond(request, ctx, body, rows, with_attachments)


def _confined(ctx: XContext, filters: store.Filters) -> store.Filters:
    """An actor-bound credential reads only its actor's statements (as actor or
    object, not merely mentioned), within its launch's registration (J-03)."""
    principal = ctx.principal
    if not principal.may("statements/read"):
        filters = dataclasses.replace(filters, authority=shape.agent_key(ctx.authority))
    if not principal.restricted:
        return filters
    if "actor_key" in principal.restrictions:
        confine_agent(principal, filters.agent)
        if filters.related_agents:
            raise OutsideCredential("this credential may not read statements that merely mention its actor")
    registration = principal.restrictions.get("registration")
    if registration is not None:
        confine_registration(principal, filters.registration, required=False)
        filters = dataclasses.replace(filters, registration=registration)
    return filters


def _visible(ctx: XContext, found: store.Stored) -> bool:
    """Whether this credential may read a stored statement; the rest answers as if absent (I-04).
    statements/read/mine: one's own statements only. Actor-bound: its actor's, in its
    launch's registration (J-03)."""
    principal = ctx.principal
    if not (principal.may("statements/read") or found.authority_key == shape.agent_key(ctx.authority)):
        return False
    if principal.restricted:
        payload = json.loads(found.payload)
        try:
            confine_agent(principal, shape.agent_key(payload.get("actor")))
            confine_registration(principal, (payload.get("context") or {}).get("registration"))
        except OutsideCredential:
            return False
    return True


async def _get_one(
    request: Request, ctx: XContext, params: dict[str, str], fmt: str, languages: list[str], with_attachments: bool
) -> Response:
    voided = "voidedStatementId" in params
    statement_id = params["voidedStatementId" if voided else "statementId"]
    if not UUID.fullmatch(statement_id):
        raise BadRequest("the statement id must be a UUID")
    async with runtime(request).db.read() as conn:
        found = await store.find(conn, ctx.principal.tenant_id, statement_id.lower())
    if found is None or found.voided != voided or not _visible(ctx, found):
        raise NotFound("no such statement" if not voided else "no such voided statement")
    body = shape.render(found.payload, fmt, languages)
    response = await _respond(request, ctx, body, [found], with_attachments)
    response.headers["Last-Modified"] = formatdate(found.stored, usegmt=True)
    return response


async def _respond(
    request: Request, ctx: XContext, body: bytes, rows: list[store.Stored], with_attachments: bool
) -> Response:
    """JSON, or with attachments=true multipart/mixed with the attachment bytes we hold.

    A statement gets the bytes its own writer (authority) supplied, not bytes another
    credential uploaded under the same sha2. Bytes stored before suppliers were recorded
    go only to a reader who may read every statement of the tenant (and so the one that
    supplied them)."""
    if not with_attachments:
        return Response(body, media_type=JSON.media_type)
    wanted = attachments.wanted([(r.payload, r.authority_key) for r in rows])
    reads_everything = ctx.principal.may("statements/read") and not ctx.principal.restricted
    async with runtime(request).db.read() as conn:
        files = await attachment_store.load(conn, ctx.principal.tenant_id, wanted, unattributed=reads_everything)
    files = {sha2: part for sha2, part in files.items() if attachments.genuine(sha2, part[1])}
    content, content_type = attachments.multipart(body, files)
    return Response(content, headers={"Content-Type": content_type})


@endpoint(SCOPES, consistent_through=True)
async def statements(request: Request, ctx: XContext) -> Response:
    if request.method == "PUT":
        return await _put(request, ctx)
    if request.method == "POST":
        return await _post(request, ctx)
    return await _get(request, ctx)
