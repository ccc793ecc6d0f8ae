"""Driving wrk: one target for some seconds, and its output parsed into figures."""

from __future__ import annotations

import math
import re
import resource
import subprocess
from pathlib import Path
from typing import Any

from bench.targets import Target

LUA = Path(__file__).resolve().parent / "tokens.lua"


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
