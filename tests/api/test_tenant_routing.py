"""The older ClearXP style: the tenant named by the host's first label under
OPENXP_TENANT_DOMAIN. A credential's own tenant always wins (I-01, I-02)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.flow import tokens
from tests.support.server import Server, destroy_server, make_server


@pytest.fixture(scope="module")
def hosted() -> Iterator[Server]:
    srv = make_server(extra_env={"OPENXP_TENANT_DOMAIN": "example.test"})
    try:
        yield srv
    finally:
        destroy_server(srv)


def post_import(server: Server, token: str, host: str, tenant: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", "host": host}
    if tenant is not None:
        headers["X-CXP-Tenant"] = tenant
    return httpx.post(f"{server.base_url}/api/import/users", json={"users": []}, headers=headers, timeout=30)


def test_host_label_names_the_tenant(hosted: Server) -> None:
    """I-02: with no X-CXP-Tenant, `a.example.test` names tenant a; a tenant-a token works there."""
    token = tokens(hosted)["access_token"]
    response = post_import(hosted, token, "a.example.test")
    assert response.status_code == 200, response.text
    assert post_import(hosted, token, "A.Example.Test:443").status_code == 200  # host names are case-insensitive


def test_I01_host_of_another_tenant_is_refused(hosted: Server) -> None:
    """I-01: a tenant-a token on `b.example.test` is 403 tenant_mismatch, never tenant b's data."""
    token = tokens(hosted)["access_token"]
    response = post_import(hosted, token, "b.example.test")
    assert response.status_code == 403
    assert response.json()["error"] == "tenant_mismatch"


def test_I02_host_outside_the_domain_names_no_tenant(hosted: Server) -> None:
    """I-02: a host outside OPENXP_TENANT_DOMAIN (or the bare domain) names no tenant: 400, never a
    default tenant."""
    token = tokens(hosted)["access_token"]
    for host in ("a.example.test.evil.test", "example.test", "a.b.example.test", "127.0.0.1"):
        response = post_import(hosted, token, host)
        assert response.status_code == 400, (host, response.text)
        assert response.json()["error"] == "tenant_required"


def test_header_and_host_must_both_be_the_credentials_tenant(hosted: Server) -> None:
    """I-03: X-CXP-Tenant is read first; naming another tenant there is refused even on a's host."""
    token = tokens(hosted)["access_token"]
    assert post_import(hosted, token, "a.example.test", tenant="b").status_code == 403
    assert post_import(hosted, token, "b.example.test", tenant="a").status_code == 200
