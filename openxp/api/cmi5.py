"""cmi5 launch (AICC cmi5, 2nd edition, sections 8-10): openxp as the LMS of one AU launch.

``POST /api/launch`` with ``"mode": "cmi5"`` does, in one transaction, what the LMS does
before it launches an AU: it abandons a session of the same registration still open (9.3.6,
with an "abandoned" statement), writes the ``LMS.LaunchData`` State document (10.0), records
the "launched" statement (9.3.1), and creates the session's credential. The URL it answers
carries ``endpoint``, ``fetch``, ``actor``, ``registration`` and ``activityId`` (8.1).

The credential has no usable secret until the AU POSTs to the one-time ``fetch`` URL
(``POST /api/launch/fetch?k=...``, 8.2): that request generates the Basic secret, stores only
its digest, and answers it once as ``{"auth-token": ...}``. The key in the fetch URL is kept as
a digest too. Afterwards the AU's credential is an ordinary launch credential (confined to
its actor, activity and registration by ``openxp.auth.confine``), which also may not void
(6.3) nor change ``LMS.LaunchData`` (10.2.1), and whose session a "terminated" statement ends
(9.3.8, ``openxp.xapi.statements``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openxp import audit, crypto
from openxp.api.errors import LaunchInProgress, ValidationFailed
from openxp.auth import Principal
from openxp.auth import launch as launch_auth
from openxp.httpio import JSON, NO_STORE
from openxp.runtime import runtime
from openxp.store import documents, launches
from openxp.store import statements as statement_store
from openxp.store.db import Connection, now
from openxp.xapi import completions, shape
from openxp.xapi.cors import CORS_HEADERS
from openxp.xapi.endpoint import authority_for
from openxp.xapi.validate import Validator, normalize

# The launch parameters of 8.1; a content URL's own parameters of these names are replaced.
PARAMETERS = ("endpoint", "fetch", "actor", "registration", "activityId")
LAUNCH_DATA = "LMS.LaunchData"
MOVE_ON = ("Passed", "Completed", "CompletedAndPassed", "CompletedOrPassed", "NotApplicable")
LAUNCH_MODES = ("Normal", "Browse", "Review")
MAX_TEXT = 4096
STATEMENT_VERSION = "1.0.0"

CATEGORY = {"id": "https://w3id.org/xapi/cmi5/context/categories/cmi5"}
EXT = "https://w3id.org/xapi/cmi5/context/extensions/"
LAUNCHED = {"id": "http://adlnet.gov/expapi/verbs/launched", "display": {"en-US": "Launched"}}
ABANDONED = {"id": "https://w3id.org/xapi/adl/verbs/abandoned", "display": {"en-US": "Abandoned"}}


@dataclass(frozen=True)
class Cmi5Launch:
    """What the caller asked for, validated: the AU and how the LMS launches it."""

    url: str
    actor: dict[str, Any]
    actor_key: str
    activity_id: str
    registration: str
    publisher_id: str
    move_on: str
    launch_mode: str
    mastery_score: float | None
    launch_parameters: str | None
    return_url: str | None
    entitlement_key: dict[str, str] | None


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValidationFailed(f"{name} must be a string of at most {MAX_TEXT} characters", prop=name)
    return value


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}", prop=name)
    return str(value)


def _mastery_score(value: Any) -> float | None:
    """10.2.4: a decimal from 0 to 1 with up to 4 decimal places."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= 1
        or not math.isclose(round(value, 4), value, abs_tol=1e-12)
    ):
        raise ValidationFailed("masteryScore must be a number from 0 to 1 with at most 4 decimals", prop="masteryScore")
    return float(value)


def _entitlement_key(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("courseStructure"), str)
        or set(value) - {"courseStructure", "alternate"}
        or not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in value.values())
    ):
        raise ValidationFailed(
            "entitlementKey must be {courseStructure: string, alternate?: string}", prop="entitlementKey"
        )
    return dict(value)


def read_launch(
    body: dict[str, Any], url: str, actor: dict[str, Any], actor_key: str, activity_id: str, registration: str | None
) -> Cmi5Launch:
    """The cmi5 fields of a ``POST /api/launch`` body, over the fields every launch has."""
    if "account" not in actor:
        # 9.2: "The Actor property MUST contain an account property".
        raise ValidationFailed("a cmi5 actor must be identified by an account (cmi5 9.2)", prop="actor")
    publisher_id = body.get("publisher_id")
    if not isinstance(publisher_id, str) or not shape.is_iri(publisher_id) or len(publisher_id) > 2048:
        raise ValidationFailed(
            "publisher_id must be the AU's id from the course structure, an IRI", prop="publisher_id"
        )
    if publisher_id == activity_id:
        # 8.1.5: "The activityId generated MUST NOT match the AU's ID (publisher ID)".
        raise ValidationFailed("activity_id must be the LMS's id for the AU, not its publisher_id", prop="activity_id")
    return_url = _text(body, "returnURL")
    if return_url is not None and not return_url.startswith(("http://", "https://")):
        raise ValidationFailed("returnURL must be an absolute http(s) URL", prop="returnURL")
    return Cmi5Launch(
        url=url,
        actor=actor,
        actor_key=actor_key,
        activity_id=activity_id,
        # 9.6.1: the LMS generates the registration when the caller has none to continue.
        registration=registration or crypto.random_uuid(),
        publisher_id=publisher_id,
        move_on=_choice(body, "moveOn", MOVE_ON, "NotApplicable"),
        launch_mode=_choice(body, "launchMode", LAUNCH_MODES, "Normal"),
        mastery_score=_mastery_score(body.get("masteryScore")),
        launch_parameters=_text(body, "launchParameters"),
        return_url=return_url,
        entitlement_key=_entitlement_key(body.get("entitlementKey")),
    )


def _given(**values: Any) -> dict[str, Any]:
    """The optional values the caller gave (cmi5 writes an absent one as no property at all)."""
    return {name: value for name, value in values.items() if value is not None}


def _context(launch: Cmi5Launch, session_id: str) -> dict[str, Any]:
    """The contextTemplate of 10.2.1: the session id and the publisher id grouping."""
    return {
        "contextActivities": {"grouping": [{"id": launch.publisher_id}]},
        "extensions": {EXT + "sessionid": session_id},
    }


def launch_data(launch: Cmi5Launch, session_id: str) -> dict[str, Any]:
    """The ``LMS.LaunchData`` document (10.2)."""
    document: dict[str, Any] = {
        "contextTemplate": _context(launch, session_id),
        "launchMode": launch.launch_mode,
        "moveOn": launch.move_on,
    }
    return document | _given(
        masteryScore=launch.mastery_score,
        launchParameters=launch.launch_parameters,
        returnURL=launch.return_url,
        entitlementKey=launch.entitlement_key,
    )


def _launched(launch: Cmi5Launch, session_id: str) -> dict[str, Any]:
    """9.3.1 with the context extensions 9.6.3 asks of a "launched" statement."""
    context = _context(launch, session_id)
    context["registration"] = launch.registration
    context["contextActivities"]["category"] = [CATEGORY]
    extensions = context["extensions"]
    extensions[EXT + "launchmode"] = launch.launch_mode
    # 9.6.3.4: the URL the AU was launched with, without the launch parameters of 8.1.
    extensions[EXT + "launchurl"] = launch.url
    extensions[EXT + "moveon"] = launch.move_on
    optional = _given(masteryscore=launch.mastery_score, launchparameters=launch.launch_parameters)
    extensions.update({EXT + name: value for name, value in optional.items()})
    return {
        "actor": launch.actor,
        "verb": LAUNCHED,
        "object": {"objectType": "Activity", "id": launch.activity_id},
        "context": context,
    }


def _abandoned(session: launches.Session, publisher_id: str, at: float) -> dict[str, Any]:
    """9.3.6: the LMS's statement for a session a newer launch replaced. Its duration is the
    time from the launch to the abandonment (9.5.4.2 lets the LMS use its own measure)."""
    seconds = max(0.0, at - session.created_at)
    return {
        "actor": session.actor,
        "verb": ABANDONED,
        "object": {"objectType": "Activity", "id": session.activity_id},
        "result": {"duration": f"PT{seconds:.2f}S"},
        "context": {
            "registration": session.registration,
            "contextActivities": {"category": [CATEGORY], "grouping": [{"id": publisher_id}]},
            "extensions": {EXT + "sessionid": session.session_id},
        },
    }


async def _record(
    conn: Connection, tenant_id: int, authority: dict[str, Any], statements: list[dict[str, Any]]
) -> None:
    """Store the LMS's own statements, validated as any statement is."""
    stored_at = math.floor(now() * 1000) / 1000
    rows = []
    for statement in statements:
        Validator(v2=False).statement(statement, "")
        normalize(statement)
        statement["id"] = crypto.random_uuid()
        statement["timestamp"] = statement["stored"] = shape.iso(stored_at)
        statement["authority"] = authority
        statement["version"] = STATEMENT_VERSION
        rows.append(shape.row(statement, stored_at))
    await statement_store.insert_many(conn, tenant_id, rows)
    await completions.record(conn, tenant_id, statements)


async def _write_launch_data(conn: Connection, tenant_id: int, launch: Cmi5Launch, content: bytes) -> None:
    """Create or replace the document (10.1), inside the launch's transaction."""
    key = documents.Key("state", launch.activity_id, launch.actor_key, launch.registration)
    etag = hashlib.sha1(content, usedforsecurity=False).hexdigest()  # as /xapi's documents have
    await documents.remove(conn, tenant_id, key, LAUNCH_DATA)
    if not await documents.write(
        conn, tenant_id, key, documents.Document(LAUNCH_DATA, "application/json", content, etag, now()), replacing=None
    ):
        raise LaunchInProgress("another launch of this registration is being made; try again")


async def start(request: Request, principal: Principal, launch: Cmi5Launch, created_by: str) -> dict[str, Any]:
    """Everything 8-10 asks of the LMS before the AU runs. Returns the launch parameters
    (``params``, in 8.1's order) and the rest of the answer."""
    rt = runtime(request)
    session_id = crypto.random_uuid()
    fetch_key = crypto.new_credential()
    username, unusable = launch_auth.new_launch_pair()
    authority = authority_for(request, principal)
    content = json.dumps(launch_data(launch, session_id), separators=(",", ":")).encode()
    async with rt.db.write() as conn:
        abandoned = await launches.abandon_sessions(
            conn, principal.tenant_id, launch.actor_key, launch.activity_id, launch.registration
        )
        at = now()
        lms_statements = [_abandoned(s, launch.publisher_id, at) for s in abandoned]
        lms_statements.append(_launched(launch, session_id))
        await _record(conn, principal.tenant_id, authority, lms_statements)
        await _write_launch_data(conn, principal.tenant_id, launch, content)
        await launches.create(
            conn,
            principal.tenant_id,
            username=username,
            # No Basic secret works until the fetch URL makes one: this digest's preimage is dropped.
            secret_hash=launch_auth.password_digest(unusable),
            kind="cmi5",
            ttl=rt.settings.launch_token_ttl,
            created_by=created_by,
            actor=launch.actor,
            actor_key=launch.actor_key,
            activity_id=launch.activity_id,
            registration=launch.registration,
            fetch_hash=crypto.digest(fetch_key),
            session_id=session_id,
        )
    audit.event(
        "launch_created",
        tenant=principal.tenant,
        by=created_by,
        username=username,
        activity=launch.activity_id,
        mode="cmi5",
        abandoned=len(abandoned),
    )
    return {
        "params": [
            ("endpoint", rt.settings.public_url + "/xapi/"),
            ("fetch", f"{rt.settings.public_url}/api/launch/fetch?k={fetch_key}"),
            ("actor", json.dumps(launch.actor, separators=(",", ":"))),
            ("registration", launch.registration),
            ("activityId", launch.activity_id),
        ],
        "expires_in": rt.settings.launch_token_ttl,
        "username": username,
        "registration": launch.registration,
        "session_id": session_id,
    }


UNKNOWN = {"error-code": "2", "error-text": "This is not a fetch URL openxp issued."}
USED = {"error-code": "1", "error-text": "The authorization token has already been returned, or the launch expired."}


def _fetch_answer(body: dict[str, str]) -> Response:
    # 8.2.1: 200 and JSON for every valid request, errors included; readable by the AU's page
    # whatever its origin (the key is the credential, no cookie is involved).
    return JSON(body, headers={**NO_STORE, **CORS_HEADERS, "Referrer-Policy": "no-referrer"})


async def fetch(request: Request) -> Response:
    """POST /api/launch/fetch?k=...: the session's auth-token, once (cmi5 8.2)."""
    rt = runtime(request)
    key = request.query_params.get("k", "")
    if not key or len(key) > 200 or set(request.query_params) != {"k"}:
        return _fetch_answer(UNKNOWN)
    key_digest = crypto.digest(key)
    password = crypto.new_credential()
    async with rt.db.write() as conn:
        found = await launches.redeem_fetch(conn, key_digest, launch_auth.password_digest(password))
    if found.tenant_id is None:
        return _fetch_answer(UNKNOWN)
    if not found.redeemed:
        # A second fetch may mean the launch URL leaked: the tenant's audit log shows it.
        audit.event("cmi5_fetch_repeated", severity="warning", tenant_id=found.tenant_id, key_ref=key_digest[:16])
        return _fetch_answer(USED)
    audit.event("cmi5_token_fetched", tenant_id=found.tenant_id, username=found.username)
    return _fetch_answer({"auth-token": launch_auth.auth_token(found.username, password)})
