"""Reading console forms: per-field errors (shown next to their field), and scope checkboxes.

Checkboxes are named ``scope:<name>`` rather than repeating one name, because every form here
is read as single values (a repeated parameter is refused, as on the OAuth endpoints).
"""

from __future__ import annotations

from openxp import scopes

SCOPE_PREFIX = "scope:"


def scope_choices(selected: list[str]) -> list[tuple[str, str, str, bool]]:
    """(field name, scope, description, checked) for every scope there is."""
    return [(SCOPE_PREFIX + name, name, text, name in selected) for name, text in scopes.SCOPES.items()]


def chosen_scopes(form: dict[str, str]) -> list[str]:
    return [name for name in scopes.SCOPES if form.get(SCOPE_PREFIX + name) == "on"]


def lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]
