"""Statement comparison (xAPI Data 2.3.1, "Statement Comparison Requirements").

A re-sent statement with a known id is the same statement when it differs only
in what the immutability exceptions allow: properties the LRS sets, the verb's
``display``, Activity Definitions, the serialization of timestamps, the order of
a Group's members, and the case of case-insensitive values. Everything else,
including ``result.duration`` as a string (but, in 2.0, only to 0.01 s), counts.
"""

from __future__ import annotations

import re
from typing import Any

from openxp.xapi.validate import parse_time

LRS_SET = ("stored", "authority", "version")
_SECONDS = re.compile(r"(\d+)\.(\d+)S$")


def same_statement(sent: dict[str, Any], existing: dict[str, Any], version: str) -> bool:
    a = {k: v for k, v in sent.items() if k not in LRS_SET}
    b = {k: v for k, v in existing.items() if k not in LRS_SET}
    if "timestamp" not in a:
        b.pop("timestamp", None)
    a.setdefault("id", b.get("id"))
    return _canonical(a, version) == _canonical(b, version)


def _canonical(statement: dict[str, Any], version: str) -> Any:
    return _statement(statement, version)


def _statement(s: dict[str, Any], version: str) -> dict[str, Any]:
    out = dict(s)
    if isinstance(out.get("id"), str):
        out["id"] = out["id"].lower()
    if isinstance(out.get("timestamp"), str):
        out["timestamp"] = _instant(out["timestamp"])
    if isinstance(out.get("verb"), dict):
        out["verb"] = {k: v for k, v in out["verb"].items() if k != "display"}
    for key in ("actor", "object"):
        if key in out:
            out[key] = _object(out[key], version)
    if isinstance(out.get("context"), dict):
        out["context"] = _context(out["context"], version)
    if isinstance(out.get("result"), dict) and isinstance(out["result"].get("duration"), str):
        out["result"] = {**out["result"], "duration": _duration(out["result"]["duration"], version)}
    return out


def _object(obj: Any, version: str) -> Any:
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        return {k: v for k, v in obj.items() if k not in ("definition", "objectType")}
    if kind == "SubStatement":
        return {**_statement(obj, version), "objectType": "SubStatement"}
    if kind == "StatementRef" and isinstance(obj.get("id"), str):
        return {**obj, "id": obj["id"].lower()}
    return _agent(obj)


def _agent(agent: dict[str, Any]) -> dict[str, Any]:
    out = dict(agent)
    mbox = out.get("mbox")
    if isinstance(mbox, str) and "@" in mbox:
        local, _, domain = mbox.rpartition("@")
        out["mbox"] = f"{local}@{domain.lower()}"
    if isinstance(out.get("mbox_sha1sum"), str):
        out["mbox_sha1sum"] = out["mbox_sha1sum"].lower()
    members = out.get("member")
    if isinstance(members, list):
        normalised = [_agent(m) if isinstance(m, dict) else m for m in members]
        out["member"] = sorted(normalised, key=repr)
    return out


def _context(context: dict[str, Any], version: str) -> dict[str, Any]:
    out = dict(context)
    if isinstance(out.get("registration"), str):
        out["registration"] = out["registration"].lower()
    for key in ("instructor", "team"):
        if isinstance(out.get(key), dict):
            out[key] = _agent(out[key])
    activities = out.get("contextActivities")
    if isinstance(activities, dict):
        out["contextActivities"] = {
            kind: [_object(a, version) for a in (items if isinstance(items, list) else [items])]
            for kind, items in activities.items()
        }
    if isinstance(out.get("statement"), dict):
        out["statement"] = _object(out["statement"], version)
    return out


def _instant(value: str) -> Any:
    try:
        return parse_time(value).timestamp()
    except ValueError:
        return value


def _duration(value: str, version: str) -> str:
    """1.0.3 compares durations as strings; 2.0 only to hundredths of a second (4.2.7)."""
    if not version.startswith("2"):
        return value
    return _SECONDS.sub(lambda m: f"{m.group(1)}.{m.group(2)[:2].ljust(2, '0')}S", value)
