"""The layering rules of docs/decisions.md, checked on the source itself (with ``ast``).

- SQL is written only in ``openxp/store/``: no SQL string, no ``sqlalchemy.text()`` and no
  Core statement builder (``select``, ``insert``, ``update``, ``delete``) anywhere else.
- The store depends on no layer above it (oauth, auth, api, xapi, web, cli, ...).
- No import cycle, neither among modules nor among the top-level parts of ``openxp``
  (``openxp.store`` as one part, ``openxp.scopes`` as another): a cycle between parts is a
  layer that depends on itself through another.

Each check first proves on a sample that it sees what it looks for, so that an empty
result means the tree is clean rather than the check blind.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "openxp"
STORE = PACKAGE / "store"

UPPER_LAYERS = (
    "openxp.api",
    "openxp.xapi",
    "openxp.web",
    "openxp.oauth",
    "openxp.auth",
    "openxp.cli",
    "openxp.app",
    "openxp.runtime",
    "openxp.openapi",
)

_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET|WHERE)\b", re.S)
_CORE_BUILDERS = {"select", "insert", "update", "delete", "text"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes: prose about SQL ("a DELETE without RETURNING") is not SQL."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def sql_in(source: str) -> list[str]:
    """What in ``source`` is SQL: string literals that read as a statement, ``text()`` calls,
    and SQLAlchemy's Core statement builders imported to build one."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if _SQL.search(node.value):
                found.append(f"line {node.lineno}: SQL string {node.value[:60]!r}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            names = sorted(a.name for a in node.names if a.name in _CORE_BUILDERS)
            if names:
                found.append(f"line {node.lineno}: from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _CORE_BUILDERS and ast.unparse(node.func.value) in {"sqlalchemy", "sa"}:
                found.append(f"line {node.lineno}: {ast.unparse(node.func)}()")
    return found


def _imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports (at any depth: a lazy import is a dependency too),
    relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _graph() -> dict[str, set[str]]:
    """Module -> the openxp modules it imports, each with the packages above it (importing
    ``openxp.store.errors`` runs ``openxp/store/__init__.py`` first)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for _, imported in _imports(path, name):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]  # ``from pkg import name``: name is no module
            parts = imported.split(".") if imported else []
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in modules and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _parts_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            if _part(module) != _part(target):
                parts.setdefault(_part(module), set()).add(_part(target))
    return parts


def test_the_sql_check_sees_sql() -> None:
    sample = (
        '"""A DELETE without WHERE removes every row."""\n'
        "from sqlalchemy import select, text\n"
        'Q = "SELECT id FROM tenants WHERE name = $1"\n'
        'def f(conn):\n    return text("UPDATE t SET a = 1")\n'
        "import sqlalchemy\nsqlalchemy.delete(None)\n"
        'NOT_SQL = "select a learner from the list"\n'
    )
    found = sql_in(sample)
    assert len(found) == 4, found  # the import, both strings, sqlalchemy.delete; not the prose
    assert sql_in('MESSAGE = "update the client, then select a scope"\n') == []


def test_no_sql_outside_the_store() -> None:
    offenders: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_relative_to(STORE):
            continue
        found = sql_in(path.read_text(encoding="utf-8"))
        if found:
            offenders[relative] = found
    assert offenders == {}, "SQL belongs in openxp/store/: " + repr(offenders)


def test_the_store_imports_no_upper_layer() -> None:
    modules = _modules()
    offenders: list[str] = []
    for name, path in modules.items():
        if not path.is_relative_to(STORE):
            continue
        for line, imported in _imports(path, name):
            if any(imported == layer or imported.startswith(layer + ".") for layer in UPPER_LAYERS):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert offenders == [], offenders


def test_the_cycle_check_sees_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    # Two parts in a cycle although no two modules are: the shape scopes <-> store had.
    modules = {"openxp.scopes": {"openxp.store.errors"}, "openxp.store.clients": {"openxp.scopes"}}
    assert cycles(modules) == []
    assert cycles(_parts_graph(modules)) == [["openxp.scopes", "openxp.store"]]


def test_no_import_cycle_among_modules() -> None:
    graph = _graph()
    assert "openxp.store.db.group_commit" in graph and graph["openxp.api.criteria"], "the graph is empty"
    assert cycles(graph) == []


def test_no_import_cycle_among_the_parts_of_openxp() -> None:
    parts = _parts_graph(_graph())
    assert "openxp.store" in parts.get("openxp.api", set()), "the graph is empty"
    assert cycles(parts) == []
