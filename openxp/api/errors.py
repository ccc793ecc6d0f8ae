"""ClearXP's documented error body, with a stable ``error`` code added:

``{"code": 400, "name": "Bad Request", "error": "validation_error",
"message": "...", "body": [{"name": "ValidationError", ...}]}``
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from openxp.auth.errors import AuthError
from openxp.httpio import JSON


class ApiError(Exception):
    status = 400
    error = "bad_request"

    def __init__(self, message: str, *, body: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.body = body or []


class ValidationFailed(ApiError):
    error = "validation_error"

    def __init__(self, message: str, *, prop: str = "", value: Any = None) -> None:
        super().__init__(
            message, body=[{"name": "ValidationError", "description": message, "property": prop, "value": value}]
        )


class OverLimit(ValidationFailed):
    """One learner over a per-learner or per-tenant limit (400); ``error`` names which."""

    def __init__(self, code: str, message: str, *, prop: str, value: Any = None) -> None:
        super().__init__(message, prop=prop, value=value)
        self.error = code


class UnsupportedMedia(ApiError):
    status = 415
    error = "unsupported_media_type"


class TooLarge(ApiError):
    status = 413
    error = "payload_too_large"


class InputLimit(ApiError):
    """A request over one of the input limits of /api (docs/security.md); ``error`` names which."""

    status = 413

    def __init__(self, code: str, message: str, *, prop: str, limit: int) -> None:
        super().__init__(
            message, body=[{"name": "LimitExceeded", "description": message, "property": prop, "value": limit}]
        )
        self.error = code


class InvalidParameter(ApiError):
    """A query or body parameter (limit, skip, ...) that is not what the endpoint takes."""

    error = "invalid_parameter"

    def __init__(self, message: str, *, prop: str, value: Any = None) -> None:
        super().__init__(
            message, body=[{"name": "ValidationError", "description": message, "property": prop, "value": value}]
        )


class InvalidCriteria(ApiError):
    """A search criteria tree that is malformed, too deep, or uses an unknown comparator."""

    error = "invalid_criteria"

    def __init__(self, message: str, *, path: str = "criteria") -> None:
        super().__init__(
            message, body=[{"name": "ValidationError", "description": message, "property": path, "value": None}]
        )


class SearchTooCostly(ApiError):
    """A search that ran into its time limit and was stopped."""

    error = "search_too_costly"


class InvalidCsv(ApiError):
    """The CSV body cannot be read on; ``body`` says how far the import got."""

    error = "invalid_csv"


class InvalidText(ApiError):
    """A value holds a NUL character or invalid Unicode, which no column can store."""

    error = "invalid_text"


class ImportInterrupted(ApiError):
    """Storage failed mid-import; the chunks committed before it stay written."""

    status = 503
    error = "import_interrupted"


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
    return JSON(payload, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def api_error_response(exc: ApiError) -> Response:
    return render(exc.status, exc.error, exc.message, exc.body)


def auth_error_response(exc: AuthError) -> Response:
    return render(exc.status, exc.error, exc.message, headers=exc.headers)
