"""``openxp learners ...``: erasing a learner (GDPR Art. 17), as POST /api/actors/erase does."""

from __future__ import annotations

import json

import typer

from openxp import erasure
from openxp.cli._common import (
    DATABASE_HELP,
    JSON_OPTION,
    TENANT_OPTION,
    TYPER_STYLE,
    emit,
    fail,
    load_settings,
    operator,
    with_db,
)
from openxp.store import tenants as tenant_store
from openxp.store.db import Connection

learners_app = typer.Typer(help="Learners: erasure.", epilog=DATABASE_HELP, **TYPER_STYLE)


@learners_app.command("erase")
def learners_erase(
    tenant: str = TENANT_OPTION,
    agent: str = typer.Option(
        ...,
        "--agent",
        metavar="JSON",
        help='The learner as an xAPI Agent identifier, e.g. \'{"mbox": "mailto:ann@example.com"}\'.',
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be removed; remove nothing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Erase one learner: their record, the statements they are the actor of, their state and agent
    profile documents, attachments nobody else uses; other statements keep a pseudonym instead."""
    try:
        parsed = json.loads(agent)
    except ValueError:
        fail('--agent must be JSON, e.g. \'{"mbox": "mailto:ann@example.com"}\'')
        return
    refused = erasure.refusal(parsed)
    if refused is not None:
        fail(refused[0])
    settings = load_settings()

    async def work(conn: Connection) -> dict[str, object]:
        found = await tenant_store.get(conn, tenant)
        return await erasure.erase(
            conn, found.id, parsed, settings.public_url, dry_run=dry_run, tenant=found.name, actor=operator()
        )

    answer = with_db(work, settings)
    removed = answer["removed"]
    assert isinstance(removed, dict)
    counts = ", ".join(f"{n} {kind}" for kind, n in removed.items())
    emit(as_json, answer, ("would remove " if dry_run else "removed ") + counts)
