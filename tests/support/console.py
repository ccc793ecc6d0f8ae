"""Signing in to the tenant console over plain HTTP, as a form-posting browser would."""

from __future__ import annotations

import re

import httpx

from tests.support.server import PASSWORD, Server

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


def sign_in(server: Server, tenant: str, admin: str, password: str | None = None) -> tuple[httpx.Client, str]:
    """A cookie-keeping client signed in to ``/console/{tenant}/`` and the session's CSRF token."""
    http = httpx.Client(base_url=server.base_url, follow_redirects=False, timeout=30)
    page = http.get(f"/console/{tenant}/")
    assert page.status_code == 200, page.text
    creds = server.admins[admin]
    done = http.post(
        f"/console/{tenant}/login",
        data={
            "csrf_token": csrf_of(page.text),
            "email": creds["email"],
            "password": password if password is not None else creds["password"],
        },
    )
    assert done.status_code == 303, done.text
    landing = http.get(done.headers["location"])
    assert landing.status_code == 200, landing.text
    return http, csrf_of(landing.text)


def add_admin(server: Server, label: str, email: str, role: str) -> None:
    """A tenant-a account made by ``openxp admin create``, as ``server.admins[label]``."""
    created = server.cli_json(
        "admin", "create", "--tenant", "a", "--email", email, "--password-stdin", "--role", role,
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    server.admins[label] = created | {"password": PASSWORD}
