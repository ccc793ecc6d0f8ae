"""Erasing one learner (GDPR Art. 17): what ``POST /api/actors/erase`` and ``openxp learners erase``
share. The request names the learner by an xAPI Agent identifier; this checks it, finds the
learner record it names (if it can name one), runs the erasure in the caller's transaction
(``openxp.store.erasure``) and records the ``learner_erased`` event with the counts, never the
identifier.
"""

from __future__ import annotations

import re
from typing import Any

from openxp import audit
from openxp.agents import IFIS
from openxp.imports.validation import is_email
from openxp.store import erasure as erasure_store
from openxp.store.db import Connection

EVENT = "learner_erased"
MAX_IDENTIFIER = 2048
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_MEMBERS = frozenset({"objectType", "name", *IFIS})


def refusal(agent: Any) -> tuple[str, str] | None:
    """Why ``agent`` is no xAPI Agent identifier (message, property), or None when it is one."""
    if not isinstance(agent, dict):
        return "agent must be an xAPI Agent object", "agent"
    unknown = sorted(set(agent) - _MEMBERS)
    if unknown:
        return f"unknown member {unknown[0][:50]!r} of agent", f"agent.{unknown[0][:50]}"
    if agent.get("objectType", "Agent") != "Agent":
        return "agent.objectType must be Agent", "agent.objectType"
    ifis = [k for k in IFIS if k in agent]
    if len(ifis) != 1:
        return "an Agent has exactly one of mbox, mbox_sha1sum, openid, account", "agent"
    ifi, value = ifis[0], agent[ifis[0]]
    if ifi == "account":
        if (
            not isinstance(value, dict)
            or set(value) != {"homePage", "name"}
            or not all(isinstance(v, str) and v and len(v) <= MAX_IDENTIFIER for v in value.values())
        ):
            return "agent.account must be {homePage, name}, two non-empty strings", "agent.account"
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_IDENTIFIER:
        return f"agent.{ifi} must be a non-empty string", f"agent.{ifi}"
    if ifi == "mbox" and not (value.startswith("mailto:") and is_email(value[7:])):
        return "agent.mbox must be mailto:<email address>", "agent.mbox"
    if ifi == "mbox_sha1sum" and not _SHA1.fullmatch(value):
        return "agent.mbox_sha1sum must be 40 hex digits", "agent.mbox_sha1sum"
    return None


def learner_identifier(agent: dict[str, Any], public_url: str) -> str | None:
    """The learner record the Agent names (as /api/actors shows learners), if any."""
    if "mbox" in agent:
        return str(agent["mbox"])[7:].lower()
    account = agent.get("account")
    if isinstance(account, dict) and account.get("homePage") == public_url:
        return str(account["name"]).strip()
    return None


def identified(agent: dict[str, Any]) -> dict[str, Any]:
    """Only the identifier: the Agent's name is not needed to find anyone."""
    return {k: v for k, v in agent.items() if k in IFIS}


async def erase(
    conn: Connection,
    tenant_id: int,
    agent: dict[str, Any],
    public_url: str,
    *,
    dry_run: bool,
    tenant: str,
    actor: str | None,
    client_id: str | None = None,
) -> dict[str, Any]:
    """Erase (or, with ``dry_run``, count) in ``conn``'s transaction; the answer's body."""
    erased = await erasure_store.erase(
        conn, tenant_id, identified(agent), learner_identifier(agent, public_url), dry_run=dry_run
    )
    removed = erased.as_dict()
    if not dry_run:
        # Severity high: written in this transaction (with the erasure, or not at all), never queued.
        audit.event(EVENT, severity="high", tenant=tenant, actor=actor, client_id=client_id, removed=removed)
    return {"dryRun": dry_run, "removed": removed}
