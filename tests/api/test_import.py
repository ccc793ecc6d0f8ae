"""ClearXP's user import (``POST|PUT /api/import/users``, ``openxp users import``): JSON and CSV
bodies, chunked writes, verify, per-row errors, scopes and tenant isolation (I-05, I-09)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.flow import api, tokens
from tests.support.records import stored_audit
from tests.support.server import Server


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return str(tokens(server, "c1")["access_token"])


def tag() -> str:
    return secrets.token_hex(4)


def learners_like(server: Server, pattern: str, tenant: str = "a") -> list[Any]:
    return server.sql(
        "SELECT l.identifier, l.name, l.attributes FROM learners l JOIN tenants t ON t.id = l.tenant_id "
        "WHERE t.name = :t AND l.identifier LIKE :p ORDER BY l.identifier",
        {"t": tenant, "p": pattern},
    )


def attrs(row: Any) -> dict[str, Any]:
    value = row[2]
    return json.loads(value) if isinstance(value, str) else dict(value)


def csv_post(server: Server, token: str, body: Any, query: str = "") -> httpx.Response:
    return api(
        server, token, "a", "POST", f"/api/import/users{query}", content=body, headers={"content-type": "text/csv"}
    )


def test_json_import_creates_updates_and_reports_bad_rows(server: Server, token: str) -> None:
    """A JSON import creates new users, updates existing ones by Email (merging attributes), and
    reports bad rows with their index while keeping the good rows of the same request."""
    t = tag()
    first = api(
        server,
        token,
        json={
            "users": [
                {"name": "John Smith", "attributes": {"Email": f"john-{t}@example.com", "Position Number": "P-7"}}
            ]
        },
    )
    assert first.status_code == 200, first.text
    assert first.json()["new"] == 1 and first.json()["existing"] == 0
    second = api(
        server,
        token,
        json={
            "users": [
                {"name": "John Smythe", "attributes": {"Email": f"JOHN-{t}@example.com", "Hire Date": "2020-01-31"}},
                {"name": "No Email", "attributes": {"Country": "NZ"}},
                {"name": "Bad Email", "attributes": {"Email": "not-an-email"}},
                "not an object",
                {"name": "Jane", "attributes": {"Email": f"jane-{t}@example.com", "Manager Email": "nope"}},
            ],
            "verify": False,
        },
    )
    report = second.json()
    assert second.status_code == 200
    assert (report["rows"], report["new"], report["existing"], report["skipped"]) == (5, 1, 1, 3)
    assert report["errorCount"] == 3 and [e["row"] for e in report["errors"]] == [1, 2, 3]
    assert {e["type"] for e in report["errors"]} == {"missing_identifier", "invalid_email", "invalid_row"}
    assert report["warningCount"] == 1 and report["warnings"][0]["row"] == 4
    rows = learners_like(server, f"%-{t}@example.com")
    assert [r[0] for r in rows] == [f"jane-{t}@example.com", f"john-{t}@example.com"]
    john = rows[1]
    assert john[1] == "John Smythe"
    assert attrs(john) == {"Email": f"john-{t}@example.com", "Position Number": "P-7", "Hire Date": "2020-01-31"}


def test_verify_writes_nothing(server: Server, token: str) -> None:
    """verify: true validates and counts (new vs existing) without writing anything."""
    t = tag()
    api(server, token, json={"users": [{"name": "Old", "attributes": {"Email": f"old-{t}@example.com"}}]})
    response = api(
        server,
        token,
        json={
            "users": [
                {"name": "Changed", "attributes": {"Email": f"old-{t}@example.com", "X": "1"}},
                {"name": "New", "attributes": {"Email": f"new-{t}@example.com"}},
            ],
            "verify": True,
        },
    )
    assert response.status_code == 200
    assert (response.json()["new"], response.json()["existing"]) == (1, 1)
    rows = learners_like(server, f"%-{t}@example.com")
    assert [(r[0], r[1]) for r in rows] == [(f"old-{t}@example.com", "Old")]
    assert "X" not in attrs(rows[0])


def test_put_with_a_bare_array(server: Server, token: str) -> None:
    """The older PUT /api/import/users takes a bare array of users."""
    t = tag()
    response = api(
        server, token, "a", "PUT", json=[{"name": f"Put {t}", "attributes": {"Email": f"put-{t}@example.com"}}]
    )
    assert response.status_code == 200, response.text
    assert response.json()["new"] == 1
    assert learners_like(server, f"put-{t}@example.com")[0][1] == f"Put {t}"


def test_csv_import_with_bom_quotes_and_row_errors(server: Server, token: str) -> None:
    """text/csv: UTF-8 with a BOM, a header with name and one column per attribute, quoted fields with
    commas and line breaks; a row with the wrong column count is a row error and the others are kept;
    an empty cell leaves the attribute as it was."""
    t = tag()
    body = (
        "\ufeffname,Email,Country,Note\r\n"
        f'"Smith, John",john-{t}@example.com,NZ,"two\r\nlines"\r\n'
        f"Short Row,short-{t}@example.com\r\n"
        f'Zoë,zoe-{t}@example.com,AU,"say ""hi"""\r\n'
    ).encode()
    response = csv_post(server, token, body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["new"], report["skipped"], report["errorCount"]) == (3, 2, 1, 1)
    assert report["errors"][0]["row"] == 1 and report["errors"][0]["type"] == "invalid_row"
    rows = learners_like(server, f"%-{t}@example.com")
    assert [r[1] for r in rows] == ["Smith, John", "Zoë"]
    assert attrs(rows[0]) == {"Email": f"john-{t}@example.com", "Country": "NZ", "Note": "two\r\nlines"}
    assert attrs(rows[1])["Note"] == 'say "hi"'
    update = csv_post(server, token, f"name,Email,Country\nJohn S,john-{t}@example.com,\n".encode())
    assert update.json()["existing"] == 1
    assert attrs(learners_like(server, f"john-{t}@example.com")[0])["Country"] == "NZ"


def test_csv_streamed_in_chunks(server: Server, token: str) -> None:
    """A 5,500-row CSV sent with chunked transfer encoding in small pieces is parsed as it arrives and
    written in chunks; every row lands, and verify=true over the same body writes nothing more."""
    t = tag()

    def body() -> Iterator[bytes]:
        yield b"name,Email,Index\n"
        line = b"".join(f"User {i},bulk{i}-{t}@example.com,{i}\n".encode() for i in range(5500))
        for start in range(0, len(line), 7919):
            yield line[start : start + 7919]

    verify = csv_post(server, token, body(), "?verify=true")
    assert verify.status_code == 200, verify.text
    assert (verify.json()["rows"], verify.json()["new"]) == (5500, 5500)
    assert learners_like(server, f"bulk%-{t}@example.com") == []
    response = csv_post(server, token, body())
    assert response.status_code == 200, response.text
    assert (response.json()["rows"], response.json()["new"], response.json()["errorCount"]) == (5500, 5500, 0)
    count = server.sql("SELECT COUNT(*) FROM learners WHERE identifier LIKE :p", {"p": f"bulk%-{t}@example.com"})
    assert count[0][0] == 5500
    again = csv_post(server, token, body())
    assert (again.json()["new"], again.json()["existing"]) == (0, 5500)


@pytest.mark.parametrize(
    ("body", "query"),
    [
        (b"Email,Country\nx@example.com,NZ\n", ""),
        (b"name,Email,name\nA,a@example.com,B\n", ""),
        (b"name,Email\nA,\xff\xfe@example.com\n", ""),
        (b'name,Email\n"unclosed,' + b"x" * 1_100_000, ""),
        (b"name,Email\n", "?verify=maybe"),
    ],
)
def test_malformed_csv_is_a_4xx_with_a_stable_code(server: Server, token: str, body: bytes, query: str) -> None:
    """A CSV without a name column, with a repeated column, with invalid UTF-8, with an unclosed quote
    running past the record limit, or with a bad verify flag is a 400 in ClearXP's error shape."""
    response = csv_post(server, token, body, query)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_csv", "invalid_parameter")
    assert response.json()["code"] == 400


def test_unsupported_media_type(server: Server, token: str) -> None:
    """Bodies other than JSON or CSV are refused with 415."""
    response = api(server, token, content=b"<users/>", headers={"content-type": "application/xml"})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"


def test_import_needs_users_import_scope(server: Server) -> None:
    """A token with actors/read only cannot import (403 insufficient_scope), and nothing is written."""
    t = tag()
    narrow = tokens(server, "cs", scope="actors/read")["access_token"]
    response = api(server, narrow, json={"users": [{"name": "N", "attributes": {"Email": f"n-{t}@example.com"}}]})
    assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"
    assert learners_like(server, f"n-{t}@example.com") == []


def test_I05_I09_import_stays_in_the_token_tenant(server: Server, token: str) -> None:
    """I-05: a tenant named in the body is just an attribute; the rows land in the token's tenant (a).
    I-09: an identifier that exists only in tenant b is reported as new for a, not as existing."""
    t = tag()
    server.sql(
        "INSERT INTO learners (tenant_id, identifier, name, attributes, created_at, updated_at) "
        "SELECT id, :i, 'B user', '{}', 0, 0 FROM tenants WHERE name = 'b'",
        {"i": f"onlyb-{t}@example.com"},
    )
    response = api(
        server,
        token,
        json={"users": [{"name": "A user", "attributes": {"Email": f"onlyb-{t}@example.com", "tenant_id": "b"}}]},
    )
    assert (response.json()["new"], response.json()["existing"]) == (1, 0)
    assert learners_like(server, f"onlyb-{t}@example.com", "b")[0][1] == "B user"
    assert learners_like(server, f"onlyb-{t}@example.com", "a")[0][1] == "A user"


def test_clear_account_source_is_recorded_with_the_import(server: Server, token: str) -> None:
    """The import takes ClearXP's ``clear-account-source`` too: kept as ``source`` in the import's
    audit event; a value over 200 characters is a 400 before any row is written."""
    t = tag()
    source = f"LMS roster export {t}"
    users = {"users": [{"name": "Sourced", "attributes": {"Email": f"src-{t}@example.com"}}]}
    imported = api(server, token, json=users, headers={"clear-account-source": source})
    assert imported.status_code == 200, imported.text
    events = stored_audit(server, "users_imported", lambda d: d.get("source") == source)
    assert [(e["rows"], e["written"]) for e in events] == [(1, 1)]
    refused = api(
        server,
        token,
        json={"users": [{"name": "Not", "attributes": {"Email": f"not-{t}@example.com"}}]},
        headers={"clear-account-source": "x" * 201},
    )
    assert refused.status_code == 400 and refused.json()["error"] == "validation_error", refused.text
    assert learners_like(server, f"not-{t}@example.com", "a") == []


def test_cli_import_csv_and_json(server: Server, tmp_path: Path) -> None:
    """`openxp users import FILE --tenant T --json` reads CSV or JSON by extension through the same
    import code, prints one JSON report on stdout, and honours --verify; a configured identifier
    attribute (`openxp tenant set-id-attributes`) decides which rows match."""
    t = tag()
    tenant = f"imp{t}"
    server.cli("tenant", "create", tenant)
    server.cli("tenant", "set-id-attributes", tenant, "Employee Id")
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(
        "name,Employee Id,Email\nAnn,E-1,ann@example.com\nBob,E-2,bob@example.com\nNo Id,,x@example.com\n",
        encoding="utf-8",
    )
    verified = server.cli_json("users", "import", str(csv_file), "--tenant", tenant, "--verify", "--json")
    assert (verified["rows"], verified["new"], verified["written"]) == (3, 2, 0)
    assert verified["errors"][0]["type"] == "missing_identifier"
    assert learners_like(server, "%", tenant) == []
    done = server.cli_json("users", "import", str(csv_file), "--tenant", tenant, "--json")
    assert (done["new"], done["skipped"], done["written"]) == (2, 1, 2)
    json_file = tmp_path / "people.json"
    json_file.write_text(json.dumps({"users": [{"name": "Ann B", "attributes": {"Employee Id": "E-1"}}]}))
    updated = server.cli_json("users", "import", str(json_file), "--tenant", tenant, "--json")
    assert (updated["new"], updated["existing"]) == (0, 1)
    rows = learners_like(server, "%", tenant)
    assert [(r[0], r[1]) for r in rows] == [("E-1", "Ann B"), ("E-2", "Bob")]
    assert attrs(rows[0])["Email"] == "ann@example.com"
    bad = server.cli("users", "import", str(tmp_path / "missing.csv"), "--tenant", tenant, check=False)
    assert bad.returncode != 0


def test_storage_failure_keeps_completed_chunks(server: Server, token: str) -> None:
    """A storage failure mid-import (a trigger refuses row 1,500) answers 503 import_interrupted, never a
    500: the first chunk of 1,000 rows stays written, the failed chunk is rolled back whole, and the
    report in the error body says how many rows were written."""
    t = tag()
    boom = f"boom1500-{t}@example.com"
    if server.database_url.startswith("postgresql"):
        server.sql(
            "CREATE FUNCTION boom_t() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.identifier = '{boom}' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        server.sql("CREATE TRIGGER boom BEFORE INSERT ON learners FOR EACH ROW EXECUTE FUNCTION boom_t()")
    else:
        server.sql(
            f"CREATE TRIGGER boom BEFORE INSERT ON learners WHEN NEW.identifier = '{boom}' "
            "BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
    try:
        lines = "".join(f"U {i},boom{i}-{t}@example.com\n" for i in range(2500))
        response = csv_post(server, token, f"name,Email\n{lines}".encode())
    finally:
        server.sql(
            "DROP TRIGGER boom ON learners" if server.database_url.startswith("postgresql") else "DROP TRIGGER boom"
        )
        if server.database_url.startswith("postgresql"):
            server.sql("DROP FUNCTION boom_t()")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "import_interrupted" and "1000 rows were written" in body["message"]
    assert body["body"][0]["value"]["written"] == 1000
    count = server.sql("SELECT COUNT(*) FROM learners WHERE identifier LIKE :p", {"p": f"boom%-{t}@example.com"})
    assert count[0][0] == 1000
    assert "Traceback" not in response.text
