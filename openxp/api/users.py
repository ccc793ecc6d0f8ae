"""``POST /api/import/users``: ClearXP's user import, with its report shape.

Bad rows are reported and skipped; good rows of the same request are written
in one transaction (all of them or, on a storage failure, none). ``verify:
true`` validates and reports without writing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from openxp.store.learners import LearnerRow

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_ATTRIBUTE_NAME = 200
MAX_ATTRIBUTE_VALUE = 2000
MAX_NAME = 500


@dataclass
class Report:
    rows: int = 0
    new: int = 0
    existing: int = 0
    skipped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def error(self, row: int, kind: str, value: Any, message: str) -> None:
        self.errors.append({"row": row, "type": kind, "value": value, "message": message})

    def warning(self, row: int, kind: str, value: Any, message: str) -> None:
        self.warnings.append({"row": row, "type": kind, "value": value, "message": message})

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "new": self.new,
            "existing": self.existing,
            "skipped": self.skipped,
            "errorCount": len(self.errors),
            "errors": self.errors,
            "warningCount": len(self.warnings),
            "warnings": self.warnings,
        }


def _identifier(attributes: dict[str, Any], id_attributes: list[str]) -> tuple[str, str] | None:
    for name in id_attributes:
        value = attributes.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return name, str(value).strip()
    return None


def validate_rows(rows: list[Any], id_attributes: list[str], report: Report) -> list[LearnerRow]:
    """Turn request rows into learners; every problem becomes a report entry."""
    good: dict[str, LearnerRow] = {}
    for index, row in enumerate(rows):
        report.rows += 1
        learner = _validate_row(index, row, id_attributes, report)
        if learner is None:
            report.skipped += 1
            continue
        if learner.identifier in good:
            report.warning(
                index, "duplicate_row", learner.identifier, "an earlier row has the same identifier; this row wins"
            )
        good[learner.identifier] = learner
    return list(good.values())


def _validate_row(index: int, row: Any, id_attributes: list[str], report: Report) -> LearnerRow | None:
    if not isinstance(row, dict):
        report.error(index, "invalid_row", None, "each user must be an object with name and attributes")
        return None
    name = row.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        report.error(index, "invalid_name", name if isinstance(name, str) else None, "name must be a non-empty string")
        return None
    attributes = row.get("attributes", {})
    if not isinstance(attributes, dict):
        report.error(index, "invalid_attributes", None, "attributes must be an object")
        return None
    clean: dict[str, Any] = {}
    for key, value in attributes.items():
        if not key.strip() or len(key) > MAX_ATTRIBUTE_NAME:
            report.error(index, "invalid_attribute", key[:MAX_ATTRIBUTE_NAME], "attribute names are 1-200 characters")
            return None
        if value is not None and not isinstance(value, str | int | float | bool):
            report.error(index, "invalid_attribute", key, f"attribute {key} must be a string, number or boolean")
            return None
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE:
            report.error(
                index, "invalid_attribute", key, f"attribute {key} is longer than {MAX_ATTRIBUTE_VALUE} characters"
            )
            return None
        clean[key] = value
    found = _identifier(clean, id_attributes)
    if found is None:
        report.error(
            index,
            "missing_identifier",
            None,
            f"a user needs one of the identifying attributes: {', '.join(id_attributes)}",
        )
        return None
    id_name, identifier = found
    if "email" in id_name.lower():
        if not _EMAIL.fullmatch(identifier):
            report.error(index, "invalid_email", identifier, f"{id_name} is not an email address")
            return None
        identifier = identifier.lower()
        clean[id_name] = identifier
    for key, value in clean.items():
        if (
            key != id_name
            and "email" in key.lower()
            and isinstance(value, str)
            and value
            and not _EMAIL.fullmatch(value)
        ):
            report.warning(index, "invalid_email", value, f"{key} is not an email address; stored as given")
    return LearnerRow(identifier=identifier, name=name.strip(), attributes=clean)
