"""The benchmark's smoke run (issue 5): ``python -m bench.run --smoke`` completes
and prints a table with a row for every target, so bench/ cannot rot.

No thresholds: one round of one second per target, only "it ran, every
request succeeded, every target is in the table". The run follows the suite's
database choice: under OPENXP_TEST_DB=sqlite it measures the ceiling, the
oidc-provider peer and openxp on SQLite; under postgresql, openxp with 1 and 2
workers on PostgreSQL. Outside CI a missing wrk skips the test and an
impossible ``npm ci`` drops the peer; with CI=true both are failures.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from bench import console_pages, peer, targets
from bench.postgres import pg_fetch
from tests.support.server import POSTGRES_ADMIN_URL, backend

ROOT = Path(__file__).resolve().parents[1]
ON_CI = os.environ.get("CI") == "true"


def _services() -> list[str]:
    if backend() == "postgresql":
        from tests.support import pgbouncer

        # pg4 is left to the measured run: its four pools beside the others' would crowd the
        # shared server's connection limit while the rest of the suite runs.
        if pgbouncer.available():
            return ["pg1", "pg2", "pgb2"]
        if ON_CI:
            pytest.fail("CI=true and pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        return ["pg1", "pg2"]
    services = ["ceiling", "peer", "sqlite"]
    reason = peer.peer_available()
    if reason:
        if ON_CI:
            pytest.fail(f"CI=true and the oidc-provider peer cannot be installed: {reason}")
        warnings.warn(f"bench smoke run without the oidc-provider peer: {reason}", stacklevel=1)
        services.remove("peer")
    return services


def _rows(table: str) -> dict[str, list[str]]:
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and ":" in cells[0]:
            rows[cells[0]] = cells
    return rows


def test_bench_smoke_run_prints_every_target() -> None:
    if shutil.which("wrk") is None:
        if ON_CI:
            pytest.fail("CI=true and wrk is not installed (Debian: apt-get install wrk)")
        pytest.skip("wrk is not installed")
    services = _services()
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--targets", ",".join(services), "--token-rows", "3000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")},
    )
    assert result.returncode == 0, f"bench failed:\n{result.stdout}\n{result.stderr[-5000:]}"

    rows = _rows(result.stdout)
    expected = [f"{service}:{op}" for service in services for op in targets.OPS[service]]
    missing = [name for name in expected if name not in rows]
    assert not missing, f"targets missing from the table: {missing}\n{result.stdout}"
    for name in expected:
        cells = rows[name]
        rate, note, errors = cells[3], cells[4], cells[9]
        if rate == "n/a":
            # Only the LRS targets may be unmeasurable, and only while there is no LRS.
            assert name.split(":", 1)[1] in targets.XAPI_OPS and not targets.xapi_available(), f"{name}: {note}"
            continue
        assert float(rate.replace(",", "")) > 0, f"{name} measured no requests:\n{result.stdout}"
        assert errors == "0", f"{name} had failed requests ({errors}):\n{result.stdout}\n{result.stderr[-3000:]}"
    assert re.search(r"^\| ratio \| value \| goal \| met \|$", result.stdout, re.M), result.stdout
    # The token tables at size (issue 14): the filler ran, and the seed checked its row count.
    assert "token tables hold 3,000 more grants" in result.stdout, result.stdout

    # It cleans up after itself: its working directory is gone and none of the servers it started is left.
    workdir = re.search(r"setting up \d+ targets in (\S+)", result.stderr)
    assert workdir and not Path(workdir.group(1)).exists(), result.stderr[-2000:]
    pids = [int(pid) for pid in re.findall(r"is up: pid (\d+)", result.stderr)]
    assert len(pids) == len(services), result.stderr[-2000:]
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], f"servers left running: {pids}"


@pytest.mark.skipif(backend() != "sqlite", reason="an in-process SQLite measurement: run once")
def test_audit_cost_runs_both_modes() -> None:
    """``bench.audit_cost`` (issue 12's budget) runs with the writer on and off and prints the
    difference; wall time at a tiny size, since callgrind would take minutes. No threshold."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.audit_cost", "--seconds", "--large", "60", "--pairs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for mode in ("off", "on"):
        line = rf"^audit log {mode}: +[\d,]+ us \(wall\) per code exchange$"
        assert re.search(line, result.stdout, re.M), result.stdout
    assert "cost of the audit log:" in result.stdout, result.stdout


def _run_on_this_database(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """A bench module on the suite's database (a fresh one it makes on the PostgreSQL server, or
    SQLite), without the suite's OPENXP_ settings; it must exit 0."""
    if backend() == "postgresql":
        argv = [*argv, "--db", POSTGRES_ADMIN_URL]
    result = subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")},
    )
    assert result.returncode == 0, f"bench failed:\n{result.stdout}\n{result.stderr[-5000:]}"
    return result


def test_console_pages_bench_prints_a_row_per_page() -> None:
    """``python -m bench.console_pages`` at tiny sizes (issue 12): it seeds, checks its seed against
    POST /xapi/statements, signs in and prints a row for every console page with the status the
    page must answer; it leaves no server, directory or database behind. No timing is judged."""
    argv = [sys.executable, "-m", "bench.console_pages", "--statements", "200", "--learners", "20"]
    argv += ["--audit", "30", "--requests", "3"]
    result = _run_on_this_database(argv)
    assert "seed check: the seed's rows are the API's rows" in result.stderr

    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 6 and cells[0] != "page":
            rows[cells[0]] = cells
    dummy = console_pages.Seeded("owner@x.test", "key", "secret", "client", ["a", "b", "c"], ["id"])
    expected = console_pages.pages(dummy, console_pages.Plan(200, 20, 30, 3), "/records")
    assert [label for label, _, _ in expected] == list(rows), result.stdout
    for label, _, status in expected:
        assert rows[label][2] == str(status), rows[label]
        assert all(float(cell) > 0 for cell in rows[label][3:]), rows[label]

    workdir = re.search(r"working in (\S+)", result.stderr)
    assert workdir and not Path(workdir.group(1)).exists(), result.stderr[-2000:]
    pids = [int(pid) for pid in re.findall(r"is up: pid (\d+)", result.stderr)]
    assert len(pids) == 1 and not Path(f"/proc/{pids[0]}").exists(), result.stderr[-2000:]
    if backend() == "postgresql":
        made = re.search(r"made database (\S+)", result.stderr)
        assert made, result.stderr[-2000:]
        listed = asyncio.run(pg_fetch("SELECT 1 FROM pg_database WHERE datname = $1", made.group(1)))
        assert listed == [], f"database {made.group(1)} left behind"


def test_statement_filters_bench_prints_every_query_at_every_size() -> None:
    """``python -m bench.statement_filters`` at tiny sizes (issue 14): it seeds, grows the database
    in place, checks that every query returns matching statements (it stops otherwise) and prints
    a row per query with a cell per size, and the ingest row. No timing is judged."""
    argv = [sys.executable, "-m", "bench.statement_filters", "--sizes", "2000,3000", "--requests", "1"]
    argv += ["--ingest", "2"]
    result = _run_on_this_database(argv)
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    labels = [row.strip("| ").split(" | ")[0] for row in rows[1:]]
    assert len(labels) == 12 and labels[-1].startswith("ingest"), result.stdout
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        assert len(cells) == 3 and all(re.fullmatch(r"[\d.,]+( / [\d.,]+)?", c) for c in cells[1:]), row
