"""The `openxp` command as an operator reads it: help without type tags and with a line for every
option, `--json` answers that are one JSON object with ISO 8601 times, text lists with a header
row, and no log lines on stderr unless asked for (`--verbose`, OPENXP_LOG_LEVEL).

Through the real command (`python -m openxp.cli`, as subprocesses), against the shared server's
database.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from openxp.cli import app
from tests.support.server import OPENXP, ROOT, Server
from tests.test_cli import command_paths

TYPE_TAG = re.compile(r"<[a-z][a-z_\[\]|, .]*>")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def option_entries(help_text: str) -> dict[str, str]:
    """The 'Options:' section of a plain --help: option name -> its help text."""
    assert "\nOptions:\n" in help_text, help_text
    section = help_text.split("\nOptions:\n", 1)[1].split("\n\n", 1)[0]
    entries: dict[str, str] = {}
    current = ""
    for line in section.splitlines():
        if re.match(r"^ {2}-", line):
            head, _, rest = line.strip().partition("  ")
            current = head.split()[0].split(",")[0].split("/")[0]
            entries[current] = rest.strip()
        elif current and line.startswith("   "):
            entries[current] = (entries[current] + " " + line.strip()).strip()
    return entries


def test_help_of_every_command_has_no_type_tags_and_explains_every_option() -> None:
    """Every command's --help: no `<bool>`, `<str>`, `<list[str]>` tags, and help text for every
    option; the real console command prints the same."""
    runner = CliRunner()
    for path in command_paths():
        result = runner.invoke(app, [*path, "--help"], prog_name="openxp")
        assert result.exit_code == 0, (path, result.output)
        text = result.stdout
        assert not TYPE_TAG.search(text), (path, TYPE_TAG.findall(text))
        entries = option_entries(text)
        assert "--help" in entries, (path, text)
        bare = [name for name, helptext in entries.items() if not helptext or helptext.startswith("[")]
        assert not bare, f"openxp {' '.join(path)}: options without help text: {bare}\n{text}"
    real = subprocess.run([*OPENXP, "client", "create", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert real.returncode == 0 and not TYPE_TAG.search(real.stdout), real.stdout
    assert set(option_entries(real.stdout)) >= {"--tenant", "--name", "--redirect-uri", "--public", "--json"}


def one_object(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    payload = json.loads(lines[0])
    assert isinstance(payload, dict)
    return payload


@pytest.fixture(scope="module")
def tenant(server: Server) -> dict[str, Any]:
    name = "polish-" + secrets.token_hex(3)
    server.cli_json("tenant", "create", name)
    key = server.cli_json("apikey", "create", "--tenant", name, "--name", "Polish key")
    return {"name": name, "key": key}


def test_json_times_are_iso_8601_utc_and_text_lists_have_headers(server: Server, tenant: dict[str, Any]) -> None:
    """`apikey list --json` shows last_used_at as ISO 8601 UTC (not a float), the text list shows the
    same time, and every list command's text output starts with a header row."""
    name, key = tenant["name"], tenant["key"]
    unused = one_object(server.cli("apikey", "list", "--tenant", name, "--json", check=False))
    assert unused["keys"][0]["last_used_at"] is None

    before = datetime.now(UTC).replace(microsecond=0)
    used = httpx.get(f"{server.base_url}/api/auth/me", auth=(key["key"], key["secret"]), timeout=30)
    assert used.status_code == 200, used.text
    after = datetime.now(UTC)
    (row,) = one_object(server.cli("apikey", "list", "--tenant", name, "--json", check=False))["keys"]
    stamp = row["last_used_at"]
    assert isinstance(stamp, str) and ISO_UTC.fullmatch(stamp), stamp
    assert before <= datetime.fromisoformat(stamp) <= after

    text = server.cli("apikey", "list", "--tenant", name).stdout.splitlines()
    assert len(text) == 2, text
    header, line = text
    assert header.split()[:2] == ["KEY", "NAME"] and "LAST USED" in header, header
    assert line.startswith(key["key"]) and stamp in line

    for listing, first_column in (
        (["tenant", "list"], "NAME"),
        (["admin", "list", "--tenant", "a"], "EMAIL"),
        (["client", "list", "--tenant", "a"], "CLIENT ID"),
        (["apikey", "list", "--tenant", "a"], "KEY"),
    ):
        lines = server.cli(*listing).stdout.splitlines()
        assert lines and lines[0].startswith(first_column), (listing, lines[:2])
        assert len(lines) >= 2, (listing, lines)


def test_commands_are_quiet_on_stderr_unless_asked(server: Server, tenant: dict[str, Any]) -> None:
    """A successful command prints nothing on stderr (no JSON log line); `--verbose` or
    OPENXP_LOG_LEVEL=info shows the operator_command record (P-01 for operator commands, on request;
    P-02: the secret it printed is not in it)."""
    name = tenant["name"]
    for args in (
        ["tenant", "list", "--json"],
        ["apikey", "list", "--tenant", name, "--json"],
        ["client", "create", "--tenant", name, "--name", "Quiet", "--redirect-uri", "https://q.example/cb", "--json"],
        ["apikey", "rotate", "--tenant", name, tenant["key"]["key"], "--json"],
    ):
        result = server.cli(*args, check=False)
        one_object(result)
        assert result.stderr == "", (args, result.stderr)
    tenant["key"]["secret"] = json.loads(result.stdout)["secret"]

    loud = server.cli("--verbose", "apikey", "rotate", "--tenant", name, tenant["key"]["key"], "--json", check=False)
    secret = one_object(loud)["secret"]
    records = [
        json.loads(line.split(" openxp.audit ", 1)[1]) for line in loud.stderr.splitlines() if "openxp.audit" in line
    ]
    # The command's own record and the change it made (persisted to the audit log since issue 12).
    assert [r["event"] for r in records] == ["apikey_rotated", "operator_command"], loud.stderr
    assert secret not in loud.stderr
    by_env = subprocess.run(
        [*OPENXP, "tenant", "create", name + "-env", "--json"],
        env=server.env | {"OPENXP_LOG_LEVEL": "info"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=server.data_dir,
    )
    one_object(by_env)
    assert '"event":"operator_command"' in by_env.stderr, by_env.stderr
