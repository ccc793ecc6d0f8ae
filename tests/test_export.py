"""The statement export (issue 15, part 3): ``GET /api/export/statements``, ``openxp statements
export`` and the console's Export CSV, over HTTP against a running server on SQLite and PostgreSQL.

The export answers exactly the statements GET /xapi/statements answers for the same filters (all
its pages walked through ``more``), oldest first; NDJSON lines are the stored statements, CSV rows
have the documented columns, and text cells that begin like a formula get a leading apostrophe.
A bad filter is a 400 in the /api error shape; a credential without ``statements/read`` gets 403;
another tenant's statements never appear (SECURITY.md I-01, I-09).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openxp.exports.statements import COLUMNS, PAGE_SIZE
from tests.support.console import sign_in
from tests.support.flow import token_post
from tests.support.server import Server, destroy_server, make_server

XAPI = {"X-Experience-API-Version": "1.0.3"}
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
ATTEMPTED = "http://adlnet.gov/expapi/verbs/attempted"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
COURSE = "https://courses.a.test/course/1"
REGISTRATION = str(uuid.uuid4())
MANY = 3 * PAGE_SIZE + 137  # statements of one verb: several export pages


def _statement(who: str, verb: str, activity: str, **extra: Any) -> dict[str, Any]:
    return {
        "actor": {"mbox": f"mailto:{who}", "name": who.split("@")[0]},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[1]}},
        "object": {"id": activity, "definition": {"name": {"en-US": f"Lesson {activity.rsplit('/', 1)[1]}"}}},
        **extra,
    }


def post_statements(server: Server, tenant: str, statements: list[dict[str, Any]]) -> list[str]:
    """POST /xapi/statements with the tenant's provisioned API key; the stored ids."""
    key = server.apikeys["KA" if tenant == "a" else "KB"]
    posted = httpx.post(
        f"{server.base_url}/xapi/statements",
        json=statements,
        auth=(key["key"], key["secret"]),
        headers=XAPI,
        timeout=60,
    )
    assert posted.status_code == 200, posted.text
    ids: list[str] = posted.json()
    return ids


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = make_server()
    try:
        yield srv
    finally:
        destroy_server(srv)


def _service_token(server: Server, tenant: str, *scopes: str) -> str:
    args = ["client", "create", "--tenant", tenant, "--name", f"Export {uuid.uuid4().hex[:6]}"]
    args += ["--grant-type", "client_credentials"]
    for scope in scopes:
        args += ["--scope", scope]
    client = server.cli_json(*args)
    body = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "scope": " ".join(scopes),
    }
    issued = token_post(server, json=body)
    assert issued.status_code == 200, issued.text
    token: str = issued.json()["access_token"]
    return token


@pytest.fixture(scope="module")
def reader(server: Server) -> str:
    return _service_token(server, "a", "statements/read")


@pytest.fixture(scope="module")
def seeded(server: Server) -> dict[str, list[str]]:
    """Tenant a: many completions, a few attempts in a registration, results, hostile names, a
    voided statement and its voiding statement, StatementRefs to matching statements; tenant b:
    statements of the same verb and activity (which must never appear in a's export)."""
    ids: dict[str, list[str]] = {"many": [], "refs": [], "order": []}
    # Completions in batches that do not line up with the export's pages, each followed by a
    # StatementRef to one of them: it matches the verb filter (Communication 2.1.3) and lies
    # inside a page's span of direct matches.
    for start in range(0, MANY, 400):
        batch = [
            _statement(f"learner{i % 17}@a.test", COMPLETED, f"https://courses.a.test/lesson/{i % 9}")
            for i in range(start, min(MANY, start + 400))
        ]
        posted = post_statements(server, "a", batch)
        ref = post_statements(
            server,
            "a",
            [
                {
                    "actor": {"mbox": "mailto:coach@a.test"},
                    "verb": {"id": "http://adlnet.gov/expapi/verbs/commented"},
                    "object": {"objectType": "StatementRef", "id": posted[len(posted) // 2]},
                }
            ],
        )
        ids["many"] += posted
        ids["refs"] += ref
        ids["order"] += posted + ref
    ids["attempts"] = post_statements(
        server,
        "a",
        [
            _statement(
                "learner1@a.test",
                ATTEMPTED,
                COURSE,
                context={"registration": REGISTRATION, "contextActivities": {"parent": [{"id": COURSE + "/p"}]}},
                result={"score": {"scaled": -0.5, "raw": 3}, "success": False, "completion": True, "duration": "PT4M"},
            )
            for _ in range(5)
        ],
    )
    hostile = ['=HYPERLINK("http://evil.test")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain"]
    ids["hostile"] = post_statements(
        server,
        "a",
        [
            {
                "actor": {"mbox": f"mailto:h{i}@a.test", "name": name},
                "verb": {"id": ATTEMPTED, "display": {"en-US": name}},
                "object": {"id": f"https://courses.a.test/h{i}", "definition": {"name": {"en-US": name}}},
            }
            for i, name in enumerate(hostile)
        ],
    )
    victim = post_statements(server, "a", [_statement("learner2@a.test", COMPLETED, COURSE)])
    ids["voided"] = victim
    ids["voiding"] = post_statements(
        server,
        "a",
        [
            {
                "actor": {"mbox": "mailto:admin@a.test"},
                "verb": {"id": VOIDED},
                "object": {"objectType": "StatementRef", "id": victim[0]},
            }
        ],
    )
    ids["b"] = post_statements(
        server, "b", [_statement("secret@b.test", COMPLETED, "https://courses.a.test/lesson/1") for _ in range(20)]
    )
    return ids


def export(server: Server, token: str, tenant: str = "a", **params: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", "X-CXP-Tenant": tenant}
    return httpx.get(f"{server.base_url}/api/export/statements", params=params, headers=headers, timeout=120)


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.text == "" or response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


def csv_rows(text: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    assert tuple(header) == COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


def xapi_walk(server: Server, token: str, **params: str) -> list[dict[str, Any]]:
    """Every page of GET /xapi/statements with these filters (newest first), following ``more``."""
    headers = {"authorization": f"Bearer {token}", "X-CXP-Tenant": "a", **XAPI}
    found: list[dict[str, Any]] = []
    response = httpx.get(f"{server.base_url}/xapi/statements", params=params, headers=headers, timeout=60)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["statements"]
        if not body["more"]:
            return found
        response = httpx.get(f"{server.base_url}{body['more']}", headers=headers, timeout=60)


FILTERS = [
    {},
    {"verb": COMPLETED},
    {"verb": ATTEMPTED},
    {"activity": COURSE},
    {"activity": COURSE + "/p", "related_activities": "true"},
    {"agent": json.dumps({"mbox": "mailto:learner1@a.test"})},
    {"agent": json.dumps({"mbox": "mailto:learner1@a.test"}), "verb": COMPLETED},
    {"agent": json.dumps({"mbox": "mailto:coach@a.test"}), "related_agents": "true"},
    {"registration": REGISTRATION},
    {"activity": "https://courses.a.test/lesson/3"},
]


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: "+".join(p) or "none")
def test_the_export_is_what_the_lrs_answers_for_the_same_filters(
    server: Server, reader: str, seeded: dict[str, list[str]], params: dict[str, str]
) -> None:
    exported = ndjson(export(server, reader, **params))
    lrs = xapi_walk(server, reader, **params)
    assert exported, params
    # The same statements, oldest first where the LRS answers newest first; the stored JSON as is.
    assert exported == list(reversed(lrs))
    ids = {s["id"] for s in exported}
    assert not ids & set(seeded["b"])
    assert seeded["voided"][0] not in ids


def test_statement_refs_match_their_targets_filter_across_pages(
    server: Server, reader: str, seeded: dict[str, list[str]]
) -> None:
    exported = [s["id"] for s in ndjson(export(server, reader, verb=COMPLETED))]
    assert set(seeded["refs"]) <= set(exported)
    assert set(seeded["many"]) <= set(exported)


def test_a_large_export_is_complete_and_in_order(server: Server, reader: str, seeded: dict[str, list[str]]) -> None:
    """Several pages (PAGE_SIZE each): every statement once, in stored order, nothing voided."""
    exported = [s["id"] for s in ndjson(export(server, reader))]
    expected = [*seeded["order"], *seeded["attempts"], *seeded["hostile"], *seeded["voiding"]]
    assert len(exported) > 3 * PAGE_SIZE
    assert exported == expected
    stored = [s["stored"] for s in ndjson(export(server, reader))]
    assert stored == sorted(stored)


def test_csv_columns_and_values(server: Server, reader: str, seeded: dict[str, list[str]]) -> None:
    response = export(server, reader, format="csv", registration=REGISTRATION)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    rows = csv_rows(response.text)
    assert [r["id"] for r in rows] == seeded["attempts"]
    first = rows[0]
    lrs = {s["id"]: s for s in xapi_walk(server, reader, registration=REGISTRATION)}[first["id"]]
    assert first == {
        "id": lrs["id"],
        "timestamp": lrs["timestamp"],
        "stored": lrs["stored"],
        "actor_name": "learner1",
        "actor_id": "mailto:learner1@a.test",
        "verb_id": ATTEMPTED,
        "verb_display": "attempted",
        "object_id": COURSE,
        "object_name": "Lesson 1",
        # A negative score is a number, not a formula: it stays as it is.
        "result_score_scaled": "-0.5",
        "result_score_raw": "3",
        "result_success": "false",
        "result_completion": "true",
        "result_duration": "PT4M",
        "registration": REGISTRATION,
    }


def test_csv_has_one_row_per_statement_of_the_ndjson(server: Server, reader: str, seeded: dict[str, list[str]]) -> None:
    rows = csv_rows(export(server, reader, format="csv").text)
    assert [r["id"] for r in rows] == [s["id"] for s in ndjson(export(server, reader))]
    ref = next(r for r in rows if r["id"] == seeded["refs"][0])
    assert ref["object_id"] == seeded["many"][200]
    assert ref["object_name"] == ref["result_score_scaled"] == ""


def test_csv_cells_that_start_like_a_formula_are_text(
    server: Server, reader: str, seeded: dict[str, list[str]]
) -> None:
    rows = {r["id"]: r for r in csv_rows(export(server, reader, format="csv", verb=ATTEMPTED).text)}
    names = [rows[i]["actor_name"] for i in seeded["hostile"]]
    assert names == ['\'=HYPERLINK("http://evil.test")', "'+1+1", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "plain"]
    for i in seeded["hostile"]:
        assert rows[i]["verb_display"] == rows[i]["object_name"] == rows[i]["actor_name"]


@pytest.mark.parametrize(
    ("params", "prop"),
    [
        ({"verb": "not an iri"}, "verb"),
        ({"activity": "nope"}, "activity"),
        ({"agent": "{not json"}, "agent"),
        ({"agent": json.dumps({"name": "no identifier"})}, "agent"),
        ({"registration": "123"}, "registration"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45"}, "until"),
        ({"related_agents": "yes"}, "related_agents"),
        ({"format": "xml"}, "format"),
        ({"limit": "10"}, "limit"),
    ],
)
def test_a_bad_filter_is_a_400_before_anything_streams(
    server: Server, reader: str, params: dict[str, str], prop: str
) -> None:
    response = export(server, reader, **params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == 400 and body["name"] == "Bad Request"
    assert body["error"] == "invalid_parameter"
    assert body["body"][0]["property"] == prop


def test_a_parameter_sent_twice_is_refused(server: Server, reader: str) -> None:
    response = httpx.get(
        f"{server.base_url}/api/export/statements?verb={COMPLETED}&verb={ATTEMPTED}",
        headers={"authorization": f"Bearer {reader}", "X-CXP-Tenant": "a"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_parameter"


def test_scope_is_required(server: Server, seeded: dict[str, list[str]]) -> None:
    assert export(server, _service_token(server, "a", "actors/read")).status_code == 403
    assert export(server, _service_token(server, "a", "statements/read/mine")).status_code == 403
    assert ndjson(export(server, _service_token(server, "a", "all/read")))
    no_token = httpx.get(f"{server.base_url}/api/export/statements", headers={"X-CXP-Tenant": "a"}, timeout=30)
    assert no_token.status_code == 401


def test_I01_I09_another_tenants_statements_never_appear(
    server: Server, reader: str, seeded: dict[str, list[str]]
) -> None:
    b_reader = _service_token(server, "b", "statements/read")
    mine = [s["id"] for s in ndjson(export(server, b_reader, "b"))]
    assert mine == seeded["b"]
    # a's credential naming tenant b is refused, not answered with b's (or a's) statements.
    crossed = export(server, reader, "b")
    assert crossed.status_code == 403, crossed.text
    assert crossed.json()["error"] == "tenant_mismatch"
    assert "secret@b.test" not in crossed.text
    everything = export(server, reader, format="csv").text + export(server, reader).text
    assert "secret@b.test" not in everything


def test_cli_export_writes_the_file(server: Server, reader: str, seeded: dict[str, list[str]], tmp_path: Path) -> None:
    out = tmp_path / "completed.csv"
    done = server.cli(
        "statements", "export", "--tenant", "a", "--format", "csv", "--verb", COMPLETED, "--output", str(out), "--json"
    )
    summary = json.loads(done.stdout)
    rows = csv_rows(out.read_text(encoding="utf-8"))
    assert summary == {"tenant": "a", "format": "csv", "output": str(out), "statements": len(rows)}
    assert len(rows) >= MANY
    assert out.read_bytes() == export(server, reader, format="csv", verb=COMPLETED).content
    assert not (tmp_path / "completed.csv.partial").exists()
    lines = tmp_path / "all.ndjson"
    server.cli("statements", "export", "--tenant", "a", "--output", str(lines))
    assert lines.read_bytes() == export(server, reader).content


def test_cli_export_refuses_a_bad_filter(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "never.ndjson"
    done = server.cli(
        "statements", "export", "--tenant", "a", "--verb", "not an iri", "--output", str(out), check=False
    )
    assert done.returncode != 0
    assert "--verb" in done.stderr and "IRI" in done.stderr
    assert not out.exists()
    unknown = server.cli("statements", "export", "--tenant", "nosuch", "--output", str(out), check=False)
    assert unknown.returncode != 0 and not out.exists()


def test_console_export_csv_downloads_the_current_filters(
    server: Server, reader: str, seeded: dict[str, list[str]]
) -> None:
    http, _ = sign_in(server, "a", "viewerA")
    try:
        page = http.get("/console/a/records", params={"verb": ATTEMPTED})
        assert page.status_code == 200
        assert "Export CSV" in page.text
        link = f"/console/a/records.csv?verb={ATTEMPTED.replace(':', '%3A').replace('/', '%2F')}"
        assert f'href="{link}"' in page.text
        download = http.get(link)
        assert download.status_code == 200, download.text
        assert download.headers["content-type"] == "text/csv; charset=utf-8"
        # The console's verb filter is the API's: the same bytes.
        assert download.content == export(server, reader, format="csv", verb=ATTEMPTED).content
        everything = http.get("/console/a/records.csv")
        assert [r["id"] for r in csv_rows(everything.text)] == [s["id"] for s in ndjson(export(server, reader))]
        bad = http.get("/console/a/records.csv", params={"verb": "not an iri"})
        assert bad.status_code == 400 and "text/csv" not in bad.headers["content-type"]
        # Another tenant's console is not this session's: no CSV of b.
        other = http.get("/console/b/records.csv")
        assert other.status_code != 200 or "text/csv" not in other.headers.get("content-type", "")
    finally:
        http.close()
    anonymous = httpx.get(f"{server.base_url}/console/a/records.csv", timeout=30)
    assert anonymous.status_code in {302, 303}
    assert "text/csv" not in anonymous.headers.get("content-type", "")
