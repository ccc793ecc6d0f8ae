"""The Node packages of tests/js (TinCanJS, cmi5.js, axe-core): installed from its
package-lock.json into tests/js/node_modules (gitignored) on first use. Without node or npm
a test is skipped, except in CI, where that is a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[1] / "js"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI (tests/js)")
    pytest.skip(f"{what} is not installed (tests/js)")


def package(name: str) -> Path:
    """The installed package's directory, running ``npm ci`` in tests/js when it is missing."""
    path = JS / "node_modules" / name
    if not path.is_dir():
        npm = shutil.which("npm")
        if npm is None:
            _missing("npm")
        subprocess.run(
            [str(npm), "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300, capture_output=True
        )
    return path


def node(*packages: str) -> str:
    """The ``node`` executable, with ``packages`` installed for the scripts in tests/js."""
    found = shutil.which("node")
    if found is None:
        _missing("node")
    for name in packages:
        package(name)
    return str(found)
