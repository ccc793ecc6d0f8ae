"""The statement export: a tenant's statements matching the xAPI filters, oldest first, as NDJSON
(the stored statement, one per line) or CSV (one row per statement, the columns below).

Constant memory whatever the size: the statements are read a page at a time through the LRS's own
query (``store.statements.query``, the same filters and seq cursor as GET /xapi/statements), each
page in a short read transaction of its own, and each page is encoded and handed on before the next
is read. A statement stored while the export runs is included when its seq is past the cursor;
voided statements are left out, as GET /xapi/statements leaves them out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from openxp.exports.cells import safe_cell
from openxp.store import Database
from openxp.store import statements as store

PAGE_SIZE = 500
FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
COLUMNS = (
    "id", "timestamp", "stored", "actor_name", "actor_id", "verb_id", "verb_display", "object_id",
    "object_name", "result_score_scaled", "result_score_raw", "result_success", "result_completion",
    "result_duration", "registration",
)  # fmt: skip


def display(language_map: Any, fallback: str) -> str:
    """A language map's en-US (else en, else first) text, or ``fallback``."""
    if isinstance(language_map, dict) and language_map:
        text = language_map.get("en-US") or language_map.get("en") or next(iter(language_map.values()))
        if isinstance(text, str) and text:
            return text
    return fallback


def identifier(agent: Any) -> str:
    """An Agent's or Group's inverse functional identifier as one cell: the mbox (``mailto:...``),
    ``sha1:`` and the mbox_sha1sum, the openid, or an account as ``homePage|name``; "" for an
    anonymous Group."""
    if not isinstance(agent, dict):
        return ""
    if "mbox" in agent:
        return str(agent["mbox"])
    if "mbox_sha1sum" in agent:
        return f"sha1:{agent['mbox_sha1sum']}"
    if "openid" in agent:
        return str(agent["openid"])
    account = agent.get("account")
    if isinstance(account, dict):
        return f"{account.get('homePage', '')}|{account.get('name', '')}"
    return ""


def _number(value: Any) -> str:
    # A number we render ourselves: "-0.5" is a number to a spreadsheet, never a formula.
    return "" if value is None or isinstance(value, bool) or not isinstance(value, int | float) else repr(value)


def _flag(value: Any) -> str:
    return "" if not isinstance(value, bool) else ("true" if value else "false")


def csv_row(statement: dict[str, Any]) -> list[str]:
    """One statement as the CSV's cells (text cells guarded against formula injection)."""
    actor = statement.get("actor") or {}
    verb = statement.get("verb") or {}
    obj = statement.get("object") or {}
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        object_id, object_name = str(obj.get("id", "")), display((obj.get("definition") or {}).get("name"), "")
    elif kind in {"Agent", "Group"}:
        object_id, object_name = identifier(obj), str(obj.get("name", ""))
    elif kind == "StatementRef":
        object_id, object_name = str(obj.get("id", "")), ""
    else:  # SubStatement
        object_id, object_name = "", ""
    result = statement.get("result") or {}
    score = result.get("score") or {}
    text = [
        str(statement.get("id", "")), str(statement.get("timestamp", "")), str(statement.get("stored", "")),
        str(actor.get("name", "")), identifier(actor), str(verb.get("id", "")), display(verb.get("display"), ""),
        object_id, object_name,
    ]  # fmt: skip
    cells = [safe_cell(t) for t in text]
    cells += [_number(score.get("scaled")), _number(score.get("raw")), _flag(result.get("success"))]
    cells += [_flag(result.get("completion")), safe_cell(str(result.get("duration", "")))]
    cells.append(safe_cell(str((statement.get("context") or {}).get("registration", ""))))
    return cells


async def pages(
    db: Database, tenant_id: int, filters: store.Filters, *, size: int = PAGE_SIZE
) -> AsyncIterator[list[store.Stored]]:
    """The matching statements, oldest first, ``size`` at a time: one short read per page."""
    after: int | None = None
    while True:
        async with db.read() as conn:
            rows = await store.walk(conn, tenant_id, filters, limit=size, after_seq=after)
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1].seq


async def encoded(
    db: Database, tenant_id: int, filters: store.Filters, fmt: str, *, size: int = PAGE_SIZE
) -> AsyncIterator[tuple[int, bytes]]:
    """The export as (statements in this block, bytes): the CSV's header row first, then one
    block per page. NDJSON lines are the stored statement text as GET /xapi/statements serves it."""
    if fmt == "csv":
        yield 0, _csv_lines([list(COLUMNS)])
    async for rows in pages(db, tenant_id, filters, size=size):
        if fmt == "csv":
            yield len(rows), _csv_lines([csv_row(orjson.loads(r.payload)) for r in rows])
        else:
            yield len(rows), "".join(r.payload + "\n" for r in rows).encode()


def _csv_lines(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def response(body: AsyncIterator[tuple[int, bytes]], fmt: str, filename: str) -> Response:
    """The export as a download, streamed as it is read (the API's and the console's)."""

    async def chunks() -> AsyncIterator[bytes]:
        async for _, block in body:
            yield block

    return StreamingResponse(
        chunks(),
        media_type=FORMATS[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}.{fmt}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
