"""A new user's first run, through the real CLI and HTTP: `openxp quickstart` / `serve` on another
port than 8000, on a port that is taken, a second quickstart on a database that already has the
demo, and which database a command uses (`--help`, `openxp status`, the notice when a command
creates a new database file).

Each command runs as a real subprocess (`python -m openxp.cli`) with no OPENXP_PUBLIC_URL, in a
working directory of its own, on a new database of the backend under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openxp.store.migrate import current_head
from tests.support.flow import hidden_fields
from tests.support.server import OPENXP, ROOT, Server, backend, create_database, drop_database, free_port


@pytest.fixture()
def first_run(tmp_path: Path) -> Iterator[Server]:
    """A handle on a new database and data directory, and an environment without OPENXP_PUBLIC_URL."""
    data_dir = tmp_path / "data"
    url = create_database(data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")}
    env.update({"OPENXP_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)})
    if backend() == "postgresql":
        env["OPENXP_DATABASE_URL"] = url
    work = tmp_path / "cwd"
    work.mkdir()
    srv = Server("http://127.0.0.1:9", env, url, work, tmp_path / "server.log")
    try:
        yield srv
    finally:
        drop_database(url)


def run(srv: Server, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OPENXP, *args], env=env or srv.env, capture_output=True, text=True, timeout=120, cwd=srv.data_dir
    )


@contextlib.contextmanager
def serving(srv: Server, *args: str, port: int) -> Iterator[tuple[Path, Path]]:
    """Run `openxp ARGS` until /healthz on ``port`` answers; yields the stdout and stderr files."""
    out, err = srv.data_dir / f"out-{port}.txt", srv.data_dir / f"err-{port}.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [*OPENXP, *args], env=srv.env, cwd=srv.data_dir, stdout=stdout, stderr=stderr, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"openxp {' '.join(args)} exited: {out.read_text()}\n{err.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)
        yield out, err
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def printed_credentials(text: str) -> dict[str, str]:
    """The quickstart's 'Label  value' lines, e.g. {'Client ID': '...'}."""
    return dict(re.findall(r"^ {2}([A-Z][A-Za-z ]+?) {2,}(\S+)$", text, re.MULTILINE))


def table_count(srv: Server) -> int:
    """How many tables the PostgreSQL database has."""
    return int(srv.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")[0][0])


# ---- the public URL follows --port ----------------------------------------------------------------


def test_quickstart_on_another_port_uses_it_everywhere(first_run: Server) -> None:
    """CONTRACT (port and public URL): without OPENXP_PUBLIC_URL, `quickstart --port P` prints URLs on
    P, registers the demo redirect URI on P and serves issuer http://127.0.0.1:P; the printed URL then
    works in a browser (whose Origin is that address: B-01 does not refuse it), and the demo callback
    page shows the demo client's real id and redirect URI, never its secret (L-11). A second
    quickstart on that database names the commands that give new secrets, and the database."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(first_run, "quickstart", "--port", str(port), port=port) as (out, _err):
        printed = out.read_text()
        urls = re.findall(r"https?://\S+", printed)
        assert urls, printed
        assert all(u.startswith(f"{base}/") for u in urls), urls
        creds = printed_credentials(printed)
        assert creds["Redirect URI"] == f"{base}/demo/callback"
        meta = httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=30).json()
        assert meta["issuer"] == base

        (authorize_url,) = [u for u in urls if "/auth/oauth/authorize?" in u]
        with httpx.Client(timeout=30) as browser:
            page = browser.get(authorize_url)
            assert page.status_code == 200, page.text
            signed_in = browser.post(
                f"{base}/auth/login",
                data={**hidden_fields(page.text), "email": creds["Admin email"], "password": creds["Admin password"]},
                headers={"Origin": base},
            )
            assert signed_in.status_code == 303, signed_in.text
            consent = browser.get(f"{base}{signed_in.headers['location']}")
            decided = browser.post(
                f"{base}/auth/oauth/consent",
                data={**hidden_fields(consent.text), "decision": "allow"},
                headers={"Origin": base},
            )
            assert decided.status_code == 303, decided.text
            callback = browser.get(decided.headers["location"])
        assert callback.status_code == 200 and callback.url.path == "/demo/callback"
        assert f'"client_id": "{creds["Client ID"]}"' in callback.text, callback.text
        assert f'"redirect_uri": "{base}/demo/callback"' in callback.text
        assert creds["Client secret"] not in callback.text
        assert "YOUR_CLIENT_ID" not in callback.text

    again_port = free_port()
    with serving(first_run, "quickstart", "--port", str(again_port), port=again_port) as (out, err):
        told = err.read_text()
        assert out.read_text() == "", "no credentials are printed again"
        for command in (
            f"openxp client rotate-secret --tenant demo {creds['Client ID']}",
            f"openxp apikey rotate --tenant demo {creds['API key']}",
            "openxp admin set-password --tenant demo --email admin@demo.example",
        ):
            assert command in told, told
        if backend() == "sqlite":
            assert str(first_run.env["OPENXP_DATA_DIR"]) in told, told


def test_serve_on_another_port_uses_it_as_issuer(first_run: Server) -> None:
    """CONTRACT (port and public URL): `openxp serve --port P --workers 2` without OPENXP_PUBLIC_URL
    publishes http://127.0.0.1:P as its issuer, in every worker."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(first_run, "serve", "--port", str(port), "--workers", "2", port=port):
        for _ in range(6):
            meta = httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=30).json()
            assert meta["issuer"] == base
            assert meta["token_endpoint"] == f"{base}/auth/oauth/token"


# ---- a busy port ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["quickstart", "serve"])
def test_busy_port_is_refused_before_anything_is_created(first_run: Server, command: str) -> None:
    """On a port another program listens on, quickstart and serve say so and exit non-zero before
    they create anything: no database (or no table in it), and no credentials printed."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(first_run, command, "--port", str(port))
    assert result.returncode != 0
    assert result.stdout == "", result.stdout
    assert f"port {port}" in result.stderr and "in use" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    if backend() == "sqlite":
        assert not Path(first_run.database_url.removeprefix("sqlite:///")).exists()
    else:
        assert table_count(first_run) == 0


# ---- which database ---------------------------------------------------------------------------------


def test_help_says_which_database_commands_use() -> None:
    """`openxp --help` explains the resolution: OPENXP_DATABASE_URL, else a SQLite file in
    OPENXP_DATA_DIR, which defaults to ./var of the current directory."""
    result = subprocess.run([*OPENXP, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for needed in ("OPENXP_DATABASE_URL", "OPENXP_DATA_DIR", "./var", "current directory", "openxp status"):
        assert needed in text, (needed, result.stdout)


def status(srv: Server, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run(srv, "status", "--json", env=env)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    payload = json.loads(line)
    assert isinstance(payload, dict)
    return payload


def test_status_names_the_database_and_what_is_in_it(first_run: Server) -> None:
    """`openxp status --json`: database URL, schema revision, tenants, public URL; on a database that
    does not exist yet it creates nothing. On PostgreSQL the URL carries a password, shown masked."""
    env = dict(first_run.env)
    if backend() == "postgresql":
        env["OPENXP_DATABASE_URL"] = first_run.database_url.replace("://postgres@", "://postgres:s3cret-pw@")
    before = status(first_run, env)
    assert before["schema_revision"] is None and before["tenants"] == 0
    assert before["public_url"] == "http://127.0.0.1:8000"
    if backend() == "sqlite":
        path = Path(first_run.database_url.removeprefix("sqlite:///"))
        assert before["database_url"] == f"sqlite:///{path}"
        assert before["database_exists"] is False and not path.exists(), "status creates nothing"
    else:
        assert "s3cret-pw" not in json.dumps(before)
        assert before["database_url"] == first_run.database_url.replace("://postgres@", "://postgres:***@")
    created = run(first_run, "tenant", "create", "acme", "--json", env=env)
    assert created.returncode == 0, created.stderr
    after = status(first_run, env | {"OPENXP_PUBLIC_URL": "https://auth.example.com"})
    assert after["schema_revision"] == current_head() == after["schema_head"]
    assert after["tenants"] == 1 and after["public_url"] == "https://auth.example.com"
    assert after["database_exists"] is True
    text = run(first_run, "status", env=env)
    assert text.returncode == 0 and before["database_url"] in text.stdout and current_head() in text.stdout


def test_status_masks_the_password_of_an_unreachable_database(first_run: Server) -> None:
    """A database that cannot be reached: status says which one (password masked) and exits non-zero."""
    env = first_run.env | {"OPENXP_DATABASE_URL": "postgresql://openxp:s3cret-pw@127.0.0.1:9/nothing"}
    result = run(first_run, "status", "--json", env=env)
    assert result.returncode != 0 and result.stdout == ""
    assert "postgresql://openxp:***@127.0.0.1:9/nothing" in result.stderr, result.stderr
    assert "s3cret-pw" not in result.stderr and "Traceback" not in result.stderr


def test_a_command_that_creates_a_database_file_says_so(tmp_path: Path) -> None:
    """Run from another folder without OPENXP_DATA_DIR, a command uses ./var there: the first run
    says on stderr, in one line, that it created a new database and where; later runs say nothing."""
    if backend() != "sqlite":
        pytest.skip("database files are SQLite's")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENXP_")} | {"PYTHONPATH": str(ROOT)}
    expected = tmp_path / "var" / "openxp.sqlite3"
    first = subprocess.run(
        [*OPENXP, "tenant", "list", "--json"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert first.returncode == 0 and json.loads(first.stdout) == {"tenants": []}
    lines = first.stderr.splitlines()
    assert len(lines) == 1 and str(expected) in lines[0] and "new database" in lines[0], first.stderr
    assert expected.is_file()
    second = subprocess.run(
        [*OPENXP, "tenant", "list", "--json"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert second.returncode == 0 and second.stderr == ""


# ---- the README's commands, as written ------------------------------------------------------------


def test_readme_provisioning_lines_run_as_written(first_run: Server) -> None:
    """The README's provisioning block runs as printed in a checkout set up by ./scripts/quickstart,
    in a shell whose PATH does not have openxp (a new user's terminal)."""
    if not (ROOT / ".venv" / "bin" / "openxp").is_file():
        pytest.skip("this checkout has no .venv (./scripts/quickstart makes it)")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Provisioning", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    venv_bin = str(ROOT / ".venv" / "bin")
    path = ":".join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(":") if p and p != venv_bin)
    env = {k: v for k, v in first_run.env.items() if k not in {"VIRTUAL_ENV", "PATH"}}
    env |= {"PATH": path, "PASSWORD": "a first password for ops"}
    assert subprocess.run(["bash", "-c", "command -v openxp"], env=env, capture_output=True).returncode != 0
    result = subprocess.run(["bash", "-e", "-c", block], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [p.get("tenant", p.get("name")) for p in printed] == ["acme", "acme", "acme", "acme"], result.stdout
