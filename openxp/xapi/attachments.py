"""Attachments (xAPI Data 2.4.11, Communication 1.5.2): multipart/mixed
requests and responses, and signed statements (Data 2.6).

A request's first part holds the statements; every other part is one
attachment's raw bytes, named by its ``X-Experience-API-Hash``. Parts must
match the declared ``sha2`` values exactly: none missing (unless the
attachment has a fileUrl), none extra.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes as digests
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from openxp import wire
from openxp.xapi import compare
from openxp.xapi.errors import AttachmentHashMismatch, InvalidMultipart, InvalidStatement, TooManyParts

SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"
SIGNING_ALGS = frozenset({"RS256", "RS384", "RS512"})
_HASHES: dict[str, digests.HashAlgorithm] = {
    "RS256": digests.SHA256(),
    "RS384": digests.SHA384(),
    "RS512": digests.SHA512(),
}
# The SHA-2 functions Communication 1.5.2 names for sha2, told apart by their hex length.
_SHA2_BY_LENGTH = {64: "sha256", 96: "sha384", 128: "sha512"}
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise InvalidMultipart("a part header line has no colon")
        headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return headers


def parse(content_type: str, body: bytes, max_parts: int) -> tuple[bytes, dict[str, tuple[str, bytes]]]:
    """(the statements' JSON, {sha2: (content type, bytes)}); at most ``max_parts`` attachment parts."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise InvalidMultipart("multipart/mixed needs a boundary parameter")
    delimiter = b"--" + match.group(1).encode("latin-1")
    # Counted before anything is split or parsed: the statements part, the attachment parts and
    # the closing delimiter (docs/security.md, Input limits on /xapi).
    if body.count(delimiter) > max_parts + 2:
        raise TooManyParts(f"a multipart request may carry at most {max_parts:,} attachment parts")
    segments = body.split(delimiter)
    if len(segments) < 3 or segments[0].strip():
        raise InvalidMultipart("the body must start with the boundary and hold at least one part")
    parts: list[tuple[dict[str, str], bytes]] = []
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            break
        if not segment.startswith(b"\r\n"):
            raise InvalidMultipart("a boundary must be followed by CRLF")
        head, sep, content = segment[2:].partition(b"\r\n\r\n")
        if not sep:
            # A part with no headers starts with the blank line at once.
            if segment[2:].startswith(b"\r\n"):
                head, content = b"", segment[4:]
            else:
                raise InvalidMultipart("a part has no blank line after its headers")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        parts.append((_headers(head), content))
    if not parts:
        raise InvalidMultipart("no parts")
    first_headers, statements = parts[0]
    if first_headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise InvalidMultipart("the first part must be application/json and hold the statements")
    files: dict[str, tuple[str, bytes]] = {}
    for headers, content in parts[1:]:
        sha2 = headers.get("x-experience-api-hash")
        if not sha2:
            raise InvalidMultipart("every attachment part needs X-Experience-API-Hash")
        encoding = headers.get("content-transfer-encoding", "binary").lower()
        if encoding != "binary":
            raise InvalidMultipart("attachment parts must use Content-Transfer-Encoding: binary")
        files[sha2] = (headers.get("content-type", "application/octet-stream"), content)
    return statements, files


def genuine(sha2: str, content: bytes) -> bool:
    """The bytes hash to the declared sha2 (SHA-256, SHA-384 or SHA-512, by its length)."""
    algorithm = _SHA2_BY_LENGTH.get(len(sha2))
    return algorithm is not None and hashlib.new(algorithm, content).hexdigest() == sha2.lower()


def verify_hashes(files: dict[str, tuple[str, bytes]]) -> None:
    """Every part carries the bytes its X-Experience-API-Hash (and so its attachment's sha2)
    names: a part with other bytes would be stored, and served, as that file."""
    for sha2, (_, content) in files.items():
        if not genuine(sha2, content):
            raise AttachmentHashMismatch()


def check(
    statements: list[dict[str, Any]], paths: list[str], files: dict[str, tuple[str, bytes]], version: str
) -> None:
    """Parts and declarations agree, and each part's bytes hash to its sha2; a signature is a
    well-formed JWS with an RS algorithm whose payload is the statement it signs (Data 2.6)."""
    verify_hashes(files)
    declared: set[str] = set()
    for statement, path in zip(statements, paths, strict=True):
        for i, attachment in enumerate(statement.get("attachments", [])):
            where = f"{path}.attachments[{i}]" if path else f"attachments[{i}]"
            declared.add(attachment["sha2"])
            if attachment["sha2"] not in files and "fileUrl" not in attachment:
                raise InvalidStatement(where, "has no fileUrl and no multipart part with its sha2")
            if attachment["usageType"] == SIGNATURE:
                if attachment["contentType"] != "application/octet-stream":
                    raise InvalidStatement(f"{where}.contentType", "a signature is application/octet-stream")
                if attachment["sha2"] in files:
                    _check_jws(files[attachment["sha2"]][1], where, statement, version)
    extra = set(files) - declared
    if extra:
        raise InvalidMultipart("a part's X-Experience-API-Hash matches no attachment sha2")


def _b64json(segment: str) -> Any:
    try:
        return wire.parse_json(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        return None


def _without_signature(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement as it was before the signature was attached to it."""
    kept = [a for a in statement.get("attachments", []) if not isinstance(a, dict) or a.get("usageType") != SIGNATURE]
    out = {k: v for k, v in statement.items() if k != "attachments"}
    if kept:
        out["attachments"] = kept
    return out


def _verified_by_certificate(header: dict[str, Any], pieces: list[str]) -> bool:
    """Data 2.6: with an X.509 chain in the header, the signature must verify against its first
    certificate (catching mistakes; authenticating the signer is outside the spec)."""
    chain = header.get("x5c")
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        return False
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
        key = certificate.public_key()
        signature = base64.urlsafe_b64decode(pieces[2] + "=" * (-len(pieces[2]) % 4))
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        key.verify(signature, f"{pieces[0]}.{pieces[1]}".encode("ascii"), padding.PKCS1v15(), _HASHES[header["alg"]])
    except (ValueError, TypeError, binascii.Error, InvalidSignature):
        return False
    return True


def _check_jws(content: bytes, where: str, statement: dict[str, Any], version: str) -> None:
    pieces = content.decode("ascii", "replace").strip().split(".")
    if len(pieces) != 3:
        raise InvalidStatement(where, "the signature is not a compact JWS")
    header = _b64json(pieces[0])
    if not isinstance(header, dict) or header.get("alg") not in SIGNING_ALGS:
        raise InvalidStatement(where, "the signature must use RS256, RS384 or RS512")
    signed = _b64json(pieces[1])
    if not isinstance(signed, dict):
        raise InvalidStatement(where, "the signed payload is not a JSON statement")
    if "x5c" in header and not _verified_by_certificate(header, pieces):
        raise InvalidStatement(where, "the signature does not verify against the x5c certificate")
    if not compare.same_statement(_without_signature(signed), _without_signature(statement), version):
        raise InvalidStatement(where, "the signed payload is not the statement it is attached to")


def multipart(body: bytes, files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    out = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(), body, b"\r\n"]
    for sha2, (ctype, content) in files.items():
        out.append(
            f"--{boundary}\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {sha2}\r\n\r\n".encode()
        )
        out += [content, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/mixed; boundary={boundary}"


def wanted(rows: list[tuple[str, str | None]]) -> set[tuple[str, str | None]]:
    """(sha2, writer's authority key) for every attachment of the (payload, authority key) rows:
    a statement is served the bytes its own writer supplied."""
    found: set[tuple[str, str | None]] = set()
    for payload, writer in rows:
        if '"attachments"' in payload:
            statement = orjson.loads(payload)
            found |= {(a["sha2"], writer) for a in statement.get("attachments", [])}
    return found
