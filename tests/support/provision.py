"""Throw-away clients and admins in tenant a, made through the real CLI, for tests
that disable, rotate or otherwise change them (the shared fixtures stay untouched)."""

from __future__ import annotations

import secrets
from typing import Any

from tests.support.server import PASSWORD, Server


def create_client(server: Server, label: str, *extra: str, name: str | None = None) -> dict[str, Any]:
    """`openxp client create` in tenant a with a unique https redirect URI; the CLI's JSON (not registered)."""
    uri = f"https://{label.lower()}-{secrets.token_hex(3)}.a.test/cb"
    return server.cli_json("client", "create", "--tenant", "a", "--name", name or label, "--redirect-uri", uri, *extra)


def dedicated_client(server: Server, label: str, *extra: str, name: str | None = None) -> str:
    """A new tenant-a client, added to ``server.clients``; returns its key there."""
    created = create_client(server, label, *extra, name=name)
    key = f"{label}-{created['client_id']}"
    server.clients[key] = created
    return key


def dedicated_admin(server: Server, label: str, password: str = PASSWORD) -> str:
    """A new tenant-a admin (role admin), added to ``server.admins``; returns its key there."""
    email = f"{label.lower()}-{secrets.token_hex(4)}@example.com"
    created = server.cli_json(
        "admin", "create", "--tenant", "a", "--email", email, "--password-stdin", "--role", "admin",
        stdin=password + "\n",
    )  # fmt: skip
    key = f"{label}-{email}"
    server.admins[key] = created | {"password": password}
    return key
