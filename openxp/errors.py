"""The one base of every refusal openxp raises.

A refusal is a class: its HTTP ``status``, a stable ``code`` clients may branch
on, a public ``description`` (sent), a private ``detail`` (logged, never sent)
and the response ``headers`` it needs (a challenge, Retry-After). Adding a
refusal means adding one subclass; how it looks on the wire is the business of
the surface the request went to (``openxp.surfaces`` picks the renderer: RFC
6749 JSON, ClearXP, xAPI or the HTML error page), never of the class.
"""

from __future__ import annotations

from collections.abc import Mapping


class OpenXPError(Exception):
    status: int = 400
    code: str = "bad_request"
    # The text sent when the raiser gives none.
    description: str = ""
    # The RFC 6749 code this refusal takes at an OAuth endpoint when its own code is not one
    # (the code itself then goes out as ``reason``); None: the code is already an RFC code.
    oauth_code: str | None = None

    def __init__(
        self, description: str | None = None, *, detail: str = "", headers: Mapping[str, str] | None = None
    ) -> None:
        text = type(self).description if description is None else description
        super().__init__(text or self.code)
        self.description = text
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def error(self) -> str:
        """The code under the name the JSON bodies give it."""
        return self.code

    @property
    def message(self) -> str:
        return self.description


def retry_after(wait: float) -> dict[str, str]:
    """RFC 9110 Retry-After in whole seconds, rounded up and at least 1 (a lock of 0.2 s still
    asks the client to wait)."""
    return {"Retry-After": str(max(1, int(wait + 0.999)))}


class ServerError(OpenXPError):
    """What an unexpected exception becomes (``openxp.app``): the same code on every surface,
    an incident id in the text, the traceback in the log only."""

    status = 500
    code = "server_error"
