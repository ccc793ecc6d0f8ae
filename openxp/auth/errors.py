"""Refusals of the resource side, as named exceptions.

Each carries an HTTP status, a stable ``code``, a public ``description`` and
the ``WWW-Authenticate`` challenge RFC 6750 3 / RFC 7617 ask for. The ClearXP
API and the LRS render them in their own body shapes.
"""

from __future__ import annotations

from openxp.errors import OpenXPError, retry_after

REALM = "openxp"


class AuthError(OpenXPError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, challenge: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": challenge} if challenge else None)


class MissingCredentials(AuthError):
    """RFC 6750 3.1: no credentials, so no error attribute in the challenge."""

    code = "unauthorized"

    def __init__(self, message: str = "authentication is required", *, scheme: str = "Bearer") -> None:
        super().__init__(message, challenge=f'{scheme} realm="{REALM}"')


class InvalidToken(AuthError):
    code = "invalid_token"

    def __init__(self, message: str = "the access token is invalid, expired or revoked") -> None:
        super().__init__(message, challenge=f'Bearer realm="{REALM}", error="invalid_token"')


class InvalidCredentials(AuthError):
    """A Basic or launch credential that does not authenticate."""

    code = "invalid_credentials"

    def __init__(self, message: str = "the credentials are invalid, expired or revoked") -> None:
        super().__init__(message, challenge=f'Basic realm="{REALM}"')


class InvalidAuthRequest(AuthError):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message, challenge=f'Bearer realm="{REALM}", error="invalid_request"')


class InsufficientScope(AuthError):
    status = 403
    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(
            f"this credential lacks the scope {scope}",
            challenge=f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"',
        )


class TenantRequired(AuthError):
    status = 400
    code = "tenant_required"

    def __init__(self) -> None:
        super().__init__("name the tenant in the X-CXP-Tenant header")


class TenantInvalid(AuthError):
    status = 400
    code = "tenant_invalid"


class TenantMismatch(AuthError):
    status = 403
    code = "tenant_mismatch"

    def __init__(self) -> None:
        super().__init__("this credential belongs to another tenant than the one the request names")


class Throttled(AuthError):
    status = 429
    code = "too_many_requests"

    def __init__(self, wait: float) -> None:
        super().__init__("too many failed attempts; retry later")
        self.headers = retry_after(wait)


class OutsideCredential(AuthError):
    """A short-lived or launch credential reaching past its actor, activity or registration."""

    status = 403
    code = "forbidden_by_credential"


class VoidingForbidden(AuthError):
    """A confined credential voiding a statement it could not itself have written (or cannot
    see: an unknown id answers the same, so the refusal reveals nothing)."""

    status = 403
    code = "voiding_forbidden"

    def __init__(self) -> None:
        super().__init__(
            "this credential may void only statements it could itself have written"
            " (its own actor, registration and activity; for statements/read/mine, its own statements)"
        )
