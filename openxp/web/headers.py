"""Security headers on every response (L-01, L-03, L-13), as plain ASGI
middleware: no per-request objects beyond the header list. The same pass adds
headers a request earned along the way: a handler sets a flag in the ASGI
scope (e.g. ``openxp.auth.basic.mark_deprecated``) and the headers registered
for that flag go out with the response, so no route has to remember them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openxp.web.browser import page_csp

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_HTML_DEFAULTS = [
    (b"content-security-policy", page_csp().encode()),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool, flagged: dict[str, dict[str, str]] | None = None) -> None:
        self.app = app
        self.extra = [*_COMMON]
        if hsts:
            self.extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self.flagged = {
            flag: [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            for flag, headers in (flagged or {}).items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.extra if h[0] not in present)
                for flag, earned in self.flagged.items():
                    if scope.get(flag):
                        headers.extend(h for h in earned if h[0] not in present)
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    headers.extend(h for h in _HTML_DEFAULTS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
