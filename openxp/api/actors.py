"""``/api/actors``: the tenant's learners seen as xAPI Agents with attributes.

Every learner is an Agent in ClearXP's shape (Clear API Reference > Data Model > Actor):
``{"objectType": "Agent", "name": ..., IFI, "extensions": {ATTRIBUTES_EXTENSION: {...}}}``,
with the IFI ``mbox: mailto:<identifier>`` when the identifier is an email address, otherwise
``account: {homePage: OPENXP_PUBLIC_URL, name: <identifier>}``. Lists are JSON arrays of such
Agents; ``PUT /api/actors/agents`` takes one and answers it after the merge. Every query is
filtered by the caller's tenant.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openxp import audit, erasure
from openxp.api import criteria as criteria_sql
from openxp.api.account_source import account_source
from openxp.api.body import json_body
from openxp.api.errors import OverLimit, SearchTooCostly, ValidationFailed
from openxp.api.http import endpoint
from openxp.api.paging import page, single_query
from openxp.audit_writer import kept_with
from openxp.auth import Principal
from openxp.httpio import JSON, NO_STORE
from openxp.imports.errors import RowRejected
from openxp.imports.limits import MAX_ATTRIBUTES, MAX_NAME
from openxp.imports.validation import TenantAttributeNames, is_email, too_many_merged_attributes, validate_row
from openxp.runtime import runtime
from openxp.store import learners as learner_store
from openxp.store import tenants as tenant_store
from openxp.store.errors import QueryTimeout
from openxp.store.learners import LearnerRow

MAX_BODY = 256 * 1024
# A search scans the tenant's learners, at a cost the criteria decide: it is stopped after this
# long (off the event loop on both databases: see Database.bounded_read).
SEARCH_SECONDS = 5.0
ATTRIBUTES_EXTENSION = "http://clearlrs.com/api/ext/agent/attributes"
# ClearXP's read-only extensions (status metadata, groups): accepted in a PUT, so that an actor
# read from ClearXP can be sent back as it is, but not stored.
READ_ONLY_EXTENSIONS = frozenset({"http://clearlrs.com/api/ext/agent", "https://clearlrs.com/api/ext/agent/groups"})
AGENT_MEMBERS = frozenset({"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account", "extensions"})


def agent_of(learner: LearnerRow, public_url: str) -> dict[str, Any]:
    agent: dict[str, Any] = {"objectType": "Agent", "name": learner.name}
    if is_email(learner.identifier):
        agent["mbox"] = f"mailto:{learner.identifier}"
    else:
        agent["account"] = {"homePage": public_url, "name": learner.identifier}
    return agent


def actor_of(learner: LearnerRow, public_url: str) -> dict[str, Any]:
    return {**agent_of(learner, public_url), "extensions": {ATTRIBUTES_EXTENSION: learner.attributes}}


@endpoint("actors/read")
async def list_actors(request: Request, principal: Principal) -> Response:
    """GET /api/actors?limit=&skip= : one page of the tenant's learners in creation order."""
    rt = runtime(request)
    limit, skip = page(single_query(request, "limit"), single_query(request, "skip"))
    async with rt.db.read() as conn:
        found = await learner_store.list_for_tenant(conn, principal.tenant_id, limit, skip)
    return JSON([actor_of(learner, rt.settings.public_url) for learner in found], headers=NO_STORE)


@endpoint("actors/read")
async def search_actors(request: Request, principal: Principal) -> Response:
    """POST /api/actors/search?limit=&skip= {"criteria": {...}}: limit and skip are query
    parameters, as ClearXP documents them; the answer is a JSON array of Agents."""
    rt = runtime(request)
    limit, skip = page(single_query(request, "limit"), single_query(request, "skip"))
    body = await json_body(request, MAX_BODY)
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be an object with criteria", prop="body")
    unknown = sorted(set(body) - {"criteria"})
    if unknown:
        hint = "; limit and skip are query parameters" if set(unknown) & {"limit", "skip"} else ""
        raise ValidationFailed(f"unknown member {unknown[0][:50]!r}{hint}", prop=unknown[0][:50])
    where = None
    if body.get("criteria") is not None:
        where = criteria_sql.compile_criteria(body["criteria"], "sqlite" if rt.db.is_sqlite else "postgresql")
    try:
        async with rt.db.bounded_read(SEARCH_SECONDS) as conn:
            found = await learner_store.list_for_tenant(conn, principal.tenant_id, limit, skip, where)
    except QueryTimeout as exc:
        raise SearchTooCostly(
            f"{exc}; narrow the criteria (fewer parts or wildcards, a more selective first condition)"
        ) from None
    return JSON([actor_of(learner, rt.settings.public_url) for learner in found], headers=NO_STORE)


@endpoint("actors/read")
async def attributes(request: Request, principal: Principal) -> Response:
    """GET /api/actors/attributes: each attribute name in the tenant with a JSON Schema type."""
    rt = runtime(request)
    async with rt.db.read() as conn:
        found = await learner_store.attribute_types(conn, principal.tenant_id)
    items = [
        # Mixed or only-null values are described as strings, the widest of the three.
        {"key": key, "type": next(iter(kinds)) if len(kinds) == 1 else "string"}
        for key, kinds in sorted(found.items())
    ]
    return JSON({"attributes": items}, headers=NO_STORE)


def _identify(agent: dict[str, Any], id_attributes: list[str], attrs: dict[str, Any], public_url: str) -> None:
    """Copy the Agent's identifier into the attribute that identifies learners (in place)."""
    if agent.get("objectType", "Agent") != "Agent":
        raise ValidationFailed("objectType must be Agent", prop="objectType")
    ifis = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if k in agent]
    if len(ifis) != 1:
        raise ValidationFailed("an Agent has exactly one of mbox, mbox_sha1sum, openid, account", prop="body")
    if ifis[0] == "mbox":
        mbox = agent["mbox"]
        if not isinstance(mbox, str) or not mbox.startswith("mailto:") or not is_email(mbox[7:]):
            raise ValidationFailed("mbox must be mailto:<email address>", prop="mbox")
        email_attrs = [a for a in id_attributes if "email" in a.lower()]
        _set_identifier(attrs, email_attrs[0] if email_attrs else "Email", mbox[7:].lower(), "mbox")
    elif ifis[0] == "account":
        account = agent["account"]
        if (
            not isinstance(account, dict)
            or account.get("homePage") != public_url
            or not isinstance(account.get("name"), str)
            or not account["name"].strip()
        ):
            raise ValidationFailed(f"account must be {{homePage: {public_url}, name: ...}}", prop="account")
        _set_identifier(attrs, id_attributes[0], account["name"].strip(), "account")
    else:
        raise ValidationFailed("agents are identified by mbox or account here", prop=ifis[0])


def _set_identifier(attrs: dict[str, Any], key: str, value: str, prop: str) -> None:
    given = attrs.get(key)
    if given is not None and str(given).strip().lower() != value.lower():
        raise ValidationFailed(f"attribute {key} differs from the agent's identifier", prop=prop)
    attrs[key] = value


def _attributes_of(agent: dict[str, Any]) -> dict[str, Any]:
    extensions = agent.get("extensions", {})
    if not isinstance(extensions, dict):
        raise ValidationFailed("extensions must be an object", prop="extensions")
    unknown = sorted(set(extensions) - {ATTRIBUTES_EXTENSION} - READ_ONLY_EXTENSIONS)
    if unknown:
        raise ValidationFailed(
            f"unknown extension {unknown[0][:100]!r}; attributes go under {ATTRIBUTES_EXTENSION}",
            prop=f"extensions.{unknown[0][:100]}",
        )
    attrs = extensions.get(ATTRIBUTES_EXTENSION, {})
    if not isinstance(attrs, dict):
        raise ValidationFailed("the attributes extension must be an object", prop=f"extensions.{ATTRIBUTES_EXTENSION}")
    return dict(attrs)


def _refusal(rejected: RowRejected) -> ValidationFailed:
    """The import's reason to refuse a learner, as this endpoint's 400: the limits under their
    own codes, against the attributes extension; any other problem as a validation error."""
    if rejected.kind in ("too_many_attributes", "too_many_attribute_names"):
        return OverLimit(rejected.kind, rejected.message, prop=f"extensions.{ATTRIBUTES_EXTENSION}")
    return ValidationFailed(rejected.message, prop=rejected.kind, value=rejected.value)


@endpoint("actors/write")
async def put_agent(request: Request, principal: Principal) -> Response:
    """PUT /api/actors/agents with an xAPI Agent (attributes in the attributes extension): create
    or update one learner, merging attributes; answers the actor after the merge."""
    rt = runtime(request)
    source = account_source(request)
    agent = await json_body(request, MAX_BODY)
    if not isinstance(agent, dict):
        raise ValidationFailed("the body must be an xAPI Agent object", prop="body")
    unknown = sorted(set(agent) - AGENT_MEMBERS)
    if unknown:
        raise ValidationFailed(
            f"unknown member {unknown[0][:50]!r}; the body is the xAPI Agent itself, with attributes under "
            f"extensions[{ATTRIBUTES_EXTENSION!r}]",
            prop=unknown[0][:50],
        )
    attrs = _attributes_of(agent)
    async with rt.db.read() as conn:
        id_attributes = (await tenant_store.get_by_id(conn, principal.tenant_id)).user_id_attributes
    _identify(agent, id_attributes, attrs, rt.settings.public_url)
    name = agent.get("name")
    try:
        learner, _notices = validate_row({"name": name or "-", "attributes": attrs}, id_attributes)
        names = TenantAttributeNames(principal.tenant_id)
        async with rt.db.read() as conn:
            await names.learn(conn, [learner])
        names.take(learner)
    except RowRejected as rejected:
        raise _refusal(rejected) from None
    async with rt.db.write() as conn:
        current = await learner_store.lookup(conn, principal.tenant_id, [learner.identifier])
        stored = current.get(learner.identifier)
        if not isinstance(name, str) or not name.strip():
            # No name given: keep the one we have, or use the identifier for a new learner.
            name = stored.name if stored else learner.identifier
        learner = LearnerRow(learner.identifier, name.strip()[:MAX_NAME], learner.attributes)
        written = await learner_store.write_batch(conn, principal.tenant_id, [learner], MAX_ATTRIBUTES)
        if written.refused:
            raise _refusal(too_many_merged_attributes())
        saved = await learner_store.find(conn, principal.tenant_id, learner.identifier)
    assert saved is not None
    audit.event(
        "actor_saved",
        tenant=principal.tenant,
        client_id=principal.client_id,
        actor=principal.key or principal.client_id,
        new=stored is None,
        source=source,
    )
    return JSON(actor_of(saved, rt.settings.public_url), headers=NO_STORE)


@endpoint("actors/erase")
async def erase_actor(request: Request, principal: Principal) -> Response:
    """POST /api/actors/erase {"agent": {an xAPI Agent identifier}, "dryRun": false}: erase one
    learner of the tenant (GDPR Art. 17), or with dryRun count what would go; answers the counts."""
    rt = runtime(request)
    body = await json_body(request, MAX_BODY)
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be an object with agent and dryRun", prop="body")
    unknown = sorted(set(body) - {"agent", "dryRun"})
    if unknown:
        raise ValidationFailed(f"unknown member {unknown[0][:50]!r}", prop=unknown[0][:50])
    dry_run = body.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ValidationFailed("dryRun must be true or false", prop="dryRun")
    refused = erasure.refusal(body.get("agent"))
    if refused is not None:
        raise ValidationFailed(refused[0], prop=refused[1])
    async with rt.db.write() as conn, kept_with(conn):
        answer = await erasure.erase(
            conn,
            principal.tenant_id,
            body["agent"],
            rt.settings.public_url,
            dry_run=dry_run,
            tenant=principal.tenant,
            actor=principal.key or principal.client_id,
            client_id=principal.client_id,
        )
    return JSON(answer, headers=NO_STORE)
