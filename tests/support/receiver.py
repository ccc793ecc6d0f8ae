"""A real HTTP server in a thread that receives forwarded statements, for the forwarding tests.

It answers each request by the next entry of its ``plan`` ("ok", "500", "hang", "reset"; "ok"
once the plan is used up), records every statement id it accepted (``received``: duplicates
kept, so a test can count them) and, for webhooks, checks the signature with ``secret``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.server import free_port


class Receiver:
    def __init__(
        self, plan: list[str] | None = None, *, secret: str | None = None, hang: float = 5.0, host: str = "127.0.0.1"
    ) -> None:
        self.host = host
        self.port = free_port()
        self.plan = list(plan or [])
        self.secret = secret
        self.hang = hang
        self.received: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self.received)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    step = receiver.plan.pop(0) if receiver.plan else "ok"
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "step": step})
                    receiver.in_flight += 1
                try:
                    self._answer(step, body)
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1

            def _answer(self, step: str, body: bytes) -> None:
                if step == "reset":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if step == "hang":
                    time.sleep(receiver.hang)
                if step in {"500", "hang"}:
                    self._reply(500)
                    return
                parsed = json.loads(body)
                statements = parsed["statements"] if isinstance(parsed, dict) else parsed
                if receiver.secret is not None and not receiver.signed(
                    self.headers.get("x-openxp-signature", ""), body
                ):
                    with receiver._lock:
                        receiver.bad_signatures += 1
                    self._reply(401)
                    return
                with receiver._lock:
                    receiver.received.extend(s["id"] for s in statements)
                self._reply(200, json.dumps([s["id"] for s in statements]).encode())

            def _reply(self, status: int, body: bytes = b"{}") -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def signed(self, header: str, body: bytes) -> bool:
        """``t=<unix>,v1=<hex>``: HMAC-SHA256 of ``<t>.<body>`` under the secret, made recently."""
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        if "t" not in fields or "v1" not in fields or abs(time.time() - int(fields["t"])) > 300:
            return False
        assert self.secret is not None
        expected = hmac.new(self.secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, fields["v1"])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
