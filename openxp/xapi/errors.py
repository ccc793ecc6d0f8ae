"""The LRS's refusals: an HTTP status, a stable ``error`` code, a human
``message`` and, for an invalid statement, the ``property`` path at fault."""

from __future__ import annotations

from typing import Any


class XAPIError(Exception):
    def __init__(self, status: int, error: str, message: str, *, prop: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.prop = prop

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.prop is not None:
            body["property"] = self.prop
        return body


class InvalidStatement(XAPIError):
    def __init__(self, prop: str, message: str) -> None:
        super().__init__(400, "invalid_statement", f"{prop}: {message}" if prop else message, prop=prop)


def bad_request(message: str, error: str = "bad_request") -> XAPIError:
    return XAPIError(400, error, message)


def not_found(message: str) -> XAPIError:
    return XAPIError(404, "not_found", message)


def conflict(message: str) -> XAPIError:
    return XAPIError(409, "conflict", message)
