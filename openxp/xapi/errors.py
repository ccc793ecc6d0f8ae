"""The LRS's refusals, one class each, and the xAPI error body every refusal on
/xapi is rendered in: ``{"error": code, "message": ...}`` plus, for an invalid
statement, the ``property`` path at fault."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from openxp.errors import OpenXPError
from openxp.httpio import JSON


class XAPIError(OpenXPError):
    def __init__(self, message: str | None = None, *, prop: str | None = None) -> None:
        super().__init__(message)
        self.prop = prop


def body(exc: OpenXPError) -> dict[str, Any]:
    payload: dict[str, Any] = {"error": exc.code, "message": exc.description}
    prop = getattr(exc, "prop", None)
    if prop is not None:
        payload["property"] = prop
    return payload


def render(exc: OpenXPError) -> Response:
    """Any refusal on /xapi, whichever part of openxp raised it."""
    return JSON(body(exc), status_code=exc.status, headers=exc.headers)


class BadRequest(XAPIError):
    """A parameter or header that is missing, repeated, unknown or malformed."""

    code = "bad_request"


class VersionRequired(XAPIError):
    code = "version_required"
    description = "the X-Experience-API-Version header is required"


class VersionUnsupported(XAPIError):
    code = "version_unsupported"


class InvalidMethod(XAPIError):
    """The alternate request syntax naming a method xAPI does not have."""

    code = "invalid_method"
    description = "method must be GET, HEAD, PUT, POST or DELETE"


class MethodNotAllowed(XAPIError):
    """Only the alternate syntax gets here; the router answers the rest with 405 itself."""

    status = 405
    code = "method_not_allowed"


class UnsupportedContentType(XAPIError):
    code = "unsupported_content_type"


class InvalidJson(XAPIError):
    code = "invalid_json"


class InvalidMultipart(XAPIError):
    code = "invalid_multipart"


class AttachmentHashMismatch(XAPIError):
    code = "attachment_hash_mismatch"
    description = "an attachment part's bytes do not hash to its X-Experience-API-Hash (SHA-256, -384 or -512)"


class TooManyParts(XAPIError):
    status = 413
    code = "too_many_parts"


class TooManyStatements(XAPIError):
    status = 413
    code = "too_many_statements"


class InvalidStatement(XAPIError):
    code = "invalid_statement"

    def __init__(self, prop: str, message: str) -> None:
        super().__init__(f"{prop}: {message}" if prop else message, prop=prop)


class NotFound(XAPIError):
    status = 404
    code = "not_found"


class StatementConflict(XAPIError):
    """A statement id already stored with different content (xAPI Communication 2.1.2)."""

    status = 409
    code = "conflict"


class DocumentConflict(XAPIError):
    """A document write that needs a precondition, or lost to concurrent writers."""

    status = 409
    code = "conflict"


class PreconditionFailed(XAPIError):
    status = 412
    code = "precondition_failed"
