"""The audit log page and its CSV export: one tenant's events, newest first, filtered by
event type, actor and time; the same filters serve both."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from urllib.parse import urlencode

import orjson
from starlette.responses import Response

from openxp.exports.cells import safe_cell
from openxp.store import audit as audit_store
from openxp.store.audit import StoredEvent
from openxp.web.console.context import Console, console_page
from openxp.web.console.filters import TIME_HINT, FilterForm, day_end, read_filters
from openxp.web.console.policy import READ

# Each event is a stacked card on a narrow screen: 25 keep a page at 375 px a reasonable length.
PAGE_SIZE = 25
# The export is bounded like every other read; narrow the filters for more.
EXPORT_LIMIT = 10_000
FIELDS = ("type", "actor", "from", "to")


@dataclass(frozen=True)
class Query:
    since: float | None
    until: float | None
    types: list[str]
    actor: str | None


async def _events(ctx: Console, q: Query, *, limit: int, offset: int = 0) -> list[StoredEvent]:
    async with ctx.rt.db.read() as conn:
        return await audit_store.list_events(
            conn, ctx.tenant.name, since=q.since, until=q.until, types=q.types, actor=q.actor, limit=limit,
            offset=offset,
        )  # fmt: skip


def _read(ctx: Console) -> tuple[FilterForm, Query]:
    form = read_filters(ctx.request, (*FIELDS, "page"))
    event_type = form.text("type", "Event type", max_length=64)
    actor = form.text("actor", "Actor", max_length=320)
    since = form.time("from", "From")
    until = day_end(form.values["to"], form.time("to", "To"))
    if since is not None and until is not None and until <= since:
        form.errors["to"] = "To must be after From."
    return form, Query(since, until, [event_type] if event_type else [], actor)


@console_page(READ)
async def page(ctx: Console) -> Response:
    form, query = _read(ctx)
    number = form.page()
    events: list[StoredEvent] = []
    if not form.errors:
        events = await _events(ctx, query, limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE)
    has_next = len(events) > PAGE_SIZE
    kept = {k: v for k, v in form.values.items() if k in FIELDS and v}

    def link(to_page: int) -> str:
        return ctx.url("/audit?" + urlencode(kept | {"page": str(to_page)}))

    return ctx.render(
        "audit.html",
        {
            "events": [(e, _details(e)) for e in events[:PAGE_SIZE]],
            "values": form.values,
            "errors": form.errors,
            "time_hint": TIME_HINT,
            "page": number,
            "prev_url": link(number - 1) if number > 1 else "",
            "next_url": link(number + 1) if has_next else "",
            "csv_url": ctx.url("/audit.csv" + ("?" + urlencode(kept) if kept else "")),
        },
        status=400 if form.errors else 200,
    )


@console_page(READ)
async def export(ctx: Console) -> Response:
    form, query = _read(ctx)
    if form.errors:
        return ctx.render(
            "message.html",
            {"title": "Not exported", "message": " ".join(form.errors.values())},
            status=400,
        )
    events = await _events(ctx, query, limit=EXPORT_LIMIT)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "at", "type", "severity", "actor", "ip", "details"])
    for e in events:
        row = e.as_dict()
        writer.writerow(
            [
                safe_cell(str(v))
                for v in (
                    row["id"], row["at"], row["type"], row["severity"], row["actor"] or "", row["ip"] or "", _details(e)
                )
            ]
        )  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{ctx.tenant.name}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _details(e: StoredEvent) -> str:
    return orjson.dumps(e.details, option=orjson.OPT_SORT_KEYS).decode() if e.details else ""
