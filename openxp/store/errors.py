"""Errors the repositories raise; the CLI and the HTTP layers translate them.

Those that mean the same on every surface carry their HTTP status and code, so
``openxp.surfaces`` renders them without a translation table: an outage is 503
with Retry-After, a value no column can hold is 400 ``invalid_text``."""

from __future__ import annotations

from openxp.errors import OpenXPError, retry_after


class StoreError(OpenXPError):
    """Base class for storage-level refusals. Those without an HTTP meaning of their own keep
    status 500: a caller that lets one escape has a bug, and openxp.app answers it as one."""

    status = 500
    code = "storage_error"


class NotFound(StoreError):
    code = "not_found"


class AlreadyExists(StoreError):
    code = "already_exists"


class Invalid(StoreError):
    code = "invalid"


class QueryTimeout(StoreError):
    """A query stopped at its time limit (``Database.bounded_read``)."""

    code = "query_timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the query ran longer than {seconds:g} s and was stopped")
        self.seconds = seconds


class StorageUnavailable(StoreError):
    """The database cannot serve the request right now (not the request's fault): every HTTP
    surface answers 503 with ``Retry-After`` and ``code``, in its own error shape."""

    status = 503
    code = "database_unavailable"
    oauth_code = "temporarily_unavailable"
    retry_after = 5
    description = "the database is unavailable; try again shortly"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or None, headers=retry_after(self.retry_after))


class StorageFull(StorageUnavailable):
    code = "storage_full"
    retry_after = 60
    description = "the server's storage is full; nothing was written"


class StorageReadOnly(StorageUnavailable):
    code = "storage_read_only"
    retry_after = 60
    description = "the server's storage is read-only; nothing was written"


class UnstorableText(StoreError, ValueError):
    """A text value the database cannot hold: a NUL character (PostgreSQL ``text`` refuses it)
    or a lone surrogate (no UTF-8 encoding exists). Raised before the statement is sent, on
    SQLite too, so both databases answer the same; every HTTP surface renders it as its 400."""

    status = 400
    code = "invalid_text"
    oauth_code = "invalid_request"
    description = "a value contains a NUL character or invalid Unicode, which cannot be stored"

    def __init__(self) -> None:
        super().__init__()
