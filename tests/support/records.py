"""What the server recorded: digests to find stored secrets by, row counts, and
the JSON audit events in its log."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from tests.support.server import Server


def digest(value: str) -> str:
    """The lowercase hex SHA-256 under which codes, tokens and session ids are stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def code_count(server: Server) -> int:
    """How many authorization codes the database holds (to show a request issued none)."""
    return int(server.sql("SELECT COUNT(*) FROM authorization_codes")[0][0])


def audit_events(server: Server, name: str) -> list[dict[str, Any]]:
    """Every audit event called ``name`` in the server log so far, oldest first."""
    found = []
    for line in server.log().splitlines():
        start = line.find("{")
        if start < 0 or f'"{name}"' not in line:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if record.get("event") == name:
            found.append(record)
    return found


def stored_audit(server: Server, name: str, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The details of the persisted audit events called ``name`` that satisfy ``predicate``, waiting
    up to 5 s for them (routine events are written within 0.5 s); [] if none came."""
    deadline = time.time() + 5
    while True:
        rows = server.sql("SELECT details FROM audit_events WHERE type = :name", {"name": name})
        found = [d for d in (json.loads(r[0]) for r in rows) if predicate(d)]
        if found or time.time() > deadline:
            return found
        time.sleep(0.1)


def wait_for_audit(
    server: Server, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
) -> dict[str, Any]:
    """The latest ``name`` event that satisfies ``predicate``, waiting for the workers' logs to catch up."""
    deadline = time.time() + timeout
    while True:
        matches = [e for e in audit_events(server, name) if predicate(e)]
        if matches:
            return matches[-1]
        if time.time() > deadline:
            raise AssertionError(
                f"no audit event {name!r} matching the expectation in the server log"
                " (do the worker processes log openxp.audit at INFO?)"
            )
        time.sleep(0.1)
