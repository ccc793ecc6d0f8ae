"""Strict parsing of what arrives on the wire, shared by every endpoint.

Each parser either returns clean values or raises ``WireError`` with a short,
stable reason; callers map that to their own error shape (RFC 6749, ClearXP or
xAPI). Nothing here trusts length, encoding, duplication or JSON types.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

MAX_FORM_BODY = 64 * 1024


class WireError(ValueError):
    pass


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
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("body is not valid UTF-8") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates if reject_duplicates else None)
    except RecursionError:
        raise WireError("JSON is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise WireError(f"malformed JSON ({exc.msg})") from None
    _reject_lone_surrogates(value)
    return value


def _reject_lone_surrogates(value: Any) -> None:
    """A ``\\ud800`` escape decodes to a str no database driver or encoder can take (O-05).

    Iterative (the JSON may be as deep as the parser allowed); ``encode`` finds
    surrogates at C speed, which matters for multi-megabyte imports.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise WireError("JSON holds a lone surrogate escape") from None


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
