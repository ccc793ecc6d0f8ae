"""Statements posted to the LRS of a tenant over HTTP, with an API key made by the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
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


BOUNDARY = "-------openxp-test-boundary-2718281828"


def post_with_parts(server: Server, key: dict[str, Any], statements: list[dict[str, Any]], parts: list[bytes]) -> None:
    """POST /xapi/statements as multipart/mixed with Basic ``key``: the statements, then each
    attachment body (text/plain) under its sha2; asserts 200."""
    out = [f"--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n".encode(), json.dumps(statements).encode()]
    for content in parts:
        out.append(
            f"\r\n--{BOUNDARY}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {hashlib.sha256(content).hexdigest()}\r\n\r\n".encode()
        )
        out.append(content)
    out.append(f"\r\n--{BOUNDARY}--".encode())
    response = httpx.post(
        f"{server.base_url}/xapi/statements",
        content=b"".join(out),
        auth=(key["key"], key["secret"]),
        headers={"Content-Type": f"multipart/mixed; boundary={BOUNDARY}", "X-Experience-API-Version": "1.0.3"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
