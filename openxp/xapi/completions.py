"""Completion records from statements, kept as statements are stored (docs/decisions.md,
"Completion records").

A statement says something about its actor's record for the activity that is its object, in
its registration (none is a registration of its own):

- any verb: the learner has been there (``first_at``, ``last_at``; the record exists, in progress);
- ``completed``, ``passed`` or ``result.completion: true``: completed (SCORM's "passed" is a
  completed lesson too), ``completed_at`` the earliest such timestamp;
- ``passed`` or ``result.success: true``: passed; ``failed`` or ``result.success: false``: failed.
  A pass outranks a fail in the same registration (a retry that passed);
- ``result.score.scaled``: the best score.

Voided statements count for nothing: a voiding statement makes the records its targets fed
fold again from the statements that remain. ``contextActivities.parent`` adds the statement's
object under each parent in the activity tree that ``expand=hierarchy`` walks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from openxp.agents import agent_key
from openxp.store import completions as store
from openxp.store.db import Connection
from openxp.xapi.validate import VOIDED, parse_time

VERBS = "http://adlnet.gov/expapi/verbs/"
COMPLETING = frozenset({VERBS + "completed", VERBS + "passed"})
PASSED, FAILED = VERBS + "passed", VERBS + "failed"


def _at(statement: dict[str, Any]) -> float:
    for name in ("timestamp", "stored"):
        value = statement.get(name)
        if isinstance(value, str):
            try:
                return parse_time(value).timestamp()
            except ValueError:
                continue
    return 0.0


def fold_of(statement: dict[str, Any]) -> store.Fold | None:
    """What the statement adds to its actor's record, or None if it is about no record (a
    voiding statement, an object that is no Activity, an actor without an identifier)."""
    verb = (statement.get("verb") or {}).get("id")
    obj = statement.get("object") or {}
    actor = statement.get("actor") or {}
    key = agent_key(actor)
    if verb == VOIDED or obj.get("objectType", "Activity") != "Activity" or key is None:
        return None
    result = statement.get("result") or {}
    completed = verb in COMPLETING or result.get("completion") is True
    if verb == PASSED or (verb != FAILED and result.get("success") is True):
        success: int | None = 1
    elif verb == FAILED or result.get("success") is False:
        success = 0
    else:
        success = None
    scaled = (result.get("score") or {}).get("scaled")
    at = _at(statement)
    return store.Fold(
        actor_key=key,
        activity_id=obj["id"],
        registration=((statement.get("context") or {}).get("registration") or "").lower(),
        # A Group's members are people of their own: the record keeps the group's identity only
        # (so erasing a member leaves no trace of them here).
        actor={k: v for k, v in actor.items() if k != "member"},
        completed=completed,
        success=success,
        score=float(scaled) if isinstance(scaled, int | float) and not isinstance(scaled, bool) else None,
        first_at=at,
        last_at=at,
        completed_at=at if completed else None,
    )


def parents_of(statement: dict[str, Any]) -> set[tuple[str, str]]:
    """(parent, child) edges: the statement's object under each ``contextActivities.parent``."""
    obj = statement.get("object") or {}
    if obj.get("objectType", "Activity") != "Activity":
        return set()
    parents = ((statement.get("context") or {}).get("contextActivities") or {}).get("parent") or []
    if isinstance(parents, dict):
        parents = [parents]
    return {(p["id"], obj["id"]) for p in parents if isinstance(p, dict) and p.get("id") and p["id"] != obj["id"]}


async def record(conn: Connection, tenant_id: int, statements: Iterable[dict[str, Any]]) -> None:
    """Fold newly stored statements into their records, in the storing transaction."""
    folds, edges = [], set()
    for statement in statements:
        fold = fold_of(statement)
        if fold is not None:
            folds.append(fold)
        edges |= parents_of(statement)
    await store.fold(conn, tenant_id, folds)
    await store.link_parents(conn, tenant_id, edges)


async def refold(conn: Connection, tenant_id: int, voided_payloads: Iterable[str]) -> None:
    """Statements were voided: fold the records they fed again from what remains."""
    keys = {f.key for p in voided_payloads if (f := fold_of(json.loads(p))) is not None}
    if not keys:
        return
    await store.lock(conn, tenant_id, keys)
    await store.forget(conn, tenant_id, keys)
    remaining = [fold_of(json.loads(p)) for p in await store.remaining_payloads(conn, tenant_id, keys)]
    await store.fold(conn, tenant_id, [f for f in remaining if f is not None])
