"""Who an xAPI statement is about: the one-string identity of an Agent or Group (its inverse
functional identifier) and every agent a statement names.

A leaf of the domain vocabulary, like ``openxp.scopes``: the LRS (``openxp.xapi``) builds its
indexes from it and the credential rules (``openxp.auth.confine``) check against it, so neither
part has to import the other for it.
"""

from __future__ import annotations

import hashlib
from typing import Any

# xAPI Data 2.4.2.1: the inverse functional identifiers, in the order a key is taken from.
IFIS = ("mbox", "mbox_sha1sum", "openid", "account")


def agent_key(obj: Any) -> str | None:
    """The inverse functional identifier as one string ("mbox|mailto:a@b")."""
    if not isinstance(obj, dict):
        return None
    for name in IFIS:
        if name in obj:
            value = obj[name]
            if name == "account":
                return f"account|{value.get('homePage')}|{value.get('name')}"
            return f"{name}|{value}"
    return None


def actors_named(statement: dict[str, Any]) -> list[Any]:
    found = [statement.get("actor"), statement.get("authority")]
    obj = statement.get("object") or {}
    if obj.get("objectType") in {"Agent", "Group"}:
        found.append(obj)
    context = statement.get("context") or {}
    found += [context.get("instructor"), context.get("team")]
    found += [c.get("agent") for c in context.get("contextAgents", [])]
    found += [c.get("group") for c in context.get("contextGroups", [])]
    members = [m for a in found if isinstance(a, dict) for m in a.get("member", [])]
    return found + members


def named_agents(statement: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Agent and Group a statement names about people (actor, object, instructor, team,
    context agents and groups, members, and the same inside a SubStatement); not the authority,
    which the LRS sets."""
    found = [a for a in actors_named({k: v for k, v in statement.items() if k != "authority"}) if isinstance(a, dict)]
    obj = statement.get("object")
    if isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
        found += named_agents(obj)
    return found


def forms_of(agent: dict[str, Any]) -> list[str]:
    """The agent's identifier, and for an ``mbox`` also its ``mbox_sha1sum`` (xAPI Data 2.4.2.3:
    the SHA1 of the mailto IRI): the same person, whichever form a statement used."""
    erased = agent_key(agent)
    assert erased is not None
    if "mbox" not in agent:
        return [erased]
    twin = agent_key({"mbox_sha1sum": hashlib.sha1(str(agent["mbox"]).encode()).hexdigest()})  # noqa: S324
    assert twin is not None
    return [erased, twin]
