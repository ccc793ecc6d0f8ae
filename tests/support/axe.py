"""axe-core (npm, tests/js) run inside a Playwright page: the accessibility check of the console.

The script goes in by ``page.evaluate`` (DevTools evaluation, which the page's CSP does not
govern), so the pages are checked with their real, strict CSP in force.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

JS = Path(__file__).resolve().parents[1] / "js"
AXE = JS / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


@cache
def axe_source() -> str:
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            if os.environ.get("CI") == "true":
                pytest.fail("npm is required in CI for axe-core")
            pytest.skip("npm is not installed (axe-core comes from tests/js)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300, capture_output=True)
    return AXE.read_text(encoding="utf-8")


def violations(page: Any) -> list[dict[str, Any]]:
    """The page's axe violations of impact serious or critical, as (id, impact, help, targets)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source() + "\n;undefined")
    result = page.evaluate("async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "targets": [n["target"] for n in v["nodes"]][:5]}
        for v in result
        if v.get("impact") in BLOCKING
    ]
