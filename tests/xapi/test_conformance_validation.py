"""Statement validation (xAPI-Data.md 2.4, 4.0), table-driven from
tests/xapi/statement_cases.py, on xAPI 1.0.3 and 2.0.0: every case is one POST
that must answer exactly the expected status (200 with the id array, or 400
with our error shape). Also: a bad statement rejects the whole batch."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import Server
from tests.xapi.lrs import new_id
from tests.xapi.statement_cases import CASES, V1, V2, Case, base, put

PARAMS = [pytest.param(case, version, id=f"{version}-{case.name}") for case in CASES for version in case.versions]


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    ka = server.apikeys["KA"]
    with httpx.Client(base_url=f"{server.base_url}/xapi", auth=(ka["key"], ka["secret"]), timeout=30) as c:
        yield c


@pytest.mark.parametrize(("case", "version"), PARAMS)
def test_statement_case(client: httpx.Client, case: Case, version: str) -> None:
    """One statement, one expected status (200 or 400; never 5xx or another 4xx)."""
    response = client.post("/statements", json=case.statement, headers={"X-Experience-API-Version": version})
    assert response.status_code == case.status, response.text
    assert response.headers["x-experience-api-version"] == version
    if case.status == 200:
        [sid] = response.json()
        got = client.get("/statements", params={"statementId": sid}, headers={"X-Experience-API-Version": version})
        assert got.status_code == 200, got.text
    else:
        assert response.json()["error"], response.text


@pytest.mark.parametrize("version", [V1, V2])
def test_invalid_statement_rejects_whole_batch(client: httpx.Client, version: str) -> None:
    """Any invalid statement in a batch -> 400 and none of the batch is stored (the good one GETs 404)."""
    good, bad = new_id(), new_id()
    batch = [put("id", good), put("verb", {"id": "not an iri"}, put("id", bad))]
    headers = {"X-Experience-API-Version": version}
    assert client.post("/statements", json=batch, headers=headers).status_code == 400
    for sid in (good, bad):
        assert client.get("/statements", params={"statementId": sid}, headers=headers).status_code == 404


def test_duplicate_id_in_batch(client: httpx.Client) -> None:
    """2.0.0: the same id twice in one batch -> 400 and nothing stored."""
    sid = new_id()
    headers = {"X-Experience-API-Version": V2}
    response = client.post("/statements", json=[put("id", sid), put("id", sid)], headers=headers)
    assert response.status_code == 400, response.text
    assert client.get("/statements", params={"statementId": sid}, headers=headers).status_code == 404


def test_body_shapes(client: httpx.Client) -> None:
    """POST bodies that are not a statement or an array of statements -> 400."""
    headers = {"X-Experience-API-Version": V1}
    for body in ("statement", 5, [base(), "x"], [[base()]]):
        response = client.post("/statements", json=body, headers=headers)
        assert response.status_code == 400, (body, response.text)
    garbage = client.post("/statements", content=b"{not json", headers={**headers, "Content-Type": "application/json"})
    assert garbage.status_code == 400
