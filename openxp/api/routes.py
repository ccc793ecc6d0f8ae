"""HTTP endpoints of the ClearXP API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openxp import audit, wire
from openxp.api import users
from openxp.api.errors import (
    ImportInterrupted,
    InputLimit,
    InvalidCsv,
    InvalidParameter,
    TooLarge,
    UnsupportedMedia,
    ValidationFailed,
)
from openxp.api.http import endpoint
from openxp.auth import Principal
from openxp.httpio import JSON, BodyTooLarge, media_type, read_body
from openxp.runtime import runtime

log = logging.getLogger("openxp.api")
# A JSON import is parsed whole, so its body is capped; send larger imports as text/csv,
# which is parsed as it streams in (chunks of users.CHUNK rows) and may be much larger.
MAX_IMPORT_BODY = 20 * 1024 * 1024
MAX_CSV_BODY = 1024 * 1024 * 1024


async def json_body(request: Request, limit: int) -> Any:
    return parse_json_body(await json_bytes(request, limit))


async def json_bytes(request: Request, limit: int) -> bytes:
    if media_type(request) != "application/json":
        raise UnsupportedMedia("send the body as application/json (or text/csv where accepted)")
    try:
        return await read_body(request, limit)
    except BodyTooLarge as exc:
        raise TooLarge(str(exc)) from None


def parse_json_body(raw: bytes) -> Any:
    if not raw.strip():
        # The seed's step 4 example posts no body at all: treat it as an empty request.
        return {}
    try:
        return wire.parse_json(raw, reject_duplicates=False)
    except wire.WireError as exc:
        raise ValidationFailed(str(exc), prop="body") from None


def _query_flag(request: Request, name: str) -> bool:
    values = request.query_params.getlist(name)
    if not values:
        return False
    if len(values) > 1 or values[0] not in ("true", "false"):
        raise InvalidParameter(f"{name} must be true or false, given once", prop=name, value=values[-1][:100])
    return values[0] == "true"


def _json_rows(body: Any) -> tuple[list[Any], bool]:
    """``{"users": [...], "verify": bool}``, or (the older PUT style) a bare array of users."""
    if isinstance(body, list):
        return body, False
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be an object with a users array", prop="body")
    rows = body.get("users", [])
    verify = body.get("verify", False)
    if not isinstance(rows, list):
        raise ValidationFailed("users must be an array", prop="users", value=None)
    if not isinstance(verify, bool):
        raise ValidationFailed("verify must be true or false", prop="verify", value=None)
    return rows, verify


async def _csv_batches(request: Request) -> AsyncIterator[list[tuple[int, Any]]]:
    """Rows of a text/csv body, parsed as it arrives (memory does not grow with the body)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_CSV_BODY:
        raise TooLarge(f"request body is larger than {MAX_CSV_BODY} bytes")
    reader = users.CsvRecords()
    size = 0
    async for block in request.stream():
        size += len(block)
        if size > MAX_CSV_BODY:
            raise TooLarge(f"request body is larger than {MAX_CSV_BODY} bytes")
        rows = reader.feed(block)
        if rows:
            yield rows
    rows = reader.feed(b"", final=True)
    if rows:
        yield rows


def _progress(report: users.Report, stopped_at_line: int | None = None) -> list[dict[str, Any]]:
    value = {**report.as_dict(), "written": report.written}
    if stopped_at_line is not None:
        value["stoppedAtLine"] = stopped_at_line
    return [{"name": "ImportReport", "description": "the import so far", "property": "report", "value": value}]


@endpoint("users/import")
async def import_users(request: Request, principal: Principal) -> Response:
    """POST (or the older PUT) /api/import/users: a JSON body (within MAX_IMPORT_BODY) or a
    text/csv body (streamed, within MAX_CSV_BODY), imported in chunks of users.CHUNK rows."""
    rt = runtime(request)
    report = users.Report()
    verify = False
    chunks: AsyncIterator[list[tuple[int, Any]]]
    if media_type(request) == "text/csv":
        verify = _query_flag(request, "verify")
        chunks = users.rechunk(_csv_batches(request))
    else:
        raw = await json_bytes(request, MAX_IMPORT_BODY)
        try:
            users.check_json_row_count(raw)
        except users.LimitExceeded as exc:
            raise InputLimit(exc.code, exc.message, prop=exc.prop, limit=exc.limit) from None
        rows, verify = _json_rows(parse_json_body(raw))
        del raw
        verify = verify or _query_flag(request, "verify")
        chunks = users.chunked(rows)
    try:
        await users.run_import(rt.db, principal.tenant_id, chunks, verify=verify, report=report)
    except users.LimitExceeded as exc:
        raise InputLimit(exc.code, exc.message, prop=exc.prop, limit=exc.limit) from None
    except users.MalformedInput as exc:
        raise InvalidCsv(users.stop_message(exc, report, verify), body=_progress(report, exc.line)) from None
    except users.ImportInterrupted:
        log.warning("user import interrupted for tenant %s after %d rows", principal.tenant, report.written)
        raise ImportInterrupted(
            f"storage failed during the import; {report.written} rows were written before it "
            "(each chunk of rows is written whole or not at all)",
            body=_progress(report),
        ) from None
    finally:
        audit.event(
            "users_imported",
            tenant=principal.tenant,
            client_id=principal.client_id,
            actor=principal.key or principal.client_id,
            rows=report.rows,
            written=report.written,
            verify=verify,
        )
    return JSON(report.as_dict(), headers={"Cache-Control": "no-store"})
