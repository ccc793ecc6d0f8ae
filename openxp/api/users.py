"""ClearXP's user import, shared by ``POST|PUT /api/import/users`` and ``openxp users import``.

Rows arrive in chunks (``CHUNK`` rows); each chunk is validated, looked up with
batched queries and written in its own transaction, so memory stays flat however
many rows a CSV holds. Bad rows are reported and skipped; good rows are kept.
``verify`` validates and reports without writing.

A storage failure stops the import: chunks already committed stay written (the
failed chunk is rolled back as a whole), and ``ImportInterrupted`` carries the
report so far, including ``written``, the number of rows stored.

A malformed CSV stops the import too (``MalformedInput``, with the line it stopped
at): again the chunks committed before it stay written, and ``stop_message`` says
exactly how many rows that is and from which lines.

Row numbers: an error's ``row`` is the user's 0-based position among the users sent
(the index in a JSON ``users`` array; the data row of a CSV, not counting the header).
CSV entries also carry ``line``, the file line on which the row starts (the header
is line 1; a quoted field with line breaks makes a row span several lines).

Input limits (docs/security.md, "Input limits on /api"): MAX_JSON_ROWS rows per JSON
request and MAX_CSV_COLUMNS columns per CSV (413, nothing written), MAX_ATTRIBUTES per
learner after merging and MAX_TENANT_ATTRIBUTES distinct names per tenant (that row's
error), and the name and value lengths below.

Limits: a repeated identifier is detected within a chunk (a warning; the last row
wins). Across chunks the later row updates the user (counted as existing), except
under ``verify``, where nothing is written and both count as new.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from openxp.errors import OpenXPError
from openxp.store import Database
from openxp.store import learners as learner_store
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection
from openxp.store.learners import LearnerRow

log = logging.getLogger("openxp.api")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_ATTRIBUTE_NAME = 200
MAX_ATTRIBUTE_VALUE = 2000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_IDENTIFIER = 320  # the learners.identifier column
MAX_NAME = 500
MAX_JSON_ROWS = 10_000
MAX_CSV_COLUMNS = 200
MAX_ATTRIBUTES = 100
MAX_TENANT_ATTRIBUTES = 1000
# Unknown names probed one by one (each probe stops at the first learner that has the name)
# before reading the tenant's whole set of names instead.
MAX_NAME_PROBES = 20
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
    # CSV: the line on which the last row handled (written or skipped) starts.
    through_line: int | None = None

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
    line: int | None = None


@dataclass(frozen=True)
class CsvRow:
    """A CSV data row, with the file line it starts on."""

    line: int
    name: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Accepted:
    index: int
    line: int | None
    learner: LearnerRow


class ImportInterrupted(OpenXPError):
    """Storage failed mid-import; committed chunks stay written."""

    status = 503
    code = "import_interrupted"

    def __init__(self, report: Report) -> None:
        super().__init__(
            f"storage failed during the import; {report.written} rows were written before it "
            "(each chunk of rows is written whole or not at all)"
        )
        self.report = report


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


# ---- validation --------------------------------------------------------------------------------


def _identifier(attributes: dict[str, Any], id_attributes: list[str]) -> tuple[str, str] | None:
    for name in id_attributes:
        value = attributes.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return name, str(value).strip()
    return None


def validate_rows(rows: Iterable[tuple[int, Any]], id_attributes: list[str], report: Report) -> list[Accepted]:
    """Turn (index, row) pairs into learners; every problem becomes a report entry."""
    good: dict[str, Accepted] = {}
    for index, row in rows:
        report.rows += 1
        line = row.line if isinstance(row, CsvRow | RowProblem) else None
        if line is not None:
            report.through_line = line
        errors, warnings = len(report.errors), len(report.warnings)
        learner = validate_row(index, row, id_attributes, report)
        if learner is not None and learner.identifier in good:
            report.warning(
                index, "duplicate_row", learner.identifier, "an earlier row has the same identifier; this row wins"
            )
        if line is not None:
            for entry in (*report.errors[errors:], *report.warnings[warnings:]):
                entry["line"] = line
        if learner is None:
            report.skipped += 1
            continue
        good[learner.identifier] = Accepted(index, line, learner)
    return list(good.values())


def validate_row(index: int, row: Any, id_attributes: list[str], report: Report) -> LearnerRow | None:
    if isinstance(row, RowProblem):
        report.error(index, row.kind, None, row.message)
        return None
    if isinstance(row, CsvRow):
        row = {"name": row.name, "attributes": row.attributes}
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
    if len(attributes) > MAX_ATTRIBUTES:
        report.error(index, "too_many_attributes", len(attributes), f"a user has at most {MAX_ATTRIBUTES} attributes")
        return None
    clean: dict[str, Any] = {}
    for key, value in attributes.items():
        if not key.strip() or len(key) > MAX_ATTRIBUTE_NAME:
            report.error(
                index,
                "invalid_attribute",
                key[:MAX_ATTRIBUTE_NAME],
                f"attribute names are 1-{MAX_ATTRIBUTE_NAME} characters",
            )
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
        """``rows`` that stay within the limit; the others become their row's error."""
        wanted = {name for row in rows for name in row.learner.attributes} - self.known
        if wanted and not self.complete:
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
        admitted: list[Accepted] = []
        for row in rows:
            new = row.learner.attributes.keys() - self.known
            if new and len(self.known) + len(new) > MAX_TENANT_ATTRIBUTES:
                _refuse(
                    report,
                    row,
                    "too_many_attribute_names",
                    sorted(new)[0][:MAX_ATTRIBUTE_NAME],
                    f"a tenant has at most {MAX_TENANT_ATTRIBUTES} distinct attribute names; this row would add "
                    f"{len(new)} to the {len(self.known)} in use",
                )
                continue
            self.known |= new
            admitted.append(row)
        return admitted


def _refuse(report: Report, row: Accepted, kind: str, value: Any, message: str) -> None:
    errors = len(report.errors)
    report.error(row.index, kind, value, message)
    if row.line is not None:
        for entry in report.errors[errors:]:
            entry["line"] = row.line
    report.skipped += 1


def _too_many_attributes(report: Report, row: Accepted) -> None:
    _refuse(
        report,
        row,
        "too_many_attributes",
        None,
        f"a user has at most {MAX_ATTRIBUTES} attributes, counting those already stored for them",
    )


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
    names = TenantAttributeNames(tenant_id)
    analyze_at = ANALYZE_AFTER
    async for chunk in chunks:
        accepted = validate_rows(chunk, id_attributes, report)
        if accepted:
            async with db.read() as conn:
                accepted = await names.admit(conn, accepted, report)
        if accepted and verify:
            async with db.read() as conn:
                known = await learner_store.lookup(conn, tenant_id, (r.learner.identifier for r in accepted))
            for row in accepted:
                stored = known.get(row.learner.identifier)
                if learner_store.merged_attribute_count(stored, row.learner) > MAX_ATTRIBUTES:
                    _too_many_attributes(report, row)
                elif stored is None:
                    report.new += 1
                else:
                    report.existing += 1
        elif accepted:
            written = await _write_chunk(db, tenant_id, [r.learner for r in accepted], report)
            report.new += written.new
            report.existing += written.existing
            report.written += written.new + written.existing
            refused = set(written.refused)
            for row in accepted:
                if row.learner.identifier in refused:
                    _too_many_attributes(report, row)
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
                return await learner_store.write_batch(conn, tenant_id, learners, MAX_ATTRIBUTES)
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


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class CsvRecords:
    """Incremental CSV reading: feed bytes, get complete records back.

    A line break ends a record only outside quotes; with RFC 4180 quoting (quotes
    inside a field are doubled) that is exactly when the count of ``"`` seen so far
    is even, so records are cut without parsing, then parsed by ``csv`` one by one
    (so each row knows its line). UTF-8, with an optional byte order mark.
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
        # The file line on which the next record starts (the header is line 1).
        self._line = 1
        self._failure: MalformedInput | None = None
        self._after_cr = False

    def feed(self, data: bytes, final: bool = False) -> list[tuple[int, Any]]:
        """The rows completed by ``data``. At a problem that stops the reading, the rows before it
        are still returned, and the problem is raised by the next call: what comes before the bad
        line is imported whichever way the file was cut into blocks."""
        if self._failure is not None:
            raise self._failure
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            text = bytes(exc.object[: exc.start]).decode("utf-8")
            self._failure = MalformedInput("the CSV is not valid UTF-8", -1)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if "\x00" in text:
            text = text[: text.index("\x00")]
            self._failure = MalformedInput("the CSV holds a NUL character", -1)
        records: list[tuple[int, str]] = []
        for line in text.splitlines(keepends=True):
            self._pending.append(line)
            self._pending_size += len(line)
            self._quotes += line.count('"')
            if line.endswith(("\n", "\r")) and self._quotes % 2 == 0:
                record = "".join(self._pending)
                self._pending, self._pending_size, self._quotes = [], 0, 0
                if record == "\n" and self._after_cr:
                    self._after_cr = False  # the second half of a CRLF cut between two blocks
                    continue
                self._after_cr = record.endswith("\r")
                records.append((self._line, record))
                self._line += _line_breaks(record)
            elif self._pending_size > MAX_CSV_RECORD:
                self._failure = MalformedInput(
                    f"a CSV record is longer than {MAX_CSV_RECORD} characters (an unclosed quote?)", self._line
                )
                break
        if self._failure is not None and self._failure.line == -1:
            # Encoding problems are found mid-record: the line is where the bad character is.
            self._failure.line = self._line + sum(_line_breaks(p) for p in self._pending)
        if self._failure is None and final and self._pending:
            records.append((self._line, "".join(self._pending)))
            self._pending = []
        rows = self._parse(records)
        if self._failure is not None and not rows:
            raise self._failure
        return rows

    def _parse(self, records: list[tuple[int, str]]) -> list[tuple[int, Any]]:
        rows: list[tuple[int, Any]] = []
        for line, record in records:
            try:
                parsed = list(csv.reader([record], strict=True))
                for fields in parsed:
                    if not fields or fields == [""]:
                        continue  # blank line
                    if self.header is None:
                        self._read_header(fields, line)
                        continue
                    rows.append((self._next_index, self._row(fields, line)))
                    self._next_index += 1
            except csv.Error as exc:
                self._failure = MalformedInput(f"malformed CSV: {exc}", line)
                break
            except MalformedInput as exc:
                self._failure = exc
                break
        return rows

    def _read_header(self, fields: list[str], line: int) -> None:
        if len(fields) > MAX_CSV_COLUMNS:
            raise LimitExceeded(
                "too_many_columns",
                f"a CSV has at most {MAX_CSV_COLUMNS} columns; this header has {len(fields)}",
                "header",
                MAX_CSV_COLUMNS,
            )
        names = [f.strip() for f in fields]
        if any(not n for n in names):
            raise MalformedInput("every CSV header cell needs a name", line)
        if any(len(n) > MAX_ATTRIBUTE_NAME for n in names):
            raise MalformedInput(f"CSV column names are at most {MAX_ATTRIBUTE_NAME} characters", line)
        if len({n.lower() for n in names}) != len(names):
            raise MalformedInput("the CSV header names a column twice", line)
        lowered = [n.lower() for n in names]
        if "name" not in lowered:
            raise MalformedInput("the CSV header needs a 'name' column", line)
        self._name_column = lowered.index("name")
        self.header = names

    def _row(self, fields: list[str], line: int) -> Any:
        assert self.header is not None
        if len(fields) != len(self.header):
            return RowProblem(
                "invalid_row", f"this row has {len(fields)} columns; the header has {len(self.header)}", line
            )
        attributes = {
            key: value
            for column, (key, value) in enumerate(zip(self.header, fields, strict=True))
            # An empty cell leaves the attribute as it is.
            if column != self._name_column and value != ""
        }
        return CsvRow(line, fields[self._name_column], attributes)


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
    try:
        async for batch in batches:
            pending.extend(batch)
            while len(pending) >= size:
                yield pending[:size]
                pending = pending[size:]
    except MalformedInput:
        # The rows read before the problem are imported (a shorter last chunk), then it stops.
        if pending:
            yield pending
        raise
    if pending:
        yield pending


# ---- JSON --------------------------------------------------------------------------------------

_WHITESPACE = re.compile(r"[ \t\n\r]*")


def check_json_row_count(raw: bytes, limit: int = MAX_JSON_ROWS) -> None:
    """Raise ``LimitExceeded`` when the body's users array (or bare array) has more than ``limit``
    rows, found by reading one row at a time and stopping past the limit, so a body of millions of
    tiny rows is refused before it is ever held in memory as a whole. A body that is not JSON is
    left for the strict parser to refuse."""
    try:
        text = raw.decode("utf-8")
        decoder = json.JSONDecoder()
        at = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
        if at == len(text):
            return
        if text[at] == "[":
            _count_rows(text, at, decoder, limit)
            return
        if text[at] != "{":
            return
        at = _skip(text, at + 1)
        while text[at] != "}":
            key, at = decoder.raw_decode(text, at)
            at = _skip(text, at)
            if text[at] != ":":
                return
            at = _skip(text, at + 1)
            if key == "users" and text[at] == "[":
                at = _count_rows(text, at, decoder, limit)
            else:
                _, at = decoder.raw_decode(text, at)
            at = _skip(text, at)
            if text[at] != ",":
                return
            at = _skip(text, at + 1)
    except (ValueError, IndexError, RecursionError):
        return


def _skip(text: str, at: int) -> int:
    return _WHITESPACE.match(text, at).end()  # type: ignore[union-attr]


def _count_rows(text: str, at: int, decoder: json.JSONDecoder, limit: int) -> int:
    """Walk the array at ``at`` element by element; the position after it."""
    at = _skip(text, at + 1)
    if text[at] == "]":
        return at + 1
    count = 0
    while True:
        _, at = decoder.raw_decode(text, at)
        count += 1
        if count > limit:
            raise LimitExceeded(
                "too_many_rows",
                f"a JSON import has at most {limit} rows per request; send more as several requests or as text/csv",
                "users",
                limit,
            )
        at = _skip(text, at)
        if text[at] == "]":
            return at + 1
        if text[at] != ",":
            raise ValueError("not an array")
        at = _skip(text, at + 1)
