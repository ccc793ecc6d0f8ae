"""The README's layout table is the map of the tree: every top-level package and module of
``openxp`` is in it, and every path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout_paths() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [path for row in rows for path in re.findall(r"`([^`]+)`", row.split("|")[1])]


def test_every_named_path_exists() -> None:
    named = layout_paths()
    assert len(named) > 10, named
    missing = [p for p in named if not (ROOT / p.rstrip("/")).exists()]
    assert not missing, f"the README's layout names paths that do not exist: {missing}"


def test_every_part_of_openxp_is_named() -> None:
    named = {p.rstrip("/") for p in layout_paths()}
    package = ROOT / "openxp"
    parts = [
        p.relative_to(ROOT).as_posix()
        for p in sorted(package.iterdir())
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.name != "__init__.py")
    ]
    unnamed = [p for p in parts if p not in named]
    assert not unnamed, f"parts of openxp the README's layout does not name: {unnamed}"
