"""openxp's side-by-side benchmark: one command, everything on 127.0.0.1.

    .venv/bin/python -m bench.run                  # the measured run (docs/benchmarks.md)
    .venv/bin/python -m bench.run --smoke          # a second per target, no thresholds (CI)
    .venv/bin/python -m bench.run --targets ceiling,sqlite:code --rounds 3 --duration 5

It starts every server it needs (the bare Starlette ceiling, oidc-provider as
the peer, openxp with 1 worker on SQLite, and with 1 and 2 workers on fresh
PostgreSQL databases), pre-issues the codes and tokens the targets spend, then
runs wrk against each target in turn, round after round, and prints a table
of requests/s (median and min-max over rounds), p50/p99 latency (medians over
rounds), the server's (and PostgreSQL's) CPU per request, errors, each
server's peak RSS, and the ratios the targets are judged by. Everything it
started is stopped and every database it created dropped, also on Ctrl-C or
SIGTERM. The table also goes to bench/results/ (gitignored). Method and
results: docs/benchmarks.md.

This module plans and runs; the tools it uses live beside it: ``processes`` (the
servers it owns, their CPU and memory), ``postgres`` (throw-away databases),
``peer`` (oidc-provider from npm), ``targets`` (what is measured), ``wrk``
(driving wrk and reading its output) and ``report`` (the table and the ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.peer import peer_available
from bench.postgres import pg_admin, pg_available, pg_execute, pg_url
from bench.processes import Service, cpu_used, free_port, http_ok, log, openxp_env
from bench.report import environment, render, summarize
from bench.targets import (
    OPS,
    PG_WORKERS,
    XAPI_HEADERS,
    XAPI_OPS,
    Target,
    parse_targets,
    statement,
    token_targets,
    xapi_probe,
    xapi_seed,
)
from bench.wrk import run_wrk

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"


# Requests/s one target can reach at most, per worker, with room to spare (CI machines may be
# faster than this one): sizes the pre-issued supply
# (a run that spends it all is marked invalid rather than reusing values).
SUPPLY_RATE = {"openxp": 5000, "peer": 10000}


@dataclass
class Plan:
    targets: list[tuple[str, str]]
    rounds: int
    duration: int
    warmup: int
    threads: int
    connections: int
    smoke: bool
    statements: int = 100_000  # stored before the xapi-get targets run
    token_rows: int = 0  # extra grants, each with an access and a refresh token, never used
    openxp_env: dict[str, str] = field(default_factory=dict)  # --openxp-env: settings for every openxp service


class Bench:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.workdir = Path(tempfile.mkdtemp(prefix="openxp-bench-"))
        self.services: dict[str, Service] = {}
        self.pg_databases: list[str] = []
        self.targets: list[Target] = []
        self.skipped: dict[str, str] = {}
        self.statement_stores: list[tuple[str, dict[str, str], Target]] = []  # servers to fill for xapi-get
        self.bouncer: Any = None  # the PgBouncer in front of pgb2's database, when measured
        self.forward_sinks: list[Any] = []  # the webhooks of xapi-post100-fwd (bench/forward_sink.py)

    # -- setup

    def supply(self, kind: str, workers: int = 1) -> int:
        seconds = self.plan.rounds * self.plan.duration + self.plan.warmup
        return int(SUPPLY_RATE[kind] * workers * seconds * 1.2) + 500

    def _ops(self, service: str) -> list[str]:
        return [op for s, op in self.plan.targets if s == service]

    def _env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")} | {
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }

    def start_ceiling(self) -> None:
        port = free_port()
        service = Service(
            "ceiling",
            port,
            [sys.executable, "-m", "bench.ceiling", "--port", str(port)],
            self._env(),
            self.workdir / "ceiling.log",
            lambda s: http_ok(s.base_url + "/"),
        )
        service.env["PYTHONPATH"] = str(ROOT)
        self.services["ceiling"] = service  # registered first: stopped even if interrupted while starting
        service.start()
        post_body = json.dumps({"users": [{"Email": f"user{i}@example.com", "Name": f"User {i}"} for i in range(3)]})
        ops = {
            "get": Target("ceiling", "get"),
            "post": Target("ceiling", "post", "POST", "/", post_body, {"Content-Type": "application/json"}),
        }
        self.targets += [ops[op] for op in self._ops("ceiling")]

    def start_peer(self) -> None:
        ops = self._ops("peer")
        reason = peer_available()
        if reason:
            for op in ops:
                self.skipped[f"peer:{op}"] = reason
            return
        port = free_port()
        out = self.workdir / "peer"
        n = self.supply("peer")
        argv = ["node", str(BENCH / "oidc_peer.mjs"), "--port", str(port), "--out", str(out)]
        argv += ["--codes", str(n if "code" in ops else 1), "--refresh", str(n if "refresh" in ops else 1)]
        argv += ["--access", "10"]
        log = self.workdir / "peer.log"

        def ready(s: Service) -> bool:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("READY "):
                    s.info = json.loads(line[6:])
                    return True
            return False

        service = Service("peer", port, argv, self._env() | {"NODE_ENV": "production"}, log, ready)
        self.services["peer"] = service
        service.start(timeout=300)
        files = {"codes": out / "codes.txt", "refresh": out / "refresh.txt", "access": out / "access.txt"}
        info = service.info | {"service_id": service.info["client_id"], "service_secret": service.info["client_secret"]}
        self.targets += token_targets("peer", ops, info["token_path"], info["introspection_path"], info, files)

    def start_openxp(self, name: str, url: str, workers: int, seeded: Any) -> None:
        port = free_port()
        data = self.workdir / name
        data.mkdir(exist_ok=True)
        env = self._env() | openxp_env(data, url, f"http://127.0.0.1:{port}")
        env["OPENXP_CODE_TTL"] = str(24 * 3600)
        env.update(self.plan.openxp_env)
        # xapi-post100-fwd forwards to a webhook in this process (bench/forward_sink.py), on loopback.
        env["OPENXP_FORWARDING_ALLOW_NETWORKS"] = "127.0.0.1/32"
        argv = [sys.executable, "-m", "openxp.cli", "serve", "--port", str(port), "--workers", str(workers)]
        service = Service(name, port, argv, env, data / "server.log", lambda s: http_ok(s.base_url + "/healthz"))
        service.info = {"workers": workers}
        if url.startswith("postgresql"):
            service.info["pg_database"] = url.rsplit("/", 1)[1].split("?", 1)[0]
        self.services[name] = service
        service.start()

        ops = self._ops(name)
        creds = {
            "client_id": seeded.client_id,
            "client_secret": seeded.client_secret,
            "redirect_uri": seeded.redirect_uri,
            "service_id": seeded.service_id,
            "service_secret": seeded.service_secret,
        }
        files = {"codes": seeded.codes, "refresh": seeded.refresh, "access": seeded.access}
        made = token_targets(name, ops, "/auth/oauth/token", "/auth/oauth/introspect", creds, files)
        access = seeded.access.read_text().split()[0]
        bearer = {"Authorization": f"Bearer {access}", "X-CXP-Tenant": seeded.tenant}
        xapi_headers = bearer | XAPI_HEADERS
        unavailable = xapi_probe(service.base_url, xapi_headers) if set(ops) & XAPI_OPS else None
        for op in ops:
            if op == "api":
                # The bearer check and nothing else: the caller's own description.
                made.append(Target(name, "api", "GET", "/api/auth/me", "", bearer))
            elif op in XAPI_OPS and unavailable:
                made.append(Target(name, op, unmeasurable=unavailable))
            elif op == "xapi-post1":
                made.append(Target(name, op, "POST", "/xapi/statements", json.dumps(statement(0)), xapi_headers))
            elif op in {"xapi-post100", "xapi-post100-fwd"}:
                batch = json.dumps([statement(i) for i in range(100)])
                target = Target(name, op, "POST", "/xapi/statements", batch, xapi_headers)
                if op == "xapi-post100-fwd":
                    target.toggle = self._forwarding(env, data, seeded.tenant)
                made.append(target)
            elif op == "xapi-get":
                # An agent the POST targets never write (they use agents 0-99): its 1/1000 share stays fixed.
                agent = quote(json.dumps({"mbox": "mailto:learner-500@bench.test"}), safe="")
                target = Target(name, op, "GET", f"/xapi/statements?agent={agent}", "", xapi_headers)
                self.statement_stores.append((service.base_url, xapi_headers, target))
                made.append(target)
        order = {op: i for i, op in enumerate(OPS[name])}
        self.targets += sorted(made, key=lambda t: order[t.op])

    def _forwarding(self, env: dict[str, str], data: Path, tenant: str) -> Any:
        """Turns forwarding of ``tenant``'s statements to the sink on (``openxp forwarding add``) and
        off (``forwarding remove``: the target's undelivered rows go with it, so the next target's
        run does not pay for this one's backlog)."""
        from bench.forward_sink import ForwardSink

        state: dict[str, Any] = {}

        def openxp(*args: str) -> dict[str, Any]:
            done = subprocess.run(
                [sys.executable, "-m", "openxp.cli", "forwarding", *args, "--json"],
                env=env, cwd=data, capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
            found: dict[str, Any] = json.loads(done.stdout)
            return found

        def toggle(on: bool) -> None:
            if "sink" not in state:
                state["sink"] = ForwardSink()
                self.forward_sinks.append(state["sink"])
            if on:
                added = openxp("add", "--tenant", tenant, "--kind", "webhook", "--url", state["sink"].url)
                state["id"] = added["id"]
            elif "id" in state:
                status = openxp("status", "--tenant", tenant)["targets"]
                lag = [t["lag_seconds"] for t in status if t["id"] == state["id"]]
                log(f"forwarding off: {lag[0] if lag else 0:.1f} s behind at the end of the run")
                openxp("remove", "--tenant", tenant, str(state.pop("id")))

        return toggle

    def setup(self) -> None:
        from bench.seed import seed

        services = {s for s, _ in self.plan.targets}
        if "ceiling" in services:
            self.start_ceiling()
            log("started the ceiling")
        if "peer" in services:
            self.start_peer()
            log(f"started oidc-provider with {self.supply('peer')} codes and refresh tokens each")
        if "sqlite" in services:
            n = self.supply("openxp")
            url = f"sqlite:///{self.workdir / 'sqlite' / 'openxp.sqlite3'}"
            seeded = seed(url, self.workdir / "sqlite-values", codes=n, refresh=n, filler=self.plan.token_rows)
            log(f"seeded SQLite with {n} codes and refresh tokens each")
            self.start_openxp("sqlite", url, 1, seeded)
            log("started openxp on SQLite")
        pg = [s for s in PG_WORKERS if s in services]
        if pg:
            reason = pg_available()
            if reason:
                for name in pg:
                    for op in self._ops(name):
                        self.skipped[f"{name}:{op}"] = reason
                return
            # One seeded database, cloned for the other servers: each spends the same values, from its own copy.
            n = self.supply("openxp", workers=max(PG_WORKERS[name] for name in pg))
            first = "openxp_bench_" + secrets.token_hex(5)
            asyncio.run(pg_admin(f'CREATE DATABASE "{first}"'))
            self.pg_databases.append(first)
            seeded = seed(pg_url(first), self.workdir / "pg-values", codes=n, refresh=n, filler=self.plan.token_rows)
            log(f"seeded PostgreSQL with {n} codes and refresh tokens each")
            databases = {pg[0]: first}
            for name in pg[1:]:  # cloned before any server connects to the template
                databases[name] = "openxp_bench_" + secrets.token_hex(5)
                asyncio.run(pg_admin(f'CREATE DATABASE "{databases[name]}" TEMPLATE "{first}"'))
                self.pg_databases.append(databases[name])
            for name in pg:
                url = pg_url(databases[name])
                if name == "pgb2":
                    from tests.support import pgbouncer

                    self.bouncer = pgbouncer.start(pool_size=20)
                    url = self.bouncer.url_for(url) + "?pgbouncer=true"
                self.start_openxp(name, url, PG_WORKERS[name], seeded)
            log(f"started openxp on PostgreSQL ({', '.join(pg)})")
        self.store_statements()

    def store_statements(self) -> None:
        """Fill each server that has an xapi-get target, all at once, two connections each.

        PostgreSQL gets ANALYZE after the first 2,000 statements and at the end, as autovacuum
        would on a live server (it is off on these machines): without statistics the planner
        takes the statements table for empty and scans it for every id look-up."""
        if not self.statement_stores:
            return
        total = self.plan.statements
        warm = min(total, 2000)
        self._store_range(0, warm)
        self._analyze()
        self._store_range(warm, total)
        self._analyze()
        log(f"stored {total} statements in each of {', '.join(t.service for _, _, t in self.statement_stores)}")

    def _store_range(self, start: int, end: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        middle = (start + end) // 2
        with ThreadPoolExecutor(max_workers=2 * len(self.statement_stores)) as pool:
            jobs = [
                (target, pool.submit(xapi_seed, base_url, headers, first, last))
                for base_url, headers, target in self.statement_stores
                for first, last in ((start, middle), (middle, end))
                if last > first
            ]
            for target, job in jobs:
                try:
                    job.result()
                except (RuntimeError, OSError) as exc:
                    target.unmeasurable = str(exc)[:300]

    def _analyze(self) -> None:
        for database in self.pg_databases:
            asyncio.run(pg_execute(pg_url(database), "ANALYZE"))

    # -- measuring

    def check(self) -> None:
        """One request per target before measuring: a wrong setup fails loudly, not as a slow row."""
        for target in self.measurable():
            body = target.body
            if target.values is not None:
                with target.values.open() as lines:
                    body = body.replace("{v}", next(lines).strip())
                target.spent += 1
            request = urllib.request.Request(
                self.services[target.service].base_url + target.path,
                data=body.encode() if target.method == "POST" else None,
                headers=target.headers,
                method=target.method,
            )
            try:
                if target.toggle:
                    target.toggle(True)
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                why = f"{target.name} answers {exc.code} before the run: {exc.read()[:300]!r}"
                if target.op not in XAPI_OPS:
                    raise RuntimeError(why) from None
                target.unmeasurable = why  # the young LRS may refuse; the rest of the run still counts
            finally:
                if target.toggle:
                    target.toggle(False)

    def measurable(self) -> list[Target]:
        return [t for t in self.targets if t.unmeasurable is None]

    def measure(self) -> None:
        plan = self.plan
        if plan.warmup > 0:
            for target in self.measurable():
                with _toggled(target):
                    run_wrk(target, self.services[target.service].base_url, plan.warmup, plan.threads, plan.connections)
        for number in range(1, plan.rounds + 1):
            for target in self.measurable():
                service = self.services[target.service]
                cpu, db_cpu = service.cpu(), service.db_cpu()
                with _toggled(target):
                    figures = run_wrk(target, service.base_url, plan.duration, plan.threads, plan.connections)
                    cpu_after, db_after = service.cpu(), service.db_cpu()
                per_request = 1000 / figures["requests"] if figures["requests"] else math.nan
                figures["cpu_ms"] = cpu_used(cpu, cpu_after) * per_request
                figures["db_cpu_ms"] = math.nan
                if db_cpu is not None and db_after is not None:
                    figures["db_cpu_ms"] = cpu_used(db_cpu, db_after) * per_request
                service.sample_rss()
                target.runs.append(figures)
                print(
                    f"round {number}/{plan.rounds} {target.name:<22} {figures['rps']:>9.0f} req/s"
                    f"  p50 {figures['p50']:.2f} ms  p99 {figures['p99']:.2f} ms  cpu {figures['cpu_ms']:.3f} ms/req"
                    f"  errors {figures['errors']}",
                    file=sys.stderr,
                    flush=True,
                )

    def teardown(self) -> None:
        """Stop what we started, drop what we created: every step tried, even if another fails,
        and not interrupted by a second Ctrl-C or SIGTERM."""
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for service in self.services.values():
                try:
                    service.stop()
                except Exception as exc:
                    log(f"could not stop {service.name}: {exc}")
            if self.bouncer is not None:
                self.bouncer.stop()
            for sink in self.forward_sinks:
                sink.stop()
            for database in self.pg_databases:
                try:
                    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                except Exception as exc:
                    log(f"could not drop database {database}: {exc}")
            shutil.rmtree(self.workdir, ignore_errors=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s per target, no warm-up (CI)")
    parser.add_argument("--targets", help="comma-separated services or service:op (default: all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=3, help="whole seconds per target per round")
    parser.add_argument("--warmup", type=int, default=1, help="whole seconds per target before round 1")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--token-rows", type=int, default=0, help="openxp: this many more grants with live tokens (the tables at size)"
    )
    parser.add_argument(
        "--openxp-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an OPENXP_ setting for every openxp service (e.g. OPENXP_BEARER_CACHE=false); repeatable",
    )
    args = parser.parse_args(argv)
    openxp_env = dict(item.split("=", 1) for item in args.openxp_env)
    if any(not name.startswith("OPENXP_") for name in openxp_env):
        raise SystemExit("--openxp-env takes OPENXP_NAME=VALUE")
    if args.smoke:
        args.rounds, args.duration, args.warmup = 1, 1, 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    plan = Plan(
        parse_targets(args.targets),
        args.rounds,
        args.duration,
        args.warmup,
        args.threads,
        args.connections,
        args.smoke,
        statements=1000 if args.smoke else 100_000,
        token_rows=args.token_rows,
        openxp_env=openxp_env,
    )
    bench = Bench(plan)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    try:
        print(f"openxp bench: setting up {len(plan.targets)} targets in {bench.workdir}", file=sys.stderr, flush=True)
        bench.setup()
        bench.check()
        bench.measure()
        summary = summarize(bench)
        env = environment()  # after set-up, which installs the peer on first use
    finally:
        bench.teardown()
    table = render(summary)
    header = [f"openxp benchmark, {started}"]
    header += [f"{key}: {value}" for key, value in env.items()]
    header.append(
        f"wrk -t{plan.threads} -c{plan.connections}, {plan.rounds} round(s) x {plan.duration:g} s per target"
        f" (warm-up {plan.warmup:g} s), round-robin; req/s is the median over rounds"
    )
    if plan.openxp_env:
        header.append("openxp settings: " + ", ".join(f"{k}={v}" for k, v in sorted(plan.openxp_env.items())))
    if plan.token_rows:
        header.append(
            f"openxp's token tables hold {plan.token_rows:,} more grants, each with a live access and refresh token"
        )
    if any(op == "xapi-get" for _, op in plan.targets):
        header.append(f"xapi-get filters by one agent over {plan.statements:,} stored statements (1/1000 match)")
    text = "\n".join(header) + "\n\n" + table + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kind = "smoke" if plan.smoke else "run"
    (RESULTS / f"{stamp}-{kind}.md").write_text(text)
    (RESULTS / f"{stamp}-{kind}.json").write_text(json.dumps({"environment": env, **summary}, indent=1, default=str))
    return 0


@contextlib.contextmanager
def _toggled(target: Target) -> Iterator[None]:
    """Forwarding on for the length of the target's run (its ``toggle``), off after."""
    if target.toggle:
        target.toggle(True)
    try:
        yield
    finally:
        if target.toggle:
            target.toggle(False)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C, so the teardown still runs."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    with _sigterm_as_interrupt():
        sys.exit(main())
