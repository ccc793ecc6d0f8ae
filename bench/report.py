"""The table: medians over rounds, the ratios the targets are judged by, and the environment."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sqlite3
import statistics
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.peer import peer_version
from bench.postgres import pg_version
from bench.targets import LABELS, OP_LABELS, OPENXP_OPS

if TYPE_CHECKING:
    from bench.run import Bench


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
        service_name, _, op = name.partition(":")
        rows.append({"target": name, "server": LABELS[service_name], "op": OP_LABELS[op], "note": f"skipped: {reason}"})
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
        add(f"{name} client credentials / oidc-provider", f"{name}:client_credentials", "peer:client_credentials", None)
        add(f"{name} introspection / oidc-provider", f"{name}:introspect", "peer:introspect", None)
        add(f"{name} Bearer /api / ceiling GET", f"{name}:api", "ceiling:get", 0.8)
        add(f"{name} Bearer /api / ceiling POST", f"{name}:api", "ceiling:post", None)
    for op in OPENXP_OPS:
        add(f"PostgreSQL 2 workers / 1 worker, {OP_LABELS[op]}", f"pg2:{op}", f"pg1:{op}", 1.6)
    for op in OPENXP_OPS:
        add(f"PostgreSQL 4 workers / 1 worker, {OP_LABELS[op]}", f"pg4:{op}", f"pg1:{op}", None)
    for op in OPENXP_OPS:
        add(f"PgBouncer 2 workers / direct 2 workers, {OP_LABELS[op]}", f"pgb2:{op}", f"pg2:{op}", None)
    for name in ("sqlite", "pg1", "pg2", "pg4", "pgb2"):
        batches = rate(f"{name}:xapi-post100")
        ingest = batches * 100 if batches is not None else None
        absolute(f"{name} statements/s ingested in batches of 100", ingest, 20_000 if name == "sqlite" else 10_000)
        add(f"{name} ingest with forwarding on / off", f"{name}:xapi-post100-fwd", f"{name}:xapi-post100", None)
    for name in ("sqlite", "pg1", "pg2", "pg4", "pgb2"):
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
        "postgresql": pg_version(),
        "node": version(["node", "--version"]),
        "oidc-provider": peer_version(),
        "wrk": version(["wrk", "-v"]).split(" [")[0],
    }
