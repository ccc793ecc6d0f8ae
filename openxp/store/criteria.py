"""SQL conditions on learners' attributes, for the search criteria of ``POST /api/actors/search``
(openxp.api.criteria validates the criteria and composes these). Values travel as bound
parameters, never as SQL text; the caller adds the tenant condition.

Wildcard patterns are not handed to LIKE: SQLite's and PostgreSQL's LIKE backtrack on ``%``, so
``%aaa…ab`` over a long value costs length x length. A pattern ``s0*s1*…*sk`` is instead tested
as: the value starts with s0 and ends with sk (one comparison each, as long as the segment), and
s1…s(k-1) occur in that order in between, each found by the database's substring search from
where the previous one ended (the leftmost occurrence is always the right one to take). Both
sides are lower-cased by the database, so case folds the same way on both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, func, literal, not_, or_
from sqlalchemy.types import Float

from openxp.store.models import learners

# Digits limited so that PostgreSQL's float cast can never overflow.
# A condition on the learners table, as the API's criteria compiler composes them.
Condition = ColumnElement[bool]

_PG_NUMBER = r"^\s*-?[0-9]{1,15}(\.[0-9]{1,15})?([eE][-+]?[0-9]{1,2})?\s*$"


class CriteriaSql:
    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    @staticmethod
    def all_of(parts: list[ColumnElement[bool]]) -> ColumnElement[bool]:
        return and_(*parts)

    @staticmethod
    def any_of(parts: list[ColumnElement[bool]]) -> ColumnElement[bool]:
        return or_(*parts)

    def missing(self, key: str) -> ColumnElement[bool]:
        return not_(self.present(key))

    def present(self, key: str) -> ColumnElement[bool]:
        if self.postgres:
            return func.json_typeof(learners.c.attributes[key]).is_not(None) & (
                func.json_typeof(learners.c.attributes[key]) != "null"
            )
        kind = func.json_type(learners.c.attributes, _path(key))
        return kind.is_not(None) & (kind != "null")

    def boolean(self, op: str, key: str, value: bool) -> ColumnElement[bool]:
        word = "true" if value else "false"
        if self.postgres:
            matches = (func.json_typeof(learners.c.attributes[key]) == "boolean") & (
                learners.c.attributes[key].as_string() == word
            )
        else:
            matches = func.json_type(learners.c.attributes, _path(key)) == word
        return matches if op == "=" else or_(not_(self.present(key)), not_(matches))

    def number(self, op: str, key: str, value: float) -> ColumnElement[bool]:
        return _apply(op, self._number(key), literal(value, Float()))

    def text(self, op: str, key: str, value: str) -> ColumnElement[bool]:
        column = self._text(key)
        if self.postgres:
            column = column.collate("C")  # compare as the code points do, as SQLite does
        return _apply(op, column, literal(value, String()))

    def wildcard(self, op: str, key: str, segments: list[str]) -> ColumnElement[bool]:
        """``segments`` are the pattern split at its ``*`` (at least two; inner ones non-empty)."""
        column = self._text(key, cheap=True)
        value = func.lower(column)
        lowered = [func.lower(literal(s, String())) for s in segments]
        first, middle, last = lowered[0], lowered[1:-1], lowered[-1]
        total = func.length(value)
        conditions: list[ColumnElement[bool]] = []
        if segments[0] and segments[-1] and not middle:
            # 'ab*ba' must not match 'aba': the two ends may not overlap.
            conditions.append(total >= func.length(first) + func.length(last))
        elif not segments[0] and not segments[-1] and not middle:
            conditions.append(column.is_not(None))
        if segments[0]:
            conditions.append(func.substr(value, 1, func.length(first)) == first)
        if segments[-1]:
            conditions.append(func.substr(value, total - func.length(last) + 1) == last)
        start: Any = func.length(first) + 1
        for segment in middle:
            found = self._find(func.substr(value, start), segment)
            conditions.append(found > 0)
            start = start + found - 1 + func.length(segment)
        if middle:
            # The last inner segment ends before the final one begins.
            conditions.append(start - 1 <= total - func.length(last))
        matches = and_(*conditions)
        return matches if op == "=" else or_(column.is_(None), not_(matches))

    # Typed views of one attribute.

    def _find(self, haystack: Any, needle: Any) -> Any:
        return func.strpos(haystack, needle) if self.postgres else func.instr(haystack, needle)

    def _text(self, key: str, cheap: bool = False) -> ColumnElement[Any]:
        if self.postgres:
            return learners.c.attributes[key].as_string()
        path = _path(key)
        kind = func.json_type(learners.c.attributes, path)
        if cheap:
            # The same values with one json_type per use (CASE x WHEN evaluates x once), for
            # expressions that use the value many times.
            return case(
                {"true": "true", "false": "false", "object": None, "array": None, "null": None},
                value=kind,
                else_=func.json_extract(learners.c.attributes, path),
            )
        return case(
            (kind.in_(["true", "false"]), kind),
            (kind.in_(["integer", "real", "text"]), cast(func.json_extract(learners.c.attributes, path), String())),
            else_=None,
        )

    def _number(self, key: str) -> ColumnElement[Any]:
        if self.postgres:
            kind = func.json_typeof(learners.c.attributes[key])
            raw = learners.c.attributes[key].as_string()
            return case(
                (kind == "number", cast(raw, Float())),
                ((kind == "string") & raw.regexp_match(_PG_NUMBER), cast(func.trim(raw), Float())),
                else_=None,
            )
        path = _path(key)
        kind = func.json_type(learners.c.attributes, path)
        raw = func.trim(func.json_extract(learners.c.attributes, path))
        numeric_text = (kind == "text") & (raw != "") & raw.op("NOT GLOB")("*[^0-9.eE+-]*") & raw.op("GLOB")("*[0-9]*")
        return case(
            (kind.in_(["integer", "real"]), func.json_extract(learners.c.attributes, path)),
            (numeric_text, cast(raw, Float())),
            else_=None,
        )


def _path(key: str) -> Any:
    """SQLite's JSON path to a top-level member (the caller refuses keys with quotes or backslashes)."""
    return literal('$."' + key + '"', String())


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
