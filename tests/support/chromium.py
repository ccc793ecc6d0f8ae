"""What the browser tests share: Debian's Chromium (never a downloaded browser), its launch
flags, a tiny HTTP server that stands in for an integration's redirect URI, and one that serves
content from an origin of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _Callback(BaseHTTPRequestHandler):
    """Stands in for the integration's server: answers every GET with a small page."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>Integration</title><h1>Callback received</h1>"
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def callback_server() -> Iterator[str]:
    """The URL of a callback page on 127.0.0.1 (http on loopback is a valid redirect URI)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/cb"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def static_server(files: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    """The base URL of a server on 127.0.0.1 (its own origin) answering GET for each path in
    ``files`` with (content type, body): content as a course host would serve it."""

    class Static(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path.split("?", 1)[0])
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Static)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def chromium_browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright, closed afterwards (the browser tests' module fixture)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()
