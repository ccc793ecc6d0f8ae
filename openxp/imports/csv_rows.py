"""Reading a CSV import as it streams in: bytes in, numbered rows out, each knowing its line."""

from __future__ import annotations

import codecs
import csv
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from openxp.imports.errors import LimitExceeded, MalformedInput
from openxp.imports.limits import MAX_ATTRIBUTE_NAME, MAX_CSV_COLUMNS, MAX_CSV_RECORD


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


async def csv_batches(blocks: AsyncIterable[bytes]) -> AsyncIterator[list[tuple[int, Any]]]:
    """Batches of numbered rows from a CSV byte stream, as the blocks arrive (memory does not
    grow with the input): the request body of the API, a file read by the CLI."""
    reader = CsvRecords()
    async for block in blocks:
        rows = reader.feed(block)
        if rows:
            yield rows
    rows = reader.feed(b"", final=True)
    if rows:
        yield rows


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
