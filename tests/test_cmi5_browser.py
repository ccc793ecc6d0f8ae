"""cmi5 content in a real browser: an AU page on its own origin (a course host) loads Rustici's
cmi5.js, opened at the launch URL POST /api/launch answers with ``"mode": "cmi5"``. Chromium
enforces CORS, so this checks what Node cannot: the AU's page may read the fetch URL's answer,
and its preflighted, Authorization-carrying requests to /xapi are allowed (J-01 in a browser).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import js
from tests.support.chromium import CHROMIUM, chromium_browser, static_server
from tests.support.server import Server
from tests.xapi.test_cmi5 import launched, session_statements

if not CHROMIUM.exists() and os.environ.get("CI") != "true":
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)", allow_module_level=True)

from playwright.sync_api import Browser

AU_PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>Safety 101: introduction</title>
<script src="/cmi5.js"></script>
<p id="out">starting</p>
<script>
(async () => {
  const out = document.getElementById("out");
  try {
    const au = new Cmi5(location.href);
    await au.start();
    await au.completed();
    await au.terminate();
    out.textContent = "done " + au.getSessionId();
  } catch (error) {
    out.textContent = "error " + error;
  }
})();
</script>
"""


@pytest.fixture(scope="module")
def course_host() -> Iterator[str]:
    library = (js.package("@rusticisoftware/cmi5") / "dist" / "cmi5.js").read_bytes()
    files = {"/au.html": ("text/html; charset=utf-8", AU_PAGE), "/cmi5.js": ("text/javascript", library)}
    with static_server(files) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with chromium_browser() as browser:
        yield browser


def test_J01_an_au_on_another_origin_runs_its_session(server: Server, course_host: str, chromium: Browser) -> None:
    answer, params = launched(server, url=f"{course_host}/au.html")
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(answer["url"])
        page.wait_for_function("!document.getElementById('out').textContent.startsWith('starting')")
        outcome = page.text_content("#out")
        page.screenshot(path=str(server.data_dir / "cmi5-au.png"))
    finally:
        context.close()
    assert outcome == f"done {answer['session_id']}", outcome
    verbs = [s["verb"]["id"].rsplit("/", 1)[-1] for s in session_statements(server, params["registration"])]
    assert verbs == ["launched", "initialized", "completed", "terminated"]
