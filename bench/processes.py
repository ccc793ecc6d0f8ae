"""Process control for the benchmark: the servers it starts (each a process group it owns),
their CPU time and peak memory read from /proc, and the log line format."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def process_tree(pid: int) -> list[int]:
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


# Budgets no benchmark reaches: a measurement must not run into a throttle.
_RATE_LIMITS = ("LOGIN_PER_ACCOUNT", "LOGIN_PER_IP", "CLIENT_AUTH", "GRANT_FAILURES", "BASIC_PER_KEY", "BASIC_PER_IP")


def openxp_env(data_dir: Path, database_url: str, public_url: str) -> dict[str, str]:
    """The settings of an ``openxp serve`` under measurement: no access log, no throttle."""
    env = {
        "OPENXP_DATA_DIR": str(data_dir),
        "OPENXP_DATABASE_URL": database_url,
        "OPENXP_PUBLIC_URL": public_url,
        "OPENXP_ACCESS_LOG": "0",
    }
    return env | {f"OPENXP_RATE_{name}": "1000000000" for name in _RATE_LIMITS}


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
        for pid in process_tree(self.process.pid):
            self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), _status_kb(pid, "VmHWM"))
            self.rss_kb[pid] = _status_kb(pid, "VmRSS")

    def cpu(self) -> dict[int, float]:
        return _cpu_by_pid(process_tree(self.process.pid)) if self.process else {}

    def db_cpu(self) -> dict[int, float] | None:
        """CPU time of the PostgreSQL backends serving this server's database (same machine)."""
        database = self.info.get("pg_database")
        if not database:
            return None
        return _cpu_by_pid(_backends_of(database))

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


def _backends_of(database: str) -> list[int]:
    """PostgreSQL backends connected to ``database``, found by their process titles
    (``postgres: [cluster:] user database host(port) state``). Asking pg_stat_activity would
    take a connection slot, and with every bench service's pool open the shared server may have
    none left (CI: "sorry, too many clients already")."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        words = title.split()
        if words[:1] == ["postgres:"] and database in words[1:-1]:
            pids.append(int(entry))
    return pids
