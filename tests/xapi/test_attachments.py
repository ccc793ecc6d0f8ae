"""Statement attachments (multipart/mixed with sha2), signed statements, the
1.0.3 alternate request syntax, and HEAD."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.support.server import Server
from tests.xapi.lrs import VERSION, new_id, statement, xapi

BOUNDARY = "-------314159265358979323846"


def multipart(stmt: Any, parts: list[tuple[str, bytes]], **part_headers: str) -> bytes:
    out = [f"--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n".encode(), json.dumps(stmt).encode(), b"\r\n"]
    for sha2, content in parts:
        extra = "".join(f"{k}: {v}\r\n" for k, v in part_headers.items())
        out.append(
            f"--{BOUNDARY}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {sha2}\r\n{extra}\r\n".encode()
        )
        out += [content, b"\r\n"]
    out.append(f"--{BOUNDARY}--".encode())
    return b"".join(out)


def send(server: Server, body: bytes) -> httpx.Response:
    return xapi(
        server,
        "POST",
        "/statements",
        content=body,
        headers={"Content-Type": f"multipart/mixed; boundary={BOUNDARY}"},
    )


def attachment(content: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "usageType": "http://example.com/attachment-usage/test",
        "display": {"en-US": "A test attachment"},
        "contentType": "text/plain",
        "length": len(content),
        "sha2": hashlib.sha256(content).hexdigest(),
        **extra,
    }


def test_attachment_round_trip(server: Server) -> None:
    """A multipart statement stores its part; GET attachments=true returns multipart with the bytes."""
    content = b"here is a simple attachment " + new_id().encode()
    sid = new_id()
    stmt = statement(id=sid, attachments=[attachment(content)])
    response = send(server, multipart(stmt, [(hashlib.sha256(content).hexdigest(), content)]))
    assert response.status_code == 200, response.text
    got = xapi(server, "GET", "/statements", params={"statementId": sid, "attachments": "true"})
    assert got.status_code == 200
    ctype = got.headers["content-type"]
    assert ctype.startswith("multipart/mixed; boundary=")
    assert content in got.content
    assert got.content.count(hashlib.sha256(content).hexdigest().encode()) == 2
    plain = xapi(server, "GET", "/statements", params={"statementId": sid})
    assert plain.headers["content-type"].startswith("application/json")


def test_attachment_part_mismatches_are_400(server: Server) -> None:
    """Missing part, extra part, missing hash header, base64 encoding, JSON without parts -> 400."""
    content = b"abc"
    sha2 = hashlib.sha256(content).hexdigest()
    stmt = statement(attachments=[attachment(content)])
    assert send(server, multipart(stmt, [])).status_code == 400
    assert send(server, multipart(stmt, [(sha2, content), ("0" * 64, b"x")])).status_code == 400
    assert (
        send(server, multipart(stmt, [(sha2, content)], **{"Content-Transfer-Encoding": "base64"})).status_code == 400
    )
    assert xapi(server, "POST", "/statements", json=stmt).status_code == 400
    with_url = statement(attachments=[attachment(content, fileUrl="http://example.com/file")])
    assert xapi(server, "POST", "/statements", json=with_url).status_code == 200
    no_boundary = xapi(server, "POST", "/statements", content=b"x", headers={"Content-Type": "multipart/mixed;"})
    assert no_boundary.status_code == 400


def _jws(alg: str, payload: Any) -> bytes:
    def enc(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{enc({'alg': alg})}.{enc(payload)}.c2lnbmF0dXJl".encode()


def test_signed_statements(server: Server) -> None:
    """Signed statements: RS256 accepted; HS256 or a non-octet-stream signature attachment -> 400."""
    for alg, ctype, status in (
        ("RS256", "application/octet-stream", 200),
        ("HS256", "application/octet-stream", 400),
        ("RS256", "text/plain", 400),
    ):
        stmt = statement(id=new_id())
        jws = _jws(alg, stmt)
        sig = attachment(jws, usageType="http://adlnet.gov/expapi/attachments/signature", contentType=ctype)
        response = send(server, multipart({**stmt, "attachments": [sig]}, [(sig["sha2"], jws)]))
        assert response.status_code == status, (alg, ctype, response.text)


def test_alternate_request_syntax(server: Server) -> None:
    """1.0.3 alternate syntax: POST ?method=PUT with headers and content in the form -> 204; extra query
    parameters -> 400; 2.0 refuses it."""
    ka = server.apikeys["KA"]
    auth = "Basic " + base64.b64encode(f"{ka['key']}:{ka['secret']}".encode()).decode()
    sid = new_id()
    form = {
        "statementId": sid,
        "content": json.dumps(statement()),
        "Authorization": auth,
        "X-Experience-API-Version": "1.0.3",
    }
    url = f"{server.base_url}/xapi/statements"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = httpx.post(url, params={"method": "PUT"}, content=urlencode(form), headers=headers, timeout=30)
    assert response.status_code == 204, response.text
    assert xapi(server, "GET", "/statements", params={"statementId": sid}).status_code == 200
    extra = httpx.post(url, params={"method": "PUT", "statementId": sid}, content=urlencode(form), headers=headers)
    assert extra.status_code == 400
    v2 = {**form, "X-Experience-API-Version": "2.0.0", "statementId": new_id()}
    assert httpx.post(url, params={"method": "PUT"}, content=urlencode(v2), headers=headers).status_code == 400
    get = httpx.post(
        url, params={"method": "GET"}, content="limit=1", headers={**headers, **VERSION, "Authorization": auth}
    )
    assert get.status_code == 200 and "statements" in get.json()


def test_head_on_get_resources(server: Server) -> None:
    """HEAD answers like GET with an empty body."""
    response = xapi(server, "HEAD", "/statements", params={"limit": "1"})
    assert response.status_code == 200 and response.content == b""
    agent = json.dumps({"mbox": "mailto:h@x.y"})
    assert xapi(server, "HEAD", "/agents", params={"agent": agent}).status_code == 200


def test_alternate_syntax_method_the_resource_lacks(server: Server) -> None:
    """SECURITY.md L-14, L-12: ``POST ?method=DELETE`` on /statements (no DELETE there) -> 405
    method_not_allowed, an unknown method -> 400 invalid_method; never a 500. A method the
    resource has (DELETE on a State document) still works through the syntax."""
    ka = server.apikeys["KA"]
    auth = "Basic " + base64.b64encode(f"{ka['key']}:{ka['secret']}".encode()).decode()
    fields = {"Authorization": auth, "X-Experience-API-Version": "1.0.3"}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    def alternate(path: str, method: str, form: dict[str, str]) -> httpx.Response:
        return httpx.post(
            f"{server.base_url}/xapi{path}",
            params={"method": method},
            content=urlencode({**fields, **form}),
            headers=headers,
            timeout=30,
        )

    deleted = alternate("/statements", "DELETE", {"statementId": new_id()})
    assert (deleted.status_code, deleted.json()["error"]) == (405, "method_not_allowed"), deleted.text
    for method in ("PATCH", "TRACE", "delete-all"):
        unknown = alternate("/statements", method, {})
        assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_method"), unknown.text
    state = {
        "activityId": "http://example.com/activities/alternate",
        "agent": json.dumps({"mbox": "mailto:alternate@example.com"}),
        "stateId": new_id(),
    }
    assert xapi(server, "PUT", "/activities/state", params=state, json={"a": 1}).status_code == 204
    assert alternate("/activities/state", "DELETE", state).status_code == 204
    assert xapi(server, "GET", "/activities/state", params=state).status_code == 404
