"""What stops an import, or one row of it. Plain exceptions: the HTTP layer
(``openxp.api.users``) and the CLI each turn them into their own answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openxp.imports.report import Report


class WriteFailed(Exception):
    """Storage failed mid-import; committed chunks stay written (the API answers 503
    ``import_interrupted``)."""

    def __init__(self, report: Report) -> None:
        super().__init__(f"storage failed after {report.written} rows were written")
        self.report = report


class MalformedInput(Exception):
    """The rest of the input cannot be read (bad encoding, broken CSV) from ``line`` on (CSV)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class LimitExceeded(Exception):
    """The request as a whole is over an input limit (413); nothing of it is written."""

    def __init__(self, code: str, message: str, prop: str, limit: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.prop = prop
        self.limit = limit


class RowRejected(Exception):
    """One row cannot become a learner; ``kind`` is the stable error type of the report entry."""

    def __init__(self, kind: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.value = value
        self.message = message
