"""What every ``openxp`` command shares: settings, a migrated database, output."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import getpass
import json
import logging
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer

from openxp import audit
from openxp.audit_writer import write_now
from openxp.config import ConfigError, Settings
from openxp.store import Database, revocations
from openxp.store.db import Connection
from openxp.store.errors import StorageUnavailable, StoreError

T = TypeVar("T")
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout and nothing else.")
TENANT_OPTION = typer.Option(..., "--tenant", metavar="TENANT", help="The tenant's name.")
EMAIL_OPTION = typer.Option(..., "--email", metavar="EMAIL", help="The admin's email address.")
# Plain help (no Rich boxes and type tags such as <str>), the same for every command group.
TYPER_STYLE: dict[str, Any] = {"rich_markup_mode": None, "no_args_is_help": True}
DATABASE_HELP = (
    "Which database: OPENXP_DATABASE_URL if set, otherwise the SQLite file openxp.sqlite3 in "
    "OPENXP_DATA_DIR, which defaults to ./var of the current directory (a .env file there may set "
    "either). `openxp status` shows which database and public URL apply here."
)


def _quiet_argument_types() -> None:
    """Typer prints an argument's Python type beside its name in help (``NAME <str>``), even where
    a metavar says what to give; as it already does for options, let the metavar stand alone."""
    argument = getattr(getattr(typer, "core", None), "TyperArgument", None)
    typed = getattr(argument, "display_type_rich", None)
    if argument is None or typed is None:
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if self.metavar is not None else typed(self, ctx)

    argument.display_type_rich = display_type_rich


_quiet_argument_types()


class _Options:
    verbose = False


cli_options = _Options()


def load_settings(port: int | None = None) -> Settings:
    try:
        return Settings.from_env(port=port)
    except ConfigError as exc:
        fail(str(exc))
        raise


def configure_logging(settings: Settings | None = None) -> None:
    """Operator commands log on stderr only when asked: ``--verbose`` (info) or OPENXP_LOG_LEVEL.
    (``serve`` configures its own logging, at info.)"""
    level = logging.INFO if cli_options.verbose else logging.WARNING
    configured = (settings.log_level if settings else None) or None
    if configured is not None and not cli_options.verbose:
        level = logging.getLevelName(configured.upper())
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr, force=True
    )


def display_url(url: str) -> str:
    """The database URL with any password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(a malformed URL)"


def program() -> str:
    """How to run openxp again from here: ``openxp`` when it is on PATH, else the path this process
    was started by (``.venv/bin/openxp`` after ./scripts/quickstart)."""
    started = Path(sys.argv[0])
    on_path = shutil.which("openxp")
    if started.name != "openxp" or (on_path and Path(on_path).resolve() == started.resolve()):
        return "openxp"
    relative = os.path.relpath(started.absolute())
    return relative if not relative.startswith("..") else str(started.absolute())


def iso(timestamp: float | None) -> str | None:
    """A stored Unix time as ISO 8601 UTC, e.g. 2026-12-01T21:15:11Z."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    """Text output of a list: a header row, then one aligned row per item."""
    if not rows:
        return empty
    cells = [[str(c) for c in headers], *[["-" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def upgrade(settings: Settings) -> None:
    """Apply pending migrations. On PostgreSQL an advisory lock serialises concurrent runs
    (migrations/env.py). SQLite's migration transaction reads the schema version before it takes
    the write lock, so two processes starting on an empty file would both create the tables: a
    lock file beside the database serialises them (SQLite is one host, so a file lock suffices)."""
    from openxp.store.db import probe_writable, sqlite_path, storage_trouble
    from openxp.store.migrate import upgrade

    path = sqlite_path(settings.database_url)
    try:
        if path is None:
            upgrade(settings.database_url)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        if not new:
            probe_writable(settings.database_url)
        with open(path.with_name(path.name + ".migrate-lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            upgrade(settings.database_url)
    except StorageUnavailable as exc:
        fail(exc.message)
    except Exception as exc:
        # One line for the operator, not a traceback: the database is unreachable or unwritable.
        if storage_trouble(exc, path) is None and not isinstance(exc, OSError):
            raise
        where = str(path) if path is not None else "named by OPENXP_DATABASE_URL"
        if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            fail(f"the database {where} is read-only or not writable ({exc.strerror}: {exc.filename})")
        fail(f"cannot use the database {where}: {_first_line(exc)}")
    if new and path is not None:
        # A command run from another directory silently used a new ./var there before.
        typer.echo(
            f"openxp: created a new database {path.absolute()} (set OPENXP_DATA_DIR or OPENXP_DATABASE_URL "
            "to use another; `openxp status` shows which one applies)",
            err=True,
        )


def _first_line(exc: BaseException) -> str:
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"


def with_db(work: Callable[[Connection], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run ``work`` in one write transaction on a migrated database."""
    settings = settings or load_settings()
    configure_logging(settings)
    upgrade(settings)

    async def run() -> T:
        db = Database(settings.database_url, pool_size=1)
        # The command's audit events are stored in its own transaction: with the change, or not at all.
        records: list[audit.Record] = []
        audit.install(records.append)

        async def settle() -> None:
            # A command that ends tokens returns once every running worker has seen it; if it
            # cannot wait, the change is made all the same and the workers see it within a second.
            with contextlib.suppress(Exception):
                await revocations.settle(db)

        revocations.listen(settle)
        try:
            async with db.write() as conn:
                result = await work(conn)
                await write_now(conn, records)
                return result
        finally:
            revocations.unlisten(settle)
            audit.install(None)
            await db.dispose()

    try:
        result = asyncio.run(run())
    except StoreError as exc:
        fail(str(exc))
        raise
    audit_command()
    return result


def audit_command() -> None:
    """Operator changes are security events too (P-01), logged when the log level lets info through
    (``--verbose``, OPENXP_LOG_LEVEL=info). Passwords never reach argv."""
    words = [w for w in sys.argv[1:] if w not in {"--json", "--verbose", "-v"}]
    if len(words) >= 2 and words[1] == "list":
        return
    audit.event("operator_command", actor=operator(), command=" ".join(words)[:500])


def operator() -> str:
    """The actor of the command line's audit events: the operating-system user running it."""
    try:
        return "operator:" + getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def emit(as_json: bool, payload: dict[str, Any], human: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        typer.echo(human)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        # Only the line ending is removed: a password is used exactly as typed (B-14).
        password = line[:-1] if line.endswith("\n") else line
        return password[:-1] if password.endswith("\r") else password
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        fail("the passwords differ")
    return first
