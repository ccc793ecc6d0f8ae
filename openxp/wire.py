"""Strict parsing of what arrives on the wire, shared by every endpoint.

Each parser either returns clean values or raises ``WireError`` with a short,
stable reason; callers map that to their own error shape (RFC 6749, ClearXP or
xAPI). Nothing here trusts length, encoding, duplication or JSON types.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import orjson

from openxp.errors import OpenXPError

MAX_FORM_BODY = 64 * 1024
# Deepest JSON nesting accepted anywhere (the outermost object or array is level 1). A statement
# needs about 10-15 levels; no real client nests deeper than this. orjson itself parses up to
# 1,024 levels but serialises only 254, so a deeper accepted value would fail on the way out.
MAX_JSON_DEPTH = 64
TOO_DEEP = f"malformed JSON (nested deeper than {MAX_JSON_DEPTH} levels)"


class WireError(OpenXPError, ValueError):
    """Input that does not parse; callers usually re-raise it as their surface's named 400."""


def parse_query(raw: bytes | str) -> list[tuple[str, str]]:
    """Parse an application/x-www-form-urlencoded string (query or body).

    Invalid UTF-8, after percent-decoding, is an error rather than U+FFFD.
    """
    try:
        # Raw (unescaped) bytes must be UTF-8 too; latin-1 would turn b"\xff" into a valid "\u00ff".
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=200)
    except UnicodeDecodeError:
        raise WireError("parameters are not valid UTF-8") from None
    except ValueError:
        raise WireError("too many parameters") from None


def single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """RFC 6749 3.1/3.2: a parameter MUST NOT be included more than once."""
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in values:
            raise WireError(f"parameter {key} was sent more than once")
        values[key] = value
    return values


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise WireError(f"member {key} appears more than once")
        obj[key] = value
    return obj


def parse_json(raw: bytes, *, reject_duplicates: bool = True) -> Any:
    """Strict JSON (RFC 8259): valid UTF-8, no lone surrogate escapes (O-05), no NaN or
    Infinity, nesting of at most ``MAX_JSON_DEPTH`` levels and, unless told otherwise, no
    member twice in one object. Integers of any size are kept exactly.

    orjson parses (strictly, in C) unless the body has a run of 19 or more digits, which may
    be an integer beyond 64 bits that orjson would turn into a float; then the standard
    library parses, with the same refusals. Statement batches are parsed here: a hot path.
    """
    if _LONG_DIGITS.search(raw):
        return _parse_exact(raw, reject_duplicates)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"malformed JSON ({str(exc).split(':', 1)[0]})") from None
    if _too_deep(raw, value):
        raise WireError(TOO_DEEP)
    if reject_duplicates and _has_duplicate_members(raw, value):
        raise WireError("a member appears more than once in one object")
    return value


_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def _too_deep(raw: bytes, value: Any) -> bool:
    """Whether ``value`` nests deeper than ``MAX_JSON_DEPTH``. A body with fewer brackets
    than the limit cannot (the common case, counted in C); otherwise the containers are
    walked one level at a time, scalars never queued."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return False
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            return True
        below = []
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, dict | list):
                    below.append(child)
        level = below
    return False


def _refuse_constant(name: str) -> Any:
    raise WireError(f"malformed JSON ({name} is not JSON)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise WireError("malformed JSON (number is infinity when parsed as double)")
    return value


def _parse_exact(raw: bytes, reject_duplicates: bool) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("malformed JSON (str is not valid UTF-8)") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates if reject_duplicates else None,
            parse_constant=_refuse_constant,
            parse_float=_finite,
        )
    except RecursionError:
        raise WireError(TOO_DEEP) from None
    except json.JSONDecodeError as exc:
        raise WireError(f"malformed JSON ({exc.msg})") from None
    _reject_lone_surrogates_and_depth(value)
    return value


def _reject_lone_surrogates_and_depth(value: Any) -> None:
    """What orjson refuses and the standard library lets through: a ``\\ud800`` escape
    decodes to a str no driver or encoder can take (O-05); nesting is capped as orjson's."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise WireError(TOO_DEEP)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise WireError("malformed JSON (lone surrogate escape)") from None


def _has_duplicate_members(raw: bytes, value: Any) -> bool:
    """A parser keeps one of two equal member names, so ``value`` then has fewer members than
    ``raw``. Every member has one colon; the only other colons are inside strings. Without
    ``\\u`` escapes, strings decode to the same colons they were written with, so the colon
    counts of ``raw`` and of ``value`` re-serialised differ exactly when a member was dropped.
    With escapes (rare) the slow, exact check runs: a hook on every object."""
    if b"\\u" not in raw:
        return raw.count(b":") != orjson.dumps(value).count(b":")
    try:
        json.loads(raw, object_pairs_hook=_no_duplicates)
    except WireError:
        return True
    return False


def flat_string_object(value: Any) -> dict[str, str]:
    """A JSON object whose values are all strings (the seed's token request body)."""
    if not isinstance(value, dict):
        raise WireError("the JSON body must be an object")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise WireError(f"{key} must be a string")
        result[key] = item
    return result


def contains_surrogates(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def parse_basic(header: str) -> tuple[str, str]:
    """RFC 7617 credentials from an ``Authorization: Basic ...`` value.

    Splits on the first colon (a secret may hold colons), and undoes the
    form-encoding RFC 6749 2.3.1 asks clients to apply; our ids and secrets
    use only the URL-safe alphabet, so both encodings give the same result.
    """
    scheme, _, payload = header.strip().partition(" ")
    if scheme.lower() != "basic" or not payload.strip():
        raise WireError("not a Basic credential")
    try:
        decoded = base64.b64decode(payload.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise WireError("malformed Basic credential") from None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise WireError("malformed Basic credential")
    return unquote_plus(user), unquote_plus(password)
