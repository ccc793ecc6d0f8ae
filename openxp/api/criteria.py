"""Search criteria of ``POST /api/actors/search``, compiled to one SQL condition.

A criterion is a one-member object: ``{"and": [c, ...]}``, ``{"or": [c, ...]}`` or a
comparison ``{OP: [{"type": "attribute", "key": K}, VALUE]}`` with OP one of
``= != < <= > >=``. VALUE decides how attributes compare:

- a string compares as text; with ``=`` and ``!=`` a ``*`` matches any run of
  characters (SQL LIKE, case-insensitive; ``%`` and ``_`` match themselves);
- a number compares numerically, with JSON numbers and with strings that look like
  numbers (CSV imports store strings); other values never match;
- ``true``/``false`` match JSON booleans (``=`` and ``!=`` only);
- ``null`` with ``=`` matches learners without the attribute, with ``!=`` those with it.

``!=`` also matches learners that lack the attribute. Everything is evaluated in
the database, always inside the caller's tenant (the caller adds that condition).
Values travel as bound parameters, never as SQL text.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, func, literal, not_, or_
from sqlalchemy.types import Float

from openxp.api.errors import InvalidCriteria
from openxp.store.models import learners

MAX_DEPTH = 20
MAX_NODES = 200
MAX_KEY = 200
MAX_VALUE = 2000
COMPARATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
LOGICAL = frozenset({"and", "or"})
# Digits limited so that PostgreSQL's float cast can never overflow.
_PG_NUMBER = r"^\s*-?[0-9]{1,15}(\.[0-9]{1,15})?([eE][-+]?[0-9]{1,2})?\s*$"


def compile_criteria(criteria: Any, dialect: str) -> ColumnElement[bool]:
    return _Compiler(dialect).node(criteria, "criteria", 1)


class _Compiler:
    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"
        self.nodes = 0

    def node(self, value: Any, path: str, depth: int) -> ColumnElement[bool]:
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
            return and_(*parts) if op == "and" else or_(*parts)
        if op in COMPARATORS:
            if not isinstance(operands, list) or len(operands) != 2:
                raise InvalidCriteria(f"{op} takes [{{'type': 'attribute', 'key': ...}}, value]", path=where)
            return self.compare(op, _attribute_key(operands[0], where), operands[1], where)
        raise InvalidCriteria(f"unknown comparator {str(op)[:50]!r}; use and, or, =, !=, <, <=, >, >=", path=where)

    def compare(self, op: str, key: str, value: Any, path: str) -> ColumnElement[bool]:
        if value is None:
            if op not in ("=", "!="):
                raise InvalidCriteria("null works only with = and !=", path=path)
            present = self.present(key)
            return not_(present) if op == "=" else present
        if isinstance(value, bool):
            if op not in ("=", "!="):
                raise InvalidCriteria("true and false work only with = and !=", path=path)
            matches = self.boolean(key, value)
            return matches if op == "=" else or_(not_(self.present(key)), not_(matches))
        if isinstance(value, int | float):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise InvalidCriteria("numbers must be finite", path=path)
            return _apply(op, self.number(key), literal(number, Float()))
        if isinstance(value, str):
            if len(value) > MAX_VALUE:
                raise InvalidCriteria(f"values are at most {MAX_VALUE} characters", path=path)
            column = self.text(key)
            if op in ("=", "!=") and "*" in value:
                matches = column.ilike(_like_pattern(value), escape="\\")
                return matches if op == "=" else or_(column.is_(None), not_(matches))
            if self.postgres:
                column = column.collate("C")  # compare as the code points do, as SQLite does
            return _apply(op, column, literal(value, String()))
        raise InvalidCriteria("values are strings, numbers, true, false or null", path=path)

    # Typed views of one attribute.

    def _path(self, key: str) -> Any:
        return literal('$."' + key + '"', String())

    def present(self, key: str) -> ColumnElement[bool]:
        if self.postgres:
            return func.json_typeof(learners.c.attributes[key]).is_not(None) & (
                func.json_typeof(learners.c.attributes[key]) != "null"
            )
        kind = func.json_type(learners.c.attributes, self._path(key))
        return kind.is_not(None) & (kind != "null")

    def boolean(self, key: str, value: bool) -> ColumnElement[bool]:
        word = "true" if value else "false"
        if self.postgres:
            return (func.json_typeof(learners.c.attributes[key]) == "boolean") & (
                learners.c.attributes[key].as_string() == word
            )
        return func.json_type(learners.c.attributes, self._path(key)) == word

    def text(self, key: str) -> ColumnElement[Any]:
        if self.postgres:
            return learners.c.attributes[key].as_string()
        path = self._path(key)
        kind = func.json_type(learners.c.attributes, path)
        return case(
            (kind.in_(["true", "false"]), kind),
            (kind.in_(["integer", "real", "text"]), cast(func.json_extract(learners.c.attributes, path), String())),
            else_=None,
        )

    def number(self, key: str) -> ColumnElement[Any]:
        if self.postgres:
            kind = func.json_typeof(learners.c.attributes[key])
            raw = learners.c.attributes[key].as_string()
            return case(
                (kind == "number", cast(raw, Float())),
                ((kind == "string") & raw.regexp_match(_PG_NUMBER), cast(func.trim(raw), Float())),
                else_=None,
            )
        path = self._path(key)
        kind = func.json_type(learners.c.attributes, path)
        raw = func.trim(func.json_extract(learners.c.attributes, path))
        numeric_text = (kind == "text") & (raw != "") & raw.op("NOT GLOB")("*[^0-9.eE+-]*") & raw.op("GLOB")("*[0-9]*")
        return case(
            (kind.in_(["integer", "real"]), func.json_extract(learners.c.attributes, path)),
            (numeric_text, cast(raw, Float())),
            else_=None,
        )


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


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _apply(op: str, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
    if op == "=":
        return left == right
    if op == "!=":
        return or_(left.is_(None), left != right)
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right
