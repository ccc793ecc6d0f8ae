"""RFC 6749 errors as named exceptions; ``endpoints`` renders them in one place.

``description`` is public (RFC 6749 5.2 charset only: no quote, backslash or
control characters); ``detail`` is for our logs only and never sent.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5B\x5D-\x7E]")


class OAuthError(Exception):
    error = "invalid_request"
    status = 400

    def __init__(self, description: str = "", *, detail: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(description or self.error)
        self.description = _UNSAFE.sub("", description)
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        payload = {"error": self.error}
        if self.description:
            payload["error_description"] = self.description
        return payload


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 2.2.1."""

    error = "unsupported_token_type"


class UnsupportedMediaType(OAuthError):
    error = "invalid_request"
    status = 415


class PayloadTooLarge(OAuthError):
    error = "invalid_request"
    status = 413


class TooManyRequests(OAuthError):
    """Not an RFC 6749 code: RFC 6585's 429, with Retry-After."""

    error = "too_many_requests"
    status = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed attempts; retry later")
        self.headers = {"Retry-After": str(max(1, int(retry_after + 0.999)))}


class ServerError(OAuthError):
    error = "server_error"
    status = 500
