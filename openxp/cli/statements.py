"""``openxp statements export``: a tenant's statements to a file, NDJSON or CSV, exactly as
``GET /api/export/statements`` streams them (openxp.exports.statements), with a progress bar on
stderr. The file is written next to its final name and renamed when complete, so an interrupted
export never leaves a file that looks finished."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from openxp.cli._common import (
    DATABASE_HELP,
    JSON_OPTION,
    TENANT_OPTION,
    TYPER_STYLE,
    audit_command,
    configure_logging,
    emit,
    fail,
    load_settings,
    upgrade,
)
from openxp.exports import statements as export
from openxp.store import Database
from openxp.store import tenants as tenant_store
from openxp.store.errors import StoreError
from openxp.xapi import filters as statement_filters
from openxp.xapi.errors import BadRequest

statements_app = typer.Typer(help="xAPI statements (learning records).", epilog=DATABASE_HELP, **TYPER_STYLE)


def _option(name: str, help_text: str) -> str | None:
    return typer.Option(None, f"--{name.replace('_', '-')}", metavar=name.upper(), help=help_text)


@statements_app.command("export")
def export_statements(
    tenant: str = TENANT_OPTION,
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="Where to write the export."),
    fmt: str = typer.Option("ndjson", "--format", metavar="ndjson|csv", help="One statement JSON per line, or CSV."),
    agent: str | None = _option("agent", 'An xAPI Agent as JSON, e.g. \'{"mbox": "mailto:a@example.com"}\'.'),
    verb: str | None = _option("verb", "Only statements with this verb IRI."),
    activity: str | None = _option("activity", "Only statements about this activity IRI."),
    registration: str | None = _option("registration", "Only statements of this registration (UUID)."),
    since: str | None = _option("since", "Only statements stored after this ISO 8601 time."),
    until: str | None = _option("until", "Only statements stored at or before this ISO 8601 time."),
    related_agents: bool = typer.Option(False, "--related-agents", help="--agent anywhere in the statement."),
    related_activities: bool = typer.Option(
        False, "--related-activities", help="--activity anywhere in the statement."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Export a tenant's statements matching the xAPI filters, oldest first (voided ones left out)."""
    if fmt not in export.FORMATS:
        fail("--format must be ndjson or csv")
    given = {
        "agent": agent, "verb": verb, "activity": activity, "registration": registration, "since": since,
        "until": until, "related_agents": "true" if related_agents else None,
        "related_activities": "true" if related_activities else None,
    }  # fmt: skip
    try:
        filters = statement_filters.parse({k: v for k, v in given.items() if v is not None})
    except BadRequest as exc:
        fail(f"--{(exc.prop or '').replace('_', '-')}: {exc.description}")
        raise
    if not output.parent.is_dir():
        fail(f"no such directory: {output.parent}")
    settings = load_settings()
    configure_logging(settings)
    upgrade(settings)
    partial = output.with_name(output.name + ".partial")

    async def run() -> int:
        db = Database(settings.database_url, pool_size=1)
        written = 0
        try:
            async with db.read() as conn:
                tenant_id = (await tenant_store.get(conn, tenant)).id
            progress = Progress(
                TextColumn("exporting"), BarColumn(), TextColumn("{task.completed:,} statements"),
                TimeElapsedColumn(), console=Console(stderr=True), transient=False,
            )  # fmt: skip
            with progress, partial.open("wb") as handle:
                task = progress.add_task("export", total=None)
                async for count, block in export.encoded(db, tenant_id, filters, fmt):
                    handle.write(block)
                    written += count
                    progress.update(task, completed=written)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            await db.dispose()
        os.replace(partial, output)
        return written

    try:
        written = asyncio.run(run())
    except StoreError as exc:
        partial.unlink(missing_ok=True)
        fail(str(exc))
        raise
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    audit_command()
    emit(
        as_json,
        {"tenant": tenant, "format": fmt, "output": str(output), "statements": written},
        f"exported {written} statements to {output}",
    )
