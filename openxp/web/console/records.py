"""Learning records: the tenant's newest statements through the LRS's own query (the same
store function, filters and seq cursor as GET /xapi/statements), one statement's JSON, and
statements stored per day over the last 30 days as a server-rendered chart."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.responses import Response

from openxp.exports import statements as export
from openxp.store import statement_days
from openxp.store import statements as statement_store
from openxp.web.console.context import Console, ConsoleNotFound, console_page
from openxp.web.console.filters import TIME_HINT, FilterForm, day_end, read_filters
from openxp.web.console.policy import READ
from openxp.web.console.records_view import chart, summary
from openxp.xapi.errors import BadRequest
from openxp.xapi.shape import agent_param, is_iri
from openxp.xapi.validate import UUID

PAGE_SIZE = 50
CHART_DAYS = 30
FIELDS = ("learner", "verb", "activity", "from", "to")


def learner_agent(typed: str) -> str:
    """The xAPI agent a learner field names, as the JSON the agent filter takes: an email
    (with or without mailto:), an account as "homePage name", or an Agent's JSON itself."""
    if typed.startswith("{"):
        return typed
    if " " in typed:
        home, _, name = typed.partition(" ")
        return json.dumps({"account": {"homePage": home, "name": name.strip()}})
    return json.dumps({"mbox": typed if typed.startswith("mailto:") else f"mailto:{typed}"})


def _filters(form: FilterForm) -> statement_store.Filters:
    agent = None
    learner = form.text("learner", "Learner")
    if learner is not None:
        try:
            agent = agent_param(learner_agent(learner))
        except BadRequest:
            form.errors["learner"] = (
                "Learner must be an email address, an account as its home page and name, or an Agent's JSON."
            )
    iris = {}
    for name, label in (("verb", "Verb"), ("activity", "Activity")):
        value = form.text(name, label)
        if value is not None and not is_iri(value):
            form.errors[name] = f"{label} must be an IRI, such as http://adlnet.gov/expapi/verbs/completed."
        iris[name] = value
    since = form.time("from", "From")
    until = day_end(form.values["to"], form.time("to", "To"))
    if since is not None and until is not None and until <= since:
        form.errors["to"] = "To must be after From."
    # The LRS's since is exclusive and until inclusive; the form's From is inclusive.
    return statement_store.Filters(
        agent=agent,
        verb=iris["verb"],
        activity=iris["activity"],
        since=since - 0.001 if since is not None else None,
        until=until - 0.001 if until is not None else None,
    )


@console_page(READ)
async def page(ctx: Console) -> Response:
    form = read_filters(ctx.request, (*FIELDS, "after"))
    filters = _filters(form)
    raw_after = form.values["after"]
    after = int(raw_after) if raw_after.isdigit() and len(raw_after) < 19 else None
    rows: list[statement_store.Stored] = []
    today = statement_days.day_start(time.time())
    async with ctx.rt.db.read() as conn:
        if not form.errors:
            rows = await statement_store.query(
                conn, ctx.tenant.id, filters, limit=PAGE_SIZE + 1, ascending=False, after_seq=after
            )
        days = await statement_days.per_day(
            conn, ctx.tenant.id, first_day=today - (CHART_DAYS - 1) * statement_days.DAY, days=CHART_DAYS
        )
    kept = {k: v for k, v in form.values.items() if k in FIELDS and v}
    more = ""
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        more = ctx.url("/records?" + urlencode(kept | {"after": str(rows[-1].seq)}))
    return ctx.render(
        "records.html",
        {
            "statements": [summary(r.statement_id, r.stored, r.voided, orjson.loads(r.payload)) for r in rows],
            "values": form.values,
            "errors": form.errors,
            "time_hint": TIME_HINT,
            "more_url": more,
            "first_url": ctx.url("/records" + ("?" + urlencode(kept) if kept else "")) if after is not None else "",
            "chart": chart(days),
            "csv_url": ctx.url("/records.csv" + ("?" + urlencode(kept) if kept else "")),
        },
        status=400 if form.errors else 200,
    )


@console_page(READ)
async def export_csv(ctx: Console) -> Response:
    """The statements matching the page's filters, oldest first, as the export's CSV (the same
    stream as GET /api/export/statements?format=csv), this tenant's only."""
    form = read_filters(ctx.request, FIELDS)
    filters = _filters(form)
    if form.errors:
        return ctx.render(
            "message.html", {"title": "Not exported", "message": " ".join(form.errors.values())}, status=400
        )
    body = export.encoded(ctx.rt.db, ctx.tenant.id, filters, "csv")
    return export.response(body, "csv", f"statements-{ctx.tenant.name}")


@console_page(READ)
async def detail(ctx: Console) -> Response:
    statement_id = ctx.request.path_params["statement_id"]
    if not UUID.fullmatch(statement_id):
        raise ConsoleNotFound
    async with ctx.rt.db.read() as conn:
        found = await statement_store.find(conn, ctx.tenant.id, statement_id.lower())
    if found is None:
        raise ConsoleNotFound
    statement: dict[str, Any] = orjson.loads(found.payload)
    return ctx.render(
        "record.html",
        {
            "record": summary(found.statement_id, found.stored, found.voided, statement),
            "pretty": json.dumps(statement, indent=2, ensure_ascii=False, sort_keys=False),
        },
    )
