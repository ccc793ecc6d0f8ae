"""Search criteria of ``POST /api/actors/search``, compiled to one SQL condition.

A criterion is a one-member object: ``{"and": [c, ...]}``, ``{"or": [c, ...]}`` or a
comparison ``{OP: [{"type": "attribute", "key": K}, VALUE]}`` with OP one of
``= != < <= > >=``. VALUE decides how attributes compare:

- a string compares as text; with ``=`` and ``!=`` a ``*`` matches any run of
  characters (case-insensitive; ``%`` and ``_`` match themselves). A pattern has at
  most MAX_WILDCARD_VALUE characters and MAX_WILDCARDS runs of ``*``, a search at most
  MAX_WILDCARD_TERMS such patterns: with those, and the store's linear matching
  (openxp.store.criteria), a search costs O(learners x criteria x value length);
- a number compares numerically, with JSON numbers and with strings that look like
  numbers (CSV imports store strings); other values never match;
- ``true``/``false`` match JSON booleans (``=`` and ``!=`` only);
- ``null`` with ``=`` matches learners without the attribute, with ``!=`` those with it.

``!=`` also matches learners that lack the attribute. Everything is evaluated in
the database, always inside the caller's tenant (the caller adds that condition);
the SQL is built in openxp.store.criteria.
"""

from __future__ import annotations

import math
import re
from typing import Any

from openxp.api.errors import InvalidCriteria
from openxp.store.criteria import Condition, CriteriaSql

MAX_DEPTH = 20
MAX_NODES = 200
MAX_KEY = 200
MAX_VALUE = 2000
MAX_WILDCARD_VALUE = 100
MAX_WILDCARDS = 4
MAX_WILDCARD_TERMS = 20
COMPARATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
LOGICAL = frozenset({"and", "or"})
_STARS = re.compile(r"\*+")


def compile_criteria(criteria: Any, dialect: str) -> Condition:
    return _Compiler(dialect).node(criteria, "criteria", 1)


class _Compiler:
    def __init__(self, dialect: str) -> None:
        self.sql = CriteriaSql(dialect)
        self.nodes = 0
        self.wildcards = 0

    def node(self, value: Any, path: str, depth: int) -> Condition:
        if depth > MAX_DEPTH:
            raise InvalidCriteria(f"criteria are nested deeper than {MAX_DEPTH} levels", path=path)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidCriteria(f"criteria have more than {MAX_NODES} parts", path=path)
        if not isinstance(value, dict) or len(value) != 1:
            raise InvalidCriteria("each criterion is an object with exactly one comparator", path=path)
        op, operands = next(iter(value.items()))
        where = f"{path}.{op}"
        if op in LOGICAL:
            if not isinstance(operands, list) or not operands:
                raise InvalidCriteria(f"{op} takes a non-empty array of criteria", path=where)
            parts = [self.node(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(operands)]
            return self.sql.all_of(parts) if op == "and" else self.sql.any_of(parts)
        if op in COMPARATORS:
            if not isinstance(operands, list) or len(operands) != 2:
                raise InvalidCriteria(f"{op} takes [{{'type': 'attribute', 'key': ...}}, value]", path=where)
            return self.compare(op, _attribute_key(operands[0], where), operands[1], where)
        raise InvalidCriteria(f"unknown comparator {str(op)[:50]!r}; use and, or, =, !=, <, <=, >, >=", path=where)

    def compare(self, op: str, key: str, value: Any, path: str) -> Condition:
        if value is None:
            if op not in ("=", "!="):
                raise InvalidCriteria("null works only with = and !=", path=path)
            return self.sql.missing(key) if op == "=" else self.sql.present(key)
        if isinstance(value, bool):
            if op not in ("=", "!="):
                raise InvalidCriteria("true and false work only with = and !=", path=path)
            return self.sql.boolean(op, key, value)
        if isinstance(value, int | float):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise InvalidCriteria("numbers must be finite", path=path)
            return self.sql.number(op, key, number)
        if isinstance(value, str):
            if len(value) > MAX_VALUE:
                raise InvalidCriteria(f"values are at most {MAX_VALUE} characters", path=path)
            if op in ("=", "!=") and "*" in value:
                return self.sql.wildcard(op, key, self.wildcard_segments(value, path))
            return self.sql.text(op, key, value)
        raise InvalidCriteria("values are strings, numbers, true, false or null", path=path)

    def wildcard_segments(self, value: str, path: str) -> list[str]:
        self.wildcards += 1
        if self.wildcards > MAX_WILDCARD_TERMS:
            raise InvalidCriteria(f"a search has at most {MAX_WILDCARD_TERMS} values with * wildcards", path=path)
        if len(value) > MAX_WILDCARD_VALUE:
            raise InvalidCriteria(f"a value with * wildcards is at most {MAX_WILDCARD_VALUE} characters", path=path)
        segments = _STARS.split(value)
        if len(segments) - 1 > MAX_WILDCARDS:
            raise InvalidCriteria(f"a value has at most {MAX_WILDCARDS} * wildcards", path=path)
        return segments


def _attribute_key(operand: Any, path: str) -> str:
    if not isinstance(operand, dict) or operand.get("type") != "attribute" or set(operand) != {"type", "key"}:
        raise InvalidCriteria("the first operand is {'type': 'attribute', 'key': NAME}", path=path)
    key = operand["key"]
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
        raise InvalidCriteria(f"attribute keys are 1-{MAX_KEY} characters", path=path)
    if '"' in key or "\\" in key:
        # SQLite's JSON paths cannot quote these; refuse rather than match the wrong attribute.
        raise InvalidCriteria("attribute keys in criteria cannot contain quotes or backslashes", path=path)
    return key
