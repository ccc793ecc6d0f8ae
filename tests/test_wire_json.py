"""openxp.wire.parse_json: the fast duplicate-member check agrees with the exact one.

The fast check compares colon counts (see ``_has_duplicate_members``); these
properties pit it against a parser hook that sees every member, on generated
JSON with and without a repeated member, with colons and escapes in strings.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openxp import wire

names = st.text(alphabet=st.sampled_from('ab:"\\é😀 \u0001'), max_size=4)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | names
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4), max_leaves=20
)


def _exact(raw: bytes) -> bool:
    try:
        json.loads(raw, object_pairs_hook=wire._no_duplicates)
    except wire.WireError:
        return True
    return False


def _with_repeated_member(value: dict[str, Any], name: str, ascii_only: bool) -> bytes:
    encoded = json.dumps(value, ensure_ascii=ascii_only)
    member = json.dumps(name, ensure_ascii=ascii_only) + ": 1"
    return ("{" + member + ", " + member + ("," if value else "") + encoded[1:]).encode()


@settings(max_examples=400, deadline=None)
@given(value=values, ascii_only=st.booleans())
def test_json_without_repeats_parses_to_the_same_value(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert not _exact(raw)
    assert wire.parse_json(raw) == value


@settings(max_examples=400, deadline=None)
@given(value=st.dictionaries(names, values, max_size=3), name=names, ascii_only=st.booleans())
def test_a_repeated_member_is_refused(value: dict[str, Any], name: str, ascii_only: bool) -> None:
    raw = _with_repeated_member(value, name, ascii_only)
    assert _exact(raw)
    with pytest.raises(wire.WireError):
        wire.parse_json(raw)
    assert name in wire.parse_json(raw, reject_duplicates=False)  # the lenient parse (imports) keeps one


@pytest.mark.parametrize(
    "raw",
    [b'"\\ud800"', b'{"a": "\\udc00"}', b"NaN", b"[Infinity]", b"1e400", b"\xff", b"[" * 2000 + b"]" * 2000],
)
def test_what_strict_json_refuses(raw: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.parse_json(raw)


@settings(max_examples=200, deadline=None)
@given(
    value=values,
    big=st.integers(min_value=2**64, max_value=10**40) | st.integers(max_value=-(2**64), min_value=-(10**40)),
)
def test_integers_beyond_64_bits_are_kept_exactly(value: Any, big: int) -> None:
    raw = json.dumps({"value": value, "big": big}).encode()
    assert wire.parse_json(raw) == {"value": value, "big": big}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"big": 100000000000000000000, "x": "\\ud800"}',
        b'{"big": 100000000000000000000, "x": NaN}',
        b'{"big": 100000000000000000000, "x": 1e400}',
        b'{"big": 100000000000000000000, "a": 1, "a": 2}',
        b'{"big": 100000000000000000000, "x": ' + b"[" * 1100 + b"]" * 1100 + b"}",
    ],
)
def test_the_exact_path_refuses_what_the_fast_path_refuses(raw: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.parse_json(raw)
