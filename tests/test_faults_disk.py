"""Disk trouble on SQLite: a full disk under a running server, a read-only one at start.

The database lives on a small tmpfs (tests/support/disk.py; needs root, as on CI). When
the disk fills up, writes answer 503 ``storage_full`` with Retry-After in the xAPI error
shape, reads keep working, and once there is room again writes work again without a
restart; afterwards ``PRAGMA integrity_check`` is ``ok`` and every acknowledged write is
there. ``openxp serve`` on a read-only database (file and folder: the mount is read-only)
prints one clear line and exits non-zero, without a traceback. SQLite pass only.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.disk import fill, remount, small_disk
from tests.support.server import OPENXP, Server, backend, free_port, make_server
from tests.xapi.lrs import VERSION, basic, new_id, statement

pytestmark = pytest.mark.skipif(backend() != "sqlite", reason="SQLite's own disk (SQLite pass only)")

# A batch larger than the write-ahead log has grown to, so it needs new room on the disk.
BIG_BATCH = 60
FILLER_TEXT = "x" * 8000


def _big_statement(statement_id: str) -> dict[str, Any]:
    return statement(id=statement_id, result={"response": FILLER_TEXT + statement_id})


@pytest.fixture()
def disk() -> Iterator[Path]:
    with small_disk("12m") as where:
        yield where


@pytest.fixture()
def disk_server(disk: Path) -> Iterator[Server]:
    server = make_server(database_url=f"sqlite:///{disk / 'openxp.sqlite3'}", provision=False, workers=1)
    try:
        server.tenants["a"] = server.cli_json("tenant", "create", "a")["name"]
        server.apikeys["KA"] = server.cli_json("apikey", "create", "--tenant", "a", "--name", "KA")
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_full_disk_refuses_writes_with_503_keeps_reads_and_recovers(disk: Path, disk_server: Server) -> None:
    server = disk_server
    http = httpx.Client(base_url=server.base_url, auth=basic(server.apikeys["KA"]), headers=VERSION, timeout=30)
    try:
        acknowledged: list[str] = []
        for _ in range(3):
            batch = [new_id() for _ in range(BIG_BATCH)]
            answer = http.post("/xapi/statements", json=[_big_statement(i) for i in batch])
            assert answer.status_code == 200, answer.text
            acknowledged += batch

        filler = fill(disk)
        refused: list[str] = []
        for _ in range(3):
            batch = [new_id() for _ in range(BIG_BATCH)]
            answer = http.post("/xapi/statements", json=[_big_statement(i) for i in batch])
            if answer.status_code < 300:
                acknowledged += batch  # room was found after all (the log reuses its space)
                continue
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"] == "storage_full", answer.text
            assert answer.json()["message"]
            assert int(answer.headers["retry-after"]) > 0
            refused += batch
        assert refused, "no write was refused on a full disk"
        # Reads keep working.
        for statement_id in (acknowledged[0], acknowledged[-1]):
            got = http.get("/xapi/statements", params={"statementId": statement_id})
            assert got.status_code == 200, got.text
        assert http.get("/xapi/statements", params={"statementId": refused[0]}).status_code == 404

        filler.unlink()
        batch = [new_id() for _ in range(BIG_BATCH)]
        answer = http.post("/xapi/statements", json=[_big_statement(i) for i in batch])
        assert answer.status_code == 200, answer.text
        acknowledged += batch
        assert server.process is not None and server.process.poll() is None  # no restart needed
    finally:
        http.close()
    log = server.log()
    assert "unhandled error" not in log, log[-4000:]

    server.stop()
    database = disk / "openxp.sqlite3"
    assert _integrity(database) == "ok"
    conn = sqlite3.connect(database)
    try:
        stored = {row[0] for row in conn.execute("SELECT statement_id FROM xapi_statements")}
    finally:
        conn.close()
    assert set(acknowledged) <= stored
    assert not set(refused) & stored


def test_serve_on_a_read_only_database_says_so_in_one_line_and_exits(disk: Path) -> None:
    database = disk / "openxp.sqlite3"
    home = Path(f"/tmp/openxp-ro-{uuid.uuid4().hex}")
    home.mkdir()
    try:
        env = {
            "PATH": "/usr/bin:/bin",
            "OPENXP_DATABASE_URL": f"sqlite:///{database}",
            "OPENXP_DATA_DIR": str(disk),
        }
        subprocess.run([*OPENXP, "migrate"], env=env, cwd=home, check=True, capture_output=True, timeout=120)
        remounted = remount(disk, "ro")
        if remounted.returncode != 0:
            pytest.skip(f"cannot remount the tmpfs read-only: {remounted.stderr.strip()}")
        try:
            started = time.monotonic()
            result = subprocess.run(
                [*OPENXP, "serve", "--port", str(free_port())],
                env=env,
                cwd=home,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert time.monotonic() - started < 60
        finally:
            remount(disk, "rw")
        assert result.returncode != 0, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ") and str(database) in lines[0] and "read-only" in lines[0], lines
        assert _integrity(database) == "ok"
    finally:
        shutil.rmtree(home, ignore_errors=True)
