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
