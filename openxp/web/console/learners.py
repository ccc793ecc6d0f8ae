"""Learners: search by name and attributes (the Clear API criteria of POST /api/actors/search),
one learner's attributes and recent statements, and the CSV import with a preview.

The checked file (uploaded, or pasted) is staged in the database between preview and confirm
(openxp.store.staged_imports: bound to this tenant and this console session, an hour, taken
once), so the confirm form carries only the staging token; several hosts share the database, so
nothing is kept on local disk. The run is streamed: progress lines, then the report.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response, StreamingResponse

from openxp.agents import agent_key
from openxp.api.actors import agent_of
from openxp.api.criteria import COMPARATORS, compile_criteria
from openxp.api.errors import InvalidCriteria
from openxp.imports.csv_rows import CsvRow, RowProblem, csv_batches
from openxp.imports.errors import LimitExceeded, MalformedInput, WriteFailed
from openxp.imports.report import Report, stop_message
from openxp.imports.run import rechunk, run_import
from openxp.store import learners as learner_store
from openxp.store import staged_imports as staged_store
from openxp.store import statements as statement_store
from openxp.store.errors import QueryTimeout
from openxp.web import browser
from openxp.web.console.context import Console, ConsoleNotFound, console_page
from openxp.web.console.policy import MANAGE, READ

PAGE = 25
MAX_PAGE = 10_000
CRITERIA_ROWS = 3
RECENT_STATEMENTS = 20
PREVIEW_ROWS = 10
SEARCH_SECONDS = 5.0
# The comparators in the order the form offers them (the API's own set).
OPERATORS = ["=", "!=", "<", "<=", ">", ">="]
assert set(OPERATORS) == COMPARATORS
_NUMBER = re.compile(r"-?\d{1,15}(\.\d{1,15})?")


def _value(text: str) -> Any:
    """A form value as the criteria compare it: a number when it looks like one (it then also
    matches numeric text, as CSV imports store), true/false as booleans, else text."""
    if _NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def _criteria_rows(query: dict[str, str]) -> list[dict[str, str]]:
    return [
        {
            "key": query.get(f"key{i}", "").strip()[:200],
            "op": query.get(f"op{i}", "="),
            "value": query.get(f"value{i}", "")[:2000],
        }
        for i in range(1, CRITERIA_ROWS + 1)
    ]


def _criteria(rows: list[dict[str, str]], dialect: str, errors: dict[str, str]) -> dict[str, Any] | None:
    """The criteria tree of the filled-in rows (each checked by the API's own compiler)."""
    parts: list[dict[str, Any]] = []
    for i, row in enumerate(rows, start=1):
        if not row["key"] and not row["value"]:
            continue
        if not row["key"]:
            errors[f"key{i}"] = "Name the attribute to compare."
            continue
        if row["op"] not in COMPARATORS:
            errors[f"op{i}"] = "Choose a comparator."
            continue
        part = {row["op"]: [{"type": "attribute", "key": row["key"]}, _value(row["value"])]}
        try:
            compile_criteria(part, dialect)
        except InvalidCriteria as exc:
            errors[f"value{i}"] = str(exc)[:300]
            continue
        parts.append(part)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"and": parts}


def _page_number(raw: str) -> int:
    return int(raw) if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGE else 1


@console_page(READ)
async def search_page(ctx: Console) -> Response:
    query = dict(ctx.request.query_params)
    name = query.get("name", "").strip()[:200]
    rows = _criteria_rows(query)
    errors: dict[str, str] = {}
    dialect = "sqlite" if ctx.rt.db.is_sqlite else "postgresql"
    criteria = _criteria(rows, dialect, errors)
    page = _page_number(query.get("page", "1"))
    found: list[learner_store.LearnerRow] = []
    more = False
    if not errors:
        where = compile_criteria(criteria, dialect) if criteria is not None else None
        try:
            async with ctx.rt.db.bounded_read(SEARCH_SECONDS) as conn:
                found = await learner_store.list_for_tenant(
                    conn, ctx.tenant.id, PAGE + 1, (page - 1) * PAGE, where, name=name or None
                )
        except QueryTimeout:
            errors["search"] = "The search took too long: narrow it (fewer wildcards, a more selective attribute)."
        more = len(found) > PAGE
        found = found[:PAGE]
    kept = {k: v for k, v in query.items() if k != "page" and v}
    return ctx.render(
        "learners.html",
        {
            "name": name,
            "rows": rows,
            "operators": OPERATORS,
            "errors": errors,
            "learners": found,
            "page": page,
            "more": more,
            "prev_query": urlencode(kept | {"page": str(page - 1)}),
            "next_query": urlencode(kept | {"page": str(page + 1)}),
            "criteria_json": json.dumps(criteria, ensure_ascii=False) if criteria is not None else "",
        },
        status=400 if errors and "search" not in errors else 200,
    )


def _summary(payload: str) -> dict[str, str]:
    """What a statement row of the learner page shows: verb and object, as the statement says."""
    statement = json.loads(payload)
    verb = statement.get("verb") or {}
    display = verb.get("display") or {}
    obj = statement.get("object") or {}
    name = ((obj.get("definition") or {}).get("name") or {}) if isinstance(obj, dict) else {}
    return {
        "id": str(statement.get("id", "")),
        "verb": str(display.get("en-US") or next(iter(display.values()), verb.get("id", ""))),
        "object": str(name.get("en-US") or next(iter(name.values()), obj.get("id", ""))),
    }


@console_page(READ)
async def learner_page(ctx: Console) -> Response:
    identifier = ctx.request.query_params.get("id", "")[:320]
    async with ctx.rt.db.read() as conn:
        learner = await learner_store.find(conn, ctx.tenant.id, identifier) if identifier else None
        if learner is None:
            raise ConsoleNotFound
        key = agent_key(agent_of(learner, ctx.rt.settings.public_url))
        recent = await statement_store.query(
            conn,
            ctx.tenant.id,
            statement_store.Filters(agent=key),
            limit=RECENT_STATEMENTS,
            ascending=False,
            after_seq=None,
        )
    return ctx.render(
        "learner.html",
        {"learner": learner, "statements": [(s, _summary(s.payload)) for s in recent], "agent_key": key},
    )


BLOCK = 64 * 1024
# The marker in the "Importing…" page where the streamed progress lines and the report go.
RUN_MARKER = "<!-- import progress -->"


async def _blocks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), BLOCK):
        yield data[start : start + BLOCK]


async def _preview_rows(data: bytes) -> list[Any]:
    shown: list[Any] = []
    try:
        async for batch in csv_batches(_blocks(data)):
            shown.extend(row for _, row in batch if isinstance(row, CsvRow | RowProblem))
            if len(shown) >= PREVIEW_ROWS:
                break
    except (MalformedInput, LimitExceeded):
        pass  # the verify report below says what is wrong, and where
    return shown[:PREVIEW_ROWS]


async def _run(
    ctx: Console, data: bytes, verify: bool, progress: Callable[[Report], None] | None = None
) -> tuple[Report, str]:
    report = Report()
    try:
        await run_import(
            ctx.rt.db,
            ctx.tenant.id,
            rechunk(csv_batches(_blocks(data))),
            verify=verify,
            report=report,
            progress=progress,
        )
    except MalformedInput as exc:
        return report, stop_message(exc, report, verify)
    except LimitExceeded as exc:
        return report, f"The file is over a limit: {exc}. Nothing was imported."
    except WriteFailed as exc:
        return report, str(exc)
    return report, ""


def _upload_error(data: bytes) -> str:
    """Why an uploaded file cannot be imported at all, or ''."""
    if b"\x00" in data:
        return "The file contains a NUL byte: it is not a CSV text file. Export it again as CSV (UTF-8)."
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"The file is not UTF-8 text (byte {exc.start + 1:,} cannot be read). Save it again as CSV UTF-8."
    if not data.strip():
        return "The file is empty: it needs a header row, then one learner a row."
    return ""


def _upload_form(ctx: Console, errors: dict[str, str], status: int) -> Response:
    return ctx.render(
        "learners_import.html",
        {"csv": "", "errors": errors, "step": "upload", "max_bytes": ctx.rt.settings.console_import_max_bytes},
        status=status,
    )


@console_page(MANAGE)
async def import_page(ctx: Console) -> Response:
    return _upload_form(ctx, {}, 200)


@console_page(MANAGE, uploads=True)
async def import_post(ctx: Console) -> Response:
    step = ctx.form.get("step", "preview")
    if step == "confirm":
        staged = ctx.form.get("staged", "")[:100]
        if staged:
            async with ctx.rt.db.write() as conn:
                data = await staged_store.take(conn, staged, ctx.tenant.id, ctx.session.id_hash)
            if data is None:
                return _upload_form(
                    ctx,
                    {
                        "file": "That checked file is no longer here (it expired, was imported already, or is not "
                        "from this session): choose the file again."
                    },
                    404,
                )
            return _run_page(ctx, data)
        text = ctx.form.get("csv", "")
        if not text.strip():
            return _upload_form(ctx, {"csv": "Paste the CSV: a header row, then one learner a row."}, 400)
        return _run_page(ctx, text.encode("utf-8"))
    if ctx.upload is not None:
        data = ctx.upload
        if len(data) > ctx.rt.settings.console_import_max_bytes:
            return _upload_form(ctx, {"file": "The file is over this console's size limit."}, 413)
        problem = _upload_error(data)
        if problem:
            return _upload_form(ctx, {"file": problem}, 400)
    else:
        text = ctx.form.get("csv", "")
        if not text.strip():
            return _upload_form(
                ctx, {"csv": "Choose a CSV file, or paste the CSV: a header row, then one learner a row."}, 400
            )
        data = text.encode("utf-8")
    report, stopped = await _run(ctx, data, verify=True)
    async with ctx.rt.db.write() as conn:
        token = await staged_store.stage(conn, ctx.tenant.id, ctx.session.id_hash, data)
    return ctx.render(
        "learners_import.html",
        {
            "errors": {},
            "step": "preview",
            "staged": token,
            "preview": await _preview_rows(data),
            "report": report,
            "stopped": stopped,
        },
    )


_RUNNING: set[asyncio.Task[tuple[Report, str]]] = set()


async def _run_recorded(ctx: Console, data: bytes, progress: Callable[[Report], None]) -> tuple[Report, str]:
    report, stopped = await _run(ctx, data, verify=False, progress=progress)
    ctx.audit(
        "learners_imported",
        rows=report.rows,
        new=report.new,
        existing=report.existing,
        errors=report.error_count,
        written=report.written,
    )
    return report, stopped


def _run_page(ctx: Console, data: bytes) -> Response:
    """The import, streamed: the page's head and "Importing…" at once, a line each chunk of rows,
    then the report, so that a large file shows it is moving (no script needed)."""
    html, csp = ctx.page("learners_import.html", {"errors": {}, "step": "running", "marker": RUN_MARKER})
    head, tail = html.split(RUN_MARKER, 1)

    async def body() -> AsyncIterator[bytes]:
        yield head.encode("utf-8")
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def progress(report: Report) -> None:
            rows = "1 row" if report.rows == 1 else f"{report.rows:,} rows"
            lines.put_nowait(f'<p class="muted">{rows} read</p>\n')

        # The run and its audit record go on if the browser leaves mid-way (the task is kept
        # referenced until it ends): a half-reported import is still recorded.
        task = asyncio.create_task(_run_recorded(ctx, data, progress))
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)
        task.add_done_callback(lambda _: lines.put_nowait(None))
        while (line := await lines.get()) is not None:
            yield line.encode("utf-8")
        report, stopped = await task
        done = browser.templates.get_template("console/learners_import_report.html").render(
            console=ctx, report=report, stopped=stopped
        )
        yield done.encode("utf-8")
        yield tail.encode("utf-8")

    return StreamingResponse(body(), media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": csp})
