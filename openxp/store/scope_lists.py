"""Scope lists as the store keeps them (a client's allowed and default scopes, an API key's):
known scopes only, each once, in the order given."""

from __future__ import annotations

from collections.abc import Iterable

from openxp.scopes import SCOPES
from openxp.store.errors import Invalid


def validate(items: Iterable[str]) -> list[str]:
    result: list[str] = []
    for item in items:
        if item not in SCOPES:
            raise Invalid(f"unknown scope {item!r}; known scopes: {', '.join(SCOPES)}")
        if item not in result:
            result.append(item)
    return result
