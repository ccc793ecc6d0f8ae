"""Errors the repositories raise; the CLI and the HTTP layers translate them."""


class StoreError(Exception):
    """Base class for storage-level refusals."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Invalid(StoreError):
    pass


class QueryTimeout(StoreError):
    """A query stopped at its time limit (``Database.bounded_read``)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the query ran longer than {seconds:g} s and was stopped")
        self.seconds = seconds


class StorageUnavailable(StoreError):
    """The database cannot serve the request right now (not the request's fault): every HTTP
    surface answers 503 with ``Retry-After`` and ``code``, in its own error shape."""

    code = "database_unavailable"
    retry_after = 5
    default_message = "the database is unavailable; try again shortly"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


class StorageFull(StorageUnavailable):
    code = "storage_full"
    retry_after = 60
    default_message = "the server's storage is full; nothing was written"


class StorageReadOnly(StorageUnavailable):
    code = "storage_read_only"
    retry_after = 60
    default_message = "the server's storage is read-only; nothing was written"


class UnstorableText(StoreError, ValueError):
    """A text value the database cannot hold: a NUL character (PostgreSQL ``text`` refuses it)
    or a lone surrogate (no UTF-8 encoding exists). Raised before the statement is sent, on
    SQLite too, so both databases answer the same; every HTTP surface renders it as its 400."""

    def __init__(self) -> None:
        super().__init__("a value contains a NUL character or invalid Unicode, which cannot be stored")
