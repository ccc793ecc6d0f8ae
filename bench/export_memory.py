"""The statement export's memory and time at scale (issue 15, part 3): peak RSS of the process that
exports, for NDJSON and CSV, through ``GET /api/export/statements`` (the server's peak) and
``openxp statements export`` (the command's peak).

    .venv/bin/python -m bench.export_memory                      # SQLite, 1,000,000 statements
    .venv/bin/python -m bench.export_memory --db postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.export_memory --statements 20000   # quick

The tenant is seeded by ``bench/console_seed.py`` (its ``seed()``: statements completed, validated
and written as ``POST /xapi/statements`` writes them, and checked against the API with its
``check_seed``). Each HTTP export runs against a freshly started ``openxp serve --workers 1`` (so
its VmHWM, read from /proc, is that export's peak), the client counting the streamed lines without
keeping them; each CLI export is a child process whose peak RSS comes from ``wait4``. With ``--db``
a fresh database is made on that server and dropped afterwards; without it, a SQLite file in a
temporary directory. Nothing is left behind. Printed: a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.console_seed import TENANT, Plan, check_seed, prepare
from bench.postgres import pg_execute, pg_version
from bench.processes import Service, _status_kb, http_ok, log, process_tree

FORMATS = ("ndjson", "csv")


def _peak_kb(server: Service) -> int:
    assert server.process is not None
    return max(_status_kb(pid, "VmHWM") for pid in process_tree(server.process.pid))


def http_export(server: Service, key: str, secret: str, fmt: str) -> tuple[float, int, int, int, int]:
    """(seconds, lines, bytes, peak RSS kB before, peak RSS kB after) of one streamed export."""
    basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "X-CXP-Tenant": TENANT}
    url = f"{server.base_url}/api/export/statements"
    # Warm: the first request loads the code paths (templates, SQL compiled) that any request pays.
    warm = httpx.get(url, params={"format": fmt, "since": "2999-01-01T00:00:00Z"}, headers=headers, timeout=60)
    if warm.status_code != 200:
        raise AssertionError(f"export: {warm.status_code} {warm.text[:500]}")
    before = _peak_kb(server)
    lines = size = 0
    start = time.perf_counter()
    with httpx.stream("GET", url, params={"format": fmt}, headers=headers, timeout=600) as response:
        if response.status_code != 200:
            raise AssertionError(f"export: {response.status_code} {response.read()[:500]!r}")
        for block in response.iter_bytes():
            lines += block.count(b"\n")
            size += len(block)
    return time.perf_counter() - start, lines, size, before, _peak_kb(server)


def cli_export(env: dict[str, str], work: Path, fmt: str) -> tuple[float, int, int, int]:
    """(seconds, lines, bytes, peak RSS kB) of ``openxp statements export`` in a child process."""
    out = work / f"export.{fmt}"
    argv = [sys.executable, "-m", "openxp.cli", "statements", "export", "--tenant", TENANT, "--format", fmt]
    start = time.perf_counter()
    child = subprocess.Popen([*argv, "--output", str(out)], env=env, cwd=work, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    spent = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise AssertionError(f"openxp statements export exited {child.returncode}")
    lines = 0
    with out.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    size = out.stat().st_size
    out.unlink()
    return spent, lines, size, usage.ru_maxrss


def run(url: str, plan: Plan, work: Path, backend: str, via: list[str]) -> None:
    ready = prepare(url, plan, work)
    seeded, base_url, env, argv, port = ready.seeded, ready.base_url, ready.env, ready.serve, ready.port
    results: list[tuple[str, str, float, int, int, int, int]] = []
    for fmt in FORMATS:
        if "http" in via:
            server = Service("openxp", port, argv, env, work / "server.log", lambda s: http_ok(s.base_url + "/healthz"))
            try:
                server.start()
                if fmt == FORMATS[0]:
                    check_seed(url, base_url, seeded)
                seconds, lines, size, before, peak = http_export(server, seeded.key, seeded.secret, fmt)
            finally:
                server.stop()
            log(f"HTTP {fmt}: {lines} lines, {size} bytes in {seconds:.1f} s; server peak RSS {peak // 1024} MB")
            results.append(("GET /api/export/statements", fmt, seconds, lines, size, before, peak))
        if "cli" in via:
            seconds, lines, size, peak = cli_export(env, work, fmt)
            log(f"CLI {fmt}: {lines} lines, {size} bytes in {seconds:.1f} s; peak RSS {peak // 1024} MB")
            results.append(("openxp statements export", fmt, seconds, lines, size, 0, peak))
    print(
        "```text\n"
        f"statement export, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}\n"
        f"database: {backend}; tenant {TENANT}: {plan.statements} statements (+{plan.other_statements} of another"
        f" tenant, interleaved)\nmachine: {os.cpu_count()} CPUs; load average "
        f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}\n```\n"
    )
    print("| export | format | lines | MB written | seconds | statements/s | peak RSS before | peak RSS after |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for what, fmt, seconds, lines, size, before, peak in results:
        statements = lines - (1 if fmt == "csv" else 0)
        shown_before = f"{before / 1024:.0f} MB" if before else "-"
        print(
            f"| {what} | {fmt} | {lines:,} | {size / 1e6:,.0f} | {seconds:.1f} | {statements / seconds:,.0f} |"
            f" {shown_before} | {peak / 1024:.0f} MB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="a PostgreSQL server URL (a fresh database is made and dropped); default SQLite")
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--via", default="http,cli", help="http, cli or both (comma-separated)")
    args = parser.parse_args()
    via = args.via.split(",")
    if args.statements < 3 or not set(via) <= {"http", "cli"}:
        parser.error("--statements must be at least 3; --via takes http and/or cli")
    plan = Plan(args.statements, learners=1000, audit=10, requests=1)
    with tempfile.TemporaryDirectory(prefix="openxp-export-bench-") as tmp:
        work = Path(tmp)
        log(f"working in {work}")
        if args.db is None:
            run(f"sqlite:///{work / 'export.sqlite3'}", plan, work, f"SQLite {sqlite3.sqlite_version}", via)
            return
        name = "openxp_export_" + secrets.token_hex(4)
        asyncio.run(pg_execute(args.db, f'CREATE DATABASE "{name}"'))
        log(f"made database {name}")
        try:
            run(args.db.rsplit("/", 1)[0] + "/" + name, plan, work, f"PostgreSQL {pg_version()}", via)
        finally:
            asyncio.run(pg_execute(args.db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
