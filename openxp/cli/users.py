"""``openxp users ...``: the tenant's learners."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import typer

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
from openxp.store import Database
from openxp.store import tenants as tenant_store
from openxp.store.errors import StoreError

users_app = typer.Typer(help="Learners (the users ClearXP's import creates).", epilog=DATABASE_HELP, **TYPER_STYLE)

# ---- learners ----------------------------------------------------------------------------------


@users_app.command("import")
def users_import(
    file: str = typer.Argument(
        ..., metavar="FILE", help="A .csv (header row with 'name') or .json file (users array)."
    ),
    tenant: str = TENANT_OPTION,
    verify: bool = typer.Option(False, "--verify", help="Validate and report without writing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import learners exactly as POST /api/import/users does, in chunks, with a progress bar on stderr."""
    from pathlib import Path

    from openxp.imports.csv_rows import csv_batches
    from openxp.imports.errors import LimitExceeded, MalformedInput, WriteFailed, interrupted_message
    from openxp.imports.json_rows import users_in_file
    from openxp.imports.report import Report, stop_message
    from openxp.imports.run import chunked, rechunk, run_import

    path = Path(file)
    kind = path.suffix.lower()
    if kind not in (".csv", ".json"):
        fail("the file must end in .csv or .json")
    if not path.is_file():
        fail(f"no such file: {file}")
    settings = load_settings()
    configure_logging(settings)
    upgrade(settings)
    report = Report()

    async def run() -> None:
        db = Database(settings.database_url, pool_size=1)
        try:
            async with db.read() as conn:
                tenant_id = (await tenant_store.get(conn, tenant)).id
            with (
                path.open("rb") as handle,
                typer.progressbar(length=path.stat().st_size, label="importing", file=sys.stderr) as bar,
            ):

                async def blocks() -> AsyncIterator[bytes]:
                    while block := handle.read(1024 * 1024):
                        bar.update(len(block))
                        yield block

                async def json_chunks() -> AsyncIterator[list[tuple[int, Any]]]:
                    rows = users_in_file(handle.read())
                    bar.update(path.stat().st_size)
                    async for chunk in chunked(rows):
                        yield chunk

                batches = csv_batches(blocks()) if kind == ".csv" else json_chunks()
                await run_import(db, tenant_id, rechunk(batches), verify=verify, report=report)
        finally:
            await db.dispose()

    failure = None
    try:
        asyncio.run(run())
    except StoreError as exc:
        fail(str(exc))
    except MalformedInput as exc:
        failure = stop_message(exc, report, verify)
    except LimitExceeded as exc:
        failure = f"{exc.message}; nothing was imported"
    except WriteFailed:
        failure = f"storage failed; {interrupted_message(report.written)}"
    audit_command()
    result = {**report.as_dict(), "written": report.written, "verify": verify}
    if failure:
        result["failure"] = failure
    human = (
        f"{report.rows} rows: {report.new} new, {report.existing} existing, {report.skipped} skipped, "
        f"{report.error_count} errors, {report.warning_count} warnings; {report.written} written"
        + "".join(f"\n  row {e['row']}: {e['type']}: {e['message']}" for e in report.errors[:20])
    )
    emit(as_json, result, human)
    if failure:
        fail(failure)
