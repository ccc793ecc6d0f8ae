"""A real cmi5 AU library under openxp's cmi5 launch: Rustici's cmi5.js (npm
``@rusticisoftware/cmi5``, tests/js/cmi5_client.mjs) follows the launch URL POST /api/launch
answers with ``"mode": "cmi5"``: the one-time fetch URL, LMS.LaunchData, the learner preferences,
then initialized, completed, passed and terminated. A second start from the same URL is refused
its token (J-01). The statements it sent are then read back as the LMS would.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.support import js
from tests.support.server import Server
from tests.xapi.test_cmi5 import EXT, launched, session_statements

VERBS = "http://adlnet.gov/expapi/verbs/"
MOVEON = {"id": "https://w3id.org/xapi/cmi5/context/categories/moveon"}


@pytest.fixture(scope="module")
def node() -> str:
    return js.node("@rusticisoftware/cmi5")


def run_au(node: str, url: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run([node, "cmi5_client.mjs", url], cwd=js.JS, capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    return result.returncode, json.loads(lines[-1])


def test_J01_cmi5js_runs_a_whole_session(server: Server, node: str) -> None:
    answer, params = launched(
        server, moveOn="CompletedAndPassed", masteryScore=0.8, returnURL="https://lms.example.com/done"
    )
    code, report = run_au(node, answer["url"])
    assert code == 0, report
    assert report["steps"] == ["construct", "start", "completed", "passed", "terminate"]
    assert report["launchMode"] == "Normal" and report["moveOn"] == "CompletedAndPassed"
    assert report["masteryScore"] == 0.8 and report["returnURL"] == "https://lms.example.com/done"
    assert report["sessionId"] == answer["session_id"]
    assert report["secondStart"].endswith("LMS error: 1"), report  # cmi5 8.2.3.1, as cmi5.js reports it

    sent = session_statements(server, params["registration"])
    assert [s["verb"]["id"].rsplit("/", 1)[-1] for s in sent] == [
        "launched",
        "initialized",
        "completed",
        "passed",
        "terminated",
    ]
    for statement in sent:
        assert statement["context"]["extensions"][EXT + "sessionid"] == answer["session_id"]
        assert statement["context"]["registration"] == params["registration"]
    passed = sent[3]
    assert passed["result"]["success"] is True and passed["result"]["score"]["scaled"] == 0.9
    assert MOVEON in passed["context"]["contextActivities"]["category"]
    assert passed["context"]["extensions"][EXT + "masteryscore"] == 0.8
