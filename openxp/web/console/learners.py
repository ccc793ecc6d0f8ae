"""Learners: search by name and attributes (the Clear API criteria of POST /api/actors/search),
one learner's attributes and recent statements, and the CSV import with a preview.

The import keeps nothing between preview and confirm: the confirm form posts the same CSV text
again and it is imported from that post (the import validates every row itself), so no upload
is stored on the server and nothing the client sends is trusted beyond one request.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from openxp.agents import agent_key
from openxp.api.actors import agent_of
from openxp.api.criteria import COMPARATORS, compile_criteria
from openxp.api.errors import InvalidCriteria
from openxp.imports.csv_rows import CsvRow, RowProblem, csv_batches
from openxp.imports.errors import LimitExceeded, MalformedInput, WriteFailed
from openxp.imports.report import Report, stop_message
from openxp.imports.run import rechunk, run_import
from openxp.store import learners as learner_store
from openxp.store import statements as statement_store
from openxp.store.errors import QueryTimeout
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


async def _blocks(text: str) -> AsyncIterator[bytes]:
    yield text.encode("utf-8")


async def _preview_rows(text: str) -> list[Any]:
    shown: list[Any] = []
    try:
        async for batch in csv_batches(_blocks(text)):
            shown.extend(row for _, row in batch if isinstance(row, CsvRow | RowProblem))
            if len(shown) >= PREVIEW_ROWS:
                break
    except (MalformedInput, LimitExceeded):
        pass  # the verify report below says what is wrong, and where
    return shown[:PREVIEW_ROWS]


async def _run(ctx: Console, text: str, verify: bool) -> tuple[Report, str]:
    report = Report()
    try:
        await run_import(ctx.rt.db, ctx.tenant.id, rechunk(csv_batches(_blocks(text))), verify=verify, report=report)
    except MalformedInput as exc:
        return report, stop_message(exc, report, verify)
    except LimitExceeded as exc:
        return report, f"The file is over a limit: {exc}. Nothing was imported."
    except WriteFailed as exc:
        return report, str(exc)
    return report, ""


@console_page(MANAGE)
async def import_page(ctx: Console) -> Response:
    return ctx.render("learners_import.html", {"csv": "", "errors": {}, "step": "upload"})


@console_page(MANAGE)
async def import_post(ctx: Console) -> Response:
    text = ctx.form.get("csv", "")
    step = ctx.form.get("step", "preview")
    if not text.strip():
        return ctx.render(
            "learners_import.html",
            {"csv": "", "errors": {"csv": "Paste the CSV: a header row, then one learner a row."}, "step": "upload"},
            status=400,
        )
    if step != "confirm":
        report, stopped = await _run(ctx, text, verify=True)
        return ctx.render(
            "learners_import.html",
            {
                "csv": text,
                "errors": {},
                "step": "preview",
                "preview": await _preview_rows(text),
                "report": report,
                "stopped": stopped,
            },
        )
    report, stopped = await _run(ctx, text, verify=False)
    ctx.audit(
        "learners_imported",
        rows=report.rows,
        new=report.new,
        existing=report.existing,
        errors=report.error_count,
        written=report.written,
    )
    return ctx.render(
        "learners_import.html",
        {"csv": "", "errors": {}, "step": "done", "report": report, "stopped": stopped},
    )
