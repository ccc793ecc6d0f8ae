"""What the persisted audit log costs a code exchange: the same in-process run
(``bench.profile code --time-only``) with the audit writer receiving the records ("on") and
with it receiving none ("off": ``audit.install`` does nothing, so the JSON log line, which
exists either way, stays).

    .venv/bin/python -m bench.audit_cost                  # instructions, under valgrind's callgrind
    .venv/bin/python -m bench.audit_cost --seconds        # wall time instead (needs a quiet machine)

Instructions are counted, not seconds, because a shared machine's neighbours move wall time by
+-50 % between identical runs while callgrind's count is the same to within a few per mille.
Each mode runs at two sizes and the difference is divided by the extra exchanges, which
cancels start-up, seeding and the argon2 hashing. Under callgrind everything runs ~50x slower,
so the writer's 0.5 s timer is switched off: it writes by size (500 records) and at shutdown,
as it does at the few hundred exchanges a second it is built for.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _child(mode: str, n: int) -> None:
    """Run in the measured process: patch the writer, then bench.profile."""
    from openxp import audit, audit_writer

    init = audit_writer.AuditWriter.__init__

    def by_size(self: audit_writer.AuditWriter, db: object, **kw: object) -> None:
        init(self, db, **(kw | {"interval": 10_000.0}))  # type: ignore[arg-type]

    audit_writer.AuditWriter.__init__ = by_size  # type: ignore[method-assign]
    if mode == "off":
        audit.install = lambda sink: None  # type: ignore[assignment]
    import bench.profile

    sys.argv = ["bench.profile", "code", "--time-only", "-n", str(n)]
    bench.profile.main()


# A fixed string-hash seed: dict layouts, hence instruction counts, then repeat from run to run.
_ENV = os.environ | {"PYTHONHASHSEED": "0"}


def _us_per_request(mode: str, n: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "bench.audit_cost", "--child", mode, str(n)],
        capture_output=True,
        text=True,
        check=True,
        env=_ENV,
    ).stdout
    found = re.search(r"(\d+) us/request", out)
    assert found, out
    return float(found.group(1))


def _instructions(mode: str, n: int) -> float:
    """Everything the process executed, all threads (the writer's and the checkpointer's too)."""
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={Path(tmp) / 'out'}",
                sys.executable,
                "-m",
                "bench.audit_cost",
                "--child",
                mode,
                str(n),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=_ENV,
        )
    found = re.search(r"Collected : (\d+)", run.stderr)
    assert found, run.stderr[-2000:]
    return float(found.group(1))


def _report(unit: str, off: float, on: float) -> None:
    print(f"audit log off: {off:,.0f} {unit} per code exchange")
    print(f"audit log on:  {on:,.0f} {unit} per code exchange")
    print(f"cost of the audit log: {on - off:,.0f} {unit}, {100 * (on / off - 1):.1f} % of an exchange")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=300, help="exchanges in the smaller callgrind run")
    parser.add_argument("--large", type=int, default=3000, help="exchanges in the larger run (and in --seconds)")
    parser.add_argument("--seconds", action="store_true", help="wall time, pairs alternated, not instructions")
    parser.add_argument("--pairs", type=int, default=3, help="with --seconds: on/off pairs; the medians are shown")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return
    if args.seconds:
        times: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(args.pairs):
            for mode in ("on", "off"):
                times[mode].append(_us_per_request(mode, args.large))
        _report("us (wall)", statistics.median(times["off"]), statistics.median(times["on"]))
        return
    runs = [(mode, n) for mode in ("off", "on") for n in (args.small, args.large)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        totals = dict(zip(runs, pool.map(lambda r: _instructions(*r), runs), strict=True))
    extra = args.large - args.small
    off, on = ((totals[(m, args.large)] - totals[(m, args.small)]) / extra for m in ("off", "on"))
    _report("instructions", off, on)


if __name__ == "__main__":
    main()
