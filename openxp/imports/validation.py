"""A row becomes a learner, or the reason it cannot (``RowRejected``); and the per-tenant
limit on distinct attribute names, which needs the store to check."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from openxp.imports.csv_rows import CsvRow, RowProblem
from openxp.imports.errors import RowRejected
from openxp.imports.limits import (
    INT64_MAX,
    INT64_MIN,
    MAX_ATTRIBUTE_NAME,
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    MAX_IDENTIFIER,
    MAX_NAME,
    MAX_TENANT_ATTRIBUTES,
)
from openxp.imports.report import Report
from openxp.store import learners as learner_store
from openxp.store.db import Connection
from openxp.store.learners import LearnerRow

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
# Unknown names probed one by one (each probe stops at the first learner that has the name)
# before reading the tenant's whole set of names instead.
MAX_NAME_PROBES = 20


class Notice(NamedTuple):
    """A warning about a row that is imported all the same."""

    kind: str
    value: Any
    message: str


@dataclass(frozen=True)
class Accepted:
    index: int
    line: int | None
    learner: LearnerRow


def is_email(value: str) -> bool:
    return bool(_EMAIL.fullmatch(value))


def too_many_merged_attributes() -> RowRejected:
    """The learner would pass MAX_ATTRIBUTES once merged with what is stored for them."""
    return RowRejected(
        "too_many_attributes",
        None,
        f"a user has at most {MAX_ATTRIBUTES} attributes, counting those already stored for them",
    )


def validate_rows(rows: Iterable[tuple[int, Any]], id_attributes: list[str], report: Report) -> list[Accepted]:
    """Turn (index, row) pairs into learners; every problem becomes a report entry."""
    good: dict[str, Accepted] = {}
    for index, row in rows:
        report.rows += 1
        line = row.line if isinstance(row, CsvRow | RowProblem) else None
        if line is not None:
            report.through_line = line
        try:
            learner, notices = validate_row(row, id_attributes)
        except RowRejected as rejected:
            report.skip(index, rejected, line)
            continue
        for notice in notices:
            report.warning(index, *notice, line=line)
        if learner.identifier in good:
            report.warning(
                index,
                "duplicate_row",
                learner.identifier,
                "an earlier row has the same identifier; this row wins",
                line=line,
            )
        good[learner.identifier] = Accepted(index, line, learner)
    return list(good.values())


def validate_row(row: Any, id_attributes: list[str]) -> tuple[LearnerRow, list[Notice]]:
    """The learner a row describes, with warnings about it; ``RowRejected`` if there is none."""
    if isinstance(row, RowProblem):
        raise RowRejected(row.kind, None, row.message)
    if isinstance(row, CsvRow):
        row = {"name": row.name, "attributes": row.attributes}
    if not isinstance(row, dict):
        raise RowRejected("invalid_row", None, "each user must be an object with name and attributes")
    name = row.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise RowRejected("invalid_name", name if isinstance(name, str) else None, "name must be a non-empty string")
    attributes = row.get("attributes", {})
    if not isinstance(attributes, dict):
        raise RowRejected("invalid_attributes", None, "attributes must be an object")
    if len(attributes) > MAX_ATTRIBUTES:
        raise RowRejected("too_many_attributes", len(attributes), f"a user has at most {MAX_ATTRIBUTES} attributes")
    clean = {key: _attribute(key, value) for key, value in attributes.items()}
    id_name, identifier = _identifier(clean, id_attributes)
    if "email" in id_name.lower():
        if not is_email(identifier):
            raise RowRejected("invalid_email", identifier, f"{id_name} is not an email address")
        identifier = identifier.lower()
        clean[id_name] = identifier
    notices = [
        Notice("invalid_email", value, f"{key} is not an email address; stored as given")
        for key, value in clean.items()
        if key != id_name and "email" in key.lower() and isinstance(value, str) and value and not is_email(value)
    ]
    return LearnerRow(identifier=identifier, name=name.strip(), attributes=clean), notices


def _attribute(key: str, value: Any) -> Any:
    """One attribute's value, checked (it is stored as given)."""
    if not key.strip() or len(key) > MAX_ATTRIBUTE_NAME:
        raise RowRejected(
            "invalid_attribute", key[:MAX_ATTRIBUTE_NAME], f"attribute names are 1-{MAX_ATTRIBUTE_NAME} characters"
        )
    if value is not None and not isinstance(value, str | int | float | bool):
        raise RowRejected("invalid_attribute", key, f"attribute {key} must be a string, number or boolean")
    if isinstance(value, float) and not math.isfinite(value):
        raise RowRejected("invalid_attribute", key, f"attribute {key} must be a finite number")
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        # Parsed exactly (openxp.wire), but no JSON answer could show it back.
        raise RowRejected("invalid_attribute", key, f"attribute {key} is beyond the 64-bit integer range")
    if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE:
        raise RowRejected("invalid_attribute", key, f"attribute {key} is longer than {MAX_ATTRIBUTE_VALUE} characters")
    return value


def _identifier(attributes: dict[str, Any], id_attributes: list[str]) -> tuple[str, str]:
    """The first identifying attribute the row has: its name and its value."""
    for name in id_attributes:
        value = attributes.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            identifier = str(value).strip()
            if len(identifier) > MAX_IDENTIFIER:
                raise RowRejected("invalid_identifier", name, f"{name} is longer than {MAX_IDENTIFIER} characters")
            return name, identifier
    raise RowRejected(
        "missing_identifier", None, f"a user needs one of the identifying attributes: {', '.join(id_attributes)}"
    )


class TenantAttributeNames:
    """The tenant's distinct attribute names, as far as one request needs to know them, to keep
    them within MAX_TENANT_ATTRIBUTES. Names already in use are confirmed by probes that stop at
    the first learner having them; the first name the tenant does not have yet makes it read the
    whole set once. Checked per request: two requests running at the same time may together pass
    the limit by the new names of one of them."""

    def __init__(self, tenant_id: int) -> None:
        self.tenant_id = tenant_id
        self.known: set[str] = set()
        self.complete = False

    async def admit(self, conn: Connection, rows: list[Accepted], report: Report) -> list[Accepted]:
        """``rows`` that stay within the limit; the others are skipped with their row's error."""
        await self.learn(conn, [row.learner for row in rows])
        admitted: list[Accepted] = []
        for row in rows:
            try:
                self.take(row.learner)
            except RowRejected as rejected:
                report.skip(row.index, rejected, row.line)
                continue
            admitted.append(row)
        return admitted

    async def learn(self, conn: Connection, learners: list[LearnerRow]) -> None:
        """Find out which of the names these learners use the tenant has already."""
        wanted = {name for learner in learners for name in learner.attributes} - self.known
        if not wanted or self.complete:
            return
        probes = sorted(wanted)
        missing = len(probes) > MAX_NAME_PROBES
        for name in [] if missing else probes:
            if not await learner_store.has_attribute(conn, self.tenant_id, name):
                missing = True
                break
            self.known.add(name)
        if missing:
            self.known |= await learner_store.attribute_names(conn, self.tenant_id)
            self.complete = True

    def take(self, learner: LearnerRow) -> None:
        """Count the learner's new names in, or refuse it (after ``learn`` on it)."""
        new = learner.attributes.keys() - self.known
        if new and len(self.known) + len(new) > MAX_TENANT_ATTRIBUTES:
            raise RowRejected(
                "too_many_attribute_names",
                sorted(new)[0][:MAX_ATTRIBUTE_NAME],
                f"a tenant has at most {MAX_TENANT_ATTRIBUTES} distinct attribute names; this row would add "
                f"{len(new)} to the {len(self.known)} in use",
            )
        self.known |= new
