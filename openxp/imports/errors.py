"""What stops an import, or one row of it. Refusals of the one tree (``openxp.errors``): the
HTTP layer (``openxp.api.users``) and the CLI each turn them into their own answer."""

from __future__ import annotations

from typing import Any

from openxp.errors import OpenXPError


class WriteFailed(OpenXPError):
    """Storage failed mid-import; committed chunks stay written (the API answers 503
    ``import_interrupted``)."""

    status = 503
    code = "import_interrupted"

    def __init__(self, written: int) -> None:
        super().__init__(f"storage failed during the import; {interrupted_message(written)}")
        self.written = written


class MalformedInput(OpenXPError):
    """The rest of the input cannot be read (bad encoding, broken CSV) from ``line`` on (CSV)."""

    code = "invalid_csv"

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class LimitExceeded(OpenXPError):
    """The request as a whole is over an input limit (413); nothing of it is written."""

    status = 413

    def __init__(self, code: str, message: str, prop: str, limit: int) -> None:
        super().__init__(message)
        self.code = code
        self.prop = prop
        self.limit = limit


class RowRejected(OpenXPError):
    """One row cannot become a learner; ``kind`` is the stable error type of the report entry."""

    code = "validation_error"

    def __init__(self, kind: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.value = value


def interrupted_message(written: int) -> str:
    """A storage failure mid-import, as both the API and the CLI say it."""
    return f"{written} rows were written before it (each chunk of rows is written whole or not at all)"
