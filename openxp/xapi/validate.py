"""Statement validation per xAPI-Data.md: strict where the spec says MUST.

Plain Python rather than a JSON Schema: most rules are cross-field (exactly one
inverse functional identifier, revision only with an Activity object, raw
between min and max, no SubStatement inside a SubStatement), and every failure
must name the property at fault. Each check raises ``InvalidStatement(path,
reason)``; nothing here touches the database.

``normalize`` runs after validation and only rewrites what the spec lets the
LRS rewrite: a single context activity becomes a one-element array.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from openxp.agents import IFIS
from openxp.xapi.errors import InvalidStatement

SHA1_HEX = re.compile(r"^[0-9a-fA-F]{40}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# RFC 3987 absolute IRI, checked for what a statement can get wrong: a scheme, no whitespace.
IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+$")
MBOX = re.compile(r"^mailto:[^@\s:/]+@[^@\s]+$")
# RFC 5646 language tags (the regular grammar; grandfathered tags are not used in xAPI).
LANG_TAG = re.compile(
    r"^(?:(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})"
    r"(?:-[A-Za-z]{4})?"
    r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
    r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*"
    r"(?:-[xX](?:-[A-Za-z0-9]{1,8})+)?"
    r"|[xX](?:-[A-Za-z0-9]{1,8})+)$"
)
TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|z|[+-]\d{2}(?::?\d{2})?)$")
_N = r"\d+(?:[.,]\d+)?"
DURATION = re.compile(
    rf"^P(?:{_N}W|(?=\d|T\d)(?:{_N}Y)?(?:{_N}M)?(?:{_N}D)?(?:T(?=\d)(?:{_N}H)?(?:{_N}M)?(?:{_N}S)?)?)$"
)
STATEMENT_VERSION = re.compile(r"^(?:1\.0|2\.0)(?:\.\d+)?$")

INTERACTION_TYPES = frozenset(
    {
        "true-false",
        "choice",
        "fill-in",
        "long-fill-in",
        "matching",
        "performance",
        "sequencing",
        "likert",
        "numeric",
        "other",
    }
)
INTERACTION_LISTS = ("choices", "scale", "source", "target", "steps")
CONTEXT_ACTIVITY_KEYS = frozenset({"parent", "grouping", "category", "other"})

STATEMENT_KEYS = frozenset(
    {"id", "actor", "verb", "object", "result", "context", "timestamp", "stored", "authority", "version", "attachments"}
)
SUBSTATEMENT_KEYS = frozenset(
    {"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"}
)
AGENT_KEYS = frozenset({"objectType", "name", *IFIS})
GROUP_KEYS = AGENT_KEYS | {"member"}
ACTIVITY_KEYS = frozenset({"objectType", "id", "definition"})
DEFINITION_KEYS = frozenset(
    {
        "name",
        "description",
        "type",
        "moreInfo",
        "interactionType",
        "correctResponsesPattern",
        "extensions",
        *INTERACTION_LISTS,
    }
)
RESULT_KEYS = frozenset({"score", "success", "completion", "response", "duration", "extensions"})
SCORE_KEYS = frozenset({"scaled", "raw", "min", "max"})
CONTEXT_KEYS_1 = frozenset(
    {
        "registration",
        "instructor",
        "team",
        "contextActivities",
        "revision",
        "platform",
        "language",
        "statement",
        "extensions",
    }
)
CONTEXT_KEYS_2 = CONTEXT_KEYS_1 | {"contextAgents", "contextGroups"}
ATTACHMENT_KEYS = frozenset({"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"})


def _fail(path: str, reason: str) -> InvalidStatement:
    return InvalidStatement(path, reason)


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "must be a JSON object")
    return value


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _keys(obj: dict[str, Any], allowed: frozenset[str], path: str) -> None:
    for key, value in obj.items():
        if key not in allowed:
            raise _fail(_at(path, key), "is not a property defined here (names are case-sensitive)")
        if value is None:
            raise _fail(_at(path, key), "must not be null")


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, "must be a string")
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, "must be a number")
    return value


def _bool(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise _fail(path, "must be true or false")


def iri(value: Any, path: str) -> str:
    if not isinstance(value, str) or not IRI.fullmatch(value):
        raise _fail(path, "must be an absolute IRI (with a scheme)")
    return value


def uuid(value: Any, path: str) -> str:
    if not isinstance(value, str) or not UUID.fullmatch(value):
        raise _fail(path, "must be a UUID (8-4-4-4-12 hex digits)")
    return value


def language_tag(value: Any, path: str) -> None:
    if not isinstance(value, str) or not LANG_TAG.fullmatch(value):
        raise _fail(path, "must be an RFC 5646 language tag")


def language_map(value: Any, path: str) -> None:
    obj = _object(value, path)
    for tag, text in obj.items():
        language_tag(tag, f"{path}.{tag}")
        _string(text, f"{path}.{tag}")


def extensions(value: Any, path: str) -> None:
    # Values are free JSON (null included); keys are IRIs.
    for key in _object(value, path):
        iri(key, f"{path}.{key}")


def timestamp(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise _fail(path, "must be an ISO 8601 timestamp")
    match = TIMESTAMP.fullmatch(value)
    if match is None:
        raise _fail(path, "must be an ISO 8601 date-time with a time zone")
    if match.group(8) in {"-00", "-0000", "-00:00"}:
        raise _fail(path, "the offset -00:00 is not allowed (RFC 3339 unknown local offset)")
    try:
        return parse_time(value)
    except ValueError:
        raise _fail(path, "is not a valid date-time") from None


def parse_time(value: str) -> datetime:
    """ISO 8601 -> aware datetime (fractions beyond microseconds are cut, not rounded)."""
    match = TIMESTAMP.fullmatch(value)
    if match is None:
        raise ValueError(value)
    fraction = (match.group(7) or "")[:7]
    zone = match.group(8).upper()
    if zone != "Z" and len(zone) == 3:
        zone += ":00"
    elif zone != "Z" and ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    text = f"{match.group(1)}-{match.group(2)}-{match.group(3)}T{match.group(4)}:{match.group(5)}:{match.group(6)}"
    return datetime.fromisoformat(text + fraction + ("+00:00" if zone == "Z" else zone))


class Validator:
    """One statement's checks; ``v2`` allows the xAPI 2.0 context properties."""

    def __init__(self, *, v2: bool) -> None:
        self.context_keys = CONTEXT_KEYS_2 if v2 else CONTEXT_KEYS_1

    # -- actors ---------------------------------------------------------
    def _ifis(self, obj: dict[str, Any], path: str) -> int:
        count = 0
        for name in IFIS:
            if name not in obj:
                continue
            count += 1
            value = obj[name]
            where = f"{path}.{name}"
            if name == "mbox":
                if not isinstance(value, str) or not MBOX.fullmatch(value):
                    raise _fail(where, "must be mailto: followed by an email address")
            elif name == "mbox_sha1sum":
                # Data 2.4.2.3: the hex-encoded SHA1 of a mailto IRI, so 40 hex digits.
                if not isinstance(value, str) or not SHA1_HEX.fullmatch(value):
                    raise _fail(where, "must be 40 hex digits (the SHA1 of a mailto IRI)")
            elif name == "openid":
                iri(value, where)
            else:
                account = _object(value, where)
                _keys(account, frozenset({"homePage", "name"}), where)
                if "homePage" not in account or "name" not in account:
                    raise _fail(where, "must have homePage and name")
                iri(account["homePage"], f"{where}.homePage")
                _string(account["name"], f"{where}.name")
        return count

    def agent(self, value: Any, path: str) -> dict[str, Any]:
        obj = _object(value, path)
        _keys(obj, AGENT_KEYS, path)
        if obj.get("objectType", "Agent") != "Agent":
            raise _fail(f"{path}.objectType", "must be Agent")
        if "name" in obj:
            _string(obj["name"], f"{path}.name")
        if self._ifis(obj, path) != 1:
            raise _fail(path, "an Agent must have exactly one of mbox, mbox_sha1sum, openid, account")
        return obj

    def group(self, value: Any, path: str) -> dict[str, Any]:
        obj = _object(value, path)
        _keys(obj, GROUP_KEYS, path)
        if obj.get("objectType") != "Group":
            raise _fail(f"{path}.objectType", "must be Group")
        if "name" in obj:
            _string(obj["name"], f"{path}.name")
        ifis = self._ifis(obj, path)
        if ifis > 1:
            raise _fail(path, "a Group has at most one inverse functional identifier")
        if "member" in obj or ifis == 0:
            members = obj.get("member")
            if not isinstance(members, list):
                raise _fail(f"{path}.member", "an anonymous Group must have a member array")
            for i, member in enumerate(members):
                self.agent(member, f"{path}.member[{i}]")
        return obj

    def actor(self, value: Any, path: str) -> dict[str, Any]:
        obj = _object(value, path)
        kind = obj.get("objectType", "Agent")
        if kind == "Group":
            return self.group(obj, path)
        if kind != "Agent":
            raise _fail(f"{path}.objectType", "must be Agent or Group")
        return self.agent(obj, path)

    def authority(self, value: Any, path: str) -> None:
        obj = self.actor(value, path)
        if obj.get("objectType") == "Group":
            if any(name in obj for name in IFIS) or len(obj.get("member", [])) != 2:
                raise _fail(path, "a Group authority must be an anonymous Group of exactly two Agents")

    # -- verb, object ---------------------------------------------------
    def verb(self, value: Any, path: str) -> None:
        obj = _object(value, path)
        _keys(obj, frozenset({"id", "display"}), path)
        if "id" not in obj:
            raise _fail(f"{path}.id", "is required")
        iri(obj["id"], f"{path}.id")
        if "display" in obj:
            language_map(obj["display"], f"{path}.display")

    def activity(self, value: Any, path: str) -> None:
        obj = _object(value, path)
        _keys(obj, ACTIVITY_KEYS, path)
        if obj.get("objectType", "Activity") != "Activity":
            raise _fail(f"{path}.objectType", "must be Activity")
        if "id" not in obj:
            raise _fail(f"{path}.id", "is required")
        iri(obj["id"], f"{path}.id")
        if "definition" in obj:
            self.definition(obj["definition"], f"{path}.definition")

    def definition(self, value: Any, path: str) -> None:
        obj = _object(value, path)
        _keys(obj, DEFINITION_KEYS, path)
        for name in ("name", "description"):
            if name in obj:
                language_map(obj[name], f"{path}.{name}")
        for name in ("type", "moreInfo"):
            if name in obj:
                iri(obj[name], f"{path}.{name}")
        if "extensions" in obj:
            extensions(obj["extensions"], f"{path}.extensions")
        interactive = [n for n in ("correctResponsesPattern", *INTERACTION_LISTS) if n in obj]
        if "interactionType" in obj:
            if not isinstance(obj["interactionType"], str) or obj["interactionType"] not in INTERACTION_TYPES:
                raise _fail(f"{path}.interactionType", "is not an interaction type defined by xAPI")
        elif interactive:
            raise _fail(f"{path}.interactionType", f"is required with {interactive[0]}")
        if "correctResponsesPattern" in obj:
            pattern = obj["correctResponsesPattern"]
            if not isinstance(pattern, list):
                raise _fail(f"{path}.correctResponsesPattern", "must be an array of strings")
            for i, item in enumerate(pattern):
                _string(item, f"{path}.correctResponsesPattern[{i}]")
        for name in INTERACTION_LISTS:
            if name in obj:
                self._components(obj[name], f"{path}.{name}")

    def _components(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise _fail(path, "must be an array of interaction components")
        seen: set[str] = set()
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            comp = _object(item, where)
            _keys(comp, frozenset({"id", "description"}), where)
            ident = _string(comp.get("id"), f"{where}.id")
            if ident in seen:
                raise _fail(f"{where}.id", "interaction component ids must be unique")
            seen.add(ident)
            if "description" in comp:
                language_map(comp["description"], f"{where}.description")

    def statement_ref(self, value: Any, path: str) -> None:
        obj = _object(value, path)
        _keys(obj, frozenset({"objectType", "id"}), path)
        if obj.get("objectType") != "StatementRef":
            raise _fail(f"{path}.objectType", "must be StatementRef")
        uuid(obj.get("id"), f"{path}.id")

    def object(self, value: Any, path: str, *, nested: bool) -> str:
        obj = _object(value, path)
        kind = obj.get("objectType", "Activity")
        if kind == "Activity":
            self.activity(obj, path)
        elif kind == "Agent":
            self.agent(obj, path)
        elif kind == "Group":
            self.group(obj, path)
        elif kind == "StatementRef":
            self.statement_ref(obj, path)
        elif kind == "SubStatement" and not nested:
            self.substatement(obj, path)
        elif kind == "SubStatement":
            raise _fail(f"{path}.objectType", "a SubStatement must not contain a SubStatement")
        else:
            raise _fail(f"{path}.objectType", "must be Activity, Agent, Group, StatementRef or SubStatement")
        return str(kind)

    # -- result, context, attachments ------------------------------------
    def result(self, value: Any, path: str) -> None:
        obj = _object(value, path)
        _keys(obj, RESULT_KEYS, path)
        for name in ("success", "completion"):
            if name in obj:
                _bool(obj[name], f"{path}.{name}")
        if "response" in obj:
            _string(obj["response"], f"{path}.response")
        if "duration" in obj:
            if not isinstance(obj["duration"], str) or not DURATION.fullmatch(obj["duration"]):
                raise _fail(f"{path}.duration", "must be an ISO 8601 duration")
        if "extensions" in obj:
            extensions(obj["extensions"], f"{path}.extensions")
        if "score" in obj:
            self.score(obj["score"], f"{path}.score")

    def score(self, value: Any, path: str) -> None:
        obj = _object(value, path)
        _keys(obj, SCORE_KEYS, path)
        nums = {name: _number(obj[name], f"{path}.{name}") for name in SCORE_KEYS if name in obj}
        if "scaled" in nums and not -1 <= nums["scaled"] <= 1:
            raise _fail(f"{path}.scaled", "must be between -1 and 1")
        if "min" in nums and "max" in nums and nums["min"] >= nums["max"]:
            raise _fail(f"{path}.min", "must be less than max")
        if "raw" in nums:
            if "min" in nums and nums["raw"] < nums["min"]:
                raise _fail(f"{path}.raw", "must not be less than min")
            if "max" in nums and nums["raw"] > nums["max"]:
                raise _fail(f"{path}.raw", "must not be greater than max")

    def context(self, value: Any, path: str, object_kind: str) -> None:
        obj = _object(value, path)
        _keys(obj, self.context_keys, path)
        if "registration" in obj:
            uuid(obj["registration"], f"{path}.registration")
        if "instructor" in obj:
            self.actor(obj["instructor"], f"{path}.instructor")
        if "team" in obj:
            self.group(obj["team"], f"{path}.team")
        for name in ("revision", "platform"):
            if name in obj:
                _string(obj[name], f"{path}.{name}")
                if object_kind != "Activity":
                    raise _fail(f"{path}.{name}", "is only allowed when the object is an Activity")
        if "language" in obj:
            language_tag(obj["language"], f"{path}.language")
        if "statement" in obj:
            self.statement_ref(obj["statement"], f"{path}.statement")
        if "extensions" in obj:
            extensions(obj["extensions"], f"{path}.extensions")
        if "contextActivities" in obj:
            where = f"{path}.contextActivities"
            activities = _object(obj["contextActivities"], where)
            _keys(activities, CONTEXT_ACTIVITY_KEYS, where)
            for key, item in activities.items():
                items = item if isinstance(item, list) else [item]
                for i, activity in enumerate(items):
                    self.activity(activity, f"{where}.{key}[{i}]")
        for name, kind, inner, check in (
            ("contextAgents", "contextAgent", "agent", self.agent),
            ("contextGroups", "contextGroup", "group", self.group),
        ):
            if name in obj:
                self._context_actors(obj[name], f"{path}.{name}", kind, inner, check)

    def _context_actors(self, value: Any, path: str, kind: str, inner: str, check: Any) -> None:
        if not isinstance(value, list):
            raise _fail(path, "must be an array")
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            obj = _object(item, where)
            _keys(obj, frozenset({"objectType", inner, "relevantTypes"}), where)
            if obj.get("objectType") != kind:
                raise _fail(f"{where}.objectType", f"must be {kind}")
            if inner not in obj:
                raise _fail(f"{where}.{inner}", "is required")
            check(obj[inner], f"{where}.{inner}")
            if "relevantTypes" in obj:
                types = obj["relevantTypes"]
                if not isinstance(types, list) or not types:
                    raise _fail(f"{where}.relevantTypes", "must be a non-empty array of IRIs")
                for j, t in enumerate(types):
                    iri(t, f"{where}.relevantTypes[{j}]")

    def attachments(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise _fail(path, "must be an array")
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            obj = _object(item, where)
            _keys(obj, ATTACHMENT_KEYS, where)
            for name in ("usageType", "display", "contentType", "length", "sha2"):
                if name not in obj:
                    raise _fail(f"{where}.{name}", "is required")
            iri(obj["usageType"], f"{where}.usageType")
            language_map(obj["display"], f"{where}.display")
            if "description" in obj:
                language_map(obj["description"], f"{where}.description")
            _string(obj["contentType"], f"{where}.contentType")
            if isinstance(obj["length"], bool) or not isinstance(obj["length"], int) or obj["length"] < 0:
                raise _fail(f"{where}.length", "must be a non-negative integer")
            _string(obj["sha2"], f"{where}.sha2")
            if "fileUrl" in obj:
                iri(obj["fileUrl"], f"{where}.fileUrl")

    # -- statements -----------------------------------------------------
    def _body(self, obj: dict[str, Any], path: str, *, nested: bool) -> None:
        prefix = f"{path}." if path else ""
        for name in ("actor", "verb", "object"):
            if name not in obj:
                raise _fail(f"{prefix}{name}", "is required")
        self.actor(obj["actor"], f"{prefix}actor")
        self.verb(obj["verb"], f"{prefix}verb")
        kind = self.object(obj["object"], f"{prefix}object", nested=nested)
        if "result" in obj:
            self.result(obj["result"], f"{prefix}result")
        if "context" in obj:
            self.context(obj["context"], f"{prefix}context", kind)
        if "timestamp" in obj:
            timestamp(obj["timestamp"], f"{prefix}timestamp")
        if "attachments" in obj:
            self.attachments(obj["attachments"], f"{prefix}attachments")

    def substatement(self, obj: dict[str, Any], path: str) -> None:
        _keys(obj, SUBSTATEMENT_KEYS, path)
        self._body(obj, path, nested=True)

    def statement(self, value: Any, path: str = "") -> dict[str, Any]:
        obj = _object(value, path or "statement")
        _keys(obj, STATEMENT_KEYS, path)
        prefix = f"{path}." if path else ""
        if "id" in obj:
            uuid(obj["id"], f"{prefix}id")
        self._body(obj, path, nested=False)
        if "stored" in obj:
            timestamp(obj["stored"], f"{prefix}stored")
        if "authority" in obj:
            self.authority(obj["authority"], f"{prefix}authority")
        if "version" in obj and (
            not isinstance(obj["version"], str) or not STATEMENT_VERSION.fullmatch(obj["version"])
        ):
            raise _fail(f"{prefix}version", "must be a 1.0.x or 2.0.x version")
        verb = obj["verb"]["id"]
        if verb == VOIDED and obj["object"].get("objectType") != "StatementRef":
            raise _fail(f"{prefix}object", "a voiding statement's object must be a StatementRef")
        return obj


VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def normalize(statement: dict[str, Any]) -> None:
    """Context activities are always stored (and returned) as arrays."""
    for holder in (statement, statement.get("object")):
        if not isinstance(holder, dict):
            continue
        context = holder.get("context")
        if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
            activities = context["contextActivities"]
            for key, value in list(activities.items()):
                if not isinstance(value, list):
                    activities[key] = [value]
