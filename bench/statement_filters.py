"""Statement queries and ingest as the LRS grows (issue 14): every xAPI filter of ``GET
/xapi/statements``, alone and combined, each selective (about 1 in 1,000 stored statements
matches), timed over HTTP at 10,000, 100,000 and 1,000,000 stored statements, with the ingest
rate of ``POST /xapi/statements`` (batches of 100) at each size.

    .venv/bin/python -m bench.statement_filters                  # SQLite, 10k / 100k / 1M
    .venv/bin/python -m bench.statement_filters --db postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.statement_filters --sizes 2000,5000 --requests 5   # quick

The database grows in place: seeded to the first size, measured, seeded on to the next. Between
sizes the server is stopped, the seed writes (``bench/console_seed.py``'s pipeline: the LRS's own
validator, ``xapi.shape.row`` and the batch insert ``statements.insert_many``), PostgreSQL gets
``VACUUM ANALYZE`` (what autovacuum would have done), and the server starts again. Planted in the
seed, one in every 1,000 statements each: a learner (``agent``), a verb, an activity, a
registration, an instructor (``agent`` + ``related_agents``), a grouping activity (``activity`` +
``related_activities``); the rest is ``console_seed``'s mix (10,000 learners, 6 verbs, 500
activities). Each query is sent ``--requests`` times after two warm-up requests, one at a time on
one keep-alive connection; the first page (the LRS's default limit) is what is timed, and every
query must return at least one statement, each of which matches, or the run stops.

The ingest row is ``--ingest`` sequential POSTs of 100 new statements each (one connection, no
concurrency): a trend across sizes, not a throughput figure (that is ``bench.run``'s
``xapi-post100``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.console_seed import VERSION, authority_of, complete, sent_statement
from bench.postgres import pg_execute, pg_version
from bench.processes import Service, free_port, http_ok, log, openxp_env
from openxp.store import Database
from openxp.store import apikeys as apikey_store
from openxp.store import statements as statement_store
from openxp.store import tenants as tenant_store
from openxp.store.migrate import upgrade
from openxp.xapi import shape

TENANT = "growth"
LEARNERS = 10_000
EVERY = 1000  # one planted statement of each kind per this many
BATCH = 1000
STEP = 0.25  # seconds of "stored" time between two seeded statements
NEEDLE = "https://needle.bench.example.com"
AGENT = {"objectType": "Agent", "mbox": "mailto:needle@growth.example.com"}
INSTRUCTOR = {"objectType": "Agent", "mbox": "mailto:instructor@growth.example.com"}
VERB = f"{NEEDLE}/verbs/rehearsed"
ACTIVITY = f"{NEEDLE}/activities/rare"
GROUPING = f"{NEEDLE}/programmes/rare"
REGISTRATION = "6a3c9e44-1f5b-4d7e-9c0a-7b1e2d3f4a5b"
COMMON_VERB = "http://adlnet.gov/expapi/verbs/experienced"
# Which planted kind a seeded statement carries: its position modulo EVERY.
PLANTED = {100: "agent", 200: "verb", 300: "activity", 400: "registration", 500: "instructor", 600: "grouping"}


def planted(statement: dict[str, Any], kind: str, i: int) -> dict[str, Any]:
    if kind in ("agent", "activity") and (i // EVERY) % 2 == 0:
        # Half of the rare learner's and rare activity's statements carry the commonest verb, so
        # that a common filter combined with a rare one is selective at every size.
        statement["verb"] = {"id": COMMON_VERB, "display": {"en-US": "experienced"}}
    if kind == "agent":
        statement["actor"] = dict(AGENT)
    elif kind == "verb":
        statement["verb"] = {"id": VERB, "display": {"en-US": "rehearsed"}}
    elif kind == "activity":
        statement["object"] = {"objectType": "Activity", "id": ACTIVITY}
    elif kind == "registration":
        statement.setdefault("context", {})["registration"] = REGISTRATION
    elif kind == "instructor":
        statement.setdefault("context", {})["instructor"] = dict(INSTRUCTOR)
    elif kind == "grouping":
        statement.setdefault("context", {}).setdefault("contextActivities", {})["grouping"] = [{"id": GROUPING}]
    return statement


def stored_at(start: float, i: int) -> float:
    return round(start + i * STEP, 3)


def _batches(first: int, last: int, start: float, authority: dict[str, Any]) -> Iterator[list[Any]]:
    rng = random.Random(first)
    for at in range(first, last, BATCH):
        batch = []
        for i in range(at, min(last, at + BATCH)):
            sent = sent_statement(TENANT, i, LEARNERS, rng)
            kind = PLANTED.get(i % EVERY)
            if kind:
                sent = planted(sent, kind, i)
            when = stored_at(start, i)
            statement = complete(sent, str(uuid.UUID(int=rng.getrandbits(128), version=4)), when, authority)
            batch.append(shape.row(statement, when))
        yield batch


@dataclass
class Lrs:
    tenant_id: int
    key: str
    secret: str
    start: float  # the seed's first "stored" time

    def headers(self) -> dict[str, str]:
        basic = base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
        return {"Authorization": f"Basic {basic}", "X-Experience-API-Version": VERSION}


async def make_tenant(url: str, public_url: str, n_max: int) -> Lrs:
    db = Database(url, pool_size=1)
    try:
        async with db.write() as conn:
            tenant = await tenant_store.create(conn, TENANT)
            key, secret = await apikey_store.create(conn, tenant.id, "growth bench")
    finally:
        await db.dispose()
    # Room before "now" for the largest size, so that statements posted later are stored later.
    return Lrs(tenant.id, key.key, secret, time.time() - n_max * STEP - 3600)


async def grow(url: str, lrs: Lrs, public_url: str, first: int, last: int) -> None:
    db = Database(url, pool_size=1)
    authority = authority_of(public_url, lrs.key)
    try:
        for batch in _batches(first, last, lrs.start, authority):
            async with db.write() as conn:
                await statement_store.insert_many(conn, lrs.tenant_id, batch)
    finally:
        await db.dispose()


def _mbox(agent: dict[str, Any] | None) -> str | None:
    return agent.get("mbox") if agent else None


def _context(s: dict[str, Any]) -> dict[str, Any]:
    return s.get("context") or {}


def queries(lrs: Lrs, n: int) -> list[tuple[str, dict[str, str], Callable[[dict[str, Any]], bool]]]:
    """(label, query parameters, a check that a returned statement matches)."""
    agent, instructor = json.dumps(AGENT), json.dumps(INSTRUCTOR)
    # A window holding EVERY-th of the statements, in the middle of the stored ones.
    middle = n // 2
    since, until = shape.iso(stored_at(lrs.start, middle)), shape.iso(stored_at(lrs.start, middle + n // EVERY))
    in_window: Callable[[dict[str, Any]], bool] = lambda s: since < s["stored"] <= until  # noqa: E731
    is_agent: Callable[[dict[str, Any]], bool] = lambda s: _mbox(s["actor"]) == AGENT["mbox"]  # noqa: E731
    return [
        ("agent", {"agent": agent}, is_agent),
        ("verb", {"verb": VERB}, lambda s: s["verb"]["id"] == VERB),
        ("activity", {"activity": ACTIVITY}, lambda s: s["object"].get("id") == ACTIVITY),
        ("registration", {"registration": REGISTRATION}, lambda s: _context(s).get("registration") == REGISTRATION),
        (
            "agent + related_agents (instructor)",
            {"agent": instructor, "related_agents": "true"},
            lambda s: _mbox(_context(s).get("instructor")) == INSTRUCTOR["mbox"],
        ),
        (
            "activity + related_activities (grouping)",
            {"activity": GROUPING, "related_activities": "true"},
            lambda s: GROUPING in [a["id"] for a in _context(s).get("contextActivities", {}).get("grouping", [])],
        ),
        ("since + until (1 in 1,000)", {"since": since, "until": until}, in_window),
        (
            "common verb + rare activity",
            {"verb": COMMON_VERB, "activity": ACTIVITY},
            lambda s: s["verb"]["id"] == COMMON_VERB and s["object"].get("id") == ACTIVITY,
        ),
        (
            "rare agent + common verb",
            {"agent": agent, "verb": COMMON_VERB},
            lambda s: is_agent(s) and s["verb"]["id"] == COMMON_VERB,
        ),
        ("rare agent + since", {"agent": agent, "since": shape.iso(stored_at(lrs.start, middle))}, is_agent),
        ("rare agent, ascending", {"agent": agent, "ascending": "true"}, is_agent),
    ]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def measure(base_url: str, lrs: Lrs, n: int, requests: int) -> list[tuple[str, int, float, float]]:
    rows = []
    with httpx.Client(base_url=base_url, headers=lrs.headers(), timeout=60) as http:
        for label, params, matches in queries(lrs, n):
            times = []
            for attempt in range(requests + 2):
                started = time.perf_counter()
                answer = http.get("/xapi/statements", params=params)
                elapsed = time.perf_counter() - started
                if answer.status_code != 200:
                    raise AssertionError(f"{label}: {answer.status_code} {answer.text[:300]}")
                found = answer.json()["statements"]
                if not found or not all(matches(s) for s in found):
                    raise AssertionError(f"{label}: {len(found)} statements, not all matching")
                if attempt >= 2:
                    times.append(elapsed * 1000)
            rows.append((label, len(found), statistics.median(times), percentile(times, 0.95)))
    return rows


def ingest(base_url: str, lrs: Lrs, posts: int) -> float:
    """Statements/s of ``posts`` sequential POSTs of 100 new statements."""
    rng = random.Random(posts)
    batches = [[sent_statement(TENANT, i, LEARNERS, rng) for i in range(100)] for _ in range(posts)]
    with httpx.Client(base_url=base_url, headers=lrs.headers(), timeout=60) as http:
        started = time.perf_counter()
        for batch in batches:
            answer = http.post("/xapi/statements", json=batch)
            if answer.status_code != 200:
                raise AssertionError(f"ingest: {answer.status_code} {answer.text[:300]}")
        return posts * 100 / (time.perf_counter() - started)


def run(url: str, sizes: list[int], requests: int, posts: int, work: Path, backend: str) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    upgrade(url)
    lrs = asyncio.run(make_tenant(url, base_url, sizes[-1]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")} | openxp_env(work, url, base_url)
    argv = [sys.executable, "-m", "openxp.cli", "serve", "--port", str(port), "--workers", "1"]
    server = Service("openxp", port, argv, env, work / "server.log", lambda s: http_ok(s.base_url + "/healthz"))
    results: dict[int, list[tuple[str, int, float, float]]] = {}
    rates: dict[int, float] = {}
    seeded = 0
    for n in sizes:
        started = time.perf_counter()
        asyncio.run(grow(url, lrs, base_url, seeded, n))
        seeded = n
        if url.startswith("postgresql"):
            asyncio.run(pg_execute(url, "VACUUM ANALYZE"))
        log(f"seeded to {n} statements in {time.perf_counter() - started:.0f} s")
        server.start()
        try:
            results[n] = measure(base_url, lrs, n, requests)
            rates[n] = ingest(base_url, lrs, posts)
        finally:
            server.stop()
        # The ingest's statements are newer than every seeded one and carry no planted value, so
        # they only make the next size a little larger.
    print(table(results, rates, backend, requests, posts))


def table(
    results: dict[int, list[tuple[str, int, float, float]]], rates: dict[int, float], backend: str, req: int, posts: int
) -> str:
    sizes = list(results)
    lines = [
        "```text",
        f"statement filters as the LRS grows, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"database: {backend}; openxp serve --workers 1; {req} timed GETs per query after 2 warm-up GETs",
        f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at the end",
        "```",
        "",
        "| query (first page, ms) | " + " | ".join(f"{n:,}: p50 / p95" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for i, (label, *_rest) in enumerate(results[sizes[0]]):
        cells = [f"{results[n][i][2]:.1f} / {results[n][i][3]:.1f}" for n in sizes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    rate_cells = " | ".join(f"{rates[n]:,.0f}" for n in sizes)
    lines.append(f"| ingest, {posts} POSTs of 100 (statements/s) | {rate_cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="a PostgreSQL server URL (a fresh database is made and dropped); default SQLite")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="stored statements, ascending")
    parser.add_argument("--requests", type=int, default=20, help="timed GETs per query and size")
    parser.add_argument("--ingest", type=int, default=50, help="POSTs of 100 statements per size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if sizes != sorted(sizes) or sizes[0] < 2 * EVERY:
        parser.error(f"--sizes must ascend and start at {2 * EVERY} or more")
    with tempfile.TemporaryDirectory(prefix="openxp-growth-bench-") as tmp:
        work = Path(tmp)
        if args.db is None:
            backend = f"SQLite {sqlite3.sqlite_version}"
            run(f"sqlite:///{work / 'growth.sqlite3'}", sizes, args.requests, args.ingest, work, backend)
            return
        name = "openxp_growth_" + secrets.token_hex(4)
        asyncio.run(pg_execute(args.db, f'CREATE DATABASE "{name}"'))
        try:
            url = args.db.rsplit("/", 1)[0] + "/" + name
            run(url, sizes, args.requests, args.ingest, work, f"PostgreSQL {pg_version()}")
        finally:
            asyncio.run(pg_execute(args.db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
