"""Helpers for talking to /xapi over HTTP with an API key."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.server import Server

VERSION = {"X-Experience-API-Version": "1.0.3"}


def basic(key: dict[str, Any]) -> tuple[str, str]:
    return (key["key"], key["secret"])


def xapi(
    server: Server,
    method: str,
    path: str,
    key: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    auth = basic(key if key is not None else server.apikeys["KA"])
    return httpx.request(
        method,
        f"{server.base_url}/xapi{path}",
        auth=auth,
        headers={**VERSION, **(headers or {})},
        timeout=30,
        **kwargs,
    )


def statement(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "actor": {"objectType": "Agent", "mbox": "mailto:learner@example.com", "name": "Learner"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced", "display": {"en-US": "experienced"}},
        "object": {"objectType": "Activity", "id": f"http://example.com/activities/{uuid.uuid4()}"},
    }
    body.update(overrides)
    return body


def new_id() -> str:
    return str(uuid.uuid4())
