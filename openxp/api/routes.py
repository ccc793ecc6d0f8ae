"""HTTP endpoints of the ClearXP API."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openxp import audit, wire
from openxp.api import users
from openxp.api.errors import (
    ApiError,
    TooLarge,
    UnsupportedMedia,
    ValidationFailed,
    api_error_response,
    auth_error_response,
)
from openxp.auth import AuthError, authenticate
from openxp.httpio import JSON, BodyTooLarge, media_type, read_body
from openxp.runtime import runtime
from openxp.store import learners as learner_store
from openxp.store import tenants as tenant_store

log = logging.getLogger("openxp.api")
MAX_IMPORT_BODY = 20 * 1024 * 1024


async def _json_body(request: Request, limit: int) -> Any:
    if media_type(request) != "application/json":
        raise UnsupportedMedia("send the body as application/json")
    try:
        raw = await read_body(request, limit)
    except BodyTooLarge as exc:
        raise TooLarge(str(exc)) from None
    if not raw.strip():
        # The seed's step 4 example posts no body at all: treat it as an empty request.
        return {}
    try:
        return wire.parse_json(raw, reject_duplicates=False)
    except wire.WireError as exc:
        raise ValidationFailed(str(exc), prop="body") from None


async def import_users(request: Request) -> Response:
    rt = runtime(request)
    try:
        principal = await authenticate(request, "users/import")
        body = await _json_body(request, MAX_IMPORT_BODY)
        rows: Any
        verify: Any = False
        if isinstance(body, list):
            rows = body
        elif isinstance(body, dict):
            rows = body.get("users", [])
            verify = body.get("verify", False)
            if not isinstance(rows, list):
                raise ValidationFailed("users must be an array", prop="users", value=None)
            if not isinstance(verify, bool):
                raise ValidationFailed("verify must be true or false", prop="verify", value=None)
        else:
            raise ValidationFailed("the body must be an object with a users array", prop="body")

        report = users.Report()
        async with rt.db.write() as conn:
            tenant = await tenant_store.get_by_id(conn, principal.tenant_id)
            learners = users.validate_rows(rows, tenant.user_id_attributes, report)
            existing = await learner_store.existing_identifiers(conn, tenant.id, (row.identifier for row in learners))
            report.existing = sum(1 for row in learners if row.identifier in existing)
            report.new = len(learners) - report.existing
            if not verify and learners:
                await learner_store.upsert_many(conn, tenant.id, learners, existing)
        audit.event(
            "users_imported", tenant=principal.tenant, client_id=principal.client_id, rows=report.rows, verify=verify
        )
        return JSON(report.as_dict(), headers={"Cache-Control": "no-store"})
    except AuthError as exc:
        return auth_error_response(exc)
    except ApiError as exc:
        return api_error_response(exc)
