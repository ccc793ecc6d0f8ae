"""The operator's command line, as CONTRACT.md fixes it: `--help` everywhere, `--json` prints one
JSON object and nothing else, `migrate` is idempotent, passwords never on the command line, list /
disable / rotate work, and bad input fails on stderr with nothing on stdout.

Commands run as real subprocesses (`python -m openxp.cli`): against the shared server's database,
or against a fresh database of the backend under test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main
from typer.testing import CliRunner

from openxp.cli import app
from openxp.store.migrate import current_head
from tests.support.flow import Browser, hidden_fields, query_of, token_post
from tests.support.server import OPENXP, ROOT, Server, backend, create_database, destroy_server

URL_SAFE = re.compile(r"[A-Za-z0-9_-]{16,}")
PASSWORD = "  a password with spaces, kept exactly  "


def command_paths() -> list[list[str]]:
    """Every command and group of the `openxp` CLI, as argument lists."""

    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        # Typer vendors its own click: a group is whatever has sub-commands.
        if isinstance(getattr(command, "commands", None), dict):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


def fresh_server() -> Server:
    """A Server handle on a new, empty database (no process started): for `cli` and `sql`."""
    data_dir = Path(tempfile.mkdtemp(prefix="openxp-cli-test-"))
    url = create_database(data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")}
    env.update({"OPENXP_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)})
    if backend() == "postgresql":
        env["OPENXP_DATABASE_URL"] = url
    # On SQLite the default, $OPENXP_DATA_DIR/openxp.sqlite3, is what `url` names.
    return Server("http://127.0.0.1:9", env, url, data_dir, data_dir / "unused.log")


@pytest.fixture()
def fresh() -> Iterator[Server]:
    srv = fresh_server()
    try:
        yield srv
    finally:
        destroy_server(srv)


def one_json_object(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"stdout must be one JSON object and nothing else: {result.stdout!r}"
    payload = json.loads(lines[0])
    assert isinstance(payload, dict)
    return payload


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode != 0, result.stdout
    assert result.stdout == "", f"nothing on stdout when a command fails: {result.stdout!r}"
    assert message in result.stderr, result.stderr


# ---- --help -----------------------------------------------------------------------------------


def test_every_subcommand_takes_help() -> None:
    """CONTRACT: every sub-command takes --help (exit 0, usage on stdout, nothing on stderr)."""
    paths = command_paths()
    names = {" ".join(p) for p in paths}
    for required in ("migrate", "serve", "tenant create", "admin create", "client create", "apikey create", "purge"):
        assert required in names
    for listed in (
        "tenant list",
        "admin list",
        "admin disable",
        "client list",
        "client disable",
        "client rotate-secret",
        "apikey list",
        "apikey disable",
        "apikey rotate",
    ):
        assert listed in names

    runner = CliRunner()
    help_text: dict[str, str] = {}
    for path in paths:
        # In-process: the same Typer app the console script runs, without 25 interpreter start-ups.
        result = runner.invoke(app, [*path, "--help"], prog_name="openxp")
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.stdout, (path, result.stdout)
        assert result.stderr == "", (path, result.stderr)
        help_text[" ".join(path)] = result.stdout
    real = subprocess.run([*OPENXP, "admin", "create", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert real.returncode == 0 and "Usage:" in real.stdout and real.stderr == ""
    for option in ("--host", "--port", "--workers"):
        assert option in help_text["serve"]
    assert "--password-stdin" in help_text["admin create"]


# ---- --json on a fresh database -----------------------------------------------------------------


def test_create_commands_print_exactly_one_json_object(fresh: Server) -> None:
    """CONTRACT: each create (and rotate) command with --json prints one JSON object on stdout and
    nothing else, even on a fresh database where the first command also applies the migrations;
    generated ids and secrets use the URL-safe alphabet (M-07)."""
    tenant = one_json_object(fresh.cli("tenant", "create", "acme", "--json", check=False))
    assert tenant == {"name": "acme"}
    if backend() == "sqlite":
        assert (fresh.data_dir / "openxp.sqlite3").is_file(), "the default database lives in OPENXP_DATA_DIR"

    admin = one_json_object(
        fresh.cli(
            "admin",
            "create",
            "--tenant",
            "acme",
            "--email",
            "Ops@Acme.example",
            "--password-stdin",
            "--role",
            "owner",
            "--json",
            stdin=PASSWORD + "\n",
            check=False,
        )
    )
    assert admin == {"email": "ops@acme.example", "tenant": "acme", "role": "owner"}

    client = one_json_object(
        fresh.cli(
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "HR sync",
            "--redirect-uri",
            "https://hr.acme.example/oauth/callback",
            "--redirect-uri",
            "http://127.0.0.1:8123/cb",
            "--json",
            check=False,
        )
    )
    assert client["tenant"] == "acme"
    assert client["redirect_uris"] == ["https://hr.acme.example/oauth/callback", "http://127.0.0.1:8123/cb"]
    assert URL_SAFE.fullmatch(client["client_id"]) and URL_SAFE.fullmatch(client["client_secret"])

    key = one_json_object(fresh.cli("apikey", "create", "--tenant", "acme", "--name", "Feed", "--json", check=False))
    assert key["tenant"] == "acme" and key["name"] == "Feed"
    assert URL_SAFE.fullmatch(key["key"]) and URL_SAFE.fullmatch(key["secret"])

    rotated = one_json_object(
        fresh.cli("client", "rotate-secret", "--tenant", "acme", client["client_id"], "--json", check=False)
    )
    assert rotated["client_id"] == client["client_id"]
    assert URL_SAFE.fullmatch(rotated["client_secret"]) and rotated["client_secret"] != client["client_secret"]
    new_key = one_json_object(fresh.cli("apikey", "rotate", "--tenant", "acme", key["key"], "--json", check=False))
    assert new_key["key"] == key["key"] and new_key["secret"] != key["secret"]

    for listing in (
        ["tenant", "list"],
        ["admin", "list", "--tenant", "acme"],
        ["client", "list", "--tenant", "acme"],
        ["apikey", "list", "--tenant", "acme"],
    ):
        one_json_object(fresh.cli(*listing, "--json", check=False))

    # M-03 at the CLI's door: the database holds digests, never the secrets it printed.
    stored = fresh.sql("SELECT secret_hash FROM clients")[0][0]
    assert rotated["client_secret"] not in stored and len(stored) == 64


def test_migrate_twice_is_idempotent(fresh: Server) -> None:
    """CONTRACT: `openxp migrate` applies the migrations once; running it again changes nothing."""
    first = fresh.cli("migrate", check=False)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    fresh.cli_json("tenant", "create", "kept")
    second = fresh.cli("migrate", check=False)
    assert second.returncode == 0, second.stderr
    assert fresh.sql("SELECT version_num FROM alembic_version") == [(current_head(),)]
    assert [row[0] for row in fresh.sql("SELECT name FROM tenants")] == ["kept"]


def test_concurrent_migrate_runs_are_serialised(fresh: Server) -> None:
    """Two `openxp migrate` at once on an empty database (two hosts starting together) both
    succeed and leave one schema (PostgreSQL: advisory lock; SQLite: the write lock)."""
    procs = [
        subprocess.Popen(
            [*OPENXP, "migrate"],
            env=fresh.env,
            cwd=fresh.data_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, err
    assert fresh.sql("SELECT version_num FROM alembic_version") == [(current_head(),)]


# ---- passwords ----------------------------------------------------------------------------------


def test_admin_password_is_never_taken_from_the_command_line(server: Server) -> None:
    """CONTRACT / M-03: there is no option that takes a password; trying one is a usage error and
    creates nothing."""
    email = f"argv-{secrets.token_hex(4)}@example.com"
    for attempt in (
        ["--password", "a-long-enough-password"],
        ["--password=a-long-enough-password"],
        ["a-long-enough-password"],
    ):
        result = server.cli("admin", "create", "--tenant", "a", "--email", email, *attempt, "--json", check=False)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert "a-long-enough-password" not in result.stdout
    listed = server.cli_json("admin", "list", "--tenant", "a")
    assert email not in [a["email"] for a in listed["admins"]]


# ---- list, disable, enable, rotate against the running server ------------------------------------


@pytest.fixture(scope="module")
def tenant(server: Server) -> dict[str, Any]:
    """A tenant of its own, so that disabling and rotating here never disturbs other tests."""
    name = "cli-" + secrets.token_hex(4)
    server.cli_json("tenant", "create", name)
    admin = server.cli_json(
        "admin",
        "create",
        "--tenant",
        name,
        "--email",
        "owner@cli.example",
        "--password-stdin",
        "--role",
        "owner",
        stdin=PASSWORD + "\n",
    )
    client = server.cli_json(
        "client", "create", "--tenant", name, "--name", "CLI app", "--redirect-uri", "https://cli.example/cb"
    )
    key = server.cli_json("apikey", "create", "--tenant", name, "--name", "CLI key")
    return {"name": name, "admin": admin, "client": client, "key": key}


def _authorize_params(client: dict[str, Any]) -> dict[str, str]:
    return {"response_type": "code", "client_id": client["client_id"], "redirect_uri": client["redirect_uris"][0]}


def login(server: Server, client: dict[str, Any], email: str, password: str) -> httpx.Response:
    """Open the authorize URL and post the login form; 303 to the consent page means signed in."""
    browser = Browser.open(server)
    try:
        page = browser.authorize(_authorize_params(client))
        assert page.status_code == 200, page.text
        response = browser.http.post(
            "/auth/login", data={**hidden_fields(page.text), "email": email, "password": password}
        )
        if response.status_code == 303:
            consent = browser.http.get(response.headers["location"])
            decided = browser.decide(consent)
            response.extensions["code"] = query_of(decided.headers["location"])["code"][0]
        return response
    finally:
        browser.close()


def token_call(server: Server, client_id: str, secret: str, **body: str) -> httpx.Response:
    return token_post(server, auth=(client_id, secret), data=body)


def test_B14_password_from_stdin_is_kept_exactly(server: Server, tenant: dict[str, Any]) -> None:
    """B-14: the password read by --password-stdin loses only its line ending: leading and trailing
    spaces count, and the trimmed password fails."""
    client = tenant["client"]
    assert login(server, client, "owner@cli.example", PASSWORD).status_code == 303
    trimmed = login(server, client, "owner@cli.example", PASSWORD.strip())
    assert trimmed.status_code == 200 and "Incorrect email or password." in trimmed.text


def test_B16_admin_list_disable_enable(server: Server, tenant: dict[str, Any]) -> None:
    """B-16: `admin disable` stops the admin signing in; `admin list` shows it; `enable` undoes it."""
    name, client = tenant["name"], tenant["client"]
    server.cli_json(
        "admin", "create", "--tenant", name, "--email", "temp@cli.example", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert login(server, client, "temp@cli.example", PASSWORD).status_code == 303
    disabled = server.cli("admin", "disable", "--tenant", name, "--email", "temp@cli.example")
    assert "disabled" in disabled.stdout
    rows = {a["email"]: a for a in server.cli_json("admin", "list", "--tenant", name)["admins"]}
    assert rows["temp@cli.example"] == {"email": "temp@cli.example", "role": "admin", "disabled": True}
    refused_login = login(server, client, "temp@cli.example", PASSWORD)
    assert refused_login.status_code == 200 and "Incorrect email or password." in refused_login.text
    server.cli("admin", "enable", "--tenant", name, "--email", "temp@cli.example")
    assert login(server, client, "temp@cli.example", PASSWORD).status_code == 303


def test_Q01_Q03_client_list_rotate_secret_revoke_tokens_disable(server: Server, tenant: dict[str, Any]) -> None:
    """Q-01: rotate-secret gives a new secret that works at once and kills the old one. Q-03: with
    --revoke-tokens the client's tokens die too. A-03: a disabled client cannot authenticate or
    start a flow; enable brings it back. `client list` never shows a secret (L-11)."""
    name, client = tenant["name"], tenant["client"]
    cid, old_secret = client["client_id"], client["client_secret"]
    listed = server.cli("client", "list", "--tenant", name, "--json")
    assert old_secret not in listed.stdout and "secret" not in listed.stdout
    (row,) = [c for c in json.loads(listed.stdout)["clients"] if c["client_id"] == cid]
    assert row["redirect_uris"] == ["https://cli.example/cb"] and row["disabled"] is False

    code = login(server, client, "owner@cli.example", PASSWORD).extensions["code"]
    issued = token_call(
        server, cid, old_secret, grant_type="authorization_code", code=code, redirect_uri="https://cli.example/cb"
    )
    assert issued.status_code == 200, issued.text
    refresh_token = issued.json()["refresh_token"]

    rotated = server.cli_json("client", "rotate-secret", "--tenant", name, cid, "--revoke-tokens")
    new_secret = rotated["client_secret"]
    assert new_secret != old_secret
    old = token_call(server, cid, old_secret, grant_type="refresh_token", refresh_token=refresh_token)
    assert old.status_code == 401 and old.json()["error"] == "invalid_client"
    new = token_call(server, cid, new_secret, grant_type="refresh_token", refresh_token=refresh_token)
    assert new.status_code == 400 and new.json()["error"] == "invalid_grant", "the secret works, the token is revoked"
    client["client_secret"] = new_secret

    server.cli("client", "disable", "--tenant", name, cid)
    assert json.loads(server.cli("client", "list", "--tenant", name, "--json").stdout)["clients"][0]["disabled"]
    blocked = token_call(server, cid, new_secret, grant_type="refresh_token", refresh_token=refresh_token)
    assert blocked.status_code == 401 and blocked.json()["error"] == "invalid_client"
    page = httpx.get(f"{server.base_url}/auth/oauth/authorize", params=_authorize_params(client), timeout=30)
    assert page.status_code == 400 and "location" not in page.headers
    server.cli("client", "enable", "--tenant", name, cid)
    back = token_call(server, cid, new_secret, grant_type="refresh_token", refresh_token=refresh_token)
    assert back.status_code == 400 and back.json()["error"] == "invalid_grant"


def test_apikey_list_rotate_disable(server: Server, tenant: dict[str, Any]) -> None:
    """API keys: list shows them without secrets; rotate prints a new secret; disable shows in list."""
    name, key = tenant["name"], tenant["key"]
    listed = server.cli("apikey", "list", "--tenant", name, "--json")
    assert key["secret"] not in listed.stdout
    (row,) = json.loads(listed.stdout)["keys"]
    assert row["key"] == key["key"] and row["disabled"] is False and row["name"] == "CLI key"
    rotated = server.cli_json("apikey", "rotate", "--tenant", name, key["key"])
    assert rotated["secret"] != key["secret"]
    server.cli("apikey", "disable", "--tenant", name, key["key"])
    (row,) = server.cli_json("apikey", "list", "--tenant", name)["keys"]
    assert row["disabled"] is True
    tenants = [t["name"] for t in server.cli_json("tenant", "list")["tenants"]]
    assert name in tenants and "a" in tenants


# ---- bad input ----------------------------------------------------------------------------------

BAD_INPUT = [
    pytest.param(["tenant", "create", "Bad Name"], None, "tenant names are", id="bad-tenant-name"),
    pytest.param(["tenant", "create", "a"], None, "already exists", id="duplicate-tenant"),
    pytest.param(
        ["client", "create", "--tenant", "nope", "--name", "Bad 1", "--redirect-uri", "https://x.test/cb"],
        None,
        "no tenant named 'nope'",
        id="unknown-tenant-client",
    ),
    pytest.param(
        ["admin", "create", "--tenant", "nope", "--email", "x@example.com", "--password-stdin"],
        PASSWORD + "\n",
        "no tenant named 'nope'",
        id="unknown-tenant-admin",
    ),
    pytest.param(["apikey", "create", "--tenant", "nope"], None, "no tenant named 'nope'", id="unknown-tenant-key"),
    pytest.param(
        ["client", "create", "--tenant", "a", "--name", "Bad 2", "--redirect-uri", "https://app.a.test/cb#f"],
        None,
        "must not contain a fragment",
        id="A-10-fragment",
    ),
    pytest.param(
        ["client", "create", "--tenant", "a", "--name", "Bad 3", "--redirect-uri", "javascript:alert(1)"],
        None,
        "must use https",
        id="A-11-javascript",
    ),
    pytest.param(
        ["client", "create", "--tenant", "a", "--name", "Bad 4", "--redirect-uri", "JaVaScRiPt:alert(1)"],
        None,
        "must use https",
        id="A-11-javascript-mixed-case",
    ),
    pytest.param(
        ["client", "create", "--tenant", "a", "--name", "Bad 5", "--redirect-uri", "data:text/html,hi"],
        None,
        "must use https",
        id="A-11-data",
    ),
    pytest.param(
        ["client", "create", "--tenant", "a", "--name", "Bad 6", "--redirect-uri", "http://app.a.test/cb"],
        None,
        "plain http is allowed only for loopback hosts",
        id="A-11-http-non-loopback",
    ),
    pytest.param(
        ["client", "create", "--tenant", "a", "--name", "Bad 7", "--redirect-uri", "https://a@evil.test/cb"],
        None,
        "no user-info",
        id="user-info",
    ),
    pytest.param(
        [
            "client",
            "create",
            "--tenant",
            "a",
            "--name",
            "Bad 8",
            "--redirect-uri",
            "https://x.test/cb",
            "--scope",
            "root",
        ],
        None,
        "unknown scope 'root'",
        id="unknown-scope",
    ),
    pytest.param(
        ["admin", "create", "--tenant", "a", "--email", "weak@example.com", "--password-stdin"],
        "short\n",
        "passwords need at least 12 characters",
        id="weak-password",
    ),
    pytest.param(
        ["admin", "create", "--tenant", "a", "--email", "role@example.com", "--password-stdin", "--role", "root"],
        PASSWORD + "\n",
        "unknown role 'root'",
        id="unknown-role",
    ),
    pytest.param(["client", "disable", "--tenant", "b", "CLIENT_C1"], None, "no client", id="other-tenants-client"),
]


@pytest.mark.parametrize(("args", "stdin", "message"), BAD_INPUT)
def test_bad_input_fails_on_stderr_with_nothing_on_stdout(
    server: Server, args: list[str], stdin: str | None, message: str
) -> None:
    """A-10, A-11 (registration side) and other bad input: non-zero exit, a clear message on
    stderr, nothing on stdout, nothing created."""
    args = [server.clients["c1"]["client_id"] if a == "CLIENT_C1" else a for a in args]
    json_flag = ["--json"] if args[1] in {"create"} else []
    refused(server.cli(*args, *json_flag, stdin=stdin, check=False), message)


def test_refused_commands_created_nothing(server: Server) -> None:
    """After the refusals above (A-10, A-11): no client or admin they named exists."""
    clients = server.cli_json("client", "list", "--tenant", "a")["clients"]
    assert not [c for c in clients if c["name"].startswith("Bad ")]
    admins = [a["email"] for a in server.cli_json("admin", "list", "--tenant", "a")["admins"]]
    assert "weak@example.com" not in admins and "role@example.com" not in admins


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9/loop", "http://localhost:8080/cb", "http://[::1]/cb"])
def test_A11_http_is_allowed_for_loopback(server: Server, uri: str) -> None:
    """A-11: plain http is refused except on loopback hosts, where a native or local app listens."""
    created = server.cli_json("client", "create", "--tenant", "b", "--name", "Loopback app", "--redirect-uri", uri)
    assert created["redirect_uris"] == [uri]


def test_fresh_data_dir_is_created(tmp_path: Path) -> None:
    """A command on a not-yet-existing OPENXP_DATA_DIR creates it and its SQLite database."""
    if backend() != "sqlite":
        pytest.skip("the data directory's database is SQLite's")
    data_dir = tmp_path / "new" / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")}
    env.update({"OPENXP_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)})
    result = subprocess.run(
        [*OPENXP, "tenant", "list", "--json"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert one_json_object(result) == {"tenants": []}
    assert (data_dir / "openxp.sqlite3").is_file()
    shutil.rmtree(data_dir)


def test_operating_guide_covers_every_command_and_variable() -> None:
    """docs/operating.md names every `openxp` command and every OPENXP_* variable openxp reads."""
    guide = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    leaves = [p for p in command_paths() if p and " ".join(p) not in {"tenant", "admin", "client", "apikey"}]
    missing = [" ".join(p) for p in leaves if f"openxp {' '.join(p)}" not in guide]
    assert not missing, f"commands missing from docs/operating.md: {missing}"
    config_source = (ROOT / "openxp" / "config.py").read_text(encoding="utf-8")
    variables = set(re.findall(r'"(OPENXP_[A-Z_]+)"', config_source))
    assert len(variables) >= 20
    undocumented = sorted(v for v in variables if f"| `{v}` |" not in guide)
    assert not undocumented, f"variables missing from the table in docs/operating.md: {undocumented}"
