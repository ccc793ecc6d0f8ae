"""Schemathesis fuzzes the running server with its own ``/openapi.json``.

Each documented operation gets a bounded, derandomised Hypothesis run (``FUZZ_EXAMPLES``
cases, no shrinking) over HTTP against a server of this module, with real credentials: a
Bearer token from the real authorization-code flow (plus ``X-CXP-Tenant``), an API key over
Basic (H-10), or the client's own Basic credentials at the token, revocation and
introspection endpoints. Every answer must be no 5xx (no stack trace or 500 for bad input,
SECURITY.md's general rule), have a documented status code and Content-Type, and match the
documented response schema.

Known 500s that other engineers fix in this same round are kept out of the run, each by
one entry of ``KNOWN_ELSEWHERE`` (lift the entry when its fix is merged).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from openxp.openapi import document
from tests.support.flow import tokens
from tests.support.server import Server, destroy_server, make_server

FUZZ_EXAMPLES = int(os.environ.get("OPENXP_FUZZ_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OAUTH_CLIENT_ENDPOINTS = {"/auth/oauth/token", "/auth/oauth/revoke", "/auth/oauth/introspect"}


# name -> (owner, whether a generated case is of that class). Lift an entry when the owner's fix lands.
# (Empty: the alternate-syntax 500 on POST /xapi/statements?method=DELETE is fixed.)
KNOWN_ELSEWHERE: dict[str, tuple[str, Callable[[Any], bool]]] = {}
# NUL bytes reaching SQL (PostgreSQL refuses them in text): `authin` fixes them on every entry
# point. Until then generated strings carry no NUL (OPENXP_FUZZ_NUL=1 lets them in); when that
# fix is merged, make this True.
ALLOW_NUL = os.environ.get("OPENXP_FUZZ_NUL", "1") == "1"
# Lift everything above at once, to see what is left: OPENXP_FUZZ_ALL=1.
if os.environ.get("OPENXP_FUZZ_ALL") == "1":
    KNOWN_ELSEWHERE, ALLOW_NUL = {}, True


def _operations() -> list[tuple[str, str, str]]:
    doc = document("http://127.0.0.1")
    found = []
    for path, item in doc["paths"].items():
        for method in item:
            if path.startswith(("/api/", "/xapi/")) and item[method].get("security") != []:
                found += [(method, path, "bearer"), (method, path, "apikey")]
            elif path in OAUTH_CLIENT_ENDPOINTS:
                found.append((method, path, "client"))
            else:
                found.append((method, path, "none"))
    return found


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[Server]:
    server = make_server()
    try:
        yield server
    finally:
        destroy_server(server)


@pytest.fixture(scope="module")
def credentials(fuzz_server: Server) -> dict[str, dict[str, str]]:
    issued = tokens(fuzz_server, "c1")
    key = fuzz_server.apikeys["KA"]
    c1 = fuzz_server.clients["c1"]
    bearer = {"Authorization": f"Bearer {issued['access_token']}", "X-CXP-Tenant": "a"}
    me = httpx.get(f"{fuzz_server.base_url}/api/auth/me", headers=bearer, timeout=30).json()
    assert me["scope"] == "all", me  # the fuzz may reach every operation
    return {
        "bearer": bearer,
        "apikey": {"Authorization": _basic(key["key"], key["secret"])},
        "client": {"Authorization": _basic(c1["client_id"], c1["client_secret"])},
        "none": {},
    }


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Server) -> Any:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json")
    schema.config.generation.update(allow_x00=ALLOW_NUL)
    return schema


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("method", "path", "who"), _operations(), ids=lambda v: str(v))
def test_fuzz_operation(
    method: str, path: str, who: str, fuzz_server: Server, credentials: dict[str, dict[str, str]], api_schema: Any
) -> None:
    operation = api_schema[path][method.upper()]
    headers = credentials[who]

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    # Valid inputs and, as often, inputs that break the documented schema.
    @given(case=operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE))
    def run(case: Any) -> None:
        assume(not any(known(case) for _owner, known in KNOWN_ELSEWHERE.values()))
        case.call_and_validate(base_url=fuzz_server.base_url, headers=headers, checks=CHECKS, timeout=30)

    run()
