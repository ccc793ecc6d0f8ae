"""User import at scale: 100,000 generated rows through the CLI and through HTTP, with peak RSS.

    .venv/bin/python -m bench.import_users                  # SQLite, 100,000 rows
    .venv/bin/python -m bench.import_users --db postgresql  # a fresh PostgreSQL database
    .venv/bin/python -m bench.import_users --rows 20000     # quicker

What it runs, on a fresh database:
- ``openxp users import people.csv --tenant benchcli --json`` for 10% of the rows and then for all of
  them (new users), and once more (every row an update); peak RSS of the CLI process from
  ``os.wait4`` (``ru_maxrss``);
- ``openxp serve --workers 1`` (one process), then ``POST /api/import/users`` with the same CSV,
  streamed in 64 KiB pieces (chunked transfer encoding), at 10% and 100% of the rows, again as
  updates, and the same rows as a JSON body (within its 20 MB limit). The server's peak RSS
  (``VmHWM``) is reset before each request (``/proc/PID/clear_refs``) and read after it.
The access token is minted straight into the database (the OAuth flow is not what is measured).
Prints a Markdown table; nothing is left behind (the temporary directory and database are removed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from openxp import crypto
from openxp.store import Database
from openxp.store import accounts as account_store
from openxp.store import clients as client_store
from openxp.store import grants as grant_store
from openxp.store import tenants as tenant_store

OPENXP = [sys.executable, "-m", "openxp.cli"]
PG_ADMIN = os.environ.get("OPENXP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("name,Email,Country,Hire Date,Position Number,Manager Email\n")
        for i in range(rows):
            out.write(
                f"User {i},user{i}@example.com,{('NZ', 'AU', 'US')[i % 3]},2020-01-{1 + i % 28:02d},"
                f"P-{i},manager{i // 50}@example.com\n"
            )


def write_json(path: Path, rows: int) -> None:
    users = [
        {
            "name": f"User {i}",
            "attributes": {"Email": f"user{i}@example.com", "Country": "NZ", "Position Number": f"P-{i}"},
        }
        for i in range(rows)
    ]
    path.write_text(json.dumps({"users": users}), encoding="utf-8")


def run_cli(env: dict[str, str], *args: str) -> tuple[dict[str, Any], float, float]:
    """Run one CLI import; returns its JSON report, seconds and peak RSS in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen([*OPENXP, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"openxp {' '.join(args)} failed ({proc.returncode})")
    return json.loads(out), time.perf_counter() - start, usage.ru_maxrss / 1024


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


async def mint_token(url: str, tenant: str) -> str:
    db = Database(url, pool_size=1)
    try:
        async with db.write() as conn:
            found = await tenant_store.create(conn, tenant)
            account = await account_store.create(conn, found.id, "bench@example.com", secrets.token_urlsafe(16))
            client, _ = await client_store.create(
                conn, tenant_id=found.id, name="bench", redirect_uris=["https://bench.test/cb"]
            )
            grant = await grant_store.create_grant(
                conn, tenant_id=found.id, client_pk=client.id, account_id=account.id, scope="all", lifetime=86400
            )
            token = crypto.new_credential(crypto.ACCESS_TOKEN_PREFIX)
            await grant_store.issue_tokens(
                conn,
                grant_id=grant,
                access_hash=crypto.digest(token),
                access_scope="all",
                access_ttl=86400,
                refresh_hash=None,
                refresh_ttl=0,
                refresh_limit=0,
            )
            return token
    finally:
        await db.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream(path: Path, piece: int = 64 * 1024) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(piece):
            yield block


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    options = parser.parse_args()
    rows, small = options.rows, max(options.rows // 10, 1)
    work = Path(tempfile.mkdtemp(prefix="openxp-import-bench-"))
    pg_name = None
    if options.db == "postgresql":
        pg_name = "openxp_bench_import_" + secrets.token_hex(4)
        asyncio.run(_pg(f'CREATE DATABASE "{pg_name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + pg_name
    else:
        url = f"sqlite:///{work / 'bench.sqlite3'}"
    env = {**os.environ, "OPENXP_DATABASE_URL": url, "OPENXP_DATA_DIR": str(work), "OPENXP_ACCESS_LOG": "false"}
    server: subprocess.Popen[bytes] | None = None
    results: list[tuple[str, int, float, float, str]] = []
    try:
        subprocess.run([*OPENXP, "migrate"], env=env, check=True, stderr=subprocess.DEVNULL)
        subprocess.run([*OPENXP, "tenant", "create", "benchcli"], env=env, check=True, stdout=subprocess.DEVNULL)
        token = asyncio.run(mint_token(url, "benchhttp"))
        full, part, body = work / "people.csv", work / "part.csv", work / "people.json"
        write_csv(full, rows)
        write_csv(part, small)
        write_json(body, rows)
        log(f"CSV {full.stat().st_size / 2**20:.1f} MiB, JSON {body.stat().st_size / 2**20:.1f} MiB")

        for label, path in ((f"CLI CSV, {small:,} rows", part), (f"CLI CSV, {rows:,} rows", full)):
            report, seconds, peak = run_cli(env, "users", "import", str(path), "--tenant", "benchcli", "--json")
            results.append(
                (label, int(report["rows"]), seconds, peak, f"{report['new']} new, {report['existing']} existing")
            )
        report, seconds, peak = run_cli(env, "users", "import", str(full), "--tenant", "benchcli", "--json")
        results.append(
            (
                f"CLI CSV, {rows:,} rows again",
                int(report["rows"]),
                seconds,
                peak,
                f"{report['new']} new, {report['existing']} existing",
            )
        )

        port = free_port()
        server = subprocess.Popen(
            [*OPENXP, "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        headers = {"authorization": f"Bearer {token}", "X-CXP-Tenant": "benchhttp"}
        with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
            http.post("/api/import/users", json={"users": []})  # warm up
            log(f"server idle RSS {status_kb(server.pid, 'VmRSS') / 1024:.0f} MiB")
            runs = [
                (f"HTTP CSV, {small:,} rows", part, "text/csv"),
                (f"HTTP CSV, {rows:,} rows", full, "text/csv"),
                (f"HTTP CSV, {rows:,} rows again", full, "text/csv"),
                (f"HTTP JSON, {rows:,} rows", body, "application/json"),
            ]
            for label, path, media in runs:
                exact = reset_peak(server.pid)
                start = time.perf_counter()
                response = http.post("/api/import/users", content=stream(path), headers={"content-type": media})
                seconds = time.perf_counter() - start
                if response.status_code != 200:
                    raise SystemExit(f"{label}: {response.status_code} {response.text[:300]}")
                report = response.json()
                peak = status_kb(server.pid, "VmHWM") / 1024
                note = f"{report['new']} new, {report['existing']} existing" + ("" if exact else " (peak since start)")
                results.append((label, report["rows"], seconds, peak, note))
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        shutil.rmtree(work, ignore_errors=True)
        if pg_name:
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))

    print(f"\n{options.db}, {rows:,} rows, chunks of 1,000\n")
    print("| run | rows | seconds | rows/s | peak RSS (MiB) | report |")
    print("|---|---:|---:|---:|---:|---|")
    for label, count, seconds, peak, note in results:
        print(f"| {label} | {count:,} | {seconds:.1f} | {count / seconds:,.0f} | {peak:.0f} | {note} |")


if __name__ == "__main__":
    main()
