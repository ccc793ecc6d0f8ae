"""What an import tells its caller: counts, the errors and warnings by row, and, when it
stopped early, exactly what was and was not written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openxp.imports.errors import MalformedInput, RowRejected

# The report lists this many errors and warnings; errorCount/warningCount count them all.
MAX_REPORTED = 1000


@dataclass
class Report:
    rows: int = 0
    new: int = 0
    existing: int = 0
    skipped: int = 0
    written: int = 0
    error_count: int = 0
    warning_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    # CSV: the line on which the last row handled (written or skipped) starts.
    through_line: int | None = None

    def error(self, row: int, kind: str, value: Any, message: str, line: int | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(_entry(row, kind, value, message, line))

    def warning(self, row: int, kind: str, value: Any, message: str, line: int | None = None) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_REPORTED:
            self.warnings.append(_entry(row, kind, value, message, line))

    def skip(self, row: int, rejected: RowRejected, line: int | None) -> None:
        """The row is not imported: its error is reported."""
        self.error(row, rejected.kind, rejected.value, rejected.message, line)
        self.skipped += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "new": self.new,
            "existing": self.existing,
            "skipped": self.skipped,
            "errorCount": self.error_count,
            "errors": self.errors,
            "warningCount": self.warning_count,
            "warnings": self.warnings,
        }


def _entry(row: int, kind: str, value: Any, message: str, line: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"row": row, "type": kind, "value": value, "message": message}
    if line is not None:
        entry["line"] = line
    return entry


def stop_message(exc: MalformedInput, report: Report, verify: bool) -> str:
    """What a stopped import did, truthfully: where it stopped, what was written and what was not."""
    at = f" at line {exc.line}" if exc.line is not None else ""
    text = f"the import stopped{at}: {exc.message}. "
    if report.rows == 0:
        return text + "0 rows were written: nothing was imported. Fix the file and send it again."
    lines = f" (lines 2-{report.through_line})" if report.through_line is not None else ""
    handled = f"the {report.rows} rows before it{lines}"
    if verify:
        return text + f"Nothing was written (verify); the report covers {handled}."
    return text + (
        f"{report.written} rows were written, of {handled}; the others are in the errors. Nothing from "
        f"{'line ' + str(exc.line) if exc.line is not None else 'there'} on was imported. Fix the file and "
        "send it again: rows already written are updated, not duplicated."
    )
