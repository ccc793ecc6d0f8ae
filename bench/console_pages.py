"""Console pages at scale (issue 12): each page of ``/console/{tenant}/`` timed over HTTP against a
real ``openxp serve`` on a database holding 100,000 statements over 30 days and 10,000 learners.

    .venv/bin/python -m bench.console_pages                 # SQLite
    .venv/bin/python -m bench.console_pages --db postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.console_pages --statements 2000 --learners 200 --requests 5   # quick

With ``--db`` a fresh database is made on that server and dropped afterwards; without it, a SQLite
file in a temporary directory. Nothing is left behind.

The seed, before the server starts, and its check against the API once the server is up, are
``bench/console_seed.py``: tenant ``bench`` with the sizes given and a second tenant ``other`` with a
tenth as much; a seed that drifted from what the API writes stops the run.

Then an owner of ``bench`` signs in through the console's form, and each page is fetched
``--requests`` times after two warm-up requests (one keep-alive connection, one request at a
time, the pages in turn), timing the whole HTTP round trip. Printed: a Markdown table of p50,
p95 and max per page. ``tests/test_bench_smoke.py`` runs it at tiny sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import re
import secrets
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench.console_seed import (
    ACTIVITIES,
    DAY,
    DAYS,
    OTHER,
    PASSWORD,
    TENANT,
    VERBS,
    Plan,
    Seeded,
    activity_id,
    check_seed,
    prepare,
)
from bench.postgres import pg_execute, pg_version
from bench.processes import Service, http_ok, log

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(base_url: str, email: str) -> httpx.Client:
    """A cookie-keeping client signed in to the console through its form, as a browser does."""
    http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=60)
    form = http.get(f"/console/{TENANT}/")
    found = CSRF.search(form.text)
    if form.status_code != 200 or not found:
        raise AssertionError(f"console sign-in form: {form.status_code}")
    done = http.post(
        f"/console/{TENANT}/login", data={"csrf_token": found.group(1), "email": email, "password": PASSWORD}
    )
    if done.status_code != 303:
        raise AssertionError(f"console sign-in: {done.status_code} {done.text[:500]}")
    return http


def _q(path: str, **params: str) -> str:
    return path + "?" + urlencode(params)


def pages(seeded: Seeded, plan: Plan, older_page: str) -> list[tuple[str, str, int]]:
    """(row label, path under the tenant, expected status) of every page measured."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    week_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 7 * DAY))
    month_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - DAYS * DAY))
    middle, last = seeded.learners[1], seeded.learners[2]
    failed, attempted = VERBS[4][0], VERBS[1][0]
    return [
        ("entry (signed in: redirect)", "/", 303),
        ("integrations", "/integrations", 200),
        ("one integration", f"/integrations/{seeded.client_id}", 200),
        ("connected", "/connected", 200),
        ("keys", "/keys", 200),
        ("learners", "/learners", 200),
        ("learners, page 40", _q("/learners", page="40"), 200),
        ("learners by name", _q("/learners", name=f"learner{plan.learners // 2 + 7} "), 200),
        ("learners by name, no match", _q("/learners", name="nobody-by-this-name"), 200),
        ("learners by attribute", _q("/learners", key1="Department", op1="=", value1="Finance"), 200),
        ("learners by attribute, one match", _q("/learners", key1="Email", op1="=", value1=last), 200),
        (
            "learners by 2 attributes",
            _q("/learners", key1="Country", op1="=", value1="JP", key2="Level", op2=">=", value2="4"),
            200,
        ),
        ("learners by attribute, no match", _q("/learners", key1="Department", op1="=", value1="Nowhere"), 200),
        ("one learner", _q("/learners/view", id=middle), 200),
        ("records (newest)", "/records", 200),
        ("records, older page (cursor)", older_page, 200),
        ("records, by learner", _q("/records", learner=middle), 200),
        ("records, by verb", _q("/records", verb=failed), 200),
        ("records, by busy activity", _q("/records", activity=activity_id(0)), 200),
        ("records, by quiet activity", _q("/records", activity=activity_id(ACTIVITIES - 1)), 200),
        ("records, last 7 days", _q("/records", **{"from": week_ago, "to": today}), 200),
        ("records, last 30 days", _q("/records", **{"from": month_ago}), 200),
        ("records, by learner + verb", _q("/records", learner=middle, verb=attempted), 200),
        ("records, by verb + last 7 days", _q("/records", verb=failed, **{"from": week_ago}), 200),
        ("records, chart only (bad filter: 400)", _q("/records", verb="not an iri"), 400),
        ("one statement", f"/records/{seeded.statement_ids[len(seeded.statement_ids) // 3]}", 200),
        ("audit log", "/audit", 200),
        ("audit log, page 5", _q("/audit", page="5"), 200),
        ("audit log, by type", _q("/audit", type="login_failed"), 200),
        ("audit log, by actor", _q("/audit", actor=f"admin1@{TENANT}.example.com"), 200),
        ("audit log, last 7 days", _q("/audit", **{"from": week_ago, "to": today}), 200),
        ("admins", "/admins", 200),
        ("account", "/account", 200),
    ]


def older_page(http: httpx.Client) -> str:
    """The Learning records page's "older" link, ten pages in (the seq cursor)."""
    path = "/records"
    for _ in range(10):
        found = re.search(
            r'href="/console/[^/"]+(/records\?[^"]*after=\d+[^"]*)"', http.get(f"/console/{TENANT}{path}").text
        )
        if not found:
            break
        path = found.group(1).replace("&amp;", "&")
    return path


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def measure(http: httpx.Client, plan: Plan, seeded: Seeded) -> list[tuple[str, str, int, list[float]]]:
    """Round-robin: each round GETs every page once, so a burst of load elsewhere on the machine
    lands on every page alike instead of on whichever page was being measured. The first two
    rounds are not timed (templates compiled, statements prepared, caches warm)."""
    listed = pages(seeded, plan, older_page(http))
    times: list[list[float]] = [[] for _ in listed]
    for round_number in range(plan.requests + 2):
        for (label, path, status), spent in zip(listed, times, strict=True):
            url = f"/console/{TENANT}{path}"
            start = time.perf_counter()
            response = http.get(url)
            elapsed = time.perf_counter() - start
            if response.status_code != status:
                raise AssertionError(
                    f"{label}: GET {url} answered {response.status_code}, not {status}: {response.text[:800]}"
                )
            if round_number >= 2:
                spent.append(elapsed * 1000)
    return [(label, path, status, spent) for (label, path, status), spent in zip(listed, times, strict=True)]


def table(results: list[tuple[str, str, int, list[float]]], header: str) -> str:
    lines = [header, "", "| page | GET | status | p50 ms | p95 ms | max ms |", "|---|---|---:|---:|---:|---:|"]
    for label, path, status, times in results:
        shown = path.replace("|", "%7C")
        p50, p95 = statistics.median(times), percentile(times, 95)
        lines.append(f"| {label} | `{shown}` | {status} | {p50:.1f} | {p95:.1f} | {max(times):.1f} |")
    return "\n".join(lines)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def run(url: str, plan: Plan, work: Path, backend: str) -> None:
    ready = prepare(url, plan, work)
    seeded, base_url = ready.seeded, ready.base_url
    server = Service(
        "openxp", ready.port, ready.serve, ready.env, work / "server.log", lambda s: http_ok(s.base_url + "/healthz")
    )
    try:
        server.start()
        check_seed(url, base_url, seeded)
        http = sign_in(base_url, seeded.owner_email)
        load_before = _load()
        try:
            results = measure(http, plan, seeded)
        finally:
            http.close()
    finally:
        server.stop()
    header = "\n".join(
        [
            f"console pages, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
            f"database: {backend}" + (" (ANALYZE only, no VACUUM)" if plan.no_vacuum else ""),
            f"seed: tenant {TENANT}: {plan.statements} statements over {DAYS} days, {plan.learners} learners, "
            f"{plan.audit} audit events; tenant {OTHER}: {plan.other_statements} statements, "
            f"{plan.other_learners} learners",
            f"openxp serve --workers 1; {plan.requests} timed GETs per page after 2 warm-up GETs, one at a time,"
            " the pages in turn",
            f"machine: {_cpu()}, {os.cpu_count()} CPUs; load average (1, 5, 15 min) {load_before} before the"
            f" timed GETs, {_load()} after",
        ]
    )
    print(table(results, "```text\n" + header + "\n```"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="a PostgreSQL server URL (a fresh database is made and dropped); default SQLite")
    parser.add_argument("--statements", type=int, default=100_000)
    parser.add_argument("--learners", type=int, default=10_000)
    parser.add_argument("--audit", type=int, default=20_000, help="audit events of the tenant")
    parser.add_argument("--requests", type=int, default=30, help="timed GETs per page")
    parser.add_argument("--no-vacuum", action="store_true", help="PostgreSQL: ANALYZE only, no VACUUM after the seed")
    args = parser.parse_args()
    if min(args.statements, args.learners, args.audit, args.requests) < 3:
        parser.error("every size must be at least 3")
    plan = Plan(args.statements, args.learners, args.audit, args.requests, args.no_vacuum)
    with tempfile.TemporaryDirectory(prefix="openxp-console-bench-") as tmp:
        work = Path(tmp)
        log(f"working in {work}")
        if args.db is None:
            run(f"sqlite:///{work / 'console.sqlite3'}", plan, work, f"SQLite {sqlite3.sqlite_version}")
            return
        name = "openxp_console_" + secrets.token_hex(4)
        asyncio.run(pg_execute(args.db, f'CREATE DATABASE "{name}"'))
        log(f"made database {name}")
        try:
            run(args.db.rsplit("/", 1)[0] + "/" + name, plan, work, f"PostgreSQL {pg_version()}")
        finally:
            asyncio.run(pg_execute(args.db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
