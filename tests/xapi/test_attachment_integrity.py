"""Attachment integrity (openxp/xapi/attachments.py, openxp/store/statements.py), over HTTP
with two API keys that each read only their own statements (statements/read/mine; SECURITY.md
H-07) and the full key KA.

(a) A part's bytes must hash to its declared X-Experience-API-Hash / sha2: otherwise 400
    attachment_hash_mismatch and nothing stored; a forged part can no longer become "the copy"
    of a genuine file that later uploads are served.
(b) A sha2 is not a read capability: a statement that only names a sha2 (fileUrl, no part)
    is served no bytes another credential uploaded; a statement gets the bytes its own writer
    supplied (in the same batch, or earlier).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import httpx
import pytest

from tests.support.server import Server
from tests.xapi.lrs import new_id, statement, xapi
from tests.xapi.test_attachments import BOUNDARY, attachment, multipart

MULTIPART = {"Content-Type": f"multipart/mixed; boundary={BOUNDARY}"}


@pytest.fixture(scope="module")
def learners(server: Server) -> dict[str, dict[str, Any]]:
    """Two keys that write statements and read only their own (as a learner's tool would)."""
    scopes = ["--scope", "statements/write", "--scope", "statements/read/mine"]
    return {
        name: server.cli_json("apikey", "create", "--tenant", "a", "--name", f"attachments {name}", *scopes)
        for name in ("victim", "attacker")
    }


def post(server: Server, key: dict[str, Any] | None, body: bytes) -> httpx.Response:
    return xapi(server, "POST", "/statements", key, content=body, headers=MULTIPART)


def read(server: Server, key: dict[str, Any] | None, sid: str) -> httpx.Response:
    got = xapi(server, "GET", "/statements", key, params={"statementId": sid, "attachments": "true"})
    assert got.status_code == 200, got.text
    return got


def test_part_whose_bytes_differ_from_its_hash_is_refused(server: Server) -> None:
    """A part declared with the hash of a genuine file but carrying other bytes: 400
    attachment_hash_mismatch, the statement not stored; a later genuine upload is served
    the genuine bytes (not the forgery)."""
    genuine = b"the genuine file " + secrets.token_bytes(16)
    forged = b"something else entirely"
    sha2 = hashlib.sha256(genuine).hexdigest()
    forged_statement = statement(id=new_id(), attachments=[attachment(genuine)])
    refused = post(server, None, multipart(forged_statement, [(sha2, forged)]))
    assert (refused.status_code, refused.json()["error"]) == (400, "attachment_hash_mismatch"), refused.text
    assert xapi(server, "GET", "/statements", params={"statementId": forged_statement["id"]}).status_code == 404
    put = xapi(
        server,
        "PUT",
        "/statements",
        params={"statementId": forged_statement["id"]},
        content=multipart(forged_statement, [(sha2, forged)]),
        headers=MULTIPART,
    )
    assert (put.status_code, put.json()["error"]) == (400, "attachment_hash_mismatch"), put.text
    honest = statement(id=new_id(), attachments=[attachment(genuine)])
    assert post(server, None, multipart(honest, [(sha2, genuine)])).status_code == 200
    served = read(server, None, honest["id"]).content
    assert genuine in served
    assert forged not in served


def test_sha384_and_sha512_parts_are_checked_too(server: Server) -> None:
    """sha2 may be SHA-384 or SHA-512 (Communication 1.5.2): genuine parts are accepted and
    served, a part with other bytes is refused."""
    for algorithm in ("sha384", "sha512"):
        content = f"a {algorithm} attachment ".encode() + secrets.token_bytes(8)
        sha2 = hashlib.new(algorithm, content).hexdigest()
        good = statement(id=new_id(), attachments=[attachment(content, sha2=sha2)])
        assert post(server, None, multipart(good, [(sha2, content)])).status_code == 200
        assert content in read(server, None, good["id"]).content
        bad = statement(id=new_id(), attachments=[attachment(content, sha2=sha2)])
        refused = post(server, None, multipart(bad, [(sha2, content + b"!")]))
        assert (refused.status_code, refused.json()["error"]) == (400, "attachment_hash_mismatch")


def test_naming_a_sha2_does_not_read_another_credentials_bytes(
    server: Server, learners: dict[str, dict[str, Any]]
) -> None:
    """The attacker's own statement declares the victim's attachment sha2 with only a fileUrl
    (accepted: xAPI allows it) and reads it back with attachments=true, singly and in a list:
    no victim bytes. The victim still reads its own; the full key KA reads them with the
    victim's statement, and not with the attacker's."""
    secret = b"the victim's private transcript " + secrets.token_bytes(16)
    sha2 = hashlib.sha256(secret).hexdigest()
    victim = statement(id=new_id(), attachments=[attachment(secret)])
    assert post(server, learners["victim"], multipart(victim, [(sha2, secret)])).status_code == 200
    claim = statement(id=new_id(), attachments=[attachment(secret, fileUrl="http://example.com/anything")])
    stored = xapi(server, "POST", "/statements", learners["attacker"], json=claim)
    assert stored.status_code == 200, stored.text
    assert secret not in read(server, learners["attacker"], claim["id"]).content
    listed = xapi(server, "GET", "/statements", learners["attacker"], params={"attachments": "true", "limit": "50"})
    assert listed.status_code == 200
    assert claim["id"].encode() in listed.content
    assert secret not in listed.content
    assert secret in read(server, learners["victim"], victim["id"]).content
    assert secret in read(server, None, victim["id"]).content
    assert secret not in read(server, None, claim["id"]).content


def test_a_writer_is_served_what_it_supplied(server: Server, learners: dict[str, dict[str, Any]]) -> None:
    """Conformance behaviour kept: in one batch, a second statement may name the sha2 of a part
    the first supplied, and both are served it; a later fileUrl-only statement of the same
    writer is served the bytes that writer sent before."""
    key = learners["attacker"]
    content = b"shared within one batch " + secrets.token_bytes(8)
    sha2 = hashlib.sha256(content).hexdigest()
    first = statement(id=new_id(), attachments=[attachment(content)])
    second = statement(id=new_id(), attachments=[attachment(content)])
    assert post(server, key, multipart([first, second], [(sha2, content)])).status_code == 200
    for sid in (first["id"], second["id"]):
        assert content in read(server, key, sid).content
    later = statement(id=new_id(), attachments=[attachment(content, fileUrl="http://example.com/f")])
    assert xapi(server, "POST", "/statements", key, json=later).status_code == 200
    assert content in read(server, key, later["id"]).content
