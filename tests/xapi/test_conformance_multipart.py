"""Statements with attachments over multipart/mixed, and signed statements
(xAPI-Data.md 2.4.11 and 2.6, xAPI-Communication.md 1.5.2; NOTES.md 3.7, 3.8),
table-driven on 1.0.3 and 2.0.0."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import Server
from tests.xapi.lrs import new_id
from tests.xapi.statement_cases import V1, V2, base

BOUNDARY = "xapi-conformance-boundary_0123"
CONTENT = b"attachment bytes for the conformance tests\n"
SHA2 = hashlib.sha256(CONTENT).hexdigest()
USAGE = "http://example.com/attachment-usage/test"
SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"


def declared(content: bytes = CONTENT, **extra: Any) -> dict[str, Any]:
    return {
        "usageType": USAGE,
        "display": {"en-US": "a file"},
        "contentType": "text/plain",
        "length": len(content),
        "sha2": hashlib.sha256(content).hexdigest(),
        **extra,
    }


def part(
    content: bytes, sha2: str | None = SHA2, *, ctype: str = "text/plain", encoding: str = "binary", sep: str = ": "
) -> bytes:
    head = f"Content-Type{sep}{ctype}\r\nContent-Transfer-Encoding{sep}{encoding}\r\n"
    if sha2 is not None:
        head += f"X-Experience-API-Hash{sep}{sha2}\r\n"
    return head.encode() + b"\r\n" + content


def json_part(statement: Any, ctype: str = "application/json") -> bytes:
    return f"Content-Type: {ctype}\r\n\r\n".encode() + json.dumps(statement).encode()


def body(*parts: bytes, lead: bytes = b"") -> bytes:
    out = lead
    for p in parts:
        out += f"--{BOUNDARY}\r\n".encode() + p + b"\r\n"
    return out + f"--{BOUNDARY}--".encode()


def with_attachments(*items: dict[str, Any]) -> dict[str, Any]:
    return {**base(), "id": new_id(), "attachments": list(items)}


# Each case builds (Content-Type, body) and names the status.
Build = Callable[[], tuple[str, bytes]]
MIXED = f"multipart/mixed; boundary={BOUNDARY}"


def _cases() -> list[tuple[str, Build, int, tuple[str, ...]]]:
    s = with_attachments(declared())
    return [
        ("one attachment", lambda: (MIXED, body(json_part(s), part(CONTENT))), 200, (V1, V2)),
        (
            "quoted boundary",
            lambda: (f'multipart/mixed; boundary="{BOUNDARY}"', body(json_part(s), part(CONTENT))),
            200,
            (V1, V2),
        ),
        ("leading CRLF", lambda: (MIXED, body(json_part(s), part(CONTENT), lead=b"\r\n")), 200, (V1, V2)),
        ("headers without space", lambda: (MIXED, body(json_part(s), part(CONTENT, sep=":"))), 200, (V1, V2)),
        (
            "length differs from bytes",
            lambda: (MIXED, body(json_part(with_attachments(declared(length=9999))), part(CONTENT))),
            200,
            (V1, V2),
        ),
        (
            "batch sharing one part",
            lambda: (
                MIXED,
                body(json_part([with_attachments(declared()), with_attachments(declared())]), part(CONTENT)),
            ),
            200,
            (V1, V2),
        ),
        (
            "fileUrl attachment with a part",
            lambda: (
                MIXED,
                body(json_part(with_attachments(declared(fileUrl="http://files.example.com/f"))), part(CONTENT)),
            ),
            200,
            (V1, V2),
        ),
        ("JSON-only multipart, no attachments", lambda: (MIXED, body(json_part(base()))), 200, (V2,)),
        (
            "JSON-only multipart, fileUrl attachment",
            lambda: (MIXED, body(json_part(with_attachments(declared(fileUrl="http://files.example.com/f"))))),
            200,
            (V2,),
        ),
        ("part missing", lambda: (MIXED, body(json_part(s))), 400, (V1, V2)),
        ("no boundary parameter", lambda: ("multipart/mixed;", body(json_part(s), part(CONTENT))), 400, (V1, V2)),
        ("no boundary before first part", lambda: (MIXED, json_part(s) + body(part(CONTENT))), 400, (V1, V2)),
        ("no boundary between parts", lambda: (MIXED, body(json_part(s) + b"\r\n" + part(CONTENT))), 400, (V1, V2)),
        ("first part text/plain", lambda: (MIXED, body(json_part(s, "text/plain"), part(CONTENT))), 400, (V1, V2)),
        (
            "statements split across JSON parts",
            lambda: (MIXED, body(json_part(s), json_part(base()), part(CONTENT))),
            400,
            (V1, V2),
        ),
        ("part without hash header", lambda: (MIXED, body(json_part(s), part(CONTENT, None))), 400, (V1, V2)),
        ("part hash matches nothing", lambda: (MIXED, body(json_part(s), part(CONTENT, "0" * 64))), 400, (V1, V2)),
        (
            "excess part",
            lambda: (MIXED, body(json_part(s), part(CONTENT), part(b"more", hashlib.sha256(b"more").hexdigest()))),
            400,
            (V1, V2),
        ),
        (
            "base64 transfer encoding",
            lambda: (MIXED, body(json_part(s), part(base64.b64encode(CONTENT), encoding="base64"))),
            400,
            (V1, V2),
        ),
        (
            "multipart/form-data",
            lambda: (f"multipart/form-data; boundary={BOUNDARY}", body(json_part(s), part(CONTENT))),
            400,
            (V1, V2),
        ),
        ("application/json without the part", lambda: ("application/json", json.dumps(s).encode()), 400, (V1, V2)),
    ]


CASES = _cases()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    ka = server.apikeys["KA"]
    with httpx.Client(base_url=f"{server.base_url}/xapi", auth=(ka["key"], ka["secret"]), timeout=30) as c:
        yield c


@pytest.mark.parametrize(
    ("build", "status", "version"),
    [pytest.param(b, s, v, id=f"{v}-{n}") for n, b, s, vs in CASES for v in vs],
)
def test_multipart_request(client: httpx.Client, build: Build, status: int, version: str) -> None:
    """One multipart request, one expected status; a 200 stores the part, returned by attachments=true."""
    ctype, payload = build()
    response = client.post(
        "/statements", content=payload, headers={"Content-Type": ctype, "X-Experience-API-Version": version}
    )
    assert response.status_code == status, response.text
    if status == 200 and b"X-Experience-API-Hash" in payload:
        sid = response.json()[0]
        got = client.get(
            "/statements",
            params={"statementId": sid, "attachments": "true"},
            headers={"X-Experience-API-Version": version},
        )
        assert CONTENT in got.content and got.content.count(SHA2.encode()) == 2


# -- signed statements ----------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jws(alg: str, payload: bytes) -> bytes:
    return f"{b64url(json.dumps({'alg': alg}).encode())}.{b64url(payload)}.{b64url(b'not-verifiable')}".encode()


def signed(
    alg: str = "RS256",
    *,
    payload: Callable[[dict[str, Any]], bytes] | None = None,
    ctype: str = "application/octet-stream",
    change: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[str, bytes]:
    """A statement carrying a signature attachment whose JWS payload is the statement (or ``payload(statement)``)."""
    statement = {**base(), "id": new_id(), "result": {"duration": "PT1M0.12S"}}
    token = jws(alg, payload(statement) if payload else json.dumps(statement).encode())
    sent = copy.deepcopy(statement)
    if change:
        change(sent)
    sent["attachments"] = [
        {
            "usageType": SIGNATURE,
            "display": {"en-US": "signature"},
            "contentType": ctype,
            "length": len(token),
            "sha2": hashlib.sha256(token).hexdigest(),
        }
    ]
    return MIXED, body(
        json_part(sent), part(token, hashlib.sha256(token).hexdigest(), ctype="application/octet-stream")
    )


def _more_precise(statement: dict[str, Any]) -> None:
    statement["result"]["duration"] = "PT1M0.1237S"


SIGNED: list[tuple[str, Build, int, tuple[str, ...]]] = [
    ("RS256", lambda: signed("RS256"), 200, (V1, V2)),
    ("RS384", lambda: signed("RS384"), 200, (V1, V2)),
    ("RS512", lambda: signed("RS512"), 200, (V1, V2)),
    ("HS256", lambda: signed("HS256"), 400, (V1, V2)),
    ("alg none", lambda: signed("none"), 400, (V1, V2)),
    ("payload not JSON", lambda: signed(payload=lambda s: json.dumps(s).replace('"', "'", 1).encode()), 400, (V1, V2)),
    ("signature not octet-stream", lambda: signed(ctype="text/plain; charset=ascii"), 400, (V1, V2)),
    ("duration compared to 0.01 s", lambda: signed(change=_more_precise), 200, (V2,)),
]


@pytest.mark.parametrize(
    ("build", "status", "version"),
    [pytest.param(b, s, v, id=f"{v}-{n}") for n, b, s, vs in SIGNED for v in vs],
)
def test_signed_statement(client: httpx.Client, build: Build, status: int, version: str) -> None:
    """Signed statements: RS256/384/512 accepted; other algorithms, a non-JSON payload or a signature that is not
    application/octet-stream -> 400."""
    ctype, payload = build()
    response = client.post(
        "/statements", content=payload, headers={"Content-Type": ctype, "X-Experience-API-Version": version}
    )
    assert response.status_code == status, response.text


def test_signed_statement_payload_must_match(client: httpx.Client) -> None:
    """Data 2.6: the LRS MUST validate that the signed statement is logically equivalent to the received one."""

    def other_verb(statement: dict[str, Any]) -> None:
        statement["verb"] = {"id": "http://example.com/verbs/not-what-was-signed"}

    ctype, payload = signed(change=other_verb)
    response = client.post(
        "/statements", content=payload, headers={"Content-Type": ctype, "X-Experience-API-Version": V1}
    )
    assert response.status_code == 400, response.text


# -- signatures with an X.509 certificate (Data 2.6: "validate the signature against that certificate") --


def _certificate_and_key() -> tuple[str, Any]:
    """A throw-away self-signed RSA certificate (base64 DER, as x5c carries it) and its key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openxp test signer")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return base64.b64encode(der).decode(), key


def _x5c_signed(tamper: bool) -> tuple[str, bytes]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    chain, key = _certificate_and_key()
    statement = {**base(), "id": new_id()}
    head = b64url(json.dumps({"alg": "RS256", "x5c": [chain]}).encode())
    payload = b64url(json.dumps(statement).encode())
    signature = key.sign(f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    if tamper:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    token = f"{head}.{payload}.{b64url(signature)}".encode()
    digest = hashlib.sha256(token).hexdigest()
    sent = {
        **statement,
        "attachments": [
            {
                "usageType": SIGNATURE,
                "display": {"en-US": "signature"},
                "contentType": "application/octet-stream",
                "length": len(token),
                "sha2": digest,
            }
        ],
    }
    return MIXED, body(json_part(sent), part(token, digest, ctype="application/octet-stream"))


@pytest.mark.parametrize(("tamper", "status"), [(False, 200), (True, 400)], ids=["verifies", "tampered"])
def test_signature_is_checked_against_its_x5c_certificate(client: httpx.Client, tamper: bool, status: int) -> None:
    """Data 2.6 (LRS requirements): with an X.509 certificate in the JWS header, a signature that does not
    verify against it is a malformed signature (400); one that verifies is stored."""
    ctype, payload = _x5c_signed(tamper)
    response = client.post(
        "/statements", content=payload, headers={"Content-Type": ctype, "X-Experience-API-Version": V1}
    )
    assert response.status_code == status, response.text
