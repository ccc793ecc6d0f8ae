"""What the learning records pages show of a statement, and the per-day chart's geometry
(computed here so the template only places numbers in SVG attributes: no inline style)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openxp.exports.statements import display

CHART_WIDTH = 600
CHART_HEIGHT = 160
BAR_AREA = 130  # the rest of the height holds the day labels


@dataclass(frozen=True)
class Summary:
    id: str
    stored: float
    voided: bool
    actor: str
    verb: str
    verb_id: str
    object: str


def _agent(agent: Any) -> str:
    if not isinstance(agent, dict):
        return ""
    account = agent.get("account") or {}
    ifi = agent.get("mbox") or agent.get("openid") or agent.get("mbox_sha1sum") or account.get("name") or ""
    name = agent.get("name")
    return f"{name} ({ifi})" if name and ifi else str(name or ifi)


def summary(statement_id: str, stored: float, voided: bool, statement: dict[str, Any]) -> Summary:
    verb = statement.get("verb") or {}
    obj = statement.get("object") or {}
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        shown = display((obj.get("definition") or {}).get("name"), obj.get("id", ""))
    elif kind == "StatementRef":
        shown = f"statement {obj.get('id', '')}"
    else:
        shown = _agent(obj) or kind
    verb_id = verb.get("id", "")
    return Summary(
        statement_id, stored, voided, _agent(statement.get("actor")), display(verb.get("display"), verb_id), verb_id,
        shown,
    )  # fmt: skip


@dataclass(frozen=True)
class Bar:
    day: str
    label: str
    count: int
    x: int
    y: int
    width: int
    height: int


def chart(days: list[tuple[int, int]]) -> dict[str, Any]:
    """Bars for (day start, count) pairs, scaled to the largest day; a label every 7 days."""
    top = max((count for _, count in days), default=0)
    slot = CHART_WIDTH // max(len(days), 1)
    bars = []
    for i, (start, count) in enumerate(days):
        height = round(BAR_AREA * count / top) if top else 0
        if count and height < 2:
            height = 2  # a day with any statement stays visible
        day = datetime.fromtimestamp(start, UTC)
        bars.append(
            Bar(day.strftime("%Y-%m-%d"), day.strftime("%b %d"), count, i * slot + 2, BAR_AREA - height, slot - 4,
                height)
        )  # fmt: skip
    return {
        "bars": bars,
        # A label centred under every 7th bar, none at the edges (a centred label there is cut off).
        "labels": [b for i, b in enumerate(bars) if i % 7 == 2 and i < len(bars) - 2],
        "total": sum(count for _, count in days),
        "top": top,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "base": BAR_AREA,
        "slot": slot,
    }
