"""What every request handler needs: settings and the database, built once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from openxp.config import Settings
from openxp.store import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    # Bounds the memory of password hashing: each argon2 run holds 64 MiB while it works, and
    # the thread pool would otherwise run ~40 at once (OPENXP_ARGON2_CONCURRENCY).
    password_slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.password_slots = asyncio.Semaphore(self.settings.argon2_concurrency)


def runtime(conn: HTTPConnection) -> Runtime:
    return conn.app.state.openxp


def client_ip(conn: HTTPConnection, settings: Settings) -> str:
    """The caller's address. X-Forwarded-For counts only from a trusted proxy,
    so that nobody resets a rate-limit counter by inventing a header (N-05)."""
    peer = conn.client.host if conn.client else "unknown"
    if peer in settings.trusted_proxies:
        forwarded = conn.headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1][:64]
    return peer
