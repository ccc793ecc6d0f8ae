"""Where one target's time goes: the app in-process, under cProfile, without HTTP.

    .venv/bin/python -m bench.profile code            # or refresh, introspect, api, xapi-post100
    .venv/bin/python -m bench.profile code --db postgresql://postgres@127.0.0.1:5432/test -n 3000

It seeds a fresh database as ``bench.run`` does, builds the ASGI app with
``create_app`` and calls it directly (no uvicorn, no sockets), so the figure
is openxp's own CPU per request. It prints microseconds per request and the
functions with the most cumulative and own time. The HTTP server's share is
what ``bench.run`` measures on top (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import json
import os
import pstats
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.postgres import pg_execute
from bench.seed import Seeded, seed

Request = tuple[str, str, bytes, dict[str, str]]


def _requests(op: str, seeded: Seeded, n: int) -> Callable[[int], Request]:
    basic = base64.b64encode(f"{seeded.client_id}:{seeded.client_secret}".encode()).decode()
    auth = {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}
    codes = seeded.codes.read_text().split()
    refresh = seeded.refresh.read_text().split()
    access = seeded.access.read_text().split()[0]
    bearer = {"Authorization": f"Bearer {access}", "X-CXP-Tenant": seeded.tenant}
    xapi = bearer | {"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}

    def statement(i: int) -> dict[str, Any]:
        return {
            "actor": {"mbox": f"mailto:learner-{i % 100}@bench.test", "objectType": "Agent"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
            "object": {"id": f"https://bench.test/activities/{i % 1000}", "objectType": "Activity"},
            "result": {"score": {"scaled": 0.5}, "completion": True},
        }

    def make(i: int) -> Request:
        if op == "code":
            body = {"grant_type": "authorization_code", "code": codes[i], "redirect_uri": seeded.redirect_uri}
            return "POST", "/auth/oauth/token", json.dumps(body).encode(), auth
        if op == "refresh":
            return (
                "POST",
                "/auth/oauth/token",
                json.dumps({"grant_type": "refresh_token", "refresh_token": refresh[i]}).encode(),
                auth,
            )
        if op == "introspect":
            return "POST", "/auth/oauth/introspect", json.dumps({"token": access}).encode(), auth
        if op == "api":
            return "GET", "/api/auth/me", b"", bearer
        if op == "xapi-post100":
            return "POST", "/xapi/statements", json.dumps([statement(i * 100 + k) for k in range(100)]).encode(), xapi
        raise SystemExit(f"unknown op {op}")

    return make


async def _drive(app: Any, make: Callable[[int], Request], n: int) -> list[int]:
    statuses: list[int] = []

    async def one(i: int) -> None:
        method, path, body, headers = make(i)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)

    for i in range(n):
        await one(i)
    return statuses


def _run(url: str, op: str, n: int, work: Path, profile: bool) -> None:
    os.environ.update({"OPENXP_DATABASE_URL": url, "OPENXP_ACCESS_LOG": "false", "OPENXP_DATA_DIR": str(work)})
    seeded = seed(url, work / "values", codes=n + 10, refresh=n + 10)
    asyncio.run(_profile(op, n, seeded, profile))


async def _profile(op: str, n: int, seeded: Seeded, profile: bool) -> None:
    from openxp.app import create_app

    app = create_app()
    make = _requests(op, seeded, n)
    async with app.router.lifespan_context(app):
        await _drive(app, make, min(200, n // 10))  # warm caches; spends the first values
        offset = min(200, n // 10)

        def shifted(i: int) -> Request:
            return make(i + offset)

        profiler = cProfile.Profile()
        start = time.perf_counter()
        if profile:
            profiler.enable()
        statuses = await _drive(app, shifted, n - offset)
        profiler.disable()
        elapsed = time.perf_counter() - start
    bad = [s for s in statuses if s >= 300]
    per_request = elapsed / len(statuses) * 1e6
    mode = "profiled" if profile else "not profiled"
    print(f"{op}: {len(statuses)} requests, {len(bad)} not 2xx, {per_request:.0f} us/request ({mode})")
    if not profile:
        return
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("op", choices=["code", "refresh", "introspect", "api", "xapi-post100"])
    parser.add_argument("--db", help="a PostgreSQL server URL (a fresh database is made); default SQLite")
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--time-only", action="store_true", help="no profiler: just microseconds per request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="openxp-profile-") as tmp:
        work = Path(tmp)
        if args.db is None:
            _run(f"sqlite:///{work / 'profile.sqlite3'}", args.op, args.n, work, not args.time_only)
            return
        name = "openxp_profile_" + secrets.token_hex(4)
        asyncio.run(pg_execute(args.db, f'CREATE DATABASE "{name}"'))
        try:
            _run(args.db.rsplit("/", 1)[0] + "/" + name, args.op, args.n, work, not args.time_only)
        finally:
            asyncio.run(pg_execute(args.db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
