"""One scope vocabulary for OAuth clients, API keys and launch credentials.

Modelled on Learning Locker's client scopes. ``all`` permits everything;
``all/read`` permits every read scope; ``statements/read`` permits
``statements/read/mine``.

A leaf, like ``openxp.crypto``: it imports nothing of openxp, so every layer may use it,
the store included (which refuses unknown scopes when it stores them: store/scope_lists.py).
"""

from __future__ import annotations

from collections.abc import Iterable

ALL = "all"
ALL_READ = "all/read"

SCOPES: dict[str, str] = {
    ALL: "Full access to this tenant's ClearXP API and learning records",
    ALL_READ: "Read everything in this tenant",
    "users/import": "Create and update learners by import",
    "actors/read": "Read learners and their attributes",
    "actors/write": "Create and update learners",
    "actors/erase": "Erase a learner and their learning records (GDPR Art. 17)",
    "statements/read": "Read all learning records (xAPI statements)",
    "statements/read/mine": "Read the learning records this credential wrote",
    "statements/write": "Write learning records (xAPI statements)",
    "state": "Read and write xAPI state documents",
    "profile": "Read and write xAPI activity and agent profiles",
    "launch": "Create content-launch and short-lived credentials",
    "audit/read": "Read this tenant's audit log (security events)",
}

READ_SCOPES = frozenset({"actors/read", "statements/read", "statements/read/mine", "audit/read"})


def parse(raw: str) -> list[str]:
    """Split a space-delimited scope parameter (RFC 6749 3.3), keeping order, no duplicates."""
    seen: list[str] = []
    for item in raw.split(" "):
        if item and item not in seen:
            seen.append(item)
    return seen


def permits(granted: Iterable[str], required: str) -> bool:
    held = set(granted)
    if ALL in held or required in held:
        return True
    if required in READ_SCOPES and ALL_READ in held:
        return True
    return required == "statements/read/mine" and "statements/read" in held


def permits_all(granted: Iterable[str], requested: Iterable[str]) -> bool:
    """Whether ``requested`` asks for nothing beyond ``granted`` (a narrower scope is fine)."""
    held = list(granted)
    return all(permits(held, item) for item in requested)


def join(items: Iterable[str]) -> str:
    return " ".join(items)
