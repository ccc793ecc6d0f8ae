"""Every test talks to a real ``openxp serve`` (2 workers) over HTTP, on the
database named by OPENXP_TEST_DB (sqlite or postgresql)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.flow import Browser
from tests.support.server import Server, backend, destroy_server, make_server


def pytest_report_header(config: pytest.Config) -> str:
    return f"openxp test database: {backend()}"


def pytest_sessionstart(session: pytest.Session) -> None:
    if backend() == "postgresql":
        import asyncio

        from tests.support.server import _pg_admin

        try:
            asyncio.run(_pg_admin("SELECT 1"))
        except Exception as exc:
            if os.environ.get("CI") == "true":
                raise pytest.UsageError(f"CI=true and PostgreSQL is not reachable: {exc}") from exc
            pytest.exit(f"PostgreSQL is not reachable ({exc}); skipping the PostgreSQL run", returncode=0)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    srv = make_server()
    try:
        yield srv
    finally:
        destroy_server(srv)


@pytest.fixture()
def browser(server: Server) -> Iterator[Browser]:
    b = Browser.open(server)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def admin_browser(server: Server) -> Iterator[Browser]:
    """One browser per module that signs in as adminA on first use and is reused for every
    approval the module needs (each sign-in costs an argon2 verification)."""
    browser = Browser.open(server)
    yield browser
    browser.close()
