"""What an actor-bound credential may do on the LRS.

A short-lived credential with data.actor, and every launch credential, acts
only as its Agent. A launch credential is further held to its activity (the
statement's object is that activity or an IRI under it, or its context names
it) and, when the launch named one, its registration (SECURITY.md J-03).
"""

from __future__ import annotations

from typing import Any

from openxp.agents import agent_key, named_agents
from openxp.auth.errors import OutsideCredential, VoidingForbidden
from openxp.auth.principal import Principal


def under(iri: str, activity: str) -> bool:
    """The launch activity itself, or an IRI beneath it (``activity/...``, ``#...``, ``?...``)."""
    return iri == activity or (iri.startswith(activity) and iri[len(activity)] in "/#?")


def confine_agent(principal: Principal, agent_key: str | None) -> None:
    bound = principal.restrictions.get("actor_key")
    if bound is not None and agent_key != bound:
        raise OutsideCredential("this credential may act only as its own actor")


def confine_registration(principal: Principal, registration: str | None, *, required: bool = True) -> None:
    bound = principal.restrictions.get("registration")
    if bound is None or (registration is None and not required):
        return
    if registration is None or registration.lower() != bound:
        raise OutsideCredential("this credential is limited to the registration of its launch")


def confine_activity(principal: Principal, activity_id: str | None) -> None:
    bound = principal.restrictions.get("activity")
    if bound is not None and (activity_id is None or not under(activity_id, bound)):
        raise OutsideCredential("this credential is limited to the activity of its launch")


def confine_people(principal: Principal, statement: dict[str, Any]) -> None:
    """An actor-bound credential speaks for its learner alone: its actor is that Agent (not a
    Group, whose members would be others), and every other Agent or Group the statement names
    (object, instructor, team, context agents and groups, members, a SubStatement's) is that
    Agent too. Otherwise one learner's content could put statements into other learners'
    ``agent`` and ``related_agents`` results."""
    bound = principal.restrictions.get("actor_key")
    if bound is None:
        return
    if (statement.get("actor") or {}).get("objectType") == "Group":
        raise OutsideCredential("this credential acts as its Agent, not as a Group")
    for agent in named_agents(statement):
        if agent_key(agent) != bound:
            raise OutsideCredential("this credential may not name other agents or groups in a statement")


VOIDED = "http://adlnet.gov/expapi/verbs/voided"
LAUNCH_DATA = "LMS.LaunchData"


def confine_statement(principal: Principal, statement: dict[str, Any]) -> None:
    if not principal.restricted:
        return
    # cmi5 6.3: "The LMS MUST NOT provide permissions/credentials which allow the AU to issue
    # voiding Statements."
    if "session" in principal.restrictions and (statement.get("verb") or {}).get("id") == VOIDED:
        raise VoidingForbidden()
    confine_agent(principal, agent_key(statement.get("actor")))
    confine_people(principal, statement)
    context: dict[str, Any] = statement.get("context") or {}
    confine_registration(principal, context.get("registration"))
    bound = principal.restrictions.get("activity")
    if bound is None:
        return
    obj = statement.get("object") or {}
    named = [obj.get("id")] if obj.get("objectType", "Activity") == "Activity" else []
    for group in (context.get("contextActivities") or {}).values():
        named += [a.get("id") for a in (group if isinstance(group, list) else [group]) if isinstance(a, dict)]
    if not any(isinstance(iri, str) and under(iri, bound) for iri in named):
        raise OutsideCredential("the statement is not about the activity of this launch")


def confine_launch_data(principal: Principal, method: str, state_id: str | None) -> None:
    """cmi5 10.2.1: "The AU MUST NOT modify or delete the LMS.LaunchData State document": a cmi5
    credential reads it, and may not delete it by deleting all of its State either."""
    if "session" not in principal.restrictions or method in ("GET", "HEAD"):
        return
    if state_id == LAUNCH_DATA or (method == "DELETE" and state_id is None):
        raise OutsideCredential("the LMS.LaunchData document is written by the LMS; content may only read it")


def confines_voiding(principal: Principal) -> bool:
    """Learner-bound credentials and those that may read only their own statements."""
    return principal.restricted or not principal.may("statements/read")


def confine_voiding(
    principal: Principal, authority_key: str | None, target: dict[str, Any] | None, target_authority: str | None
) -> None:
    """A confined credential voids only what it could itself have written: for an actor-bound
    credential a statement passing ``confine_statement`` (its actor, registration, activity,
    no one else named), for a statements/read/mine credential one it wrote. An id it cannot
    see, existing or not, is refused alike, so the answer is no existence oracle."""
    if not confines_voiding(principal):
        return
    if target is None:
        raise VoidingForbidden()
    if not principal.may("statements/read") and target_authority != authority_key:
        raise VoidingForbidden()
    try:
        confine_statement(principal, target)
    except OutsideCredential:
        raise VoidingForbidden() from None
