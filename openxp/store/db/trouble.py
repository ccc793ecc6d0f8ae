"""Whether an error means the database cannot serve right now (503), and why.

Not the request's fault nor openxp's: PostgreSQL down or unreachable, SQLite's disk full or
read-only, a lock held too long. Every entry point of ``Database`` passes its errors here.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from sqlalchemy import exc as sa_exc

from openxp.store.db.urls import sqlite_path
from openxp.store.errors import StorageFull, StorageReadOnly, StorageUnavailable

log = logging.getLogger("openxp.store")


def is_locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc).lower() or "busy" in str(exc).lower()


# SQLite's primary result codes (the low byte of sqlite_errorcode).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26
# PostgreSQL SQLSTATEs (besides classes 08 and 57, connection and operator intervention).
_PG_DISK_FULL, _PG_OUT_OF_MEMORY, _PG_TOO_MANY_CONNECTIONS, _PG_READ_ONLY = "53100", "53200", "53300", "25006"


def storage_trouble(exc: BaseException, sqlite_file: Path | None = None) -> StorageUnavailable | None:
    """The error the request should be answered with when ``exc`` (or what caused it) means
    the database cannot serve right now, rather than a fault of the request or of openxp:
    PostgreSQL down, restarting or unreachable, a statement timed out, SQLite's disk full or
    read-only. ``None`` for anything else, which stays the 500 it is."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        seen += 1
        if isinstance(current, StorageUnavailable):
            return current
        found = _classify_one(current, sqlite_file)
        if found is not None:
            return found
        orig = getattr(current, "orig", None) if isinstance(current, sa_exc.DBAPIError) else None
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return None


def _classify_one(exc: BaseException, sqlite_file: Path | None) -> StorageUnavailable | None:
    if isinstance(exc, sqlite3.Error):
        primary = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # the primary result code
        if primary == _SQLITE_FULL:
            return StorageFull()
        if primary == _SQLITE_READONLY:
            return StorageReadOnly()
        if primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN):
            return _disk_state(sqlite_file)
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StorageUnavailable("the database is busy; try again shortly")
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            log.error("the SQLite database reports corruption: %s", exc)
            return StorageUnavailable("the database cannot be read")
        return None
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled PostgreSQL connection came free in time
        return StorageUnavailable("the database is overloaded; try again shortly")
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return StorageUnavailable()
    module = type(exc).__module__
    if module.startswith("asyncpg"):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        if sqlstate == _PG_DISK_FULL:
            return StorageFull()
        if sqlstate == _PG_READ_ONLY:
            return StorageReadOnly()
        if sqlstate[:2] in ("08", "57") or sqlstate in (_PG_OUT_OF_MEMORY, _PG_TOO_MANY_CONNECTIONS):
            return StorageUnavailable()
        if type(exc).__name__ in ("InterfaceError", "ConnectionDoesNotExistError") and "closed" in str(exc):
            return StorageUnavailable()
    return None


def _disk_state(sqlite_file: Path | None) -> StorageUnavailable:
    """SQLite says only "disk I/O error"; the filesystem says why."""
    if sqlite_file is not None:
        try:
            stat = os.statvfs(sqlite_file.parent)
        except OSError:
            return StorageUnavailable("the database file cannot be reached")
        if stat.f_flag & os.ST_RDONLY:
            return StorageReadOnly()
        if stat.f_bavail == 0:
            return StorageFull()
    return StorageUnavailable("the database file cannot be read or written")


def probe_writable(url: str) -> None:
    """Raise ``StorageUnavailable`` (with a message for the operator) unless the SQLite
    database named by ``url`` can be written: checked at start-up, since a worker that
    cannot open it would otherwise fail on every request. PostgreSQL: nothing to check."""
    path = sqlite_path(url)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = sqlite3.connect(path, isolation_level=None, timeout=1)
        try:
            # A read-only file still grants the write lock; only a write shows it (rolled back).
            probe.execute("BEGIN IMMEDIATE")
            version = int(probe.execute("PRAGMA user_version").fetchone()[0])
            probe.execute(f"PRAGMA user_version = {version}")
            probe.execute("ROLLBACK")
        finally:
            probe.close()
    except (OSError, sqlite3.Error) as exc:
        trouble = storage_trouble(exc, path) if isinstance(exc, sqlite3.Error) else None
        if isinstance(exc, sqlite3.OperationalError) and is_locked(exc):
            return  # another process is writing: then it is writable
        kind = "full" if isinstance(trouble, StorageFull) else "read-only or not writable"
        refusal: type[StorageUnavailable] = type(trouble) if trouble is not None else StorageReadOnly
        raise refusal(
            f"the database {path} is {kind} ({exc}); openxp must be able to write it and the "
            "files beside it (-wal, -shm): check the file's and its folder's owner, permissions and mount"
        ) from exc
