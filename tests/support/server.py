"""Run a real openxp server (``openxp serve``) on a real database for the tests.

Provisioning goes through the real CLI with ``--json``, so the operator
commands are exercised by every test run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
OPENXP = [sys.executable, "-m", "openxp.cli"]
POSTGRES_ADMIN_URL = os.environ.get("OPENXP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def backend() -> str:
    return os.environ.get("OPENXP_TEST_DB", "sqlite")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    url = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(data_dir: Path) -> str:
    if backend() == "postgresql":
        name = "openxp_t_" + secrets.token_hex(6)
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{name}"
    return f"sqlite:///{data_dir / 'openxp.sqlite3'}"


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        name = url.rsplit("/", 1)[1]
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Server:
    base_url: str
    env: dict[str, str]
    database_url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    tenants: dict[str, str] = field(default_factory=dict)
    admins: dict[str, dict[str, Any]] = field(default_factory=dict)
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    apikeys: dict[str, dict[str, Any]] = field(default_factory=dict)

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*OPENXP, *args], env=self.env, input=stdin, capture_output=True, text=True, timeout=120, cwd=self.data_dir
        )
        if check and result.returncode != 0:
            raise AssertionError(f"openxp {' '.join(args)} failed: {result.stderr}")
        return result

    def cli_json(self, *args: str, stdin: str | None = None) -> dict[str, Any]:
        out = self.cli(*args, "--json", stdin=stdin).stdout
        return json.loads(out)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def sql(self, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Run SQL on the server's database (to age rows or inspect storage)."""
        from sqlalchemy import text

        from openxp.store.db import null_pool_engine

        async def run() -> list[Any]:
            engine = null_pool_engine(self.database_url)
            try:
                async with engine.begin() as conn:
                    result = await conn.execute(text(statement), params or {})
                    return list(result.all()) if result.returns_rows else []
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def start(self, workers: int = 2) -> None:
        port = int(self.base_url.rsplit(":", 1)[1])
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*OPENXP, "serve", "--port", str(port), "--workers", str(workers)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"openxp serve exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"openxp serve did not become healthy:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL to the master and every worker (one process group: start_new_session), as a
        power cut or the OOM killer would; returns once none of them runs."""
        assert self.process is not None
        group = self.process.pid
        os.killpg(group, signal.SIGKILL)
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive_in_group(group) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive_in_group(group)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None


def _alive_in_group(group: int) -> list[int]:
    """Processes of the group that are not yet dead (zombies, which hold nothing, count as dead)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def make_server(
    extra_env: dict[str, str] | None = None,
    *,
    provision: bool = True,
    workers: int = 2,
    database_url: str | None = None,
) -> Server:
    """``database_url``: a database of the caller's (then stop it with ``server.stop()`` and
    remove ``server.data_dir``; ``destroy_server`` drops only databases it created)."""
    data_dir = Path(tempfile.mkdtemp(prefix="openxp-test-"))
    database_url = database_url or create_database(data_dir)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")},
        "OPENXP_DATA_DIR": str(data_dir),
        "OPENXP_DATABASE_URL": database_url,
        "OPENXP_PUBLIC_URL": base_url,
        # The shared server's budgets are generous; throttling is tested on its own server.
        "OPENXP_RATE_LOGIN_PER_ACCOUNT": "100000",
        "OPENXP_RATE_LOGIN_PER_IP": "100000",
        "OPENXP_RATE_CLIENT_AUTH": "100000",
        "OPENXP_RATE_GRANT_FAILURES": "100000",
        "OPENXP_RATE_BASIC_PER_KEY": "100000",
        "OPENXP_RATE_BASIC_PER_IP": "100000",
        # A module signs in to the console once and acts for minutes on a busy machine: its window
        # for sensitive actions outlasts the module. The window is tested on its own server.
        "OPENXP_CONSOLE_REAUTH_SECONDS": "3600",
        "PYTHONPATH": str(ROOT),
        **(extra_env or {}),
    }
    server = Server(base_url, env, database_url, data_dir, data_dir / "server.log")
    server.cli("migrate")
    if provision:
        provision_fixtures(server)
    server.start(workers=workers)
    return server


@contextlib.contextmanager
def served(extra_env: dict[str, str] | None = None, **options: Any) -> Iterator[Server]:
    """A server for the length of a ``with`` block (a module fixture's body): ``make_server``'s
    arguments, destroyed after."""
    srv = make_server(extra_env, **options)
    try:
        yield srv
    finally:
        destroy_server(srv)


def destroy_server(server: Server) -> None:
    server.stop()
    drop_database(server.database_url)
    shutil.rmtree(server.data_dir, ignore_errors=True)


def provision_fixtures(server: Server) -> None:
    """SECURITY.md section 0: tenants a and b, their admins and clients c1, c2, cm, cq, cb.
    Made by openxp's own commands, in one process (``tests/support/cli_batch.py``)."""
    batch: list[tuple[dict[str, Any], str, list[str], str | None]] = []
    for tenant in ("a", "b"):
        batch.append((server.tenants, tenant, ["tenant", "create", tenant], None))
    for name, tenant, role in (
        ("adminA", "a", "admin"),
        ("adminB", "b", "admin"),
        ("viewerA", "a", "viewer"),
    ):
        email = f"{name.lower()}@example.com"
        args = ["admin", "create", "--tenant", tenant, "--email", email, "--password-stdin", "--role", role]
        batch.append((server.admins, name, args, PASSWORD + "\n"))
    specs: dict[str, tuple[str, list[str], list[str]]] = {
        "c1": ("a", ["https://app.a.test/cb"], []),
        "c2": ("a", ["https://app2.a.test/cb"], []),
        "cm": ("a", ["https://app.a.test/cb", "https://app.a.test/cb2"], []),
        "cq": ("a", ["https://app.a.test/cb?x=1"], []),
        "cb": ("b", ["https://app.b.test/cb"], []),
        "cp": ("a", ["http://127.0.0.1:9/cb"], ["--public"]),
        "cnr": ("a", ["https://norefresh.a.test/cb"], ["--grant-type", "authorization_code"]),
        "cs": (
            "a",
            ["https://scoped.a.test/cb"],
            ["--scope", "users/import", "--scope", "actors/read", "--default-scope", "users/import"],
        ),
    }
    for label, (tenant, uris, extra) in specs.items():
        args = ["client", "create", "--tenant", tenant, "--name", f"Client {label}"]
        for uri in uris:
            args += ["--redirect-uri", uri]
        batch.append((server.clients, label, [*args, *extra], None))
    for label, tenant in (("KA", "a"), ("KB", "b")):
        batch.append((server.apikeys, label, ["apikey", "create", "--tenant", tenant, "--name", label], None))
    commands = [[[*args, "--json"], stdin] for _, _, args, stdin in batch]
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.cli_batch"],
        env=server.env,
        input=json.dumps(commands),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=server.data_dir,
    )
    if result.returncode != 0:
        raise AssertionError(f"provisioning failed: {result.stderr}")
    for (where, label, args, _), out in zip(batch, json.loads(result.stdout), strict=True):
        made = json.loads(out)
        if args[0] == "tenant":
            where[label] = made["name"]
        elif args[0] == "admin":
            where[label] = made | {"password": PASSWORD}
        else:
            where[label] = made
