"""axe-core (npm, tests/js) run inside a Playwright page: the accessibility check of the console.

The script goes in by ``page.evaluate`` (DevTools evaluation, which the page's CSP does not
govern), so the pages are checked with their real, strict CSP in force.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from tests.support.js import package

BLOCKING = ("serious", "critical")


@cache
def axe_source() -> str:
    return (package("axe-core") / "axe.min.js").read_text(encoding="utf-8")


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
