"""docs/integrating.md is run, block by block, against a real server.

Every ```sh block of the page runs with bash, exactly as printed, in order, in
one "terminal": variables a block assigns stay set for the later blocks, as
they would for a reader pasting them one after another. The reader's variables
(BASE, TENANT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI) get the `server`
fixture's values for client c1 in tenant a. What the reader copies by hand is
supplied the way the reader would get it: CODE from a real login and consent
(tests.support.flow.get_code, with the parameters of the last authorize URL
the page printed), ACCESS_TOKEN and REFRESH_TOKEN from the JSON the token
curls print.

An HTML comment before a block says what it needs (``<!-- test: ... -->``):
``skip`` (not run), ``variables`` (the reader's settings: not run; the test
sets the same names), ``authorize-url`` (prints a step 1 URL; the test opens
it), ``pkce`` (sets CODE_VERIFIER / CODE_CHALLENGE; the test checks them),
``needs CODE`` (a fresh code), ``needs TOKENS`` (a fresh token pair), ``needs APIKEY``
(API_KEY / API_SECRET: the fixture's key KA, as the operator would hand it out) and
``launch`` (the block prints a launch answer: LAUNCH_URL and its ``auth`` parameter,
AUTH, are taken from it, as the launched content would).

The fenced block that follows a ```sh block (before the next one) is what the
page says it prints: ```json is the body; ```http is the status line, the
headers listed and the body of a ``curl -i``. Values are compared exactly,
after mapping the page's example values onto the fixture's; a string ending in
``...`` is a prefix; ids and times the server picks are compared by type.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from openxp import scopes
from tests.support.flow import Browser, exchange, get_code
from tests.support.server import ROOT, Server

DOC = ROOT / "docs" / "integrating.md"
READER_VARIABLES = {"BASE", "TENANT", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI"}
# Chosen by the server per run: compared by type only.
VARYING_KEYS = {"exp", "iat", "sub", "new", "existing"}
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_DIRECTIVE = re.compile(r"<!--\s*test:\s*(.*?)\s*-->")


@dataclass
class Block:
    language: str
    text: str
    directives: list[str]
    line: int
    expected: Block | None = None


@dataclass
class Terminal:
    """The reader's shell: variables persist from one block to the next."""

    variables: dict[str, str] = field(default_factory=dict)

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        with tempfile.NamedTemporaryFile(prefix="openxp-doc-env-", delete=False) as dump:
            dump_path = dump.name
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
        env.update(self.variables)
        env["OPENXP_DOC_ENV_DUMP"] = dump_path
        # `set -a` exports what the block assigns; the EXIT trap hands it back to us.
        prelude = "set -a\ntrap 'env -0 > \"$OPENXP_DOC_ENV_DUMP\"' EXIT\n"
        try:
            result = subprocess.run(
                ["bash", "-c", prelude + script + "\n"], env=env, capture_output=True, text=True, timeout=60
            )
            for item in Path(dump_path).read_text().split("\0"):
                name, sep, value = item.partition("=")
                if sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name) and name not in {"PATH", "HOME", "PWD", "SHLVL"}:
                    if not name.startswith("OPENXP_DOC"):
                        self.variables[name] = value
        finally:
            os.unlink(dump_path)
        return result


def parse_blocks(markdown: str) -> list[Block]:
    blocks: list[Block] = []
    for match in _FENCE.finditer(markdown):
        before = markdown[: match.start()].rstrip()
        last_line = before.rsplit("\n", 1)[-1]
        directive = _DIRECTIVE.fullmatch(last_line.strip())
        directives = [d.strip() for d in directive.group(1).split(";")] if directive else []
        line = markdown.count("\n", 0, match.start()) + 1
        blocks.append(Block(match.group(1), match.group(2), directives, line))
    runnable: list[Block] = []
    for block in blocks:
        if block.language == "sh":
            runnable.append(block)
        elif runnable and runnable[-1].expected is None and block.language in {"json", "http"}:
            runnable[-1].expected = block
    return runnable


def example_values(blocks: list[Block]) -> dict[str, str]:
    """The page's example settings, NAME -> value, from its ``variables`` block."""
    (settings,) = [b for b in blocks if "variables" in b.directives]
    values = dict(line.split("=", 1) for line in settings.text.strip().splitlines())
    assert set(values) == READER_VARIABLES, f"the variables block must set exactly {sorted(READER_VARIABLES)}"
    return values


def localise(value: Any, examples: dict[str, str], actual: dict[str, str]) -> Any:
    """Map the page's example values (the demo tenant, client, URL) onto the fixture's."""
    if isinstance(value, dict):
        return {k: localise(v, examples, actual) for k, v in value.items()}
    if isinstance(value, list):
        return [localise(v, examples, actual) for v in value]
    if isinstance(value, str):
        for name, example in examples.items():
            if value == example:
                return actual[name]
        if value.startswith(examples["BASE"]):
            return actual["BASE"] + value[len(examples["BASE"]) :]
    return value


def assert_matches(expected: Any, got: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{where}: expected an object, got {got!r}"
        assert set(got) == set(expected), f"{where}: keys {sorted(got)} != documented {sorted(expected)}"
        for key, value in expected.items():
            if key in VARYING_KEYS:
                assert type(got[key]) is type(value), f"{where}.{key}: {got[key]!r} is not like {value!r}"
            else:
                assert_matches(value, got[key], f"{where}.{key}")
    elif isinstance(expected, str) and expected.endswith("..."):
        assert isinstance(got, str) and got.startswith(expected[:-3]), f"{where}: {got!r} !~ {expected!r}"
        assert len(got) > len(expected) - 3, f"{where}: {got!r} is only the prefix"
    else:
        assert got == expected, f"{where}: got {got!r}, the page says {expected!r}"


def split_http(text: str) -> tuple[int, dict[str, str], str]:
    """Status, headers (lower-case names) and body of ``curl -i`` output or of the page's ```http block."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.strip("\n").split("\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body.strip()


def check_output(block: Block, stdout: str, examples: dict[str, str], actual: dict[str, str]) -> Any:
    """Compare what the block printed with what the page says; return the parsed body."""
    assert block.expected is not None
    where = f"{DOC.name}:{block.line}"
    if block.expected.language == "json":
        body_text = stdout
        expected_body = block.expected.text
    else:
        status, headers, body_text = split_http(stdout)
        doc_status, doc_headers, expected_body = split_http(block.expected.text)
        assert status == doc_status, f"{where}: status {status}, the page says {doc_status}\n{stdout}"
        for name, value in doc_headers.items():
            assert headers.get(name) == value, f"{where}: header {name}: {headers.get(name)!r}, page: {value!r}"
    if not expected_body:
        assert body_text == "", f"{where}: expected an empty body, got {body_text!r}"
        return None
    got = json.loads(body_text)
    assert_matches(localise(json.loads(expected_body), examples, actual), got, where)
    return got


def authorize_params(url: str, base: str) -> dict[str, str]:
    assert url.startswith(f"{base}/auth/oauth/authorize?"), url
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def test_integrating_guide_runs_as_written(server: Server) -> None:
    """The seed's four steps, the refresh (E-01), the form and Basic variants (F-12), PKCE (D-01),
    introspection (K-05), revocation (K-01), metadata (K-07), the documented errors (I-01, G-01,
    E-02, C-02, F-11), Basic API keys (H-10), short-lived credentials and content launch (J-03, J-06),
    exactly as docs/integrating.md shows them."""
    blocks = parse_blocks(DOC.read_text(encoding="utf-8"))
    examples = example_values(blocks)
    c1 = server.clients["c1"]
    actual = {
        "BASE": server.base_url,
        "TENANT": "a",
        "CLIENT_ID": c1["client_id"],
        "CLIENT_SECRET": c1["client_secret"],
        "REDIRECT_URI": c1["redirect_uris"][0],
    }
    terminal = Terminal(dict(actual))
    last_authorize: dict[str, str] | None = None
    ran = 0
    for block in blocks:
        where = f"{DOC.name}:{block.line}"
        if "skip" in block.directives or "variables" in block.directives:
            continue
        if "needs CODE" in block.directives:
            assert last_authorize is not None, f"{where}: needs a code before any authorize URL was shown"
            overrides = {"state": "", **last_authorize}
            terminal.variables["CODE"] = get_code(server, "c1", **overrides)
        if "needs TOKENS" in block.directives:
            issued = exchange(server, get_code(server, "c1"))
            assert issued.status_code == 200, issued.text
            terminal.variables["ACCESS_TOKEN"] = issued.json()["access_token"]
            terminal.variables["REFRESH_TOKEN"] = issued.json()["refresh_token"]
        if "needs APIKEY" in block.directives:
            terminal.variables["API_KEY"] = server.apikeys["KA"]["key"]
            terminal.variables["API_SECRET"] = server.apikeys["KA"]["secret"]

        result = terminal.run(block.text)
        ran += 1
        assert result.returncode == 0, f"{where}: exit {result.returncode}\n{result.stderr}"

        if "authorize-url" in block.directives:
            url = result.stdout.strip()
            last_authorize = authorize_params(url, server.base_url)
            browser = Browser.open(server)
            try:
                page = browser.http.get(url)
            finally:
                browser.close()
            assert page.status_code == 200, f"{where}: {page.status_code} {page.text}"
            assert 'action="/auth/login"' in page.text and "Client c1" in page.text
        if "pkce" in block.directives:
            verifier = terminal.variables["CODE_VERIFIER"]
            challenge = terminal.variables["CODE_CHALLENGE"]
            assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier), verifier
            digest = hashlib.sha256(verifier.encode()).digest()
            assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if block.expected is not None:
            body = check_output(block, result.stdout, examples, actual)
            if isinstance(body, dict):
                # What the reader copies from the token answer into their variables.
                for key, name in (("access_token", "ACCESS_TOKEN"), ("refresh_token", "REFRESH_TOKEN")):
                    if key in body:
                        terminal.variables[name] = body[key]
                if "launch" in block.directives:
                    # The page's own commands keep the URL and its auth parameter, as a reader needs them.
                    assert terminal.variables.get("LAUNCH_URL") == body["url"], f"{where}: LAUNCH_URL is not set"
                    auth = dict(parse_qsl(urlsplit(body["url"]).query))["auth"]
                    assert terminal.variables.get("AUTH") == auth, f"{where}: AUTH is not the launch's auth"
        elif "authorize-url" not in block.directives and "pkce" not in block.directives:
            raise AssertionError(f"{where}: a runnable block needs a documented output or a test directive")
    assert ran >= 20, f"only {ran} blocks ran"


def test_step2_callback_example_matches_a_real_redirect(server: Server) -> None:
    """The callback the page shows in step 2 has the parameters a real one has (A-21: iss)."""
    text = DOC.read_text(encoding="utf-8")
    shown = re.search(r"```text\n(\S*/demo/callback\?\S+)\n```", text)
    assert shown is not None
    documented = dict(parse_qsl(urlsplit(shown.group(1)).query))
    browser = Browser.open(server)
    try:
        c1 = server.clients["c1"]
        params = {"response_type": "code", "client_id": c1["client_id"], "redirect_uri": c1["redirect_uris"][0]}
        final = browser.approve(params)
    finally:
        browser.close()
    assert final.status_code == 303
    got = dict(parse_qsl(urlsplit(final.headers["location"]).query))
    assert set(got) == set(documented) == {"code", "iss"}
    assert got["iss"] == server.base_url and documented["iss"] == "http://127.0.0.1:8000"
    assert httpx.get(f"{server.base_url}/demo/callback", params=got).status_code == 200


def test_scope_table_lists_the_vocabulary() -> None:
    """The page's scope table is openxp.scopes.SCOPES, no more, no less."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Scopes", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([^`]+)` \|", section, re.MULTILINE)
    assert listed == list(scopes.SCOPES)


def test_error_table_names_the_errors_integrators_see() -> None:
    """Every error code an integrator can get is explained in the table."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Errors", 1)[1]
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
    required = {
        "invalid_grant",
        "invalid_client",
        "invalid_request",
        "tenant_mismatch",
        "tenant_required",
        "invalid_token",
        "insufficient_scope",
        "too_many_requests",
    }
    assert required <= listed, required - listed


def test_deprecation_header_is_documented_as_sent(server: Server) -> None:
    """H-10: the page names the Deprecation header value a Basic request really gets (RFC 9745)."""
    key = server.apikeys["KA"]
    sent = httpx.get(f"{server.base_url}/api/auth/me", auth=(key["key"], key["secret"]), timeout=30)
    assert sent.status_code == 200, sent.text
    text = DOC.read_text(encoding="utf-8")
    named = re.findall(r"`Deprecation: ([^`]+)`", text, re.IGNORECASE)
    assert named, "the page names the Deprecation header"
    assert set(named) == {sent.headers["deprecation"]}, named


def limits_table() -> dict[str, int]:
    """The "## Limits" section's table: first cell (what) -> the limit in bytes (second cell)."""
    section = DOC.read_text(encoding="utf-8").split("\n## Limits\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, int] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and (number := re.match(r"([\d,]+) bytes", cells[1])):
            rows[cells[0]] = int(number.group(1).replace(",", ""))
    return rows


def test_limits_section_lists_the_body_limits_in_the_code(server: Server) -> None:
    """The Limits section gives the body limits of the token endpoint, /api and /xapi as the code
    has them; the token endpoint's is checked over HTTP too (413 just over it, not at it)."""
    from openxp import wire
    from openxp.api import actors, credentials, users
    from openxp.web import forms, pages
    from openxp.xapi import alternate, documents, statements

    documented = limits_table()
    expected = {
        "`POST /auth/oauth/token`, `/auth/oauth/revoke`, `/auth/oauth/introspect`": wire.MAX_FORM_BODY,
        "`POST /api/import/users`, JSON body": users.MAX_IMPORT_BODY,
        "`POST /api/import/users`, `text/csv` body": users.MAX_CSV_BODY,
        "`PUT /api/actors/agents`, `POST /api/actors/search`": actors.MAX_BODY,
        "`POST /api/auth/basic`, `POST /api/launch`": credentials.MAX_BODY,
        "`PUT`/`POST /xapi/statements` (JSON or multipart with attachments)": statements.MAX_BODY,
        "`/xapi/activities/state`, `/xapi/activities/profile`, `/xapi/agents/profile` documents": (
            documents.MAX_DOCUMENT
        ),
        "`POST /xapi/statements?method=...` (alternate request syntax) form": alternate.MAX_ALTERNATE_BODY,
        "`GET /auth/oauth/authorize` query string": pages.MAX_QUERY,
        "sign-in and consent forms": forms.MAX_FORM,
    }
    for what, limit in expected.items():
        assert documented.get(what) == limit, f"Limits: {what!r} says {documented.get(what)}, the code {limit}"

    c1 = server.clients["c1"]
    base = f"grant_type=refresh_token&client_id={c1['client_id']}&client_secret={c1['client_secret']}&refresh_token="
    form = {"content-type": "application/x-www-form-urlencoded"}
    at_limit = (base + "x" * (wire.MAX_FORM_BODY - len(base))).encode()
    over = at_limit + b"x"
    assert httpx.post(f"{server.base_url}/auth/oauth/token", content=at_limit, headers=form).status_code == 400
    too_large = httpx.post(f"{server.base_url}/auth/oauth/token", content=over, headers=form)
    assert too_large.status_code == 413 and too_large.json()["error"] == "invalid_request"
