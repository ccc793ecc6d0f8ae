"""``GET /api/actors/completions``: a learner's completion records (Clear API Reference >
Actors > Get Completion Records), folded from their statements as they are stored
(``openxp.xapi.completions``).

Query parameters: ``agent`` (required, the learner's identifier as JSON, e.g.
``{"mbox": "mailto:ann@example.com"}``), ``activityId``, ``status`` (``passed``, ``failed``,
``completed``, ``in-progress``; comma-separated or repeated), ``registration``,
``expand=hierarchy`` (with ``activityId``: each record's ``children``, recursively, from the
activity tree the statements' ``contextActivities.parent`` describe), ``limit``, ``skip``.
The answer is a JSON array, the most recently active record first.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openxp import wire
from openxp.agents import agent_key, forms_of
from openxp.api.errors import InvalidParameter
from openxp.api.http import endpoint
from openxp.api.paging import page, single_query
from openxp.auth import Principal
from openxp.httpio import JSON, NO_STORE
from openxp.runtime import runtime
from openxp.store import completions as store
from openxp.store.db import Connection
from openxp.xapi import shape
from openxp.xapi.errors import InvalidStatement
from openxp.xapi.validate import UUID, Validator

PARAMETERS = frozenset({"agent", "activityId", "status", "registration", "expand", "limit", "skip"})
# expand=hierarchy is bounded work: this deep, and this many records in one answer.
MAX_DEPTH = 8
MAX_NODES = 2000
MAX_RECORDS = 10_000  # the learner's records read for one level
NOT_ATTEMPTED = "not-attempted"


def _agent(raw: str | None) -> dict[str, Any]:
    if raw is None:
        raise InvalidParameter("agent is required: the learner's identifier as JSON", prop="agent")
    try:
        agent = wire.parse_json(raw.encode("utf-8", "surrogatepass"))
        if isinstance(agent, dict):
            agent = {"objectType": "Agent", **agent}
        Validator(v2=True).agent(agent, "agent")
    except (wire.WireError, InvalidStatement, UnicodeEncodeError):
        raise InvalidParameter(
            'agent must be an xAPI Agent identifier as JSON, e.g. {"mbox": "mailto:ann@example.com"}', prop="agent"
        ) from None
    if agent_key(agent) is None:
        raise InvalidParameter("agent must have an inverse functional identifier", prop="agent")
    return dict(agent)


def _statuses(request: Request) -> list[str]:
    wanted = [part.strip() for raw in request.query_params.getlist("status") for part in raw.split(",")]
    unknown = [s for s in wanted if s not in store.STATUSES]
    if unknown:
        shown = unknown[0][:50]
        raise InvalidParameter(f"status must be among {', '.join(store.STATUSES)}", prop="status", value=shown)
    return wanted


def _iso(ts: float | None) -> str | None:
    return None if ts is None else shape.iso(ts)


def _body(record: store.Record) -> dict[str, Any]:
    body: dict[str, Any] = {
        "actor": record.actor,
        "activity": {"objectType": "Activity", "id": record.activity_id},
        "registration": record.registration or None,
        "status": record.status,
        "completed": record.completed,
        "success": None if record.success is None else record.success == 1,
    }
    if record.score is not None:
        body["score"] = {"scaled": record.score}
    body["firstAccessed"] = _iso(record.first_at)
    body["lastAccessed"] = _iso(record.last_at)
    body["completedAt"] = _iso(record.completed_at)
    body["statements"] = record.statements
    return body


def _not_attempted(activity_id: str, registration: str) -> dict[str, Any]:
    return {
        "activity": {"objectType": "Activity", "id": activity_id},
        "registration": registration or None,
        "status": NOT_ATTEMPTED,
        "completed": False,
        "success": None,
        "statements": 0,
    }


async def _expand(
    conn: Connection, tenant_id: int, forms: list[str], roots: list[dict[str, Any]], root_activity: str
) -> None:
    """Give every root, level by level, its ``children``: a record of the learner for each child
    activity in the root's registration, or a not-attempted entry where there is none. Two queries
    a level; a cycle in the tree stops where it would repeat, and the walk at MAX_DEPTH or MAX_NODES."""
    level = [(node, root_activity, {root_activity}) for node in roots]
    nodes = len(roots)
    for _ in range(MAX_DEPTH):
        if not level or nodes >= MAX_NODES:
            break
        parents = sorted({activity for _, activity, _ in level})
        tree = await store.children(conn, tenant_id, parents, MAX_NODES - nodes)
        wanted = sorted({c for _, activity, _ in level for c in tree.get(activity, [])})
        registrations = sorted({node["registration"] or "" for node, _, _ in level})
        records = (
            await store.of_actor(
                conn, tenant_id, forms, activity_ids=wanted, registrations=registrations, limit=MAX_RECORDS
            )
            if wanted
            else []
        )
        by_key = {(r.activity_id, r.registration): r for r in records}
        following = []
        for node, activity, path in level:
            registration = node["registration"] or ""
            node["children"] = []
            for child in tree.get(activity, []):
                if child in path or nodes >= MAX_NODES:
                    continue
                found = by_key.get((child, registration))
                entry = _body(found) if found is not None else _not_attempted(child, registration)
                node["children"].append(entry)
                following.append((entry, child, path | {child}))
                nodes += 1
        level = following


@endpoint("actors/read")
async def completions(request: Request, principal: Principal) -> Response:
    """GET /api/actors/completions?agent=...: the learner's completion records."""
    rt = runtime(request)
    unknown = sorted(set(request.query_params) - PARAMETERS)
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0][:50]!r}", prop=unknown[0][:50])
    limit, skip = page(single_query(request, "limit"), single_query(request, "skip"))
    forms = forms_of(_agent(single_query(request, "agent")))
    activity = single_query(request, "activityId")
    if activity is not None and not shape.is_iri(activity):
        raise InvalidParameter("activityId must be an IRI", prop="activityId")
    registration = single_query(request, "registration")
    if registration is not None and not UUID.fullmatch(registration):
        raise InvalidParameter("registration must be a UUID", prop="registration")
    expand = single_query(request, "expand")
    if expand is not None and (expand != "hierarchy" or activity is None):
        raise InvalidParameter("expand takes hierarchy, together with activityId", prop="expand")
    async with rt.db.read() as conn:
        found = await store.of_actor(
            conn,
            principal.tenant_id,
            forms,
            activity_ids=None if activity is None else [activity],
            statuses=_statuses(request),
            registration=None if registration is None else registration.lower(),
            limit=limit,
            skip=skip,
        )
        answer = [_body(r) for r in found]
        if expand is not None and activity is not None:
            await _expand(conn, principal.tenant_id, forms, answer, activity)
    return JSON(answer, headers=NO_STORE)
