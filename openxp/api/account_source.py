"""ClearXP's ``clear-account-source`` header (Clear API Reference > Actors): an arbitrary string
the caller logs against an actor update or an import, kept in that change's audit event."""

from __future__ import annotations

from starlette.requests import Request

from openxp.api.errors import ValidationFailed

HEADER = "clear-account-source"
MAX_LENGTH = 200


def account_source(request: Request) -> str | None:
    """The header's value, or None. Bounded and printable, so it can neither flood the audit log
    nor forge a line of the text log."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if len(value) > MAX_LENGTH or not value.isprintable():
        raise ValidationFailed(f"{HEADER} must be printable text of at most {MAX_LENGTH} characters", prop=HEADER)
    return value
