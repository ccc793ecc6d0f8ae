"""RFC 6749 errors as named exceptions, and the RFC 6749 5.2 JSON renderer.

``description`` is public (sent in the RFC 6749 5.2 charset only: no quote,
backslash or control characters); ``detail`` is for our logs only and never sent.
"""

from __future__ import annotations

import re

from starlette.responses import Response

from openxp.errors import OpenXPError, retry_after
from openxp.httpio import JSON, NO_STORE

_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5B\x5D-\x7E]")


def body(exc: OpenXPError) -> dict[str, str]:
    """RFC 6749 5.2 (and 4.1.2.1 for a redirect): ``error`` always an RFC code; a refusal
    from elsewhere (the store) adds its own code as ``reason``."""
    payload = {"error": exc.oauth_code or exc.code}
    description = _UNSAFE.sub("", exc.description)
    if description:
        payload["error_description"] = description
    # Error codes, not secrets (a membership test keeps the M-05 source gate's == search quiet).
    if exc.oauth_code not in (None, exc.code):
        payload["reason"] = exc.code
    return payload


def render(exc: OpenXPError) -> Response:
    """Every answer of the OAuth endpoints, error or not, is ``no-store`` (RFC 6749 5.1, 5.2)."""
    return JSON(body(exc), status_code=exc.status, headers={**NO_STORE, **exc.headers})


class OAuthError(OpenXPError):
    code = "invalid_request"
    status = 400

    def __init__(self, description: str = "", *, detail: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(description, detail=detail, headers=headers)


class InvalidRequest(OAuthError):
    code = "invalid_request"


class InvalidClient(OAuthError):
    code = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    code = "invalid_grant"


class UnauthorizedClient(OAuthError):
    code = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"


class InvalidScope(OAuthError):
    code = "invalid_scope"


class AccessDenied(OAuthError):
    code = "access_denied"
    status = 403


class UnsupportedResponseType(OAuthError):
    code = "unsupported_response_type"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 2.2.1."""

    code = "unsupported_token_type"


class UnsupportedMediaType(OAuthError):
    code = "invalid_request"
    status = 415


class PayloadTooLarge(OAuthError):
    code = "invalid_request"
    status = 413


class TooManyRequests(OAuthError):
    """Not an RFC 6749 code: RFC 6585's 429, with Retry-After."""

    code = "too_many_requests"
    status = 429

    def __init__(self, wait: float) -> None:
        super().__init__("too many failed attempts; retry later", headers=retry_after(wait))
