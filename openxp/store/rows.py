"""Small helpers for reading what a statement did."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.engine import CursorResult, Result


def deleted(result: Result[Any]) -> int:
    """How many rows a DELETE (or UPDATE) without RETURNING touched."""
    return int(cast(CursorResult[Any], result).rowcount)
