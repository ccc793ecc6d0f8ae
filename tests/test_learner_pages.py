"""A page of learners costs the database about what the page holds (O-02, issue 12): the console's
Learners search and GET /api/actors read the tenant's learners in creation order, and with 20,000
learners a first page, a search by attribute and a search by name that match many learners cost
about what they cost with 10. Before migration 0011's (tenant_id, id) index SQLite read and sorted
every learner of the tenant for each page, testing each one against the criteria. Measured as
database work (SQLite VM steps, PostgreSQL plan rows), not time; PostgreSQL walked its primary key
before and after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from openxp.api.criteria import compile_criteria
from openxp.store import learners as learner_store
from tests.support.query_cost import compiled, database_work
from tests.support.server import Server, destroy_server, make_server

MANY = 20_000
PAGE = 26  # the console's page of 25, plus the one that says there is a next page


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = make_server()
    try:
        yield srv
    finally:
        destroy_server(srv)


def _tenant_id(server: Server, name: str) -> int:
    return int(server.sql("SELECT id FROM tenants WHERE name = :n", {"n": name})[0][0])


def _seed(server: Server, tenant_id: int, count: int) -> None:
    """``count`` learners, every other one with Half = "yes", written by SQL (an import of 20,000
    rows through HTTP would take most of a minute)."""
    tag = uuid.uuid4().hex[:8]
    half = "CASE WHEN i % 2 = 0 THEN 'yes' ELSE 'no' END"
    if server.database_url.startswith("postgresql"):
        numbers = "SELECT generate_series(1, :n) AS i"
        attributes = f"json_build_object('Email', :tag || i || '@example.com', 'Half', {half})"
    else:
        numbers = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < :n) SELECT i FROM c"
        attributes = f"json_object('Email', :tag || i || '@example.com', 'Half', {half})"
    server.sql(
        "INSERT INTO learners (tenant_id, identifier, name, attributes, created_at, updated_at)"
        f" SELECT :t, :tag || i || '@example.com', 'Learner ' || :tag || ' ' || i, {attributes}, 0, 0"
        f" FROM ({numbers}) AS numbers",
        {"t": tenant_id, "n": count, "tag": tag},
    )


def _queries(server: Server, tenant_id: int) -> dict[str, Any]:
    dialect = "postgresql" if server.database_url.startswith("postgresql") else "sqlite"
    half = compile_criteria({"=": [{"type": "attribute", "key": "Half"}, "yes"]}, dialect)
    queries = {
        "first page": learner_store.page_query(tenant_id, PAGE),
        "by attribute, half match": learner_store.page_query(tenant_id, PAGE, where=half),
    }
    if dialect == "sqlite":
        # PostgreSQL expects a part of a name to match few learners and reads every one to sort
        # them by id (the better plan for the usual name search, which does match few).
        queries["by name, all match"] = learner_store.page_query(tenant_id, PAGE, name="learner")
    return queries


def test_O02_a_page_of_learners_costs_what_the_page_holds(server: Server) -> None:
    big, small = _tenant_id(server, "a"), _tenant_id(server, "b")
    _seed(server, big, MANY)
    _seed(server, small, 10)
    if server.database_url.startswith("postgresql"):
        server.sql("ANALYZE learners")  # as autovacuum would have by now
    few = {label: database_work(server, compiled(server, q)) for label, q in _queries(server, small).items()}
    for label, query in _queries(server, big).items():
        many = database_work(server, compiled(server, query))
        assert many <= 3 * few[label] + 200, (label, many, few[label])
    # And the page is the right one: the first 26 matches in creation order.
    rows = server.sql(compiled(server, _queries(server, big)["by attribute, half match"]))
    assert [int(name.rsplit(" ", 1)[1]) for _, name, _ in rows] == list(range(2, 2 * PAGE + 1, 2))
