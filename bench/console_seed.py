"""A tenant at scale, written fast and checked against the API (issue 12; used by
``bench.console_pages``).

Tenant ``bench``: learners with six attributes, imported through the user import's own validation
and writer (``validate_row`` + ``learners.write_batch``); statements completed as ``POST
/xapi/statements`` completes them, validated by the LRS's own validator, turned into rows by
``xapi.shape.row`` and written by the LRS's batch insert ``statements.insert_many``; audit events
through ``audit.insert_many``; integrations, grants and API keys through their repositories. A
second tenant ``other`` gets a tenth as much, written in alternating batches so the two tenants'
rows are interleaved as on a shared server. ``check_seed``, once a server is up, posts one
statement through ``POST /xapi/statements`` and compares its stored row with the row the seed's
pipeline makes of the same statement (every column but ``seq`` and the storage time), and reads a
seeded statement back through ``GET /xapi/statements``: a seed that drifted from what the API
writes stops the run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bench.postgres import pg_execute
from bench.processes import free_port, log, openxp_env
from openxp import crypto, scopes
from openxp.imports.validation import validate_row
from openxp.store import Database
from openxp.store import accounts as account_store
from openxp.store import apikeys as apikey_store
from openxp.store import audit as audit_store
from openxp.store import clients as client_store
from openxp.store import grants as grant_store
from openxp.store import learners as learner_store
from openxp.store import statements as statement_store
from openxp.store import tenants as tenant_store
from openxp.store.migrate import upgrade
from openxp.store.models import xapi_statement_activities, xapi_statement_agents, xapi_statements
from openxp.xapi import shape
from openxp.xapi.validate import Validator, normalize

TENANT = "bench"
OTHER = "other"
DAY = 86400
DAYS = 30
VERSION = "1.0.3"  # the X-Experience-API-Version the seed's statements were "sent" with
VERBS = [
    ("http://adlnet.gov/expapi/verbs/experienced", "experienced"),
    ("http://adlnet.gov/expapi/verbs/attempted", "attempted"),
    ("http://adlnet.gov/expapi/verbs/completed", "completed"),
    ("http://adlnet.gov/expapi/verbs/passed", "passed"),
    ("http://adlnet.gov/expapi/verbs/failed", "failed"),
    ("http://adlnet.gov/expapi/verbs/answered", "answered"),
]
ACTIVITIES = 500
COURSES = 20
DEPARTMENTS = ["Sales", "Support", "Engineering", "Finance", "Legal", "Marketing", "Operations", "People"]
COUNTRIES = ["NZ", "AU", "US", "GB", "DE", "FR", "JP", "CA"]
SURNAMES = ["Smith", "Ngata", "Chen", "Garcia", "Okafor", "Kowalski", "Tanaka", "Müller", "Silva", "Dubois"]
AUDIT_TYPES = [
    ("token_issued", "info"),
    ("token_refreshed", "info"),
    ("code_redeemed", "info"),
    ("login_succeeded", "info"),
    ("login_failed", "warning"),
    ("basic_auth_failed", "warning"),
    ("console_signed_in", "info"),
    ("apikey_created", "info"),
]
BATCH = 1000  # statements (or learners) per store call while seeding
PASSWORD = "console bench " + "x" * 8  # the owner's; the database keeps only its argon2 hash


@dataclass(frozen=True)
class Plan:
    statements: int
    learners: int
    audit: int
    requests: int
    no_vacuum: bool = False

    @property
    def other_statements(self) -> int:
        return max(self.statements // 10, 1)

    @property
    def other_learners(self) -> int:
        return max(self.learners // 10, 1)


@dataclass
class Seeded:
    owner_email: str
    key: str  # the API key whose authority the seeded statements carry
    secret: str
    client_id: str
    learners: list[str] = field(default_factory=list)
    statement_ids: list[str] = field(default_factory=list)


def learner_email(tenant: str, i: int) -> str:
    return f"learner{i}@{tenant}.example.com"


def learner_row(tenant: str, i: int) -> dict[str, Any]:
    """One learner as a user import's row: name and attributes (the identifier is the Email)."""
    return {
        "name": f"Learner{i} {SURNAMES[i % len(SURNAMES)]}",
        "attributes": {
            "Email": learner_email(tenant, i),
            "Department": DEPARTMENTS[i % len(DEPARTMENTS)],
            "Country": COUNTRIES[(i // 3) % len(COUNTRIES)],
            "Level": 1 + i % 5,
            "Hire Date": f"20{10 + i % 15}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "Manager Email": f"manager{i // 50}@{tenant}.example.com",
        },
    }


def activity_id(n: int) -> str:
    return f"https://courses.bench.example.com/activities/{n}"


def sent_statement(tenant: str, i: int, learners: int, rng: random.Random) -> dict[str, Any]:
    """A statement as a learning tool sends it (no id, stored, authority or version)."""
    who = rng.randrange(learners)
    verb, display = VERBS[rng.randrange(len(VERBS))]
    # A skewed choice: a few activities are busy, most are quiet, as in a real catalogue.
    activity = int(ACTIVITIES * rng.random() ** 2)
    statement: dict[str, Any] = {
        "actor": {"objectType": "Agent", "mbox": f"mailto:{learner_email(tenant, who)}", "name": f"Learner{who}"},
        "verb": {"id": verb, "display": {"en-US": display}},
        "object": {
            "objectType": "Activity",
            "id": activity_id(activity),
            "definition": {
                "name": {"en-US": f"Lesson {activity}"},
                "type": "http://adlnet.gov/expapi/activities/lesson",
            },
        },
        "context": {
            "contextActivities": {"parent": [{"id": f"https://courses.bench.example.com/courses/{activity % COURSES}"}]}
        },
    }
    if verb.endswith(("passed", "failed", "completed")):
        statement["result"] = {
            "score": {"scaled": round(rng.random(), 2)},
            "completion": True,
            "success": "passed" in verb,
        }
    return statement


def complete(sent: dict[str, Any], statement_id: str, stored_at: float, authority: dict[str, Any]) -> dict[str, Any]:
    """What POST /xapi/statements stores for ``sent`` (openxp.xapi.statements._prepare): validated,
    normalized, then id, stored, timestamp, authority and version added."""
    Validator(v2=False).statement(sent, "")
    normalize(sent)
    statement = dict(sent)
    statement.setdefault("id", statement_id)
    stored_text = shape.iso(stored_at)
    statement["stored"] = stored_text
    statement.setdefault("timestamp", stored_text)
    statement["authority"] = authority
    statement.setdefault("version", VERSION)
    return statement


def authority_of(public_url: str, key: str) -> dict[str, Any]:
    """The authority the LRS puts on statements an API key posts (xapi.endpoint.authority_for)."""
    return {"objectType": "Agent", "account": {"homePage": public_url, "name": key}}


def stored_times(n: int, end: float, rng: random.Random) -> list[float]:
    """``n`` storage times over the ``DAYS`` days before ``end``, ascending (seq follows stored),
    rounded to the millisecond as the LRS rounds them."""
    start = end - DAYS * DAY + 60
    return sorted(math.floor((start + rng.random() * (end - start - 60)) * 1000) / 1000 for _ in range(n))


async def _tenant(
    db: Database, name: str, owner: str, n_clients: int, n_keys: int, n_grants: int
) -> tuple[int, str, str, str]:
    """Tenant, owner, a few admins, integrations, API keys and grants approved by the owner
    (with an access token each, for the Connected page's "last used"); (id, key, secret, client_id)."""
    async with db.write() as conn:
        tenant = await tenant_store.create(conn, name)
        account = await account_store.create(conn, tenant.id, owner, PASSWORD, "owner")
        for i in range(4):
            await account_store.create(
                conn, tenant.id, f"admin{i}@{name}.example.com", crypto.random_token(), ("admin", "viewer")[i % 2]
            )
        made = []
        for i in range(n_clients):
            client, _ = await client_store.create(
                conn,
                tenant_id=tenant.id,
                name=f"Integration {i}",
                redirect_uris=[f"https://app{i}.{name}.example.com/cb"],
            )
            made.append(client)
        keys = [await apikey_store.create(conn, tenant.id, f"Feed {i}") for i in range(n_keys)]
        for i in range(n_grants):
            client = made[i % len(made)]
            grant_id = await grant_store.create_grant(
                conn,
                tenant_id=tenant.id,
                client_pk=client.id,
                account_id=account.id,
                scope=scopes.join(client.default_scopes),
                lifetime=365 * DAY,
            )
            await grant_store.issue_tokens(
                conn,
                grant_id=grant_id,
                access_hash=crypto.digest(crypto.new_credential(crypto.ACCESS_TOKEN_PREFIX)),
                access_scope=scopes.join(client.default_scopes),
                access_ttl=3600,
                refresh_hash=None,
                refresh_ttl=30 * DAY,
                refresh_limit=time.time() + 365 * DAY,
            )
    key, secret = keys[0]
    return tenant.id, key.key, secret, made[0].client_id


async def _learners(db: Database, tenant_id: int, tenant: str, n: int) -> None:
    for start in range(0, n, BATCH):
        rows = [validate_row(learner_row(tenant, i), ["Email"])[0] for i in range(start, min(n, start + BATCH))]
        async with db.write() as conn:
            await learner_store.write_batch(conn, tenant_id, rows)


def _batches(
    tenant: str, n: int, learners: int, end: float, authority: dict[str, Any], seed: int
) -> Iterator[list[statement_store.NewStatement]]:
    rng = random.Random(seed)
    times = stored_times(n, end, rng)
    for start in range(0, n, BATCH):
        batch = []
        for i in range(start, min(n, start + BATCH)):
            statement = complete(
                sent_statement(tenant, i, learners, rng),
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                times[i],
                authority,
            )
            batch.append(shape.row(statement, times[i]))
        yield batch


async def _statements(
    db: Database, plan: Plan, ids: dict[str, int], keys: dict[str, str], public_url: str, end: float
) -> tuple[list[str], int]:
    """Both tenants' statements, a batch of each in turn (their seqs interleave); the seeded ids of
    ``bench`` (a sample) and the number written."""
    mine = _batches(TENANT, plan.statements, plan.learners, end, authority_of(public_url, keys[TENANT]), 1)
    # The other tenant's batches are spread among bench's: one every ``every`` of them.
    every = max(1, math.ceil(plan.statements / max(plan.other_statements, 1)))
    theirs = _batches(OTHER, plan.other_statements, plan.other_learners, end, authority_of(public_url, keys[OTHER]), 2)
    sample: list[str] = []
    written = 0
    for n, batch in enumerate(mine):
        async with db.write() as conn:
            written += len((await statement_store.insert_many(conn, ids[TENANT], batch)).ids)
        sample += [s.statement_id for s in batch[:: max(1, len(batch) // 20)]]
        if n % every == every - 1 or n == 0:
            other = next(theirs, None)
            if other:
                async with db.write() as conn:
                    await statement_store.insert_many(conn, ids[OTHER], other)
        if written and written % 20_000 == 0:
            log(f"stored {written} statements")
    for other in theirs:
        async with db.write() as conn:
            await statement_store.insert_many(conn, ids[OTHER], other)
    return sample, written


async def _audit(db: Database, tenant: str, n: int, end: float, seed: int) -> None:
    rng = random.Random(seed)
    times = sorted(end - rng.random() * DAYS * DAY for _ in range(n))
    rows: list[audit_store.Row] = []
    for i, at in enumerate(times):
        kind, severity = AUDIT_TYPES[rng.randrange(len(AUDIT_TYPES))]
        actor = f"admin{i % 4}@{tenant}.example.com" if kind.startswith(("login", "console")) else f"client-{i % 7}"
        details = json.dumps({"client_id": f"client-{i % 7}", "n": i})
        rows.append((tenant, at, kind, severity, actor, f"10.0.{i % 250}.{i % 200}", details))
    for start in range(0, n, 5000):
        async with db.write() as conn:
            await audit_store.insert_many(conn, rows[start : start + 5000])


async def seed(url: str, plan: Plan, public_url: str) -> Seeded:
    db = Database(url, pool_size=1)
    end = time.time()
    try:
        bench_id, key, secret, client_id = await _tenant(db, TENANT, f"owner@{TENANT}.example.com", 6, 4, 24)
        other_id, other_key, _, _ = await _tenant(db, OTHER, f"owner@{OTHER}.example.com", 2, 1, 4)
        log(f"seeding {plan.learners} learners")
        await _learners(db, bench_id, TENANT, plan.learners)
        await _learners(db, other_id, OTHER, plan.other_learners)
        log(f"seeding {plan.statements} statements over {DAYS} days (+{plan.other_statements} for {OTHER})")
        sample, written = await _statements(
            db, plan, {TENANT: bench_id, OTHER: other_id}, {TENANT: key, OTHER: other_key}, public_url, end
        )
        if written != plan.statements:
            raise AssertionError(f"the seed wrote {written} statements, not {plan.statements}")
        await _audit(db, TENANT, plan.audit, end, 3)
        await _audit(db, OTHER, max(plan.audit // 10, 1), end, 4)
    finally:
        await db.dispose()
    if not db.is_sqlite:
        # What autovacuum would have done by now on a live server (it is off on the benchmark
        # machine): statistics, and the visibility map, without which PostgreSQL's index-only
        # scans (the per-day counts) read every counted row from the table. --no-vacuum: as
        # right after a bulk load.
        await pg_execute(url, "ANALYZE" if plan.no_vacuum else "VACUUM ANALYZE")
    learners = [learner_email(TENANT, i) for i in (0, plan.learners // 2, plan.learners - 1)]
    return Seeded(f"owner@{TENANT}.example.com", key, secret, client_id, learners, sample)


@dataclass(frozen=True)
class Prepared:
    """A seeded database and what it takes to serve it: the port, URL, environment and argv."""

    seeded: Seeded
    port: int
    base_url: str
    env: dict[str, str]
    serve: list[str]


def prepare(url: str, plan: Plan, work: Path) -> Prepared:
    """Migrate and seed ``url`` for an ``openxp serve --workers 1`` on a free port (not started)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    upgrade(url)
    seeded = asyncio.run(seed(url, plan, base_url))
    log(f"seeded in {time.perf_counter() - start:.0f} s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")} | openxp_env(work, url, base_url)
    argv = [sys.executable, "-m", "openxp.cli", "serve", "--port", str(port), "--workers", "1"]
    return Prepared(seeded, port, base_url, env, argv)


async def _row(url: str, statement_id: str) -> dict[str, Any]:
    """A statement's row, with the agents and activities its side-table rows name."""
    db = Database(url, pool_size=1)
    try:
        async with db.read() as conn:
            s, agents, activities = xapi_statements, xapi_statement_agents, xapi_statement_activities
            found = (await conn.execute(select(s).where(s.c.statement_id == statement_id))).one()._asdict()
            found["agents"] = set(
                (await conn.execute(select(agents.c.agent_key).where(agents.c.seq == found["seq"]))).scalars()
            )
            found["activities"] = set(
                (await conn.execute(select(activities.c.activity_id).where(activities.c.seq == found["seq"]))).scalars()
            )
            return found
    finally:
        await db.dispose()


def check_seed(url: str, base_url: str, seeded: Seeded) -> None:
    """The seed writes what the API writes: one statement posted through ``POST /xapi/statements``
    against the seed's row for the same statement, and a seeded one read back through the LRS."""
    basic = base64.b64encode(f"{seeded.key}:{seeded.secret}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "X-Experience-API-Version": VERSION}
    sent = sent_statement(TENANT, 0, 10, random.Random(7))
    statement_id = str(uuid.uuid4())
    posted = httpx.post(f"{base_url}/xapi/statements", json=[sent | {"id": statement_id}], headers=headers, timeout=30)
    if posted.status_code != 200:
        raise AssertionError(f"POST /xapi/statements: {posted.status_code} {posted.text[:500]}")
    by_api = asyncio.run(_row(url, statement_id))
    mine = shape.row(
        complete(json.loads(json.dumps(sent)), statement_id, by_api["stored"], authority_of(base_url, seeded.key)),
        by_api["stored"],
    )
    ours = {
        "statement_id": mine.statement_id, "stored": mine.stored, "voided": False, "verb_id": mine.verb_id,
        "actor_key": mine.actor_key, "object_activity": mine.object_activity, "object_agent": mine.object_agent,
        "object_statement": mine.object_statement, "registration": mine.registration,
        "authority_key": mine.authority_key, "payload": json.loads(mine.payload), "agents": mine.agents,
        "activities": mine.activities,
    }  # fmt: skip
    theirs = {k: v for k, v in by_api.items() if k not in {"seq", "tenant_id"}} | {
        "payload": json.loads(by_api["payload"])
    }
    theirs["voided"] = bool(theirs["voided"])
    if ours != theirs:
        raise AssertionError(f"the seed drifted from POST /xapi/statements:\nseed: {ours}\napi:  {theirs}")
    # A seeded statement reads back through the LRS as stored, completed as the posted one is.
    sample = seeded.statement_ids[len(seeded.statement_ids) // 2]
    read = [
        httpx.get(f"{base_url}/xapi/statements", params={"statementId": sid}, headers=headers, timeout=30)
        for sid in (sample, statement_id)
    ]
    stored = json.loads(asyncio.run(_row(url, sample))["payload"])
    added = {"id", "stored", "timestamp", "authority", "version"}
    if [r.status_code for r in read] != [200, 200] or read[0].json() != stored or not added <= set(stored):
        raise AssertionError(f"GET /xapi/statements of a seeded statement: {read[0].status_code} {read[0].text[:500]}")
    if {k: stored[k] for k in ("authority", "version")} != {k: read[1].json()[k] for k in ("authority", "version")}:
        raise AssertionError(f"a seeded statement's authority or version is not the API's: {stored}")
    log("seed check: the seed's rows are the API's rows")
