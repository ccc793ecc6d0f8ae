"""``POST|PUT /api/import/users``: the HTTP side of the learner import (openxp.imports).

This module reads the request (a JSON body, or a text/csv body streamed in), runs the import
and turns the import's own errors into ClearXP's error answers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openxp import audit
from openxp.api.account_source import account_source
from openxp.api.body import json_bytes, parse_json_body
from openxp.api.errors import (
    InputLimit,
    InvalidCsv,
    InvalidParameter,
    TooLarge,
    ValidationFailed,
    with_body,
)
from openxp.api.http import endpoint
from openxp.auth import Principal
from openxp.httpio import JSON, media_type
from openxp.imports.csv_rows import csv_batches
from openxp.imports.errors import LimitExceeded, MalformedInput, WriteFailed
from openxp.imports.json_rows import check_json_row_count
from openxp.imports.report import Report, stop_message
from openxp.imports.run import chunked, rechunk, run_import
from openxp.runtime import runtime

log = logging.getLogger("openxp.api")
# A JSON import is parsed whole, so its body is capped; send larger imports as text/csv,
# which is parsed as it streams in (chunks of imports.run.CHUNK rows) and may be much larger.
MAX_IMPORT_BODY = 20 * 1024 * 1024
MAX_CSV_BODY = 1024 * 1024 * 1024


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


async def _csv_body(request: Request) -> AsyncIterator[bytes]:
    """The blocks of a text/csv body as they arrive, within MAX_CSV_BODY."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_CSV_BODY:
        raise TooLarge(f"request body is larger than {MAX_CSV_BODY} bytes")
    size = 0
    async for block in request.stream():
        size += len(block)
        if size > MAX_CSV_BODY:
            raise TooLarge(f"request body is larger than {MAX_CSV_BODY} bytes")
        yield block


def _progress(report: Report, stopped_at_line: int | None = None) -> list[dict[str, Any]]:
    value = {**report.as_dict(), "written": report.written}
    if stopped_at_line is not None:
        value["stoppedAtLine"] = stopped_at_line
    return [{"name": "ImportReport", "description": "the import so far", "property": "report", "value": value}]


def _input_limit(exc: LimitExceeded) -> InputLimit:
    return InputLimit(exc.code, exc.message, prop=exc.prop, limit=exc.limit)


@endpoint("users/import")
async def import_users(request: Request, principal: Principal) -> Response:
    """POST (or the older PUT) /api/import/users: a JSON body (within MAX_IMPORT_BODY) or a
    text/csv body (streamed, within MAX_CSV_BODY), imported in chunks of imports.run.CHUNK rows."""
    rt = runtime(request)
    source = account_source(request)
    report = Report()
    verify = False
    chunks: AsyncIterator[list[tuple[int, Any]]]
    if media_type(request) == "text/csv":
        verify = _query_flag(request, "verify")
        chunks = rechunk(csv_batches(_csv_body(request)))
    else:
        raw = await json_bytes(request, MAX_IMPORT_BODY)
        try:
            check_json_row_count(raw)
        except LimitExceeded as exc:
            raise _input_limit(exc) from None
        rows, verify = _json_rows(parse_json_body(raw))
        del raw
        verify = verify or _query_flag(request, "verify")
        chunks = chunked(rows)
    try:
        await run_import(rt.db, principal.tenant_id, chunks, verify=verify, report=report)
    except LimitExceeded as exc:
        raise _input_limit(exc) from None
    except MalformedInput as exc:
        raise InvalidCsv(stop_message(exc, report, verify), body=_progress(report, exc.line)) from None
    except WriteFailed as exc:
        log.warning("user import interrupted for tenant %s after %d rows", principal.tenant, report.written)
        raise with_body(exc, _progress(report)) from None
    finally:
        audit.event(
            "users_imported",
            tenant=principal.tenant,
            client_id=principal.client_id,
            actor=principal.key or principal.client_id,
            rows=report.rows,
            written=report.written,
            verify=verify,
            source=source,
        )
    return JSON(report.as_dict(), headers={"Cache-Control": "no-store"})
