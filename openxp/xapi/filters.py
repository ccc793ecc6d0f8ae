"""The statement filters of GET /xapi/statements (xAPI Communication 2.1.3) read from query
parameters: ``agent`` (JSON), ``verb``, ``activity``, ``registration``, ``related_agents``,
``related_activities``, ``since`` and ``until``. One parser for the LRS's own GET and for
``GET /api/export/statements`` (which renders the same refusals in the /api error shape)."""

from __future__ import annotations

from openxp.store.statements import Filters
from openxp.xapi import shape
from openxp.xapi.errors import BadRequest, InvalidStatement
from openxp.xapi.validate import UUID, timestamp

NAMES = frozenset(
    {"agent", "verb", "activity", "registration", "related_agents", "related_activities", "since", "until"}
)


def bool_param(params: dict[str, str], name: str) -> bool:
    value = params.get(name, "false")
    if value not in {"true", "false"}:
        raise BadRequest(f"{name} must be true or false", prop=name)
    return value == "true"


def time_param(params: dict[str, str], name: str) -> float | None:
    if name not in params:
        return None
    # A raw '+' in an unencoded offset arrives as a space.
    value = params[name].replace(" ", "+")
    try:
        return timestamp(value, name).timestamp()
    except InvalidStatement:
        raise BadRequest(f"{name} must be an ISO 8601 timestamp", prop=name) from None


def parse(params: dict[str, str]) -> Filters:
    """The filters ``params`` name (other names are the caller's to judge); BadRequest names the
    first one that is malformed."""
    agent = None
    if "agent" in params:
        try:
            agent = shape.agent_param(params["agent"])
        except BadRequest as exc:
            raise BadRequest(exc.description, prop="agent") from None
    for name in ("verb", "activity"):
        if name in params and not shape.is_iri(params[name]):
            raise BadRequest(f"{name} must be an IRI", prop=name)
    if "registration" in params and not UUID.fullmatch(params["registration"]):
        raise BadRequest("registration must be a UUID", prop="registration")
    return Filters(
        agent=agent,
        verb=params.get("verb"),
        activity=params.get("activity"),
        registration=params["registration"].lower() if "registration" in params else None,
        related_agents=bool_param(params, "related_agents"),
        related_activities=bool_param(params, "related_activities"),
        since=time_param(params, "since"),
        until=time_param(params, "until"),
    )
