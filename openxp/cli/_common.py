"""What every ``openxp`` command shares: settings, a migrated database, output."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import getpass
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from openxp import audit
from openxp.config import ConfigError, Settings
from openxp.store import Database
from openxp.store.db import Connection
from openxp.store.errors import StorageUnavailable, StoreError

T = TypeVar("T")
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout and nothing else.")


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        fail(str(exc))
        raise


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
        probe_writable(settings.database_url)
        path.parent.mkdir(parents=True, exist_ok=True)
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


def _first_line(exc: BaseException) -> str:
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"


def with_db(work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run ``work`` in one write transaction on a migrated database."""
    settings = load_settings()
    upgrade(settings)

    async def run() -> T:
        db = Database(settings.database_url, pool_size=1)
        try:
            async with db.write() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    try:
        result = asyncio.run(run())
    except StoreError as exc:
        fail(str(exc))
        raise
    audit_command()
    return result


def audit_command() -> None:
    """Operator changes are security events too (P-01). Passwords never reach argv."""
    words = sys.argv[1:]
    if len(words) >= 2 and words[1] == "list":
        return
    if not audit.logger.handlers:
        audit.logger.addHandler(logging.StreamHandler(sys.stderr))
        audit.logger.setLevel(logging.INFO)
        audit.logger.propagate = False
    audit.event("operator_command", command=" ".join(w for w in words if w != "--json")[:500])


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
