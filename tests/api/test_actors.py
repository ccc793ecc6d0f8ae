"""The actors API: GET /api/actors, PUT /api/actors/agents, POST /api/actors/search and
GET /api/actors/attributes, over the users the import writes; tenant isolation (I-04, I-09).

Actors are in ClearXP's shape (Clear API Reference > Data Model > Actor): an xAPI Agent with
``objectType``, its identifier and ``name`` at the top level, the attributes under
``extensions["http://clearlrs.com/api/ext/agent/attributes"]``; lists are JSON arrays of them."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.support.flow import api, tokens
from tests.support.records import stored_audit
from tests.support.server import PASSWORD, Server


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return str(tokens(server, "c1")["access_token"])


@pytest.fixture(scope="module")
def token_b(server: Server) -> str:
    return str(tokens(server, "cb", admin="adminB")["access_token"])


def tag() -> str:
    return secrets.token_hex(4)


ATTRIBUTES = "http://clearlrs.com/api/ext/agent/attributes"


def search(
    server: Server, token: str, body: Any, tenant: str = "a", params: dict[str, str] | None = None
) -> httpx.Response:
    return api(server, token, tenant, "POST", "/api/actors/search", json=body, params=params)


def actors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    found = response.json()
    assert isinstance(found, list), response.text
    return found


def emails(response: httpx.Response) -> list[str]:
    return [item.get("mbox", "")[7:] for item in actors(response)]


def attributes_of(actor: dict[str, Any]) -> dict[str, Any]:
    return dict(actor["extensions"][ATTRIBUTES])


def seed(server: Server, token: str, t: str, rows: list[tuple[str, dict[str, Any]]], tenant: str = "a") -> None:
    users = [
        {"name": name, "attributes": {"Email": f"{name.lower()}-{t}@example.com", "Tag": t, **a}} for name, a in rows
    ]
    response = api(server, token, tenant, json={"users": users})
    assert response.status_code == 200 and response.json()["errorCount"] == 0, response.text


def tagged(t: str, criterion: dict[str, Any]) -> dict[str, Any]:
    return {"criteria": {"and": [{"=": [{"type": "attribute", "key": "Tag"}, t]}, criterion]}}


def attr(key: str) -> dict[str, str]:
    return {"type": "attribute", "key": key}


@pytest.fixture(scope="module")
def people(server: Server, token: str) -> str:
    t = tag()
    seed(
        server,
        token,
        t,
        [
            ("Ann", {"Country": "NZ", "Age": "34", "Score": 7.5, "Active": True, "Code": "a_1%"}),
            ("Bob", {"Country": "AU", "Age": "41", "Score": 12, "Active": False, "Code": "ab1x"}),
            ("Cid", {"Country": "nz", "Age": "n/a", "Hire Date": "2020-01-31"}),
            ("Dee", {"Country": "New Zealand", "Age": 29}),
        ],
    )
    return t


def test_search_comparators(server: Server, token: str, people: str) -> None:
    """=, !=, <, <=, >, >=, and, or: strings compare as text, numbers numerically (JSON numbers and
    numeric strings alike, non-numeric values never match), booleans as booleans; != also matches
    learners without the attribute."""
    t = people

    def who(criterion: dict[str, Any]) -> list[str]:
        return sorted(e.split("-")[0] for e in emails(search(server, token, tagged(t, criterion))))

    assert who({"=": [attr("Country"), "NZ"]}) == ["ann"]
    assert who({"!=": [attr("Country"), "NZ"]}) == ["bob", "cid", "dee"]
    assert who({">": [attr("Age"), 30]}) == ["ann", "bob"]
    assert who({"<=": [attr("Age"), 34]}) == ["ann", "dee"]
    assert who({"<": [attr("Age"), 29]}) == []
    assert who({">=": [attr("Score"), 7.5]}) == ["ann", "bob"]
    assert who({"=": [attr("Age"), 29]}) == ["dee"]
    assert who({"=": [attr("Active"), True]}) == ["ann"]
    assert who({"!=": [attr("Active"), True]}) == ["bob", "cid", "dee"]
    assert who({"=": [attr("Hire Date"), None]}) == ["ann", "bob", "dee"]
    assert who({">=": [attr("Hire Date"), "2020-01-01"]}) == ["cid"]
    assert who({"or": [{"=": [attr("Country"), "AU"]}, {"<": [attr("Age"), 30]}]}) == ["bob", "dee"]
    assert who({"and": [{"!=": [attr("Country"), "AU"]}, {">": [attr("Age"), 0]}]}) == ["ann", "dee"]


def test_search_wildcards_escape_like_characters(server: Server, token: str, people: str) -> None:
    """`*` matches any run of characters (case-insensitively) with = and !=; `%` and `_` in the value
    match only themselves (they are escaped before the SQL LIKE)."""
    t = people

    def who(criterion: dict[str, Any]) -> list[str]:
        return sorted(e.split("-")[0] for e in emails(search(server, token, tagged(t, criterion))))

    assert who({"=": [attr("Country"), "n*"]}) == ["ann", "cid", "dee"]
    assert who({"=": [attr("Country"), "*zeal*"]}) == ["dee"]
    assert who({"!=": [attr("Country"), "n*"]}) == ["bob"]
    assert who({"=": [attr("Code"), "a_1*"]}) == ["ann"]
    assert who({"=": [attr("Code"), "*%"]}) == ["ann"]
    assert who({"=": [attr("Code"), "a%"]}) == []
    assert who({"=": [attr("Code"), "a_"]}) == []


def test_list_and_page(server: Server, token: str, people: str) -> None:
    """GET /api/actors answers a JSON array of xAPI Agents in ClearXP's shape (objectType, mbox, name,
    the attributes extension and nothing else), pages with limit and skip, and refuses a malformed
    limit or skip with 400 invalid_parameter."""
    first = api(server, token, "a", "GET", "/api/actors", params={"limit": "2"})
    assert len(actors(first)) == 2
    second = api(server, token, "a", "GET", "/api/actors", params={"limit": "2", "skip": "1"})
    assert actors(second)[0] == actors(first)[1]
    item = actors(first)[0]
    assert set(item) == {"objectType", "name", "mbox", "extensions"}, item
    assert item["objectType"] == "Agent" and item["mbox"].startswith("mailto:")
    assert set(item["extensions"]) == {ATTRIBUTES}
    assert attributes_of(item)["Email"] == item["mbox"][7:]
    for params in ({"limit": "x"}, {"limit": "0"}, {"limit": "1001"}, {"skip": "-1"}, {"limit": "1e3"}):
        bad = api(server, token, "a", "GET", "/api/actors", params=params)
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_parameter", (params, bad.text)
    twice = api(server, token, "a", "GET", "/api/actors?limit=1&limit=2")
    assert twice.status_code == 400


def test_search_pages_with_query_parameters(server: Server, token: str, people: str) -> None:
    """POST /api/actors/search takes limit and skip as query parameters (ClearXP's Actors page) and the
    criteria in the body; the answer is a JSON array of Agents with their attributes extension."""
    t = people
    everyone = actors(search(server, token, tagged(t, {"!=": [attr("Country"), None]})))
    assert sorted(a["name"] for a in everyone) == ["Ann", "Bob", "Cid", "Dee"]
    assert {a["name"]: attributes_of(a)["Country"] for a in everyone}["Dee"] == "New Zealand"
    page = actors(search(server, token, tagged(t, {"!=": [attr("Country"), None]}), params={"limit": "2", "skip": "1"}))
    assert page == everyone[1:3]
    for params in ({"limit": "0"}, {"skip": "x"}, {"limit": "1001"}):
        bad = search(server, token, tagged(t, {"=": [attr("Country"), "NZ"]}), params=params)
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_parameter", (params, bad.text)
    in_body = search(server, token, {**tagged(t, {"=": [attr("Country"), "NZ"]}), "limit": 1})
    assert in_body.status_code == 400 and in_body.json()["error"] == "validation_error", in_body.text


@pytest.mark.parametrize(
    "body",
    [
        {"criteria": {"~": [attr("Country"), "NZ"]}},
        {"criteria": {"=": [attr("Country")]}},
        {"criteria": {"=": [{"type": "name"}, "x"]}},
        {"criteria": {"=": [attr("Country"), "NZ"], "or": []}},
        {"criteria": {"and": []}},
        {"criteria": {"<": [attr("Country"), True]}},
        {"criteria": {"=": [attr("Country"), {"x": 1}]}},
        {"criteria": {"=": [attr('a"b'), "x"]}},
        {"criteria": "Country = NZ"},
        {"criteria": {"=": [attr("Country"), "NZ"]}, "limit": 10},
        {"criteria": {"=": [attr("Country"), "NZ"]}, "tenant": "b"},
    ],
)
def test_malformed_search_is_400(server: Server, token: str, body: Any) -> None:
    """A malformed criteria tree, an unknown comparator or a bad limit/skip is a 400 with a stable code."""
    response = search(server, token, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_criteria", "invalid_parameter", "validation_error")


def test_too_deep_or_large_criteria_are_400(server: Server, token: str) -> None:
    """Criteria nested deeper than 20 levels (or with hundreds of parts) are refused, not evaluated."""
    deep: dict[str, Any] = {"=": [attr("Country"), "NZ"]}
    for _ in range(25):
        deep = {"and": [deep]}
    response = search(server, token, {"criteria": deep})
    assert response.status_code == 400 and response.json()["error"] == "invalid_criteria"
    wide = {"or": [{"=": [attr("Country"), str(i)]} for i in range(500)]}
    assert search(server, token, {"criteria": wide}).json()["error"] == "invalid_criteria"
    nan = api(
        server,
        token,
        "a",
        "POST",
        "/api/actors/search",
        content=b'{"criteria": {">": [{"type": "attribute", "key": "Age"}, NaN]}}',
        headers={"content-type": "application/json"},
    )
    assert nan.status_code == 400


def test_attributes_endpoint(server: Server, token: str, people: str) -> None:
    """GET /api/actors/attributes names each attribute seen in the tenant with a JSON Schema type."""
    response = api(server, token, "a", "GET", "/api/actors/attributes")
    assert response.status_code == 200, response.text
    types = {a["key"]: a["type"] for a in response.json()["attributes"]}
    assert types["Country"] == "string"
    assert types["Score"] == "number"
    assert types["Active"] == "boolean"
    assert types["Age"] == "string"  # strings and numbers mixed: the wider type


def test_put_agent_creates_then_updates(server: Server, token: str) -> None:
    """PUT /api/actors/agents takes an xAPI Agent (attributes in the attributes extension) and upserts by
    its mbox (the Email identifier), merging attributes; it answers the actor after the merge, in the
    same shape. A learner imported earlier is the same user; bad agents are 400."""
    t = tag()
    email = f"agent-{t}@example.com"
    body = {
        "objectType": "Agent",
        "name": "Agent One",
        "mbox": f"mailto:{email}",
        "extensions": {ATTRIBUTES: {"A": "1"}},
    }
    created = api(server, token, "a", "PUT", "/api/actors/agents", json=body)
    assert created.status_code == 200, created.text
    assert created.json() == {
        "objectType": "Agent",
        "name": "Agent One",
        "mbox": f"mailto:{email}",
        "extensions": {ATTRIBUTES: {"Email": email, "A": "1"}},
    }
    update = {"mbox": f"mailto:{email.upper()}", "extensions": {ATTRIBUTES: {"B": 2}}}
    updated = api(server, token, "a", "PUT", "/api/actors/agents", json=update)
    assert updated.status_code == 200, updated.text
    assert attributes_of(updated.json()) == {"Email": email, "A": "1", "B": 2}
    assert updated.json()["name"] == "Agent One"
    assert api(server, token, "a", "PUT", "/api/actors/agents", json=updated.json()).json() == updated.json()
    found = actors(search(server, token, {"criteria": {"=": [attr("Email"), email]}}))
    assert found == [updated.json()]
    for bad in (
        {"mbox": "john@example.com"},
        {"objectType": "Group", "mbox": f"mailto:{email}"},
        {"mbox_sha1sum": "ab" * 20},
        {"mbox": f"mailto:{email}", "account": {"homePage": "x", "name": "y"}},
        {"account": {"homePage": "https://elsewhere.example", "name": "E-1"}},
        {"mbox": f"mailto:{email}", "extensions": {ATTRIBUTES: {"Email": "other@example.com"}}},
        {"mbox": f"mailto:{email}", "extensions": {ATTRIBUTES: []}},
        {"mbox": f"mailto:{email}", "extensions": []},
        {"agent": {"mbox": f"mailto:{email}"}, "attributes": {}},
        {"name": "No identifier"},
    ):
        response = api(server, token, "a", "PUT", "/api/actors/agents", json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"] == "validation_error"


def test_clear_account_source_is_recorded_with_the_change(server: Server, token: str) -> None:
    """ClearXP's Actors page: ``clear-account-source`` on PUT /api/actors/agents is "an arbitrary string
    to log against this update operation for audit purposes": the audit log keeps it with the change.
    A value that is too long or not printable is a 400, and then nothing is written."""
    t = tag()
    body = {"objectType": "Agent", "name": "Sourced", "mbox": f"mailto:src-{t}@example.com"}
    source = f"HRIS nightly sync {t}"
    saved = api(server, token, "a", "PUT", "/api/actors/agents", json=body, headers={"clear-account-source": source})
    assert saved.status_code == 200, saved.text
    events = stored_audit(server, "actor_saved", lambda d: d.get("source") == source)
    assert len(events) == 1 and events[0]["new"] is True, events
    for bad in ("x" * 201, f"two\tlines {t}"):
        other = {**body, "mbox": f"mailto:bad-{secrets.token_hex(4)}@example.com"}
        refused = api(
            server, token, "a", "PUT", "/api/actors/agents", json=other, headers={"clear-account-source": bad}
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "validation_error"
        assert actors(search(server, token, {"criteria": {"=": [attr("Email"), other["mbox"][7:]]}})) == []


def test_scopes(server: Server) -> None:
    """actors/read may list and search but not write; users/import may not read actors."""
    reader = tokens(server, "cs", scope="actors/read")["access_token"]
    assert api(server, reader, "a", "GET", "/api/actors").status_code == 200
    assert search(server, reader, {}).status_code == 200
    body = {"mbox": f"mailto:s-{tag()}@example.com"}
    denied = api(server, reader, "a", "PUT", "/api/actors/agents", json=body)
    assert denied.status_code == 403 and denied.json()["error"] == "insufficient_scope"
    importer = tokens(server, "cs")["access_token"]
    assert api(server, importer, "a", "GET", "/api/actors").status_code == 403
    assert api(server, importer, "a", "GET", "/api/actors/attributes").status_code == 403


def test_I01_actors_routes_refuse_another_tenant(server: Server, token: str) -> None:
    """I-01: a tenant-a token naming tenant b on every actors route is 403 tenant_mismatch."""
    for method, path, kwargs in (
        ("GET", "/api/actors", {}),
        ("GET", "/api/actors/attributes", {}),
        ("POST", "/api/actors/search", {"json": {}}),
        ("PUT", "/api/actors/agents", {"json": {"mbox": "mailto:x@example.com"}}),
    ):
        response = api(server, token, "b", method, path, **kwargs)
        assert response.status_code == 403 and response.json()["error"] == "tenant_mismatch", path


def test_I04_I09_search_and_paging_never_show_another_tenant(server: Server, token: str, token_b: str) -> None:
    """I-09: searching tenant a for an email that exists only in tenant b finds nothing; paging past a's
    last learner shows no b rows; b's attribute names are not listed for a.
    I-04: PUT of b's learner's mbox from tenant a creates a's own learner and leaves b's untouched."""
    t = tag()
    email = f"secret-{t}@example.com"
    b_attr = f"OnlyB{t}"
    put_b = {"name": "B Secret", "mbox": f"mailto:{email}", "extensions": {ATTRIBUTES: {b_attr: "x"}}}
    assert api(server, token_b, "b", "PUT", "/api/actors/agents", json=put_b).status_code == 200
    assert emails(search(server, token_b, {"criteria": {"=": [attr("Email"), email]}}, "b")) == [email]
    assert emails(search(server, token, {"criteria": {"=": [attr("Email"), email]}})) == []
    assert emails(search(server, token, {"criteria": {"=": [attr("Email"), "secret-*"]}})) == []
    assert emails(search(server, token, {"criteria": {"!=": [attr(b_attr), None]}})) == []
    count_a = server.sql("SELECT COUNT(*) FROM learners l JOIN tenants t ON t.id = l.tenant_id WHERE t.name = 'a'")[0][
        0
    ]
    past = api(server, token, "a", "GET", "/api/actors", params={"limit": "1000", "skip": str(max(count_a - 1, 0))})
    assert all(item.get("mbox") != f"mailto:{email}" for item in actors(past))
    assert len(actors(past)) <= 1
    keys = {a["key"] for a in api(server, token, "a", "GET", "/api/actors/attributes").json()["attributes"]}
    assert b_attr not in keys
    put_a = {"name": "A Person", "mbox": f"mailto:{email}", "extensions": {ATTRIBUTES: {"Mine": "a"}}}
    response = api(server, token, "a", "PUT", "/api/actors/agents", json=put_a)
    assert response.status_code == 200 and attributes_of(response.json()) == {"Email": email, "Mine": "a"}
    in_b = actors(search(server, token_b, {"criteria": {"=": [attr("Email"), email]}}, "b"))
    assert in_b[0]["name"] == "B Secret" and attributes_of(in_b[0]) == {"Email": email, b_attr: "x"}


def test_account_agents_for_non_email_identifiers(server: Server) -> None:
    """A tenant that identifies learners by Employee Id (`openxp tenant set-id-attributes`) lists them as
    Agents with an account on OPENXP_PUBLIC_URL; PUT with that account updates the same learner, and
    search finds it by that attribute. An account on another homePage is refused."""
    t = tag()
    tenant = f"acc{t}"
    server.cli("tenant", "create", tenant)
    server.cli("tenant", "set-id-attributes", tenant, "Employee Id")
    label = f"admin-{tenant}"
    server.admins[label] = server.cli_json(
        "admin",
        "create",
        "--tenant",
        tenant,
        "--email",
        f"{label}@example.com",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    ) | {"password": PASSWORD}
    server.clients[label] = server.cli_json(
        "client", "create", "--tenant", tenant, "--name", label, "--redirect-uri", "https://acc.test/cb"
    )
    token = tokens(server, label, admin=label)["access_token"]
    imported = api(
        server,
        token,
        tenant,
        json={"users": [{"name": "Emp Nine", "attributes": {"Employee Id": "E-9", "Email": "e9@example.com"}}]},
    )
    assert imported.json()["new"] == 1, imported.text
    listed = actors(api(server, token, tenant, "GET", "/api/actors"))
    assert len(listed) == 1
    agent = listed[0]
    assert set(agent) == {"objectType", "name", "account", "extensions"} and agent["account"]["name"] == "E-9"
    home = agent["account"]["homePage"]
    assert home.startswith("http")
    put = {"account": {"homePage": home, "name": "E-9"}, "extensions": {ATTRIBUTES: {"Level": 3}}}
    response = api(server, token, tenant, "PUT", "/api/actors/agents", json=put)
    assert response.status_code == 200, response.text
    assert attributes_of(response.json()) == {"Employee Id": "E-9", "Email": "e9@example.com", "Level": 3}
    assert response.json()["name"] == "Emp Nine"
    assert actors(api(server, token, tenant, "GET", "/api/actors")) == [response.json()]
    found = actors(search(server, token, {"criteria": {">": [attr("Level"), 2]}}, tenant))
    assert [f["account"]["name"] for f in found] == ["E-9"]
    elsewhere = {"account": {"homePage": "https://elsewhere.example", "name": "E-9"}}
    assert api(server, token, tenant, "PUT", "/api/actors/agents", json=elsewhere).status_code == 400
