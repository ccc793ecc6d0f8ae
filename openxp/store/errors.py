"""Errors the repositories raise; the CLI and the HTTP layers translate them."""


class StoreError(Exception):
    """Base class for storage-level refusals."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Invalid(StoreError):
    pass
