"""What the browser tests share: Debian's Chromium (never a downloaded browser), its launch
flags, and a tiny HTTP server that stands in for an integration's redirect URI."""

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
