"""Our own statement cases for the xAPI validation rules (xAPI-Data.md 2.4 and 4.0),
each with the status the LRS must answer.

The ADL conformance suite checks the same rules (see /work/conformance/NOTES.md
section 3.3); these statements are written from the spec, not taken from it.
Agent and Group rules are applied in every position an Agent or Group may
appear, the way the spec requires (actor, object, authority, instructor, team,
and the same inside a SubStatement).
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

V1 = "1.0.3"
V2 = "2.0.0"
BOTH = (V1, V2)

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
ACTIVITY = "http://example.com/cases/activity"
UUID_A = "d3b9c2a4-1f5e-4b7a-9c3d-2e6f8a0b1c4d"


class Case(NamedTuple):
    name: str
    statement: dict[str, Any]
    status: int
    versions: tuple[str, ...] = BOTH


def base() -> dict[str, Any]:
    return {
        "actor": {"objectType": "Agent", "name": "Case Runner", "mbox": "mailto:case.runner@example.com"},
        "verb": {"id": "http://example.com/verbs/tested", "display": {"en-US": "tested"}},
        "object": {"objectType": "Activity", "id": ACTIVITY},
    }


def substatement() -> dict[str, Any]:
    inner = base()
    inner["objectType"] = "SubStatement"
    return inner


def put(path: str, value: Any, statement: dict[str, Any] | None = None) -> dict[str, Any]:
    """``statement`` (default: base()) with ``value`` set at the dotted ``path``; the value ``DROP`` deletes."""
    body = copy.deepcopy(statement) if statement is not None else base()
    keys = path.split(".")
    node = body
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is DROP:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = copy.deepcopy(value)
    return body


DROP = object()

# -- Agents and Groups (Data 2.4.2) -------------------------------------------------

SHA1 = "8a8b5b1e2f0c3d4e5f60718293a4b5c6d7e8f901"
IFIS: dict[str, Any] = {
    "mbox": "mailto:ifi@example.com",
    "mbox_sha1sum": SHA1,
    "openid": "http://openid.example.com/ifi",
    "account": {"homePage": "http://accounts.example.com", "name": "ifi-42"},
}
MEMBER = {"objectType": "Agent", "mbox": "mailto:member1@example.com"}
MEMBER2 = {"account": {"homePage": "http://accounts.example.com", "name": "member-2"}}

AGENTS_OK: dict[str, dict[str, Any]] = {f"agent {k}": {"objectType": "Agent", k: v} for k, v in IFIS.items()}
AGENTS_OK["agent with name"] = {"objectType": "Agent", "name": "Some One", "mbox": "mailto:some.one@example.com"}
AGENTS_OK["agent mbox with plus"] = {"objectType": "Agent", "mbox": "mailto:first.last+tag@sub.example.co.uk"}

AGENTS_BAD: dict[str, dict[str, Any]] = {
    "agent without IFI": {"objectType": "Agent", "name": "Nobody"},
    "agent mbox no mailto": {"objectType": "Agent", "mbox": "ifi@example.com"},
    "agent mbox http": {"objectType": "Agent", "mbox": "http://example.com/ifi"},
    "agent mbox not an email": {"objectType": "Agent", "mbox": "mailto:should.fail.com"},
    "agent mbox number": {"objectType": "Agent", "mbox": 12},
    "agent mbox_sha1sum number": {"objectType": "Agent", "mbox_sha1sum": 1234},
    "agent mbox_sha1sum not hex": {"objectType": "Agent", "mbox_sha1sum": "z" * 40},
    "agent openid not URI": {"objectType": "Agent", "openid": "should fail"},
    "agent openid scheme-less": {"objectType": "Agent", "openid": "example.com/ifi"},
    "agent account no homePage": {"objectType": "Agent", "account": {"name": "x"}},
    "agent account no name": {"objectType": "Agent", "account": {"homePage": "http://a.example.com"}},
    "agent account name object": {
        "objectType": "Agent",
        "account": {"homePage": "http://a.example.com", "name": {"id": "x"}},
    },
    "agent account homePage not IRL": {"objectType": "Agent", "account": {"homePage": "homePage.com/u", "name": "x"}},
    "agent account bad scheme": {
        "objectType": "Agent",
        "account": {"homePage": "ab=c://should.fail.com", "name": "x"},
    },
    "agent account unknown key": {
        "objectType": "Agent",
        "account": {"homePage": "http://a.example.com", "name": "x", "extra": 1},
    },
    "agent name number": {"objectType": "Agent", "name": 7, "mbox": "mailto:a@example.com"},
    "agent name null": {"objectType": "Agent", "name": None, "mbox": "mailto:a@example.com"},
    "agent objectType lower case": {"objectType": "agent", "mbox": "mailto:a@example.com"},
    "agent objectType number": {"objectType": 1, "mbox": "mailto:a@example.com"},
    "agent objectType object": {"objectType": {"x": "Agent"}, "mbox": "mailto:a@example.com"},
    "agent objectType quoted text": {"objectType": '"objectType": "Agent"', "mbox": "mailto:a@example.com"},
    "agent unknown property": {"objectType": "Agent", "mbox": "mailto:a@example.com", "age": 3},
    "agent with member": {"objectType": "Agent", "mbox": "mailto:a@example.com", "member": [MEMBER]},
}
_names = list(IFIS)
for _i, _first in enumerate(_names):
    for _second in _names[_i + 1 :]:
        AGENTS_BAD[f"agent {_first} + {_second}"] = {
            "objectType": "Agent",
            _first: IFIS[_first],
            _second: IFIS[_second],
        }

GROUPS_OK: dict[str, dict[str, Any]] = {
    "anonymous group": {"objectType": "Group", "member": [MEMBER, MEMBER2]},
    "anonymous group named": {"objectType": "Group", "name": "Team", "member": [MEMBER]},
    **{f"identified group {k}": {"objectType": "Group", k: v} for k, v in IFIS.items()},
    "identified group with members": {"objectType": "Group", "mbox": "mailto:team@example.com", "member": [MEMBER]},
}
GROUPS_BAD: dict[str, dict[str, Any]] = {
    "anonymous group without member": {"objectType": "Group", "name": "Nobody"},
    "group member not array": {"objectType": "Group", "member": MEMBER},
    "group member invalid agent": {"objectType": "Group", "member": [{"name": "no ifi"}]},
    "group member is a group": {"objectType": "Group", "member": [{"objectType": "Group", "member": [MEMBER]}]},
    "group two IFIs": {"objectType": "Group", "mbox": "mailto:t@example.com", "openid": "http://o.example.com/t"},
    "group mbox not IRI": {"objectType": "Group", "mbox": "team@example.com"},
    "group openid not URI": {"objectType": "Group", "openid": "should fail"},
    "group account name not string": {
        "objectType": "Group",
        "account": {"homePage": "http://a.example.com", "name": 5},
    },
    "group objectType lower case": {"objectType": "group", "member": [MEMBER]},
}


def _actor_cases() -> list[Case]:
    cases: list[Case] = []
    positions: list[tuple[str, dict[str, Any] | None, bool, bool]] = [
        # (path, statement to put it into, groups allowed, agents allowed)
        ("actor", None, True, True),
        ("object", None, True, True),
        ("context.instructor", None, True, True),
        ("context.team", None, True, False),
        ("object.actor", put("object", substatement()), True, True),
        ("object.object", put("object", substatement()), True, True),
        ("object.context.instructor", put("object", substatement()), True, True),
        ("object.context.team", put("object", substatement()), True, False),
    ]
    for path, into, groups, agents in positions:
        for name, agent in AGENTS_OK.items():
            cases.append(Case(f"{path}: {name}", put(path, agent, into), 200 if agents else 400))
        for name, agent in AGENTS_BAD.items():
            cases.append(Case(f"{path}: {name}", put(path, agent, into), 400))
        for name, group in GROUPS_OK.items():
            cases.append(Case(f"{path}: {name}", put(path, group, into), 200 if groups else 400))
        for name, group in GROUPS_BAD.items():
            cases.append(Case(f"{path}: {name}", put(path, group, into), 400))
    actor_no_type = {"mbox": "mailto:untyped@example.com"}
    cases += [
        Case("actor: agent without objectType", put("actor", actor_no_type), 200),
        Case("object: agent without objectType is an Activity without id", put("object", actor_no_type), 400),
        Case("actor: string", put("actor", "mailto:a@example.com"), 400),
        Case("actor: missing", put("actor", DROP), 400),
        # authority: an Agent, or an anonymous Group of exactly two Agents (OAuth consumer + user).
        Case("authority: agent", put("authority", AGENTS_OK["agent account"]), 200),
        Case(
            "authority: two-member group", put("authority", {"objectType": "Group", "member": [MEMBER, MEMBER2]}), 200
        ),
        Case("authority: one-member group", put("authority", {"objectType": "Group", "member": [MEMBER]}), 400),
        Case(
            "authority: three-member group",
            put("authority", {"objectType": "Group", "member": [MEMBER, MEMBER2, AGENTS_OK["agent openid"]]}),
            400,
        ),
        Case(
            "authority: identified group",
            put("authority", {"objectType": "Group", "mbox": "mailto:g@example.com"}),
            400,
        ),
        Case("authority: invalid agent", put("authority", AGENTS_BAD["agent mbox no mailto"]), 400),
    ]
    return cases


# -- Language tags and maps (Data 4.0 / RFC 5646) -------------------------------------

TAGS_OK = ["en", "de-DE", "zh-Hant", "sr-Latn-RS", "cmn", "tlh", "es-MX", "en-GB"]
TAGS_BAD = ["something", "a12345678", "a12345", "en_US", ""]


def _language_cases() -> list[Case]:
    cases: list[Case] = []
    maps = [
        ("verb.display", None),
        ("object.definition.name", None),
        ("object.definition.description", None),
        ("object.object.definition.name", put("object", substatement())),
    ]
    for path, into in maps:
        for tag in TAGS_OK:
            cases.append(Case(f"{path} tag {tag}", put(path, {tag: "text"}, into), 200))
        for tag in TAGS_BAD:
            cases.append(Case(f"{path} tag {tag!r}", put(path, {tag: "text"}, into), 400))
        cases.append(Case(f"{path} is a string", put(path, "text", into), 400))
        cases.append(Case(f"{path} is a number", put(path, 3, into), 400))
        cases.append(Case(f"{path} value not a string", put(path, {"en": 3}, into), 400))
    for tag in ("tlh", "sr-Latn-RS", "en"):
        cases.append(Case(f"context.language {tag}", put("context.language", tag), 200))
    for tag in ("something", "a12345"):
        cases.append(Case(f"context.language {tag}", put("context.language", tag), 400))
    cases.append(Case("context.language number", put("context.language", 5), 400))
    return cases


# -- Statement properties ----------------------------------------------------------


def _ids_and_structure() -> list[Case]:
    cases = [
        Case("id uuid", put("id", UUID_A.replace("d3", "e4", 1)), 200),
        Case("id upper-case hex uuid", put("id", "AB7C1D2E-3F40-4A5B-8C6D-7E8F9A0B1C2D"), 200),
        Case("id not a uuid", put("id", "not-a-uuid"), 400),
        Case("id number", put("id", 12345), 400),
        Case("id 37 characters", put("id", "ab7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d0"), 400),
        Case("id non-hex letter", put("id", "MA97B177-9383-4934-8543-0F91A7A02836"), 400),
        Case("id without dashes", put("id", "ab7c1d2e3f404a5b8c6d7e8f9a0b1c2d"), 400),
        Case("verb missing", put("verb", DROP), 400),
        Case("object missing", put("object", DROP), 400),
        Case("unknown top-level property", put("dummy", "x"), 400),
        Case("null top-level property", put("result", None), 400),
        Case("null nested property", put("context.platform", None), 400),
    ]
    for key in ("actor", "verb", "object", "id", "timestamp", "result", "context"):
        value = {"id": "http://example.com/x"} if key != "timestamp" else "2020-01-01T00:00:00Z"
        cases.append(Case(f"wrong-case key {key.title()}", put(key.title(), value), 400))
    for key in ("Stored", "Authority", "Version", "Attachments"):
        cases.append(Case(f"wrong-case key {key}", put(key, []), 400))
    return cases


def _verb_cases() -> list[Case]:
    return [
        Case("verb without display", put("verb", {"id": "http://example.com/verbs/bare"}), 200),
        Case("verb urn id", put("verb", {"id": "urn:example:verb:tested"}), 200),
        Case("verb id missing", put("verb", {"display": {"en": "x"}}), 400),
        Case("verb id with space", put("verb", {"id": "different value"}), 400),
        Case("verb id should fail", put("verb", {"id": "should fail"}), 400),
        Case("verb id bad scheme", put("verb", {"id": "ab=c://should.fail.com"}), 400),
        Case("verb id scheme-less", put("verb", {"id": "example.com/verbs/x"}), 400),
        Case("verb id number", put("verb", {"id": 3}), 400),
        Case("verb is a string", put("verb", "http://example.com/verbs/x"), 400),
        Case("verb unknown property", put("verb.extra", 1), 400),
        Case("verb objectType not allowed", put("verb.objectType", "Verb"), 400),
        Case("voided verb with an Activity", put("verb", {"id": VOIDED}), 400),
        Case(
            "voided verb with a StatementRef to an unknown id",
            put(
                "object",
                {"objectType": "StatementRef", "id": "0b8e5d1c-6a4f-4c3e-9d2b-1a0f8e7c6b5a"},
                put("verb", {"id": VOIDED}),
            ),
            200,
        ),
        Case("voided verb with an Agent", put("object", AGENTS_OK["agent mbox"], put("verb", {"id": VOIDED})), 400),
    ]


INTERACTIONS: dict[str, dict[str, Any]] = {
    "true-false": {"correctResponsesPattern": ["true"]},
    "choice": {
        "correctResponsesPattern": ["golf[,]tetris"],
        "choices": [{"id": "golf", "description": {"en-US": "Golf"}}, {"id": "tetris", "description": {"en": "T"}}],
    },
    "fill-in": {"correctResponsesPattern": ["Bob's your uncle"]},
    "long-fill-in": {"correctResponsesPattern": ["{case_matters=false}{lang=en}long text"]},
    "matching": {
        "correctResponsesPattern": ["ben[.]3[,]chris[.]2"],
        "source": [{"id": "ben", "description": {"en": "Ben"}}],
        "target": [{"id": "3", "description": {"en": "Three"}}],
    },
    "performance": {
        "correctResponsesPattern": ["pong[.]1:[,]dg[.]:10"],
        "steps": [{"id": "pong", "description": {"en": "Pong"}}],
    },
    "sequencing": {"correctResponsesPattern": ["a[,]b"], "choices": [{"id": "a"}, {"id": "b"}]},
    "likert": {"correctResponsesPattern": ["likert_3"], "scale": [{"id": "likert_3", "description": {"en": "ok"}}]},
    "numeric": {"correctResponsesPattern": ["4[:]"]},
    "other": {"correctResponsesPattern": ["(35.937432,-86.868896)"]},
}


def _activity_cases() -> list[Case]:
    def definition(value: Any) -> dict[str, Any]:
        return put("object.definition", value)

    cases = [
        Case("activity without objectType", put("object", {"id": ACTIVITY}), 200),
        Case("activity empty definition", definition({}), 200),
        Case("activity id missing", put("object", {"objectType": "Activity"}), 400),
        Case("activity id not IRI", put("object", {"objectType": "Activity", "id": "should fail"}), 400),
        Case("activity objectType lower case", put("object", {"objectType": "activity", "id": ACTIVITY}), 400),
        Case("activity unknown property", put("object.extra", 1), 400),
        Case("object objectType unknown", put("object", {"objectType": "Thing", "id": ACTIVITY}), 400),
        Case("definition not an object", definition("course"), 400),
        Case(
            "definition full",
            definition(
                {
                    "name": {"en": "n"},
                    "description": {"en": "d"},
                    "type": "http://adlnet.gov/expapi/activities/course",
                    "moreInfo": "https://example.com/more",
                    "extensions": {"http://example.com/ext": {"any": [1, None]}},
                }
            ),
            200,
        ),
        Case("definition type not IRI", definition({"type": "course"}), 400),
        Case("definition moreInfo not IRL", definition({"moreInfo": "example.com/more"}), 400),
        Case("definition extensions key not IRI", definition({"extensions": {"color": "red"}}), 400),
        Case("definition extensions not object", definition({"extensions": ["http://example.com/e"]}), 400),
        Case("definition extension value null", definition({"extensions": {"http://example.com/e": None}}), 200),
        Case("definition extension value empty string", definition({"extensions": {"http://example.com/e": ""}}), 200),
        Case("definition extension value empty object", definition({"extensions": {"http://example.com/e": {}}}), 200),
        Case("definition unknown property", definition({"colour": "red"}), 400),
        Case("interactionType wrong case Other", definition({"interactionType": "Other"}), 400),
        Case("interactionType true-faLse", definition({"interactionType": "true-faLse"}), 400),
        Case("interactionType unknown", definition({"interactionType": "essay"}), 400),
        Case("correctResponsesPattern without interactionType", definition({"correctResponsesPattern": ["a"]}), 400),
        Case(
            "correctResponsesPattern not array",
            definition({"interactionType": "fill-in", "correctResponsesPattern": "a"}),
            400,
        ),
        Case(
            "correctResponsesPattern item not string",
            definition({"interactionType": "fill-in", "correctResponsesPattern": [1]}),
            400,
        ),
        Case(
            "choices item without id",
            definition({"interactionType": "choice", "choices": [{"description": {"en": "x"}}]}),
            400,
        ),
        Case(
            "choices item description not a map",
            definition({"interactionType": "choice", "choices": [{"id": "a", "description": "x"}]}),
            400,
        ),
        Case("choices not array", definition({"interactionType": "choice", "choices": {"id": "a"}}), 400),
    ]
    for kind, extra in INTERACTIONS.items():
        cases.append(Case(f"interactionType {kind}", definition({"interactionType": kind, **extra}), 200))
    for component in ("choices", "scale", "source", "target", "steps"):
        cases.append(Case(f"{component} without interactionType", definition({component: [{"id": "a"}]}), 400))
    return cases


def _statement_ref_and_substatement_cases() -> list[Case]:
    ref = {"objectType": "StatementRef", "id": UUID_A}
    sub = substatement()
    return [
        Case("StatementRef", put("object", ref), 200),
        Case("StatementRef id not uuid", put("object", {"objectType": "StatementRef", "id": "abc"}), 400),
        Case("StatementRef id missing", put("object", {"objectType": "StatementRef"}), 400),
        Case("StatementRef lower case", put("object", {"objectType": "statementref", "id": UUID_A}), 400),
        Case("StatementRef extra property", put("object", {**ref, "definition": {}}), 400),
        Case("SubStatement", put("object", sub), 200),
        Case("SubStatement with StatementRef object", put("object", put("object", ref, sub)), 200),
        Case(
            "SubStatement with result, context, timestamp",
            put(
                "object",
                {
                    **sub,
                    "result": {"success": True},
                    "context": {"registration": UUID_A, "contextActivities": {"parent": {"id": ACTIVITY}}},
                    "timestamp": "2020-02-02T02:02:02.020Z",
                },
            ),
            200,
        ),
        Case("SubStatement lower case", put("object", {**sub, "objectType": "substatement"}), 400),
        Case("SubStatement missing actor", put("object", put("actor", DROP, sub)), 400),
        Case("SubStatement missing verb", put("object", put("verb", DROP, sub)), 400),
        Case("SubStatement missing object", put("object", put("object", DROP, sub)), 400),
        Case("SubStatement nested SubStatement", put("object", put("object", substatement(), sub)), 400),
        Case("SubStatement with id", put("object", {**sub, "id": UUID_A}), 400),
        Case("SubStatement with stored", put("object", {**sub, "stored": "2020-01-01T00:00:00Z"}), 400),
        Case("SubStatement with version", put("object", {**sub, "version": "1.0.0"}), 400),
        Case("SubStatement with authority", put("object", {**sub, "authority": AGENTS_OK["agent mbox"]}), 400),
        Case("SubStatement invalid verb", put("object", put("verb", {"id": "nope"}, sub)), 400),
        Case("SubStatement unknown property", put("object", {**sub, "dummy": 1}), 400),
    ]


DURATIONS_OK = ["PT1H0M0S", "PT4H35M59.14S", "P3Y1M29DT4H35M59.14S", "P3Y", "PT16559.14S", "P4W", "P1D", "PT0S"]
DURATIONS_BAD = ["PA1H0M0S", "should fail", "P4W1D", "P", "PT", "1H", "P1DT", "-PT1H"]


def _result_cases() -> list[Case]:
    def score(value: Any) -> dict[str, Any]:
        return put("result.score", value)

    cases = [
        Case(
            "result full",
            put(
                "result",
                {
                    "score": {"scaled": 0.5, "raw": 5, "min": 0, "max": 10},
                    "success": True,
                    "completion": False,
                    "response": "x",
                    "duration": "PT1M",
                    "extensions": {"http://example.com/r": 1},
                },
            ),
            200,
        ),
        Case("scaled 1.0", score({"scaled": 1.0}), 200),
        Case("scaled -1", score({"scaled": -1}), 200),
        Case("scaled 1.01", score({"scaled": 1.01}), 400),
        Case("scaled -1.01", score({"scaled": -1.01}), 400),
        Case("scaled string", score({"scaled": "0.5"}), 400),
        Case("raw between min and max", score({"raw": 12.125, "min": 0.12123434, "max": 45.45}), 200),
        Case("raw equals min", score({"raw": 0, "min": 0, "max": 10}), 200),
        Case("raw equals max", score({"raw": 10, "min": 0, "max": 10}), 200),
        Case("min equals max", score({"min": 3, "max": 3}), 400),
        Case("raw above max", score({"raw": 11, "min": 0, "max": 10}), 400),
        Case("raw below min", score({"raw": -1, "min": 0, "max": 10}), 400),
        Case("raw above max without min", score({"raw": 11, "max": 10}), 400),
        Case("min above max", score({"min": 10, "max": 5}), 400),
        Case("max string 100", score({"max": "100"}), 400),
        Case("max one hundred", score({"max": "one hundred"}), 400),
        Case("raw boolean", score({"raw": True}), 400),
        Case("score not an object", score(0.5), 400),
        Case("score unknown property", score({"scaled": 0.5, "percent": 50}), 400),
        Case("success string", put("result.success", "true"), 400),
        Case("completion string", put("result.completion", "false"), 400),
        Case("response number", put("result.response", 42), 400),
        Case("result extensions key not IRI", put("result.extensions", {"score": 1}), 400),
        Case("result extensions null value", put("result.extensions", {"http://example.com/r": None}), 200),
        Case("result unknown property", put("result.grade", "A"), 400),
        Case("duration number", put("result.duration", 3600), 400),
        Case("duration object", put("result.duration", {"h": 1}), 400),
    ]
    cases += [Case(f"duration {d}", put("result.duration", d), 200) for d in DURATIONS_OK]
    cases += [Case(f"duration {d!r}", put("result.duration", d), 400) for d in DURATIONS_BAD]
    return cases


def _context_cases() -> list[Case]:
    agent_object = put("object", AGENTS_OK["agent mbox"])
    objects = {
        "Agent": AGENTS_OK["agent mbox"],
        "Group": GROUPS_OK["anonymous group"],
        "StatementRef": {"objectType": "StatementRef", "id": UUID_A},
        "SubStatement": substatement(),
    }
    cases = [
        Case("context registration", put("context.registration", UUID_A), 200),
        Case("context registration not uuid", put("context.registration", "wrong"), 400),
        Case("context registration number", put("context.registration", 7), 400),
        Case("context revision with Activity", put("context.revision", "r2"), 200),
        Case(
            "context platform with untyped Activity", put("context.platform", "p", put("object", {"id": ACTIVITY})), 200
        ),
        Case("context revision not string", put("context.revision", 2), 400),
        Case("context platform not string", put("context.platform", ["web"]), 400),
        Case("context not an object", put("context", "ctx"), 400),
        Case("context unknown property", put("context.dummy", 1), 400),
        Case(
            "context statement ref to unknown id",
            put("context.statement", {"objectType": "StatementRef", "id": UUID_A}),
            200,
        ),
        Case("context statement without objectType", put("context.statement", {"id": UUID_A}), 400),
        Case(
            "context statement wrong objectType",
            put("context.statement", {"objectType": "Statement", "id": UUID_A}),
            400,
        ),
        Case("context statement id not uuid", put("context.statement", {"objectType": "StatementRef", "id": "x"}), 400),
        Case("context extensions key not IRI", put("context.extensions", {"k": 1}), 400),
        Case(
            "context extensions empty values",
            put("context.extensions", {"http://example.com/c": "", "http://example.com/d": {}}),
            200,
        ),
        Case("contextActivities single object", put("context.contextActivities", {"parent": {"id": ACTIVITY}}), 200),
        Case(
            "contextActivities all keys as arrays",
            put(
                "context.contextActivities",
                {
                    k: [{"id": ACTIVITY}, {"objectType": "Activity", "id": ACTIVITY + "/2"}]
                    for k in ("parent", "grouping", "category", "other")
                },
            ),
            200,
        ),
        Case("contextActivities unknown key", put("context.contextActivities", {"siblings": [{"id": ACTIVITY}]}), 400),
        Case("contextActivities not an object", put("context.contextActivities", [{"id": ACTIVITY}]), 400),
        Case("contextActivities value a string", put("context.contextActivities", {"parent": ACTIVITY}), 400),
        Case(
            "contextActivities array with an agent",
            put("context.contextActivities", {"other": [{"id": ACTIVITY}, AGENTS_OK["agent mbox"]]}),
            400,
        ),
        Case(
            "contextActivities activity without id",
            put("context.contextActivities", {"parent": {"definition": {}}}),
            400,
        ),
        Case("context instructor string", put("context.instructor", "mailto:x@example.com"), 400),
        Case("context team string", put("context.team", "team"), 400),
        Case(
            "registration in substatement context",
            put("object", put("context.registration", "nope", substatement())),
            400,
        ),
    ]
    for kind, obj in objects.items():
        for prop in ("revision", "platform"):
            cases.append(
                Case(f"context {prop} with {kind} object", put(f"context.{prop}", "x", put("object", obj)), 400)
            )
    cases.append(Case("context instructor with Agent object", put("context.instructor", MEMBER, agent_object), 200))
    return cases


def _context_agents_cases() -> list[Case]:
    ok_agent = {"objectType": "contextAgent", "agent": MEMBER, "relevantTypes": ["http://example.com/types/coach"]}
    ok_group = {
        "objectType": "contextGroup",
        "group": GROUPS_OK["anonymous group"],
        "relevantTypes": ["http://example.com/types/cohort"],
    }
    cases: list[Case] = []
    for where, into in (("", None), ("substatement ", put("object", substatement()))):
        prefix = "object.context" if where else "context"
        cases += [
            Case(
                f"{where}contextAgents valid",
                put(f"{prefix}.contextAgents", [ok_agent, {"objectType": "contextAgent", "agent": MEMBER2}], into),
                200,
                (V2,),
            ),
            Case(
                f"{where}contextAgents objectType wrong",
                put(f"{prefix}.contextAgents", [{**ok_agent, "objectType": "Agent"}], into),
                400,
                (V2,),
            ),
            Case(
                f"{where}contextAgents agent invalid",
                put(f"{prefix}.contextAgents", [{**ok_agent, "agent": {"name": "x"}}], into),
                400,
                (V2,),
            ),
            Case(
                f"{where}contextAgents agent is a group",
                put(f"{prefix}.contextAgents", [{**ok_agent, "agent": GROUPS_OK["anonymous group"]}], into),
                400,
                (V2,),
            ),
            Case(
                f"{where}contextAgents relevantTypes empty",
                put(f"{prefix}.contextAgents", [{**ok_agent, "relevantTypes": []}], into),
                400,
                (V2,),
            ),
            Case(
                f"{where}contextAgents relevantTypes not IRI",
                put(f"{prefix}.contextAgents", [{**ok_agent, "relevantTypes": ["abc"]}], into),
                400,
                (V2,),
            ),
            Case(f"{where}contextAgents not array", put(f"{prefix}.contextAgents", ok_agent, into), 400, (V2,)),
            Case(f"{where}contextGroups valid", put(f"{prefix}.contextGroups", [ok_group], into), 200, (V2,)),
            Case(
                f"{where}contextGroups objectType wrong",
                put(f"{prefix}.contextGroups", [{**ok_group, "objectType": "contextAgent"}], into),
                400,
                (V2,),
            ),
            Case(
                f"{where}contextGroups group invalid",
                put(f"{prefix}.contextGroups", [{**ok_group, "group": {"objectType": "Group"}}], into),
                400,
                (V2,),
            ),
            Case(
                f"{where}contextGroups group is an agent",
                put(f"{prefix}.contextGroups", [{**ok_group, "group": MEMBER}], into),
                400,
                (V2,),
            ),
            Case(
                f"{where}contextGroups relevantTypes empty",
                put(f"{prefix}.contextGroups", [{**ok_group, "relevantTypes": []}], into),
                400,
                (V2,),
            ),
            Case(
                f"{where}contextGroups relevantTypes not IRI",
                put(f"{prefix}.contextGroups", [{**ok_group, "relevantTypes": ["abc"]}], into),
                400,
                (V2,),
            ),
        ]
    # contextAgents is not a 1.0.3 property: it is an unknown context property there.
    cases.append(Case("contextAgents in 1.0.3", put("context.contextAgents", [ok_agent]), 400, (V1,)))
    return cases


def _timestamp_cases() -> list[Case]:
    ok = [
        "2013-05-18T05:32:34.804Z",
        "2013-05-18T05:32:34Z",
        "2013-05-18T05:32:34.804+01:00",
        "2099-01-01T00:00:00Z",
        "2013-05-18T05:32:34.804123Z",
    ]
    bad = [
        "01/011/2015",
        "should fail",
        "2013-05-18",
        "2013-05-18T05:32:34",
        "2013-05-18T05:32:34.804-00",
        "2013-05-18T05:32:34.804-0000",
        "2013-05-18T05:32:34.804-00:00",
        "2013-13-18T05:32:34Z",
        "1368855154",
    ]
    cases = [Case(f"timestamp {t}", put("timestamp", t), 200) for t in ok]
    cases += [Case(f"timestamp {t!r}", put("timestamp", t), 400) for t in bad]
    cases.append(Case("timestamp RFC 3339 +00:00", put("timestamp", "2013-05-18T05:32:34.804+00:00"), 200))
    cases.append(Case("timestamp number", put("timestamp", 1368855154), 400))
    cases.append(Case("stored not a timestamp", put("stored", "yesterday"), 400))
    cases.append(Case("stored in the past accepted then overwritten", put("stored", "2011-07-15T12:00:00Z"), 200))
    return cases


def _version_cases() -> list[Case]:
    return [
        Case("version 1.0", put("version", "1.0"), 200, (V1,)),
        Case("version 1.0.9", put("version", "1.0.9"), 200, (V1,)),
        Case("version 1.0.3", put("version", "1.0.3"), 200),
        Case("version 2.0.0", put("version", "2.0.0"), 200, (V2,)),
        Case("version 0.9.9", put("version", "0.9.9"), 400),
        Case("version 1.1.0", put("version", "1.1.0"), 400),
        Case("version should fail", put("version", "should fail"), 400),
        Case("version number", put("version", 1.0), 400),
    ]


def _attachment_cases() -> list[Case]:
    good = {
        "usageType": "http://example.com/attachment-usage/test",
        "display": {"en-US": "A file"},
        "description": {"en-US": "described"},
        "contentType": "text/plain",
        "length": 12,
        "sha2": "495395e777cd98da653df9615d09c0fd6bb2f8d4788394cd53c56a3bfdcd848a",
        "fileUrl": "http://files.example.com/a.txt",
    }

    def with_(**change: Any) -> dict[str, Any]:
        item = {**good, **change}
        return put("attachments", [{k: v for k, v in item.items() if v is not DROP}])

    cases = [
        Case("attachment with fileUrl", with_(), 200),
        Case("attachments not array", put("attachments", good), 400),
        Case("attachments item not object", put("attachments", ["x"]), 400),
        Case("attachment usageType not IRI", with_(usageType="signature"), 400),
        Case("attachment fileUrl not IRL", with_(fileUrl="files/a.txt"), 400),
        Case("attachment display not a map", with_(display="A file"), 400),
        Case("attachment description bad tag", with_(description={"something": "x"}), 400),
        Case("attachment length string", with_(length="12"), 400),
        Case("attachment length fraction", with_(length=1.5), 400),
        Case("attachment contentType number", with_(contentType=5), 400),
        Case("attachment sha2 number", with_(sha2=5), 400),
        Case("attachment unknown property", with_(color="red"), 400),
    ]
    for required in ("usageType", "display", "contentType", "length", "sha2"):
        cases.append(Case(f"attachment without {required}", with_(**{required: DROP}), 400))
    # Without fileUrl the raw data must come as a multipart part; plain JSON cannot carry it.
    cases.append(Case("attachment without fileUrl in application/json", with_(fileUrl=DROP), 400))
    return cases


CASES: list[Case] = (
    _actor_cases()
    + _language_cases()
    + _ids_and_structure()
    + _verb_cases()
    + _activity_cases()
    + _statement_ref_and_substatement_cases()
    + _result_cases()
    + _context_cases()
    + _context_agents_cases()
    + _timestamp_cases()
    + _version_cases()
    + _attachment_cases()
)
