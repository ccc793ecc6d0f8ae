"""Errors the repositories raise; the CLI and the HTTP layers translate them."""


class StoreError(Exception):
    """Base class for storage-level refusals."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Invalid(StoreError):
    pass


class UnstorableText(StoreError, ValueError):
    """A text value the database cannot hold: a NUL character (PostgreSQL ``text`` refuses it)
    or a lone surrogate (no UTF-8 encoding exists). Raised before the statement is sent, on
    SQLite too, so both databases answer the same; every HTTP surface renders it as its 400."""

    def __init__(self) -> None:
        super().__init__("a value contains a NUL character or invalid Unicode, which cannot be stored")
