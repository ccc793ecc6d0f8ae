"""ClearXP's user import, shared by ``POST|PUT /api/import/users`` and ``openxp users import``.

Rows arrive in chunks (``CHUNK`` rows); each chunk is validated, looked up with
batched queries and written in its own transaction, so memory stays flat however
many rows a CSV holds. Bad rows are reported and skipped; good rows are kept.
``verify`` validates and reports without writing.

A storage failure stops the import: chunks already committed stay written (the
failed chunk is rolled back as a whole), and ``ImportInterrupted`` carries the
report so far, including ``written``, the number of rows stored.

Limits: a repeated identifier is detected within a chunk (a warning; the last row
wins). Across chunks the later row updates the user (counted as existing), except
under ``verify``, where nothing is written and both count as new.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from openxp.store import Database
from openxp.store import learners as learner_store
from openxp.store import tenants as tenant_store
from openxp.store.learners import LearnerRow

log = logging.getLogger("openxp.api")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_ATTRIBUTE_NAME = 200
MAX_ATTRIBUTE_VALUE = 2000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_IDENTIFIER = 320  # the learners.identifier column
MAX_NAME = 500
CHUNK = 1000
# The report lists this many errors and warnings; errorCount/warningCount count them all.
MAX_REPORTED = 1000
# A CSV record longer than this (an unclosed quote, or no line breaks) ends the import.
MAX_CSV_RECORD = 1024 * 1024
WRITE_ATTEMPTS = 3
# Refresh the table statistics after this many written rows, then after 4x as many, and so on.
ANALYZE_AFTER = 5000


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

    def error(self, row: int, kind: str, value: Any, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append({"row": row, "type": kind, "value": value, "message": message})

    def warning(self, row: int, kind: str, value: Any, message: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_REPORTED:
            self.warnings.append({"row": row, "type": kind, "value": value, "message": message})

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


@dataclass(frozen=True)
class RowProblem:
    """A row that could not even be read (e.g. a CSV line with the wrong column count)."""

    kind: str
    message: str


class ImportInterrupted(Exception):
    """Storage failed mid-import; committed chunks stay written."""

    def __init__(self, report: Report) -> None:
        super().__init__(f"storage failed after {report.written} rows were written")
        self.report = report


class MalformedInput(Exception):
    """The rest of the input cannot be read (bad encoding, broken CSV); rows before it were processed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---- validation --------------------------------------------------------------------------------


def _identifier(attributes: dict[str, Any], id_attributes: list[str]) -> tuple[str, str] | None:
    for name in id_attributes:
        value = attributes.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return name, str(value).strip()
    return None


def validate_rows(rows: Iterable[tuple[int, Any]], id_attributes: list[str], report: Report) -> list[LearnerRow]:
    """Turn (index, row) pairs into learners; every problem becomes a report entry."""
    good: dict[str, LearnerRow] = {}
    for index, row in rows:
        report.rows += 1
        learner = validate_row(index, row, id_attributes, report)
        if learner is None:
            report.skipped += 1
            continue
        if learner.identifier in good:
            report.warning(
                index, "duplicate_row", learner.identifier, "an earlier row has the same identifier; this row wins"
            )
        good[learner.identifier] = learner
    return list(good.values())


def validate_row(index: int, row: Any, id_attributes: list[str], report: Report) -> LearnerRow | None:
    if isinstance(row, RowProblem):
        report.error(index, row.kind, None, row.message)
        return None
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
        if isinstance(value, float) and not math.isfinite(value):
            report.error(index, "invalid_attribute", key, f"attribute {key} must be a finite number")
            return None
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            # Parsed exactly (openxp.wire), but no JSON answer could show it back.
            report.error(index, "invalid_attribute", key, f"attribute {key} is beyond the 64-bit integer range")
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
    if len(identifier) > MAX_IDENTIFIER:
        report.error(index, "invalid_identifier", id_name, f"{id_name} is longer than {MAX_IDENTIFIER} characters")
        return None
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


def is_email(value: str) -> bool:
    return bool(_EMAIL.fullmatch(value))


# ---- the chunked import ------------------------------------------------------------------------


async def run_import(
    db: Database,
    tenant_id: int,
    chunks: AsyncIterator[list[tuple[int, Any]]],
    *,
    verify: bool,
    report: Report,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Validate and write each chunk in its own transaction (the API and the CLI both come here)."""
    async with db.read() as conn:
        id_attributes = (await tenant_store.get_by_id(conn, tenant_id)).user_id_attributes
    analyze_at = ANALYZE_AFTER
    async for chunk in chunks:
        learners = validate_rows(chunk, id_attributes, report)
        if learners:
            if verify:
                async with db.read() as conn:
                    known = await learner_store.existing_identifiers(conn, tenant_id, (r.identifier for r in learners))
                report.existing += sum(1 for r in learners if r.identifier in known)
                report.new += sum(1 for r in learners if r.identifier not in known)
            else:
                written = await _write_chunk(db, tenant_id, learners, report)
                report.new += written.new
                report.existing += written.existing
                report.written += written.new + written.existing
                if written.new and report.written >= analyze_at:
                    analyze_at *= 4
                    await _refresh_statistics(db)
        if progress is not None:
            progress(report)
    return report


async def _refresh_statistics(db: Database) -> None:
    try:
        async with db.write() as conn:
            await learner_store.refresh_statistics(conn)
    except SQLAlchemyError:
        # Only a speed-up: the import goes on (autovacuum will analyze the table later).
        log.warning("could not refresh the learners table statistics", exc_info=True)


async def _write_chunk(
    db: Database, tenant_id: int, learners: list[LearnerRow], report: Report
) -> learner_store.Written:
    for attempt in range(WRITE_ATTEMPTS):
        try:
            async with db.write() as conn:
                return await learner_store.write_batch(conn, tenant_id, learners)
        except IntegrityError:
            # A concurrent import created one of these learners between our look-up and insert
            # (PostgreSQL, READ COMMITTED): the chunk was rolled back; look up again.
            if attempt == WRITE_ATTEMPTS - 1:
                log.exception("an import chunk kept conflicting; stopping the import")
                raise ImportInterrupted(report) from None
        except (SQLAlchemyError, OSError):
            log.exception("storage failed while writing an import chunk")
            raise ImportInterrupted(report) from None
    raise ImportInterrupted(report)


async def chunked(rows: Iterable[Any], size: int = CHUNK) -> AsyncIterator[list[tuple[int, Any]]]:
    """Number rows from 0 and hand them out ``size`` at a time."""
    batch: list[tuple[int, Any]] = []
    for index, row in enumerate(rows):
        batch.append((index, row))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---- CSV ---------------------------------------------------------------------------------------


class CsvRecords:
    """Incremental CSV reading: feed bytes, get complete records back.

    A line break ends a record only outside quotes; with RFC 4180 quoting (quotes
    inside a field are doubled) that is exactly when the count of ``"`` seen so far
    is even, so records are cut without parsing, then parsed by ``csv`` in batches.
    UTF-8, with an optional byte order mark.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._pending: list[str] = []
        self._pending_size = 0
        self._quotes = 0
        self._started = False
        self.header: list[str] | None = None
        self._name_column = -1
        self._next_index = 0

    def feed(self, data: bytes, final: bool = False) -> list[tuple[int, Any]]:
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise MalformedInput(f"the CSV is not valid UTF-8 (after data row {self._next_index - 1})") from None
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if "\x00" in text:
            raise MalformedInput("the CSV holds a NUL character")
        records: list[str] = []
        for line in text.splitlines(keepends=True):
            self._pending.append(line)
            self._pending_size += len(line)
            self._quotes += line.count('"')
            if line.endswith(("\n", "\r")) and self._quotes % 2 == 0:
                records.append("".join(self._pending))
                self._pending, self._pending_size, self._quotes = [], 0, 0
            elif self._pending_size > MAX_CSV_RECORD:
                raise MalformedInput(f"a CSV record is longer than {MAX_CSV_RECORD} characters (an unclosed quote?)")
        if final and self._pending:
            records.append("".join(self._pending))
            self._pending = []
        return self._parse(records)

    def _parse(self, records: list[str]) -> list[tuple[int, Any]]:
        if not records:
            return []
        try:
            parsed = list(csv.reader(io.StringIO("".join(records)), strict=True))
        except csv.Error as exc:
            raise MalformedInput(f"malformed CSV after data row {self._next_index - 1}: {exc}") from None
        rows: list[tuple[int, Any]] = []
        for fields in parsed:
            if not fields or fields == [""]:
                continue  # blank line
            if self.header is None:
                self._read_header(fields)
                continue
            rows.append((self._next_index, self._row(fields)))
            self._next_index += 1
        return rows

    def _read_header(self, fields: list[str]) -> None:
        names = [f.strip() for f in fields]
        if any(not n for n in names):
            raise MalformedInput("every CSV header cell needs a name")
        if len({n.lower() for n in names}) != len(names):
            raise MalformedInput("the CSV header names a column twice")
        lowered = [n.lower() for n in names]
        if "name" not in lowered:
            raise MalformedInput("the CSV header needs a 'name' column")
        self._name_column = lowered.index("name")
        self.header = names

    def _row(self, fields: list[str]) -> Any:
        assert self.header is not None
        if len(fields) != len(self.header):
            return RowProblem("invalid_row", f"this row has {len(fields)} columns; the header has {len(self.header)}")
        attributes = {
            key: value
            for column, (key, value) in enumerate(zip(self.header, fields, strict=True))
            # An empty cell leaves the attribute as it is.
            if column != self._name_column and value != ""
        }
        return {"name": fields[self._name_column], "attributes": attributes}


def csv_rows(blocks: Iterable[bytes]) -> Iterator[list[tuple[int, Any]]]:
    """Batches of numbered rows from a CSV byte stream (the CLI reads files with this)."""
    reader = CsvRecords()
    for block in blocks:
        rows = reader.feed(block)
        if rows:
            yield rows
    rows = reader.feed(b"", final=True)
    if rows:
        yield rows


async def rechunk(
    batches: AsyncIterator[list[tuple[int, Any]]], size: int = CHUNK
) -> AsyncIterator[list[tuple[int, Any]]]:
    """Regroup batches of any size into chunks of ``size`` rows."""
    pending: list[tuple[int, Any]] = []
    async for batch in batches:
        pending.extend(batch)
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending
