"""``GET /openapi.json``, the ``/docs`` links, and /api's answers for what no route takes.

- The served document is valid OpenAPI 3.1 (openapi-spec-validator) and names this server.
- The document and the app's route table agree both ways under /auth/oauth, /api and /xapi: a
  route missing from the document, or a documented operation that is not routed, fails here.
- RFC 8414 ``service_documentation`` and the Basic ``Deprecation`` ``Link`` (H-10) lead to pages
  that exist, also from a non-editable install (docs are package data).
- An unknown /api path and a wrong method answer ClearXP's error shape (404 / 405 + Allow).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.routing import Mount, Route

from openxp import app as openxp_app
from openxp.api.unrouted import unrouted
from openxp.openapi import document
from tests.support.flow import exchange, get_code
from tests.support.server import ROOT, Server, create_database, drop_database, free_port

SURFACES = ("/auth/oauth/", "/api/", "/xapi/")
METHODS = {"get", "put", "post", "delete", "patch"}
CLEARXP_ERROR_KEYS = {"code", "name", "error", "message", "body"}


def _routed(routes: list[Any], prefix: str = "") -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            inner = route.app
            while not hasattr(inner, "routes"):
                inner = inner.app  # middleware around the mounted router (xapi's CORS)
            found |= _routed(inner.routes, prefix + route.path)
        elif isinstance(route, Route) and route.endpoint is not unrouted:
            # HEAD comes with every GET; the catch-all only turns misses into errors.
            found |= {(m.lower(), prefix + route.path) for m in route.methods or () if m != "HEAD"}
    return found


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, path) for path, item in doc["paths"].items() for m in item if m in METHODS}


def _on_surfaces(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(m, p) for m, p in pairs if p.startswith(SURFACES)}


def test_served_document_is_valid_openapi_31(server: Server) -> None:
    response = httpx.get(f"{server.base_url}/openapi.json", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": server.base_url}]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    assert schemes["apiKey"]["scheme"] == "basic"
    assert doc["components"]["parameters"]["Tenant"]["name"] == "X-CXP-Tenant"
    # Each surface documents its own error shape.
    token_400 = doc["paths"]["/auth/oauth/token"]["post"]["responses"]["400"]
    assert token_400["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OAuthError"}
    import_415 = doc["paths"]["/api/import/users"]["post"]["responses"]["415"]
    assert import_415["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ClearXPError"}
    statements_400 = doc["paths"]["/xapi/statements"]["post"]["responses"]["400"]
    assert statements_400["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/XapiError"}
    assert set(doc["paths"]["/api/import/users"]["post"]["requestBody"]["content"]) == {"application/json", "text/csv"}
    token_body = doc["paths"]["/auth/oauth/token"]["post"]["requestBody"]["content"]
    assert set(token_body) == {"application/json", "application/x-www-form-urlencoded"}


def test_every_route_is_documented_and_every_documented_operation_is_routed() -> None:
    routed = _on_surfaces(_routed(openxp_app._routes()))
    documented = _on_surfaces(_documented(document("http://127.0.0.1")))
    assert routed, "no routes found: the route walk is broken"
    assert routed - documented == set(), "routes missing from openxp/openapi"
    assert documented - routed == set(), "documented but not routed"


def test_documented_operations_answer_over_http(server: Server) -> None:
    """Without credentials every documented operation is found (never the router's 404 or 405)."""
    doc = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        for method, path in sorted(_documented(doc)):
            response = http.request(method.upper(), re.sub(r"\{[^}]+\}", "x", path))
            assert response.status_code not in (404, 405), (method, path, response.status_code, response.text)


def test_unknown_api_path_is_a_clearxp_404(server: Server) -> None:
    for path in ("/api/nope", "/api/import", "/api/actors/agents/extra", "/api/", "/api"):
        response = httpx.get(f"{server.base_url}{path}", timeout=30)
        assert response.status_code == 404, (path, response.text)
        body = response.json()
        assert set(body) == CLEARXP_ERROR_KEYS, body
        assert body["code"] == 404 and body["name"] == "Not Found" and body["error"] == "not_found"
    # A trailing slash is still redirected to the route, as everywhere else.
    redirected = httpx.get(f"{server.base_url}/api/actors/", timeout=30)
    assert redirected.status_code == 307 and redirected.headers["location"] == f"{server.base_url}/api/actors"


def test_wrong_method_on_api_is_a_clearxp_405_with_allow(server: Server) -> None:
    for method, path, allow in (
        ("DELETE", "/api/actors", "GET, HEAD"),
        ("GET", "/api/import/users", "POST, PUT"),
        ("POST", "/api/auth/basic/someone", "DELETE"),
    ):
        response = httpx.request(method, f"{server.base_url}{path}", timeout=30)
        assert response.status_code == 405, (method, path, response.text)
        assert response.headers["allow"] == allow
        body = response.json()
        assert set(body) == CLEARXP_ERROR_KEYS, body
        assert body["code"] == 405 and body["error"] == "method_not_allowed"


def test_statements_refuse_other_content_types_with_400(server: Server) -> None:
    """/xapi keeps 400 for an unsupported Content-Type (xAPI Communication 3.2's list has no 415;
    ADL XAPI-00127 expects 400), with the stable code the document names."""
    key = server.apikeys["KA"]
    auth = base64.b64encode(f"{key['key']}:{key['secret']}".encode()).decode()
    response = httpx.post(
        f"{server.base_url}/xapi/statements",
        content=b"{}",
        headers={"Authorization": f"Basic {auth}", "X-Experience-API-Version": "1.0.3", "Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_content_type"
    description = document(server.base_url)["paths"]["/xapi/statements"]["post"]["description"]
    assert "400" in description and "unsupported_content_type" in description


# -- /docs, from this checkout and from a non-editable install ---------------------------------


def _follow_doc_links(base_url: str, apikey: dict[str, str]) -> None:
    metadata = httpx.get(f"{base_url}/.well-known/oauth-authorization-server", timeout=30).json()
    index = httpx.get(metadata["service_documentation"], timeout=30)
    assert index.status_code == 200, index.text
    assert index.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in index.headers["content-security-policy"]
    links = re.findall(r'href="(/[^"]*)"', index.text)
    assert "/openapi.json" in links and "/docs/integrating.md" in links
    for link in links:
        assert httpx.get(base_url + link, timeout=30).status_code == 200, link

    auth = base64.b64encode(f"{apikey['key']}:{apikey['secret']}".encode()).decode()
    deprecated = httpx.get(f"{base_url}/api/auth/me", headers={"Authorization": f"Basic {auth}"}, timeout=30)
    assert deprecated.status_code == 200, deprecated.text
    target = re.fullmatch(r'<([^>]+)>; rel="deprecation"; type="text/markdown"', deprecated.headers["link"])
    assert target is not None, deprecated.headers["link"]
    guide = httpx.get(urljoin(base_url + "/", target.group(1)), timeout=30)
    assert guide.status_code == 200
    assert guide.headers["content-type"].startswith("text/markdown")
    assert guide.text == (ROOT / "docs" / "integrating.md").read_text(encoding="utf-8")


def test_documentation_links_resolve(server: Server) -> None:
    """H-10's Link and RFC 8414 service_documentation both lead to real pages."""
    _follow_doc_links(server.base_url, server.apikeys["KA"])
    assert httpx.get(f"{server.base_url}/docs/decisions.md", timeout=30).status_code == 404
    assert httpx.get(f"{server.base_url}/docs/..%2Fpyproject.toml", timeout=30).status_code == 404


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """openxp as ``pip install .`` puts it: a wheel built from a copy of this checkout (offline)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "src"
    shutil.copytree(
        ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(".git", ".venv", "var", "*.egg-info", "build")
    )
    target = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            ".",
        ],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    yield target


def test_documentation_links_resolve_from_a_non_editable_install(installed: Path) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="openxp-installed-"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    database_url = create_database(data_dir)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(installed),  # only the installed copy, never this checkout
        "OPENXP_DATA_DIR": str(data_dir),
        "OPENXP_DATABASE_URL": database_url,
        "OPENXP_PUBLIC_URL": base_url,
    }
    cli = [sys.executable, "-m", "openxp.cli"]
    process = None
    try:
        where = subprocess.run(
            [sys.executable, "-c", "import openxp.web.docs as d; print(d.__file__)"],
            env=env, cwd=data_dir, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert where.stdout.strip().startswith(str(installed)), where.stdout
        assert not (installed / "openxp" / "web" / "guides" / "integrating.md").is_symlink()

        def run(*args: str) -> str:
            return subprocess.run(
                [*cli, *args], env=env, cwd=data_dir, capture_output=True, text=True, check=True, timeout=120
            ).stdout

        run("migrate")
        run("tenant", "create", "a", "--json")
        apikey = json.loads(run("apikey", "create", "--tenant", "a", "--json"))
        process = subprocess.Popen(
            [*cli, "serve", "--port", str(port), "--workers", "1"],
            env=env, cwd=data_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        for _ in range(300):
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "openxp serve exited"
            time.sleep(0.2)
        _follow_doc_links(base_url, apikey)
        assert httpx.get(f"{base_url}/openapi.json", timeout=30).status_code == 200
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=20)
        drop_database(database_url)
        shutil.rmtree(data_dir, ignore_errors=True)


# -- what the fuzz found ---------------------------------------------------------------------


ATTRIBUTES = "http://clearlrs.com/api/ext/agent/attributes"


def test_integers_beyond_64_bits_are_refused_not_500(server: Server) -> None:
    """Integers of any size survive parsing (openxp.wire), but JSON answers hold 64 bits: a huge
    limit/skip broke the 400 itself, and a huge attribute broke every later answer that shows it
    (PUT /api/actors/agents at once, GET /api/actors for the whole tenant after an import)."""
    issued = exchange(server, get_code(server, "c1"))
    headers = {"Authorization": f"Bearer {issued.json()['access_token']}", "X-CXP-Tenant": "a"}
    huge = 53321749332942716928
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        for member in ("skip", "limit"):
            response = http.post("/api/actors/search", params={member: str(huge)}, json={})
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "invalid_parameter"
        agent = {
            "objectType": "Agent",
            "mbox": "mailto:huge-int@example.com",
            "extensions": {ATTRIBUTES: {"Level": huge}},
        }
        response = http.put("/api/actors/agents", json=agent)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "validation_error"
        row = {"name": "Huge Int", "attributes": {"Email": "huge-int-import@example.com", "Level": -huge}}
        report = http.post("/api/import/users", json={"users": [row]})
        assert report.status_code == 200, report.text
        assert report.json()["errorCount"] == 1 and report.json()["errors"][0]["type"] == "invalid_attribute"
        assert http.get("/api/actors", params={"limit": 1000}).status_code == 200
        fits = {"name": "Big Int", "attributes": {"Email": "big-int-import@example.com", "Level": 2**63 - 1}}
        assert http.post("/api/import/users", json={"users": [fits]}).json()["errorCount"] == 0
        # Found by search, not by listing: other tests of the session fill this tenant past a page.
        criteria = {"=": [{"type": "attribute", "key": "Email"}, "big-int-import@example.com"]}
        found = http.post("/api/actors/search", json={"criteria": criteria})
        assert found.status_code == 200, found.text
        attributes = [a["extensions"][ATTRIBUTES] for a in found.json()]
        assert attributes == [{"Email": "big-int-import@example.com", "Level": 2**63 - 1}]
