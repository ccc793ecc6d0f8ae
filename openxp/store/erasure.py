"""Erasing one learner of a tenant (GDPR Art. 17), in the caller's one transaction.

Removed: the learner record (and so its attributes), the statements whose actor is the agent
and the completion records folded from them,
the agent's state and agent-profile documents, and the attachment bodies no remaining statement
needs (``removal``). A statement that names the agent anywhere else (object, group member,
context instructor or team, context agents and groups, a SubStatement) stays, with every
mention replaced by the tenant's pseudonym for that agent: an ``account`` whose homePage is
``ERASED_HOME_PAGE`` and whose name is an HMAC of the identifier under the tenant's own key, so
erasing the same person twice gives the same pseudonym, and nobody without the key can tell
whose it is (docs/decisions.md, "Learner erasure"). The authority is not rewritten: it is the
credential that wrote the statement, never a learner.

A dry run does all of it inside a savepoint and rolls the savepoint back, so it reports exactly
what the real run would remove.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select, update

from openxp.agents import IFIS, agent_key, forms_of
from openxp.store import completions, removal
from openxp.store.db import Connection
from openxp.store.models import learners as learners_t
from openxp.store.models import tenants as tenants_t
from openxp.store.models import xapi_documents as docs_t
from openxp.store.models import xapi_statement_agents as agents_t
from openxp.store.models import xapi_statements as statements_t

ERASED_HOME_PAGE = "urn:openxp:erased"
_SAVEPOINT = "openxp_erasure_dry_run"


@dataclass(frozen=True)
class Erased:
    learner: int
    attributes: int
    statements: int
    state_documents: int
    agent_profiles: int
    attachments: int
    pseudonymised_statements: int
    completion_records: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "learner": self.learner,
            "attributes": self.attributes,
            "statements": self.statements,
            "stateDocuments": self.state_documents,
            "agentProfiles": self.agent_profiles,
            "attachments": self.attachments,
            "pseudonymisedStatements": self.pseudonymised_statements,
            "completionRecords": self.completion_records,
        }


async def _tenant_key(conn: Connection, tenant_id: int) -> bytes:
    """The tenant's pseudonym key, made on first use (conditionally: concurrent first erasures agree)."""
    fresh = secrets.token_hex(32)
    await conn.execute(
        update(tenants_t)
        .where(tenants_t.c.id == tenant_id, tenants_t.c.pseudonym_key.is_(None))
        .values(pseudonym_key=fresh)
    )
    row = (await conn.execute(select(tenants_t.c.pseudonym_key).where(tenants_t.c.id == tenant_id))).first()
    assert row is not None and row.pseudonym_key
    return bytes.fromhex(row.pseudonym_key)


def pseudonym(key: bytes, identifier: str) -> dict[str, Any]:
    name = hmac.new(key, identifier.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return {"homePage": ERASED_HOME_PAGE, "name": name}


def _rewrite(value: Any, erased: str, account: dict[str, Any]) -> Any:
    """``value`` with every Agent or Group identified as ``erased`` replaced by the pseudonym
    (its name dropped: a name is personal data too); the authority is left as it is."""
    if isinstance(value, list):
        return [_rewrite(v, erased, account) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: (v if k == "authority" else _rewrite(v, erased, account)) for k, v in value.items()}
    if agent_key(value) == erased:
        for name in (*IFIS, "name"):
            out.pop(name, None)
        out["account"] = dict(account)
    return out


async def _pseudonymise(conn: Connection, tenant_id: int, erased: str, account: dict[str, Any]) -> int:
    """Rewrite the remaining statements that mention ``erased``; how many."""
    s, a = statements_t, agents_t
    replacement = agent_key({"account": account})
    assert replacement is not None
    rows = await conn.execute(
        select(s.c.seq, s.c.payload, s.c.object_agent)
        .select_from(a.join(s, s.c.seq == a.c.seq))
        .where(a.c.tenant_id == tenant_id, a.c.agent_key == erased, s.c.tenant_id == tenant_id)
        .order_by(s.c.seq)
    )
    found = list(rows)
    for row in found:
        payload = orjson.dumps(_rewrite(orjson.loads(row.payload), erased, account)).decode()
        values: dict[str, Any] = {"payload": payload}
        if row.object_agent == erased:
            values["object_agent"] = replacement
        await conn.execute(update(s).where(s.c.tenant_id == tenant_id, s.c.seq == row.seq).values(values))
        await conn.execute(delete(a).where(a.c.seq == row.seq, a.c.agent_key == erased))
        held = await conn.execute(select(a.c.seq).where(a.c.seq == row.seq, a.c.agent_key == replacement))
        if held.first() is None:
            await conn.run(
                "INSERT INTO xapi_statement_agents (seq, agent_key, tenant_id) VALUES ($1, $2, $3)",
                row.seq,
                replacement,
                tenant_id,
            )
    return len(found)


async def _remove_documents(conn: Connection, tenant_id: int, erased: str, kind: str) -> int:
    result = await conn.execute(
        delete(docs_t)
        .where(docs_t.c.tenant_id == tenant_id, docs_t.c.kind == kind, docs_t.c.agent_key == erased)
        .returning(docs_t.c.id)
    )
    return len(result.all())


async def _erase(conn: Connection, tenant_id: int, agent: dict[str, Any], learner_identifier: str | None) -> Erased:
    forms = forms_of(agent)
    learner, attributes = 0, 0
    if learner_identifier is not None:
        removed = await conn.execute(
            delete(learners_t)
            .where(learners_t.c.tenant_id == tenant_id, learners_t.c.identifier == learner_identifier)
            .returning(learners_t.c.attributes)
        )
        for row in removed.all():
            learner, attributes = learner + 1, attributes + len(row.attributes or {})
    doomed = await removal.doomed(conn, tenant_id, statements_t.c.actor_key.in_(forms))
    statements = await removal.remove_statements(conn, tenant_id, doomed)
    # One pseudonym for the person, whichever form named them: keyed on the last form (the
    # mbox_sha1sum when there is one), so erasing by mbox or by its sha1 gives the same one.
    account = pseudonym(await _tenant_key(conn, tenant_id), forms[-1])
    pseudonymised = state = profiles = records = 0
    for erased in forms:
        records += await completions.forget_actor(conn, tenant_id, erased)
        pseudonymised += await _pseudonymise(conn, tenant_id, erased, account)
        state += await _remove_documents(conn, tenant_id, erased, "state")
        profiles += await _remove_documents(conn, tenant_id, erased, "agent_profile")
    attachments = await removal.remove_unreferenced_attachments(conn, tenant_id, doomed)
    return Erased(learner, attributes, statements, state, profiles, attachments, pseudonymised, records)


async def erase(
    conn: Connection, tenant_id: int, agent: dict[str, Any], learner_identifier: str | None, *, dry_run: bool
) -> Erased:
    """Erase the agent (an xAPI Agent with one identifier) from the tenant; ``learner_identifier``
    names its learner record, if it can have one. Run inside a write transaction."""
    if not dry_run:
        return await _erase(conn, tenant_id, agent, learner_identifier)
    await conn.run(f"SAVEPOINT {_SAVEPOINT}")
    try:
        return await _erase(conn, tenant_id, agent, learner_identifier)
    finally:
        await conn.run(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        await conn.run(f"RELEASE SAVEPOINT {_SAVEPOINT}")
