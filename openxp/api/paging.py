"""Paging and single-valued query parameters on /api, as ClearXP documents them: ``limit``
and ``skip``, whole numbers in the query string (or a JSON body)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from openxp.api.errors import InvalidParameter
from openxp.imports.limits import INT64_MAX, INT64_MIN

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_SKIP = 2**31 - 1


def count(raw: Any, name: str, default: int, minimum: int, maximum: int) -> int:
    """A non-negative integer from a query string or a JSON body."""
    if raw is None:
        return default
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 12:
        value = int(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        shown = raw[:50] if isinstance(raw, str) else None
        raise InvalidParameter(f"{name} must be a whole number", prop=name, value=shown)
    if not minimum <= value <= maximum:
        # The refusal echoes the value only while a JSON answer can hold it (64 bits).
        shown_value = value if INT64_MIN <= value <= INT64_MAX else None
        raise InvalidParameter(f"{name} must be between {minimum} and {maximum}", prop=name, value=shown_value)
    return value


def single_query(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidParameter(f"send {name} once", prop=name)
    return values[0] if values else None


def page(limit_raw: Any, skip_raw: Any) -> tuple[int, int]:
    return count(limit_raw, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT), count(skip_raw, "skip", 0, 0, MAX_SKIP)
