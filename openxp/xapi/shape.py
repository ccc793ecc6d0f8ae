"""Statements <-> rows and the output formats (exact, ids, canonical)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson

from openxp import wire
from openxp.agents import IFIS, actors_named, agent_key
from openxp.store.statements import NewStatement
from openxp.xapi.errors import BadRequest, InvalidStatement
from openxp.xapi.validate import IRI, Validator


def dumps(value: Any) -> bytes:
    """orjson, or the standard library for integers beyond 64 bits (valid JSON orjson refuses)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# -- identity keys ---------------------------------------------------------


def is_iri(value: str) -> bool:
    return bool(IRI.fullmatch(value))


def agent_param(raw: str) -> str:
    try:
        value = wire.parse_json(raw.encode("utf-8", "surrogatepass"))
        Validator(v2=True).actor(value, "agent")
    except (wire.WireError, InvalidStatement, UnicodeEncodeError):
        raise BadRequest("agent must be a JSON Agent or identified Group") from None
    key = agent_key(value)
    if key is None:
        raise BadRequest("agent must have an inverse functional identifier")
    return key


def _activities(statement: dict[str, Any]) -> list[str]:
    ids = []
    obj = statement.get("object") or {}
    if obj.get("objectType", "Activity") == "Activity" and "id" in obj:
        ids.append(obj["id"])
    for group in ((statement.get("context") or {}).get("contextActivities") or {}).values():
        ids += [a["id"] for a in group]
    return ids


def row(statement: dict[str, Any], stored_at: float) -> NewStatement:
    obj = statement["object"]
    kind = obj.get("objectType", "Activity")
    context = statement.get("context") or {}
    agents = {k for a in actors_named(statement) if (k := agent_key(a))}
    activities = set(_activities(statement))
    if kind == "SubStatement":
        agents |= {k for a in actors_named(obj) if (k := agent_key(a))}
        activities |= set(_activities(obj))
    return NewStatement(
        statement_id=statement["id"].lower(),
        stored=stored_at,
        verb_id=statement["verb"]["id"],
        actor_key=agent_key(statement["actor"]) or "",
        payload=dumps(statement).decode(),
        object_activity=obj["id"] if kind == "Activity" else None,
        object_agent=agent_key(obj) if kind in {"Agent", "Group"} else None,
        object_statement=obj["id"].lower() if kind == "StatementRef" else None,
        registration=context["registration"].lower() if "registration" in context else None,
        authority_key=agent_key(statement["authority"]) if "authority" in statement else None,
        agents=agents,
        activities=activities,
    )


# -- formats ---------------------------------------------------------------


# Accept-Language tags considered for format=canonical: browsers send a handful; the rest of a
# longer header is ignored (RFC 9110 12.5.4 leaves the choice to the server), so the pick costs
# at most this many dictionary look-ups per language map (docs/security.md, Input limits).
MAX_ACCEPT_LANGUAGES = 32


def accept_languages(header: str) -> list[str]:
    ranked = []
    for i, part in enumerate(header.split(",", MAX_ACCEPT_LANGUAGES)[:MAX_ACCEPT_LANGUAGES]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]


def _pick(lang_map: dict[str, str], languages: list[str]) -> dict[str, str]:
    """The entry for the first wanted tag present (or, failing that, the first entry sharing its
    primary subtag), else und / en-US / en, else the first entry: one pass over the map."""
    lowered = {k.lower(): k for k in lang_map}
    by_primary: dict[str, str] = {}
    for low, key in lowered.items():
        by_primary.setdefault(low.split("-", 1)[0], key)
    for wanted in languages:
        if wanted == "*":
            break
        picked = lowered.get(wanted)
        if picked is None:
            picked = by_primary.get(wanted.split("-", 1)[0])
        if picked is not None:
            return {picked: lang_map[picked]}
    for fallback in ("und", "en-us", "en"):
        if fallback in lowered:
            return {lowered[fallback]: lang_map[lowered[fallback]]}
    first = next(iter(lang_map))
    return {first: lang_map[first]}


def _canonical(value: Any, languages: list[str]) -> Any:
    if isinstance(value, list):
        return [_canonical(v, languages) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key == "extensions":
            out[key] = item
        elif key in {"display", "name", "description"} and isinstance(item, dict) and item:
            out[key] = _pick(item, languages)
        else:
            out[key] = _canonical(item, languages)
    return out


def _ids_actor(actor: Any) -> Any:
    if not isinstance(actor, dict):
        return actor
    out = {k: actor[k] for k in ("objectType", *IFIS) if k in actor}
    if not any(k in actor for k in IFIS) and "member" in actor:
        out["member"] = [_ids_actor(m) for m in actor["member"]]
    return out


def _ids(statement: dict[str, Any]) -> dict[str, Any]:
    out = dict(statement)
    if isinstance(out.get("verb"), dict):
        out["verb"] = {"id": out["verb"]["id"]}
    for name in ("actor", "authority"):
        if name in out:
            out[name] = _ids_actor(out[name])
    obj = out.get("object")
    if isinstance(obj, dict):
        kind = obj.get("objectType", "Activity")
        if kind == "Activity":
            out["object"] = {"id": obj["id"]}
        elif kind in {"Agent", "Group"}:
            out["object"] = _ids_actor(obj)
        elif kind == "SubStatement":
            out["object"] = _ids(obj)
    context = out.get("context")
    if isinstance(context, dict):
        context = dict(context)
        for name in ("instructor", "team"):
            if name in context:
                context[name] = _ids_actor(context[name])
        if "contextActivities" in context:
            context["contextActivities"] = {
                k: [{"id": a["id"]} for a in v] for k, v in context["contextActivities"].items()
            }
        out["context"] = context
    return out


def render(payload: str, fmt: str, languages: list[str]) -> bytes:
    if fmt == "exact":
        return payload.encode()
    statement = json.loads(payload)
    if fmt == "ids":
        return dumps(_ids(statement))
    return dumps(_canonical(statement, languages))


def iso_now() -> str:
    return iso(datetime.now(UTC).timestamp())


def iso(ts: float) -> str:
    """UTC ISO 8601 with exactly three fractional digits (stored, Consistent-Through)."""
    ms = int(ts * 1000)
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"
