"""The structural promises of issue 11 that are cheap to check: one exception base, one
guard for resources, the six ideas of the old ``xapi/http.py`` in modules of their own,
and every module importable first (no import cycle bites whichever is loaded first)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import openxp
from openxp.errors import OpenXPError

PACKAGE = Path(next(iter(openxp.__path__)))
# Not importable as modules: the CLI entry point and Alembic's migration scripts.
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(openxp.__path__, "openxp.")
    if not m.name.endswith("__main__") and ".migrations" not in m.name
)


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(PACKAGE.rglob("*.py"))]


def test_every_exception_class_derives_from_the_one_base() -> None:
    for name in MODULES:
        importlib.import_module(name)
    found: list[type[BaseException]] = []
    stack: list[type[BaseException]] = [BaseException]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith("openxp"):
                found.append(sub)
    assert OpenXPError in found
    outside = sorted(f"{c.__module__}.{c.__qualname__}" for c in found if not issubclass(c, OpenXPError))
    assert not outside, f"exception classes outside the OpenXPError tree: {outside}"


def test_one_authenticate_for_resources() -> None:
    """``openxp.auth.guard.authenticate`` is the only one; the OAuth client authentication of
    the token endpoints (``client_auth.authenticate``) is another thing: a client, not a caller."""
    defined = [
        str(path.relative_to(PACKAGE))
        for path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name == "authenticate"
    ]
    assert sorted(defined) == ["auth/guard.py", "oauth/rfc6749/client_auth.py"], defined


def test_the_old_http_glue_is_gone() -> None:
    assert not (PACKAGE / "xapi" / "http.py").exists()
    for module in ("version", "endpoint", "alternate", "cors", "params"):
        assert (PACKAGE / "xapi" / f"{module}.py").is_file(), module
    assert (PACKAGE / "auth" / "confine.py").is_file()


def test_no_store_is_defined_once() -> None:
    defined = [
        str(path.relative_to(PACKAGE))
        for path, tree in _sources()
        for node in tree.body
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "NO_STORE" for t in node.targets)
    ]
    assert defined == ["httpio.py"], defined


# One interpreter that loads the libraries once, then forks a child per module: the child
# starts with no openxp module loaded and imports just the one.
_IMPORT_EACH_FIRST = """
import importlib, os, sys
import sqlalchemy, sqlalchemy.ext.asyncio, starlette.applications, starlette.routing, jinja2, orjson, typer
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            print(name, type(exc).__name__, exc, file=sys.stderr)
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1] != 0:
        failed.append(name)
print(" ".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_first() -> None:
    """Each module imported first: a cycle that only bites when a particular module is
    loaded first (e.g. ``openxp.auth.confine`` before ``openxp.xapi``) fails here, not in
    production on some other entry point."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_FIRST, *MODULES], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
