"""What failed logins may cost the server: argon2 memory is bounded, and an address over its
budget is refused before any hash is computed.

SECURITY.md N-01/N-03 (login throttling per account and per address), N-05 (addresses from
X-Forwarded-For only behind a trusted proxy; this server trusts 127.0.0.1) and O-02 (memory
bounded under hostile input). Each argon2 verification takes 64 MiB; without a cap, 20
concurrent wrong logins took a worker from 229 MB to 1,380 MB.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.flow import auth_params, hidden_fields
from tests.support.server import PASSWORD, Server, destroy_server, make_server

CONCURRENCY = 2  # OPENXP_ARGON2_CONCURRENCY for this server
ARGON2_MIB = 64
# What a worker may grow by while the logins run: the cap's hashes plus room for everything else
# (request buffers, thread stacks, allocator slack). 20 uncapped hashes split over 2 workers
# need ~640 MiB in one of them.
GROWTH_BOUND_MIB = CONCURRENCY * ARGON2_MIB + 100
PER_IP = 3


@pytest.fixture(scope="module")
def hashing() -> Iterator[Server]:
    srv = make_server(
        extra_env={
            "OPENXP_ARGON2_CONCURRENCY": str(CONCURRENCY),
            "OPENXP_RATE_LOGIN_PER_IP": str(PER_IP),
            "OPENXP_TRUSTED_PROXIES": "127.0.0.1",
        }
    )
    try:
        yield srv
    finally:
        destroy_server(srv)


def workers(server: Server) -> list[int]:
    """The serve process's worker processes (uvicorn spawns them; the resource tracker is skipped)."""
    assert server.process is not None
    found = []
    pending = [server.process.pid]
    while pending:
        pid = pending.pop()
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            for child in children.read_text().split():
                pending.append(int(child))
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    assert found, "no worker processes found"
    return found


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing for {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def prepared_login(server: Server) -> tuple[httpx.Client, dict[str, str]]:
    """A browser with a login page open: its session cookie and the form's hidden fields."""
    http = httpx.Client(base_url=server.base_url, timeout=120)
    page = http.get("/auth/oauth/authorize", params=auth_params(server, "c1"))
    assert page.status_code == 200, page.text
    return http, hidden_fields(page.text)


def concurrent_wrong_logins(server: Server, count: int, address: str | None = None) -> list[int]:
    """``count`` wrong logins sent at the same moment (unknown emails cost the same argon2 work); each from
    its own address unless ``address`` is given."""
    prepared = [prepared_login(server) for _ in range(count)]
    start = threading.Barrier(count)

    def post(i: int) -> int:
        http, fields = prepared[i]
        form = {**fields, "email": f"nobody-{secrets.token_hex(4)}@example.com", "password": "wrong password"}
        start.wait()
        response = http.post("/auth/login", data=form, headers={"X-Forwarded-For": address or f"10.9.0.{i + 1}"})
        http.close()
        return response.status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(post, range(count)))


def test_O02_concurrent_wrong_logins_stay_within_the_argon2_cap(hashing: Server) -> None:
    """O-02: 20 concurrent wrong logins, each from its own address, are all answered (the generic
    "incorrect" page), and no worker's peak RSS grows by more than the cap's hashes allow."""
    pids = workers(hashing)
    baseline = {}
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
        baseline[pid] = status_kib(pid, "VmRSS")
    statuses = concurrent_wrong_logins(hashing, 20)
    assert statuses == [200] * 20, statuses
    growth_mib = {pid: (status_kib(pid, "VmHWM") - baseline[pid]) / 1024 for pid in pids}
    assert max(growth_mib.values()) < GROWTH_BOUND_MIB, growth_mib


def test_N03_a_locked_address_is_refused_before_hashing(hashing: Server) -> None:
    """N-03: failures are counted before the hash, so of 20 concurrent wrong logins from one address only
    the budget's worth are verified (the rest are 429 at once); afterwards the address is refused
    (429 + Retry-After) even with the right password, and those refusals compute no hash: ten of them
    cost the workers less CPU than one verification."""
    statuses = concurrent_wrong_logins(hashing, 20, address="192.0.2.77")
    assert sorted(statuses) == [200] * PER_IP + [429] * (20 - PER_IP), statuses

    pids = workers(hashing)

    def cpu() -> float:
        return sum(cpu_seconds(pid) for pid in pids)

    before = cpu()
    assert concurrent_wrong_logins(hashing, 1, address="192.0.2.78") == [200]
    one_hash = cpu() - before

    admin = hashing.admins["adminA"]
    prepared = [prepared_login(hashing) for _ in range(10)]
    before = cpu()
    for http, fields in prepared:
        form = {**fields, "email": admin["email"], "password": PASSWORD}
        refused = http.post("/auth/login", data=form, headers={"X-Forwarded-For": "192.0.2.77"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0, refused.text
        http.close()
    assert cpu() - before < one_hash, (cpu() - before, one_hash)
