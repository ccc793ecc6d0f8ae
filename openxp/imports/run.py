"""The streamed run: rows come in chunks; each chunk is validated, checked against the tenant's
limits and written in its own transaction (``verify``: looked up, never written)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from openxp.imports.errors import MalformedInput, WriteFailed
from openxp.imports.limits import MAX_ATTRIBUTES
from openxp.imports.report import Report
from openxp.imports.validation import TenantAttributeNames, too_many_merged_attributes, validate_rows
from openxp.store import Database
from openxp.store import learners as learner_store
from openxp.store import tenants as tenant_store
from openxp.store.learners import LearnerRow

# The logger operators already filter on (docs/operating.md).
log = logging.getLogger("openxp.api")
CHUNK = 1000
WRITE_ATTEMPTS = 3
# Refresh the table statistics after this many written rows, then after 4x as many, and so on.
ANALYZE_AFTER = 5000


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
                    report.skip(row.index, too_many_merged_attributes(), row.line)
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
                    report.skip(row.index, too_many_merged_attributes(), row.line)
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
    attempt = 0
    while True:
        attempt += 1
        try:
            async with db.write() as conn:
                return await learner_store.write_batch(conn, tenant_id, learners, MAX_ATTRIBUTES)
        except IntegrityError:
            # A concurrent import created one of these learners between our look-up and insert
            # (PostgreSQL, READ COMMITTED): the chunk was rolled back; look up again.
            if attempt < WRITE_ATTEMPTS:
                continue
            log.exception("an import chunk kept conflicting; stopping the import")
        except (SQLAlchemyError, OSError):
            log.exception("storage failed while writing an import chunk")
        raise WriteFailed(report.written)


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
