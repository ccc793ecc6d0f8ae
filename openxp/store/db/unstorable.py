"""The one door every bound value passes: text the database cannot store is refused before
the statement is sent, on both databases alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openxp.store.errors import UnstorableText


def refuse_unstorable(values: Sequence[Any]) -> None:
    """Raise ``UnstorableText`` if a text parameter holds what the database cannot store.

    Every value bound to SQL passes here (plain SQL and Core alike), so no entry point
    needs its own check for NUL or lone surrogates: headers, Basic credentials, form and
    JSON fields and query parameters all reach the database through this one door."""
    for value in values:
        kind = value.__class__
        if kind is str:
            if "\x00" in value or (not value.isascii() and _unencodable(value)):
                raise UnstorableText()
        elif kind is list or kind is tuple:  # an array parameter (``= ANY($1)``)
            refuse_unstorable(value)


def _unencodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def refuse_unstorable_rows(rows: Sequence[Sequence[Any]]) -> None:
    for row in rows:
        refuse_unstorable(row)


def check_core_parameters(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """SQLAlchemy Core's hook before the driver runs a statement: the same check on its
    bound parameters (a tuple, a dict, or a list of either for executemany)."""
    for row in parameters if executemany else (parameters,):
        if isinstance(row, dict):
            refuse_unstorable(list(row.values()))
        elif isinstance(row, list | tuple):
            refuse_unstorable(row)
        elif row is not None:
            # SQLAlchemy's batched INSERT ... RETURNING ("insertmanyvalues") hands over one flat
            # parameter list while still flagged executemany: each item is a value, not a row.
            refuse_unstorable((row,))
