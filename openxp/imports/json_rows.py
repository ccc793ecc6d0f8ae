"""Reading a JSON import: ``{"users": [...]}`` or a bare array of users."""

from __future__ import annotations

import json
import re
from typing import Any

from openxp.imports.errors import LimitExceeded, MalformedInput
from openxp.imports.limits import MAX_JSON_ROWS


def users_in_file(raw: bytes) -> list[Any]:
    """The users of a JSON file (the CLI's input; the API checks its body's shape itself, as
    ClearXP's validation errors)."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise MalformedInput(f"the file is not JSON: {exc}") from None
    rows = body.get("users") if isinstance(body, dict) else body
    if not isinstance(rows, list):
        raise MalformedInput("the JSON holds no users array")
    return rows


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def check_json_row_count(raw: bytes, limit: int = MAX_JSON_ROWS) -> None:
    """Raise ``LimitExceeded`` when the body's users array (or bare array) has more than ``limit``
    rows, found by reading one row at a time and stopping past the limit, so a body of millions of
    tiny rows is refused before it is ever held in memory as a whole. A body that is not JSON is
    left for the strict parser to refuse."""
    try:
        text = raw.decode("utf-8")
        decoder = json.JSONDecoder()
        at = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
        if at == len(text):
            return
        if text[at] == "[":
            _count_rows(text, at, decoder, limit)
            return
        if text[at] != "{":
            return
        at = _skip(text, at + 1)
        while text[at] != "}":
            key, at = decoder.raw_decode(text, at)
            at = _skip(text, at)
            if text[at] != ":":
                return
            at = _skip(text, at + 1)
            if key == "users" and text[at] == "[":
                at = _count_rows(text, at, decoder, limit)
            else:
                _, at = decoder.raw_decode(text, at)
            at = _skip(text, at)
            if text[at] != ",":
                return
            at = _skip(text, at + 1)
    except (ValueError, IndexError, RecursionError):
        return


def _skip(text: str, at: int) -> int:
    return _WHITESPACE.match(text, at).end()  # type: ignore[union-attr]


def _count_rows(text: str, at: int, decoder: json.JSONDecoder, limit: int) -> int:
    """Walk the array at ``at`` element by element; the position after it."""
    at = _skip(text, at + 1)
    if text[at] == "]":
        return at + 1
    count = 0
    while True:
        _, at = decoder.raw_decode(text, at)
        count += 1
        if count > limit:
            raise LimitExceeded(
                "too_many_rows",
                f"a JSON import has at most {limit} rows per request; send more as several requests or as text/csv",
                "users",
                limit,
            )
        at = _skip(text, at)
        if text[at] == "]":
            return at + 1
        if text[at] != ",":
            raise ValueError("not an array")
        at = _skip(text, at + 1)
