"""Reading a console list page's filter fields from the query string: each field's value as
typed (shown back in the form) and, for a bad one, an error shown next to that field."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.requests import Request

# What a time field accepts: a date, or a date and a time to the minute, read as UTC.
TIME_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")
TIME_HINT = "UTC, as 2026-01-31 or 2026-01-31 14:05"
MAX_FIELD = 500


@dataclass
class FilterForm:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, label: str, *, max_length: int = MAX_FIELD) -> str | None:
        value = self.values.get(name, "")
        if not value:
            return None
        if len(value) > max_length:
            self.errors[name] = f"{label} is at most {max_length} characters."
            return None
        return value

    def time(self, name: str, label: str) -> float | None:
        value = self.values.get(name, "")
        if not value:
            return None
        for fmt in TIME_FORMATS:
            try:
                return datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp()
            except ValueError:
                continue
        self.errors[name] = f"{label} must be a date or a date and time ({TIME_HINT})."
        return None

    def page(self) -> int:
        raw = self.values.get("page", "1")
        return int(raw) if raw.isdigit() and 0 < len(raw) < 5 and int(raw) > 0 else 1


def read_filters(request: Request, names: tuple[str, ...]) -> FilterForm:
    """The named fields only (others are ignored), stripped, each cut to a bounded length."""
    params = request.query_params
    return FilterForm({name: params.get(name, "").strip()[: MAX_FIELD + 1] for name in names})


def day_end(value: str, start: float | None) -> float | None:
    """A 'to' date without a time means the whole of that day."""
    if start is None or len(value) != 10:
        return start
    return start + 86400
