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
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "tokens.lua"
RESULTS = BENCH / "results"
POSTGRES_ADMIN_URL = os.environ.get("OPENXP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
FORM = "application/x-www-form-urlencoded"

# Requests/s one target can reach at most, per worker, with room to spare (CI machines may be
# faster than this one): sizes the pre-issued supply
# (a run that spends it all is marked invalid rather than reusing values).
SUPPLY_RATE = {"openxp": 5000, "peer": 10000}

SERVICES = ("ceiling", "peer", "sqlite", "pg1", "pg2")
OPENXP_OPS = ("code", "refresh", "introspect", "api", "xapi-post1", "xapi-post100", "xapi-get")
OPS = {
    "ceiling": ("get", "post"),
    "peer": ("code", "refresh", "introspect"),
    "sqlite": OPENXP_OPS,
    "pg1": OPENXP_OPS,
    "pg2": OPENXP_OPS,
}
LABELS = {
    "ceiling": "Starlette bare (uvicorn, 1 process)",
    "peer": "oidc-provider (Node, in-memory)",
    "sqlite": "openxp, SQLite, 1 worker",
    "pg1": "openxp, PostgreSQL, 1 worker",
    "pg2": "openxp, PostgreSQL, 2 workers",
}
OP_LABELS = {
    "get": "GET / (JSON)",
    "post": "POST / (JSON body)",
    "code": "code exchange",
    "refresh": "refresh (rotating)",
    "introspect": "introspection",
    "api": "Bearer GET /api/auth/me",
    "xapi-post1": "POST /xapi/statements x1",
    "xapi-post100": "POST /xapi/statements x100",
    "xapi-get": "GET /xapi/statements?agent=",
}
XAPI_OPS = {"xapi-post1", "xapi-post100", "xapi-get"}


# ---------------------------------------------------------------- processes

_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process (with its reaped children), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = sum(int(f) for f in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    return found


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two samples by the processes alive at the second (a process that
    exited in between is lost: an undercount, never a negative figure)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _status_kb(pid: int, field: str) -> int:
    """A memory figure from /proc/<pid>/status: VmHWM (peak RSS) or VmRSS (now)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Service:
    """One server this run started: a process group we own."""

    name: str
    port: int
    argv: list[str]
    env: dict[str, str]
    log: Path
    ready: Callable[[Service], bool]
    process: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    peak_kb: dict[int, int] = field(default_factory=dict)
    rss_kb: dict[int, int] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.log.parent,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log.read_text(errors='replace')[-3000:]}")
            if self.ready(self):
                log(f"{self.name} is up: pid {self.process.pid}, {self.base_url}")
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready:\n{self.log.read_text(errors='replace')[-3000:]}")

    def sample_rss(self) -> None:
        """Peak RSS (VmHWM) of every process of the server, kept per pid."""
        if self.process is None:
            return
        for pid in _tree(self.process.pid):
            self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), _status_kb(pid, "VmHWM"))
            self.rss_kb[pid] = _status_kb(pid, "VmRSS")

    def cpu(self) -> dict[int, float]:
        return _cpu_by_pid(_tree(self.process.pid)) if self.process else {}

    def db_cpu(self) -> dict[int, float] | None:
        """CPU time of the PostgreSQL backends serving this server's database (same machine)."""
        database = self.info.get("pg_database")
        if not database:
            return None
        pids = asyncio.run(_pg_fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database))
        return _cpu_by_pid([int(row[0]) for row in pids])

    @property
    def peak_mb(self) -> float:
        """The largest process: with several workers, the worst worker."""
        return max(self.peak_kb.values(), default=0) / 1024

    @property
    def final_mb(self) -> float:
        """RSS of the largest process at the last sample (after its last target)."""
        return max(self.rss_kb.values(), default=0) / 1024

    @property
    def total_mb(self) -> float:
        return sum(self.peak_kb.values()) / 1024

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


# ---------------------------------------------------------------- PostgreSQL


async def _pg_fetch(sql: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def pg_execute(url: str, sql: str) -> None:
    """One statement on its own connection (also used by bench.profile)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_admin(sql: str) -> None:
    await pg_execute(POSTGRES_ADMIN_URL, sql)


def pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable: {exc}"
    return None


def _pg_url(name: str) -> str:
    return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def _pg_version() -> str:
    async def run() -> str:
        import asyncpg

        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except Exception:
        return "unavailable"


# ---------------------------------------------------------------- the peer


def peer_available() -> str | None:
    """Install the peer's node_modules if needed (``npm ci``); None when usable, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    wanted = json.loads((BENCH / "package.json").read_text())["dependencies"]["oidc-provider"]
    if _peer_version() == wanted:
        return None
    if shutil.which("npm") is None:
        return "npm is not installed"
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=BENCH, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        return f"npm ci failed: {result.stderr.strip()[-500:]}"
    return None


def _peer_version() -> str:
    try:
        return str(json.loads((BENCH / "node_modules/oidc-provider/package.json").read_text())["version"])
    except OSError:
        return "not installed"


# ---------------------------------------------------------------- targets


@dataclass
class Target:
    service: str
    op: str
    method: str = "GET"
    path: str = "/"
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    values: Path | None = None  # spent one per request
    available: int = 0
    spent: int = 0
    unmeasurable: str | None = None  # why there is no figure
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.op}"


XAPI_HEADERS = {"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
XAPI_AGENTS = 1000  # distinct actors in the stored statements: an agent filter matches 1/1000 of them


def statement(i: int) -> dict[str, Any]:
    return {
        "actor": {
            "objectType": "Agent",
            "name": f"Learner {i}",
            "mbox": f"mailto:learner-{i % XAPI_AGENTS}@bench.test",
        },
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced", "display": {"en-US": "experienced"}},
        "object": {"objectType": "Activity", "id": f"https://bench.test/activities/{i % 50}"},
    }


def xapi_available() -> bool:
    """Whether this checkout has an LRS at all (the xAPI issue comes after the benchmark's)."""
    from openxp import app

    def paths(routes: list[Any]) -> Iterator[str]:
        for route in routes:
            yield getattr(route, "path", "")
            yield from (getattr(route, "path", "") + p for p in paths(getattr(route, "routes", None) or []))

    return any(p.startswith("/xapi") for p in paths(app._routes()))


def _xapi_probe(base_url: str, headers: dict[str, str]) -> str | None:
    """None when GET /xapi/statements answers 200 with our Bearer token, else why it cannot be measured."""
    if not xapi_available():
        return "the xAPI LRS (openxp/xapi) does not exist yet"
    request = urllib.request.Request(base_url + "/xapi/statements?limit=1", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"GET /xapi/statements answers {exc.code} ({exc.read()[:200]!r})"
    return None


def _xapi_seed(base_url: str, headers: dict[str, str], first: int, end: int) -> None:
    """Store statements ``first``..``end`` through the LRS itself, 100 per POST, on one keep-alive connection."""
    import http.client

    conn = http.client.HTTPConnection(base_url.split("//", 1)[1], timeout=120)
    try:
        for start in range(first, end, 100):
            body = json.dumps([statement(i) for i in range(start, min(end, start + 100))])
            conn.request("POST", "/xapi/statements", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(
                    f"seeding statements: POST /xapi/statements answered {response.status}: {payload[:300]!r}"
                )
    finally:
        conn.close()


def parse_targets(spec: str | None) -> list[tuple[str, str]]:
    if not spec:
        return [(s, op) for s in SERVICES for op in OPS[s]]
    chosen: list[tuple[str, str]] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        service, _, op = item.partition(":")
        if service not in OPS or (op and op not in OPS[service]):
            known = ", ".join(f"{s}[:{'|'.join(OPS[s])}]" for s in SERVICES)
            raise SystemExit(f"unknown target {item!r}; targets: {known}")
        for one in [op] if op else OPS[service]:
            if (service, one) not in chosen:
                chosen.append((service, one))
    return chosen


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 2.3.1: form-encode, then Basic.
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _token_targets(
    service: str, ops: list[str], token_path: str, introspect_path: str, creds: dict[str, Any], files: dict[str, Path]
) -> list[Target]:
    auth = {"Authorization": _basic(creds["client_id"], creds["client_secret"]), "Content-Type": FORM}
    redirect = quote(creds["redirect_uri"], safe="")
    access = files["access"].read_text().split()[0]
    made = {
        "code": Target(
            service,
            "code",
            "POST",
            token_path,
            f"grant_type=authorization_code&code={{v}}&redirect_uri={redirect}",
            auth,
            files["codes"],
        ),
        "refresh": Target(
            service, "refresh", "POST", token_path, "grant_type=refresh_token&refresh_token={v}", auth, files["refresh"]
        ),
        "introspect": Target(service, "introspect", "POST", introspect_path, f"token={access}", auth),
    }
    out = []
    for op in ops:
        if op in made:
            target = made[op]
            if target.values is not None:
                target.available = sum(1 for _ in target.values.open())
            out.append(target)
    return out


# ---------------------------------------------------------------- wrk

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return math.nan
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    def find(pattern: str, default: str = "0") -> str:
        match = re.search(pattern, out)
        return match.group(1) if match else default

    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(find(r"Requests/sec:\s+([\d.]+)", "nan")),
        "requests": int(find(r"(\d+) requests in")),
        "p50": _ms(find(r"\s50%\s+(\S+)", "nan")),
        "p99": _ms(find(r"\s99%\s+(\S+)", "nan")),
        "non2xx": int(find(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(int(g) for g in socket_errors.groups()) if socket_errors else 0,
        "spent": int(find(r"SPENT (\d+)")),
    }


def run_wrk(target: Target, base_url: str, seconds: int, threads: int, connections: int) -> dict[str, Any]:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    argv += ["-s", str(LUA)]
    for key, value in target.headers.items():
        argv += ["-H", f"{key}: {value}"]
    argv += [base_url, "--", target.method, target.path, target.body]
    if target.values is not None:
        argv += [str(target.values), str(target.spent), str(threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed on {target.name}: {result.stderr or result.stdout}")
    figures = parse_wrk(result.stdout)
    if target.values is not None:
        target.spent += figures["spent"]
        figures["exhausted"] = target.spent > target.available
    figures["errors"] = figures["non2xx"] + figures["socket_errors"]
    wrk_cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    figures["wrk_cpu_ms"] = 1000 * wrk_cpu / figures["requests"] if figures["requests"] else math.nan
    return figures


# ---------------------------------------------------------------- the run


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


class Bench:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.workdir = Path(tempfile.mkdtemp(prefix="openxp-bench-"))
        self.services: dict[str, Service] = {}
        self.pg_databases: list[str] = []
        self.targets: list[Target] = []
        self.skipped: dict[str, str] = {}
        self.statement_stores: list[tuple[str, dict[str, str], Target]] = []  # servers to fill for xapi-get

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
            lambda s: _http_ok(s.base_url + "/"),
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
        info = service.info
        self.targets += _token_targets("peer", ops, info["token_path"], info["introspection_path"], info, files)

    def start_openxp(self, name: str, url: str, workers: int, seeded: Any) -> None:
        port = free_port()
        data = self.workdir / name
        data.mkdir(exist_ok=True)
        limit = "1000000000"
        env = self._env() | {
            "OPENXP_DATA_DIR": str(data),
            "OPENXP_DATABASE_URL": url,
            "OPENXP_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "OPENXP_ACCESS_LOG": "0",
            "OPENXP_CODE_TTL": str(24 * 3600),
        }
        for variable in (
            "LOGIN_PER_ACCOUNT",
            "LOGIN_PER_IP",
            "CLIENT_AUTH",
            "GRANT_FAILURES",
            "BASIC_PER_KEY",
            "BASIC_PER_IP",
        ):
            env[f"OPENXP_RATE_{variable}"] = limit
        argv = [sys.executable, "-m", "openxp.cli", "serve", "--port", str(port), "--workers", str(workers)]
        service = Service(name, port, argv, env, data / "server.log", lambda s: _http_ok(s.base_url + "/healthz"))
        service.info = {"workers": workers}
        if url.startswith("postgresql"):
            service.info["pg_database"] = url.rsplit("/", 1)[1]
        self.services[name] = service
        service.start()

        ops = self._ops(name)
        creds = {
            "client_id": seeded.client_id,
            "client_secret": seeded.client_secret,
            "redirect_uri": seeded.redirect_uri,
        }
        files = {"codes": seeded.codes, "refresh": seeded.refresh, "access": seeded.access}
        made = _token_targets(name, ops, "/auth/oauth/token", "/auth/oauth/introspect", creds, files)
        access = seeded.access.read_text().split()[0]
        bearer = {"Authorization": f"Bearer {access}", "X-CXP-Tenant": seeded.tenant}
        xapi_headers = bearer | XAPI_HEADERS
        unavailable = _xapi_probe(service.base_url, xapi_headers) if set(ops) & XAPI_OPS else None
        for op in ops:
            if op == "api":
                # The bearer check and nothing else: the caller's own description.
                made.append(Target(name, "api", "GET", "/api/auth/me", "", bearer))
            elif op in XAPI_OPS and unavailable:
                made.append(Target(name, op, unmeasurable=unavailable))
            elif op == "xapi-post1":
                made.append(Target(name, op, "POST", "/xapi/statements", json.dumps(statement(0)), xapi_headers))
            elif op == "xapi-post100":
                batch = json.dumps([statement(i) for i in range(100)])
                made.append(Target(name, op, "POST", "/xapi/statements", batch, xapi_headers))
            elif op == "xapi-get":
                # An agent the POST targets never write (they use agents 0-99): its 1/1000 share stays fixed.
                agent = quote(json.dumps({"mbox": "mailto:learner-500@bench.test"}), safe="")
                target = Target(name, op, "GET", f"/xapi/statements?agent={agent}", "", xapi_headers)
                self.statement_stores.append((service.base_url, xapi_headers, target))
                made.append(target)
        order = {op: i for i, op in enumerate(OPS[name])}
        self.targets += sorted(made, key=lambda t: order[t.op])

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
            seeded = seed(url, self.workdir / "sqlite-values", codes=n, refresh=n)
            log(f"seeded SQLite with {n} codes and refresh tokens each")
            self.start_openxp("sqlite", url, 1, seeded)
            log("started openxp on SQLite")
        pg = [s for s in ("pg1", "pg2") if s in services]
        if pg:
            reason = pg_available()
            if reason:
                for name in pg:
                    for op in self._ops(name):
                        self.skipped[f"{name}:{op}"] = reason
                return
            # One seeded database, cloned for the second server: both spend the same values, each its own copy.
            n = self.supply("openxp", workers=2 if "pg2" in pg else 1)
            first = "openxp_bench_" + secrets.token_hex(5)
            asyncio.run(_pg_admin(f'CREATE DATABASE "{first}"'))
            self.pg_databases.append(first)
            seeded = seed(_pg_url(first), self.workdir / "pg-values", codes=n, refresh=n)
            log(f"seeded PostgreSQL with {n} codes and refresh tokens each")
            databases = {pg[0]: first}
            for name in pg[1:]:  # cloned before any server connects to the template
                databases[name] = "openxp_bench_" + secrets.token_hex(5)
                asyncio.run(_pg_admin(f'CREATE DATABASE "{databases[name]}" TEMPLATE "{first}"'))
                self.pg_databases.append(databases[name])
            for name in pg:
                self.start_openxp(name, _pg_url(databases[name]), 1 if name == "pg1" else 2, seeded)
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
                (target, pool.submit(_xapi_seed, base_url, headers, first, last))
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
            asyncio.run(pg_execute(_pg_url(database), "ANALYZE"))

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
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                why = f"{target.name} answers {exc.code} before the run: {exc.read()[:300]!r}"
                if target.op not in XAPI_OPS:
                    raise RuntimeError(why) from None
                target.unmeasurable = why  # the young LRS may refuse; the rest of the run still counts

    def measurable(self) -> list[Target]:
        return [t for t in self.targets if t.unmeasurable is None]

    def measure(self) -> None:
        plan = self.plan
        if plan.warmup > 0:
            for target in self.measurable():
                run_wrk(target, self.services[target.service].base_url, plan.warmup, plan.threads, plan.connections)
        for number in range(1, plan.rounds + 1):
            for target in self.measurable():
                service = self.services[target.service]
                cpu, db_cpu = service.cpu(), service.db_cpu()
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
            for database in self.pg_databases:
                try:
                    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                except Exception as exc:
                    log(f"could not drop database {database}: {exc}")
            shutil.rmtree(self.workdir, ignore_errors=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# ---------------------------------------------------------------- the table


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs) if runs else math.nan


def summarize(bench: Bench) -> dict[str, Any]:
    rows = []
    for target in bench.targets:
        service = bench.services.get(target.service)
        row: dict[str, Any] = {"target": target.name, "server": LABELS[target.service], "op": OP_LABELS[target.op]}
        if target.unmeasurable or not target.runs:
            row["note"] = target.unmeasurable or "not run"
            rows.append(row)
            continue
        rps = [r["rps"] for r in target.runs]
        row |= {
            "rps": statistics.median(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "p50": _median(target.runs, "p50"),
            "p99": _median(target.runs, "p99"),
            "cpu_ms": _median(target.runs, "cpu_ms"),
            "db_cpu_ms": _median(target.runs, "db_cpu_ms"),
            "wrk_cpu_ms": _median(target.runs, "wrk_cpu_ms"),
            "errors": sum(r["errors"] for r in target.runs),
            "exhausted": any(r.get("exhausted") for r in target.runs),
            "rss": service.peak_mb if service else math.nan,
            "rss_total": service.total_mb if service else math.nan,
            "rss_final": service.final_mb if service else math.nan,
            "rounds": len(target.runs),
        }
        rows.append(row)
    for name, reason in bench.skipped.items():
        service, _, op = name.partition(":")
        rows.append({"target": name, "server": LABELS[service], "op": OP_LABELS[op], "note": f"skipped: {reason}"})
    return {"rows": rows, "ratios": ratios({r["target"]: r for r in rows})}


def ratios(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    def rate(name: str) -> float | None:
        row = rows.get(name)
        return row.get("rps") if row else None

    found: list[dict[str, Any]] = []

    def add(what: str, num: str, den: str, goal: float | None) -> None:
        a, b = rate(num), rate(den)
        if a is None or b is None or not b:
            return
        value = a / b
        found.append({"what": what, "value": value, "goal": goal, "met": None if goal is None else value >= goal})

    def absolute(what: str, value: float | None, goal: float, at_most: bool = False) -> None:
        if value is None or math.isnan(value):
            return
        met = value <= goal if at_most else value >= goal
        found.append({"what": what, "value": value, "goal": goal, "met": met, "at_most": at_most, "digits": 0})

    for name in ("sqlite", "pg1", "pg2"):
        add(f"{name} code exchange / oidc-provider", f"{name}:code", "peer:code", 2.0)
        add(f"{name} refresh / oidc-provider", f"{name}:refresh", "peer:refresh", 2.0)
        add(f"{name} introspection / oidc-provider", f"{name}:introspect", "peer:introspect", None)
        add(f"{name} Bearer /api / ceiling GET", f"{name}:api", "ceiling:get", 0.8)
        add(f"{name} Bearer /api / ceiling POST", f"{name}:api", "ceiling:post", None)
    for op in OPENXP_OPS:
        add(f"PostgreSQL 2 workers / 1 worker, {OP_LABELS[op]}", f"pg2:{op}", f"pg1:{op}", 1.6)
    for name in ("sqlite", "pg1", "pg2"):
        batches = rate(f"{name}:xapi-post100")
        ingest = batches * 100 if batches is not None else None
        absolute(f"{name} statements/s ingested in batches of 100", ingest, 20_000 if name == "sqlite" else 10_000)
    for name in ("sqlite", "pg1", "pg2"):
        peak = next((r.get("rss") for t, r in rows.items() if t.startswith(name + ":") and r.get("rss")), None)
        absolute(f"{name} peak RSS per worker, MB", peak, 150, at_most=True)
    return found


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def render(summary: dict[str, Any]) -> str:
    lines = [
        "| target | server | operation | req/s median | min-max | p50 ms | p99 ms | server CPU ms/req"
        " | PostgreSQL CPU ms/req | errors | peak / final RSS MB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["rows"]:
        if "rps" not in row:
            lines.append(f"| {row['target']} | {row['server']} | {row['op']} | n/a | {row['note']} | | | | | | |")
            continue
        errors = str(row["errors"]) + (" (supply ran out)" if row["exhausted"] else "")
        rss = f"{_fmt(row['rss'])} / {_fmt(row['rss_final'])}"
        if row["rss_total"] > row["rss"] + 0.5:
            rss += f" (all {_fmt(row['rss_total'])})"
        lines.append(
            f"| {row['target']} | {row['server']} | {row['op']} | {_fmt(row['rps'])} | "
            f"{_fmt(row['rps_min'])}-{_fmt(row['rps_max'])} | {_fmt(row['p50'], 2)} | {_fmt(row['p99'], 2)} | "
            f"{_fmt(row['cpu_ms'], 3)} | {_fmt(row['db_cpu_ms'], 3)} | {errors} | {rss} |"
        )
    if summary["ratios"]:
        lines += ["", "| ratio | value | goal | met |", "|---|---:|---:|---|"]
        for r in summary["ratios"]:
            goal = "-" if r["goal"] is None else f"{'<=' if r.get('at_most') else '>='} {r['goal']:,g}"
            met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
            lines.append(f"| {r['what']} | {_fmt(r['value'], r.get('digits', 2))} | {goal} | {met} |")
    return "\n".join(lines)


def environment() -> dict[str, str]:
    import sqlalchemy
    import starlette
    import uvicorn

    def version(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except OSError:
            return "not installed"
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "machine": f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "starlette": starlette.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _pg_version(),
        "node": version(["node", "--version"]),
        "oidc-provider": _peer_version(),
        "wrk": version(["wrk", "-v"]).split(" [")[0],
    }


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s per target, no warm-up (CI)")
    parser.add_argument("--targets", help="comma-separated services or service:op (default: all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=3, help="whole seconds per target per round")
    parser.add_argument("--warmup", type=int, default=1, help="whole seconds per target before round 1")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    args = parser.parse_args(argv)
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
    )
    env = environment()
    bench = Bench(plan)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    try:
        print(f"openxp bench: setting up {len(plan.targets)} targets in {bench.workdir}", file=sys.stderr, flush=True)
        bench.setup()
        bench.check()
        bench.measure()
        summary = summarize(bench)
    finally:
        bench.teardown()
    table = render(summary)
    header = [f"openxp benchmark, {started}"]
    header += [f"{key}: {value}" for key, value in env.items()]
    header.append(
        f"wrk -t{plan.threads} -c{plan.connections}, {plan.rounds} round(s) x {plan.duration:g} s per target"
        f" (warm-up {plan.warmup:g} s), round-robin; req/s is the median over rounds"
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
