"""CSV cells a spreadsheet shows as text (CSV injection, OWASP): a cell that begins like a
formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a leading apostrophe, which
spreadsheets take as "this is text" and do not show. Used by every CSV openxp writes."""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading quote."""
    return "'" + value if value.startswith(FORMULA_START) else value
