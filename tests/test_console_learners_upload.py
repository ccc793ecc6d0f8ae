"""The console's learner import of an uploaded CSV file (issue #12) over plain HTTP: the preview
stages the file and writes nothing; the confirm carries only the staging token, which is this
tenant's and this session's, once, for an hour; the run is streamed with progress lines.

Security cases: L-08 (CSRF on the multipart post), I-series isolation (another tenant's or
session's token opens nothing), input limits (an over-limit file is a 413 and writes nothing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.console import sign_in
from tests.support.server import Server, destroy_server, make_server
from tests.test_console_learners import admin, server  # noqa: F401  (the module's fixtures, shared)

CSV = b"name,Email,Team\nUp Ada,upada@a.test,red\nUp Bob,upbob@a.test,blue\nNo Mail,,blue\n"
URL = "/console/{tenant}/learners/import"


def _count(srv: Server, where: str = "", tenant: str = "a") -> int:
    rows = srv.sql(
        "SELECT count(*) FROM learners JOIN tenants ON tenants.id = learners.tenant_id WHERE tenants.name = :t" + where,
        {"t": tenant},
    )
    return int(rows[0][0])


def _staged(srv: Server) -> int:
    return int(srv.sql("SELECT count(*) FROM staged_imports")[0][0])


def _upload(http: httpx.Client, csrf: str | None, content: bytes, tenant: str = "a") -> httpx.Response:
    data = {"step": "preview", "csv": ""} | ({"csrf_token": csrf} if csrf is not None else {})
    return http.post(URL.format(tenant=tenant), data=data, files={"file": ("learners.csv", content, "text/csv")})


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="staged" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def _confirm(http: httpx.Client, csrf: str, token: str, tenant: str = "a") -> httpx.Response:
    return http.post(URL.format(tenant=tenant), data={"csrf_token": csrf, "step": "confirm", "staged": token})


def test_the_form_offers_a_file_input(admin: tuple[httpx.Client, str]) -> None:  # noqa: F811
    page = admin[0].get("/console/a/learners/import")
    assert 'enctype="multipart/form-data"' in page.text
    assert '<label for="file">' in page.text and 'type="file" id="file" name="file" accept=".csv,text/csv"' in page.text


def test_upload_previews_then_confirm_imports_once(server: Server, admin: tuple[httpx.Client, str]) -> None:  # noqa: F811
    http, csrf = admin
    before = _count(server)
    preview = _upload(http, csrf, CSV)
    assert preview.status_code == 200, preview.text
    assert "nothing has been written yet" in preview.text and "Up Ada" in preview.text
    assert "<dt>New</dt><dd>2</dd>" in preview.text and "<dt>Errors</dt><dd>1</dd>" in preview.text
    assert 'name="csv"' not in preview.text.split("Import these learners")[0].rsplit("<form", 1)[1]
    assert _count(server) == before
    token = _token(preview)
    done = _confirm(http, csrf, token)
    assert done.status_code == 200, done.text
    assert "Importing…" in done.text and "The import ran." in done.text
    assert "<dt>Rows</dt><dd>3</dd>" in done.text and "<dt>New</dt><dd>2</dd>" in done.text
    assert "<dt>Existing (updated)</dt><dd>0</dd>" in done.text and "<dt>Errors</dt><dd>1</dd>" in done.text
    assert '<td data-label="Line">4</td>' in done.text  # the row without an email, as the file counts it
    assert "Content-Security-Policy" in done.headers and "script-src 'nonce-" in done.headers["content-security-policy"]
    assert _count(server) == before + 2
    # The staged row is gone: the same token again is refused and writes nothing.
    reused = _confirm(http, csrf, token)
    assert reused.status_code == 404 and 'id="file-error"' in reused.text
    assert _count(server) == before + 2
    again = _confirm(http, csrf, _token(_upload(http, csrf, CSV)))
    assert "<dt>Existing (updated)</dt><dd>2</dd>" in again.text and "<dt>New</dt><dd>0</dd>" in again.text


def test_another_sessions_or_tenants_token_is_refused(server: Server, admin: tuple[httpx.Client, str]) -> None:  # noqa: F811
    http, csrf = admin
    token = _token(_upload(http, csrf, b"name,Email\nStolen One,stolen@a.test\n"))
    other, other_csrf = sign_in(server, "a", "adminA")  # the same admin, another session
    http_b, csrf_b = sign_in(server, "b", "adminB")
    try:
        assert _confirm(other, other_csrf, token).status_code == 404
        assert _confirm(http_b, csrf_b, token, tenant="b").status_code == 404
    finally:
        other.close()
        http_b.close()
    assert _count(server, " AND learners.identifier = 'stolen@a.test'") == 0
    assert _count(server, tenant="b", where=" AND learners.identifier = 'stolen@a.test'") == 0
    # Still there for its own session, once.
    assert "The import ran." in _confirm(http, csrf, token).text
    assert _count(server, " AND learners.identifier = 'stolen@a.test'") == 1


def test_an_expired_token_is_refused(server: Server, admin: tuple[httpx.Client, str]) -> None:  # noqa: F811
    http, csrf = admin
    token = _token(_upload(http, csrf, b"name,Email\nLate One,late@a.test\n"))
    server.sql("UPDATE staged_imports SET expires_at = created_at - 1")
    assert _confirm(http, csrf, token).status_code == 404
    assert _count(server, " AND learners.identifier = 'late@a.test'") == 0
    # Housekeeping (the routine `serve` runs too) purges the expired staged file, and only it.
    live = _token(_upload(http, csrf, b"name,Email\nLive One,live@a.test\n"))
    purged = json.loads(server.cli("purge", "--grace", "0", "--json").stdout)["purged"]
    assert purged["staged_imports"] >= 1
    assert int(server.sql("SELECT count(*) FROM staged_imports WHERE expires_at < created_at")[0][0]) == 0
    assert "The import ran." in _confirm(http, csrf, live).text


def test_csrf_missing_on_the_multipart_post_is_403(server: Server, admin: tuple[httpx.Client, str]) -> None:  # noqa: F811
    http, _ = admin
    staged = _staged(server)
    assert _upload(http, None, CSV).status_code == 403
    assert _upload(http, "not-the-token", CSV).status_code == 403
    assert _staged(server) == staged


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"name,Email\nNul\x00One,nul@a.test\n", "NUL byte"), (b"name,Email\n\xff\xfeBad,bad@a.test\n", "not UTF-8")],
)
def test_a_nul_or_non_utf8_file_is_an_error_next_to_the_field(
    server: Server,  # noqa: F811
    admin: tuple[httpx.Client, str],  # noqa: F811
    content: bytes,
    says: str,
) -> None:
    http, csrf = admin
    staged = _staged(server)
    page = _upload(http, csrf, content)
    assert page.status_code == 400 and 'id="file-error"' in page.text and says in page.text
    assert 'aria-invalid="true"' in page.text
    assert _staged(server) == staged


def test_a_large_file_streams_progress_before_the_report(server: Server, admin: tuple[httpx.Client, str]) -> None:  # noqa: F811
    http, csrf = admin
    rows = "".join(f"Bulk {i},bulk{i}@a.test,green\n" for i in range(5000))
    token = _token(_upload(http, csrf, ("name,Email,Team\n" + rows).encode()))
    done = _confirm(http, csrf, token)
    assert done.status_code == 200
    progress = [m.start() for m in re.finditer(r"[\d,]+ rows read", done.text)]
    assert len(progress) >= 2, done.text[:2000]
    assert "5,000 rows read" in done.text
    assert done.text.index("Importing…") < progress[0] < progress[-1] < done.text.index("The import ran.")
    assert "<dt>New</dt><dd>5000</dd>" in done.text


@pytest.fixture(scope="module")
def small() -> Iterator[Server]:
    srv = make_server({"OPENXP_CONSOLE_IMPORT_MAX_BYTES": "2000"})
    try:
        yield srv
    finally:
        destroy_server(srv)


def test_an_over_limit_file_is_413_and_writes_nothing(small: Server) -> None:
    http, csrf = sign_in(small, "a", "adminA")
    try:
        before = _count(small)
        rows = "".join(f"Big {i},big{i}@a.test\n" for i in range(200)).encode()  # ~4 KiB
        assert len(rows) > 2000
        for content in (b"name,Email\n" + rows, b"name,Email\n" + rows * 40):  # over the file's / the body's limit
            refused = _upload(http, csrf, content)
            assert refused.status_code == 413, refused.text
            assert "larger than this console takes" in refused.text
        assert _count(small) == before
        assert _staged(small) == 0
        assert _upload(http, csrf, b"name,Email\nSmall One,small@a.test\n").status_code == 200
    finally:
        http.close()
