"""The peer: node oidc-provider, installed from npm into bench/node_modules on first use."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def peer_available() -> str | None:
    """Install the peer's node_modules if needed (``npm ci``); None when usable, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    wanted = json.loads((BENCH / "package.json").read_text())["dependencies"]["oidc-provider"]
    if peer_version() == wanted:
        return None
    if shutil.which("npm") is None:
        return "npm is not installed"
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=BENCH, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        return f"npm ci failed: {result.stderr.strip()[-500:]}"
    return None


def peer_version() -> str:
    try:
        return str(json.loads((BENCH / "node_modules/oidc-provider/package.json").read_text())["version"])
    except OSError:
        return "not installed"
