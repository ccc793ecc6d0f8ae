"""Statements posted to the LRS of a tenant over HTTP, with an API key made by the CLI."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx

from tests.support.server import Server


def post_statements(server: Server, tenant: str, statements: list[dict[str, Any]]) -> list[str]:
    """POST /xapi/statements with a new Basic key of ``tenant``; the stored statement ids."""
    key = server.cli_json("apikey", "create", "--tenant", tenant, "--name", f"feed {uuid.uuid4().hex[:6]}")
    basic = base64.b64encode(f"{key['key']}:{key['secret']}".encode()).decode()
    posted = httpx.post(
        f"{server.base_url}/xapi/statements",
        json=statements,
        headers={"authorization": f"Basic {basic}", "x-experience-api-version": "1.0.3"},
        timeout=30,
    )
    assert posted.status_code == 200, posted.text
    ids: list[str] = posted.json()
    return ids
