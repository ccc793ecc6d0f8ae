"""The ClearXP API's refusals, and ClearXP's documented error body with a stable
``error`` code added, which every refusal on /api is rendered in:

``{"code": 400, "name": "Bad Request", "error": "validation_error",
"message": "...", "body": [{"name": "ValidationError", ...}]}``
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from openxp.errors import OpenXPError
from openxp.httpio import JSON, NO_STORE


class ApiError(OpenXPError):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, body: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.body = body or []


class ValidationFailed(ApiError):
    code = "validation_error"

    def __init__(self, message: str, *, prop: str = "", value: Any = None) -> None:
        super().__init__(
            message, body=[{"name": "ValidationError", "description": message, "property": prop, "value": value}]
        )


class OverLimit(ValidationFailed):
    """One learner over a per-learner or per-tenant limit (400); ``error`` names which."""

    def __init__(self, code: str, message: str, *, prop: str, value: Any = None) -> None:
        super().__init__(message, prop=prop, value=value)
        self.code = code


class UnsupportedMedia(ApiError):
    status = 415
    code = "unsupported_media_type"


class TooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class InputLimit(ApiError):
    """A request over one of the input limits of /api (docs/security.md); ``error`` names which."""

    status = 413

    def __init__(self, code: str, message: str, *, prop: str, limit: int) -> None:
        super().__init__(
            message, body=[{"name": "LimitExceeded", "description": message, "property": prop, "value": limit}]
        )
        self.code = code


class InvalidParameter(ApiError):
    """A query or body parameter (limit, skip, ...) that is not what the endpoint takes."""

    code = "invalid_parameter"

    def __init__(self, message: str, *, prop: str, value: Any = None) -> None:
        super().__init__(
            message, body=[{"name": "ValidationError", "description": message, "property": prop, "value": value}]
        )


class InvalidCriteria(ApiError):
    """A search criteria tree that is malformed, too deep, or uses an unknown comparator."""

    code = "invalid_criteria"

    def __init__(self, message: str, *, path: str = "criteria") -> None:
        super().__init__(
            message, body=[{"name": "ValidationError", "description": message, "property": path, "value": None}]
        )


class SearchTooCostly(ApiError):
    """A search that ran into its time limit and was stopped."""

    code = "search_too_costly"


class InvalidCsv(ApiError):
    """The CSV body cannot be read on; ``body`` says how far the import got."""

    code = "invalid_csv"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class UsernameTaken(ApiError):
    status = 409
    code = "username_taken"


class LaunchInProgress(ApiError):
    """Two cmi5 launches of one registration at the same moment: one wins, the other is told."""

    status = 409
    code = "launch_in_progress"


def with_body(exc: OpenXPError, body: list[dict[str, Any]]) -> ApiError:
    """``exc`` as it is, with ClearXP's ``body`` items (e.g. how far an import got) added."""
    refusal = ApiError(exc.description, body=body)
    refusal.status, refusal.code, refusal.headers = exc.status, exc.code, exc.headers
    return refusal


def render(
    status: int,
    error: str,
    message: str,
    body: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    payload = {
        "code": status,
        "name": HTTPStatus(status).phrase,
        "error": error,
        "message": message,
        "body": body or [],
    }
    return JSON(payload, status_code=status, headers={**NO_STORE, **(headers or {})})


def render_error(exc: OpenXPError) -> Response:
    """Any refusal on /api, whichever part of openxp raised it."""
    body = exc.body if isinstance(exc, ApiError) else None
    return render(exc.status, exc.code, exc.description, body, exc.headers)
