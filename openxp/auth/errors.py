"""Refusals of the resource side, as named exceptions.

Each carries an HTTP status, a stable ``error`` code, a human ``message`` and
the ``WWW-Authenticate`` challenge RFC 6750 3 / RFC 7617 ask for. The ClearXP
API and the LRS render them in their own body shapes.
"""

from __future__ import annotations

REALM = "openxp"


class AuthError(Exception):
    status = 401
    error = "unauthorized"

    def __init__(self, message: str, *, challenge: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge} if self.challenge else {}


class MissingCredentials(AuthError):
    """RFC 6750 3.1: no credentials, so no error attribute in the challenge."""

    error = "unauthorized"

    def __init__(self, message: str = "authentication is required", *, scheme: str = "Bearer") -> None:
        super().__init__(message, challenge=f'{scheme} realm="{REALM}"')


class InvalidToken(AuthError):
    error = "invalid_token"

    def __init__(self, message: str = "the access token is invalid, expired or revoked") -> None:
        super().__init__(message, challenge=f'Bearer realm="{REALM}", error="invalid_token"')


class InvalidCredentials(AuthError):
    """A Basic or launch credential that does not authenticate."""

    error = "invalid_credentials"

    def __init__(self, message: str = "the credentials are invalid, expired or revoked") -> None:
        super().__init__(message, challenge=f'Basic realm="{REALM}"')


class InvalidAuthRequest(AuthError):
    status = 400
    error = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message, challenge=f'Bearer realm="{REALM}", error="invalid_request"')


class InsufficientScope(AuthError):
    status = 403
    error = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(
            f"this credential lacks the scope {scope}",
            challenge=f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"',
        )


class TenantRequired(AuthError):
    status = 400
    error = "tenant_required"

    def __init__(self) -> None:
        super().__init__("name the tenant in the X-CXP-Tenant header")


class TenantInvalid(AuthError):
    status = 400
    error = "tenant_invalid"


class TenantMismatch(AuthError):
    status = 403
    error = "tenant_mismatch"

    def __init__(self) -> None:
        super().__init__("this credential belongs to another tenant than the one the request names")


class Throttled(AuthError):
    status = 429
    error = "too_many_requests"

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed attempts; retry later")
        self.retry_after = max(1, int(retry_after + 0.999))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class OutsideCredential(AuthError):
    """A short-lived or launch credential reaching past its actor, activity or registration."""

    status = 403
    error = "forbidden_by_credential"


class VoidingForbidden(AuthError):
    """A confined credential voiding a statement it could not itself have written (or cannot
    see: an unknown id answers the same, so the refusal reveals nothing)."""

    status = 403
    error = "voiding_forbidden"

    def __init__(self) -> None:
        super().__init__(
            "this credential may void only statements it could itself have written"
            " (its own actor, registration and activity; for statements/read/mine, its own statements)"
        )
