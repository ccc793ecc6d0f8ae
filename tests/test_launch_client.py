"""A real xAPI client library under content launch: TinCanJS (npm ``tincanjs``) reads the Rustici
launch parameters from the URL POST /api/launch answers, as launched content does, then sends a
statement, reads it back, keeps state, and is refused a statement for another actor (J-03, J-04).

The Node packages are installed from tests/js/package-lock.json into tests/js/node_modules
(gitignored). Skipped only when ``node`` is missing outside CI.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.api.test_credentials import call, key_auth
from tests.support import js
from tests.support.server import Server
from tests.xapi.test_launch import launch

JS = js.JS


@pytest.fixture(scope="module")
def node() -> str:
    return js.node("tincanjs")


def run_client(node: str, url: str) -> tuple[int, dict[str, object]]:
    result = subprocess.run([node, "launch_client.mjs", url], cwd=JS, capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    return result.returncode, json.loads(lines[-1])


def test_J04_tincanjs_content_under_launch(server: Server, node: str) -> None:
    """J-04 / J-03: TinCanJS takes endpoint, auth, actor, activity_id and registration from the launch URL;
    its statement (sent with the auth value as its Authorization header) is stored and read back, its
    state kept, and its statement for another actor refused with 403."""
    response = launch(server, url="https://content.example.com/course/index.html")
    assert response.status_code == 200, response.text
    code, report = run_client(node, response.json()["url"])
    assert report["endpoint"] == f"{server.base_url}/xapi/"
    assert report["activity"] == "http://example.com/courses/launch-101"
    assert report["sendStatus"] == 204, report
    assert report["readBackOk"] and report["queryOk"], report
    assert report["stateValue"] == "page-7", report
    assert report["otherActorStatus"] == 403, report
    assert code == 0, report


def test_J06_tincanjs_after_revocation(server: Server, node: str) -> None:
    """J-06 seen by content: once the launch credential is revoked, the client's statement gets 401."""
    response = launch(server)
    username = response.json()["username"]
    assert call(server, "DELETE", f"/api/auth/basic/{username}", key_auth(server)).status_code == 204
    code, report = run_client(node, response.json()["url"])
    assert code == 1
    assert report["sendStatus"] == 401, report
