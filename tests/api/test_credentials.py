"""Basic API keys on /api and ClearXP's short-lived credentials (POST /api/auth/basic).

SECURITY.md H-07 (what an API key may do), H-10 (deprecation headers), I-11
(tenants), and section J for the short-lived credentials that content launch
builds on: confinement to the bound actor (J-03), storage as a digest (J-05),
expiry (J-02) and revocation (J-06).
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from typing import Any

import httpx
import pytest

from tests.support.flow import api, tokens
from tests.support.records import digest
from tests.support.server import Server
from tests.xapi.lrs import VERSION, statement

LEARNER = {"objectType": "Agent", "mbox": "mailto:short-lived@example.com", "name": "Short Lived"}
OTHER = {"objectType": "Agent", "mbox": "mailto:someone-else@example.com"}


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def key_auth(server: Server, label: str = "KA") -> str:
    return basic(server.apikeys[label]["key"], server.apikeys[label]["secret"])


def call(
    server: Server, method: str, path: str, authorization: str, tenant: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": authorization, **kwargs.pop("headers", {})}
    if tenant is not None:
        headers["X-CXP-Tenant"] = tenant
    return httpx.request(method, f"{server.base_url}{path}", headers=headers, timeout=30, **kwargs)


def lrs(server: Server, method: str, path: str, authorization: str, **kwargs: Any) -> httpx.Response:
    headers = {**VERSION, **kwargs.pop("headers", {})}
    return call(server, method, f"/xapi{path}", authorization, headers=headers, **kwargs)


def create(server: Server, authorization: str | None = None, **body: Any) -> httpx.Response:
    return call(server, "POST", "/api/auth/basic", authorization or key_auth(server), json=body)


def new_credential(server: Server, actor: dict[str, Any] | None = LEARNER, **extra: Any) -> tuple[str, str]:
    username, password = f"learner-{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    body: dict[str, Any] = {"username": username, "password": password, "ttlMins": 30, **extra}
    if actor is not None:
        body["data"] = {"actor": actor}
    response = create(server, **body)
    assert response.status_code == 200, response.text
    assert response.json() == {"username": username}
    return username, password


def assert_deprecated(response: httpx.Response) -> None:
    assert response.headers["deprecation"] == "@1735689600"
    assert 'rel="deprecation"' in response.headers["link"]


# -- API keys over Basic on /api -----------------------------------------------


def test_H10_api_key_basic_on_api_is_deprecated_but_works(server: Server) -> None:
    """H-10: an API key works as Basic on /api (no X-CXP-Tenant needed), every answer carries
    Deprecation and a Link to the OAuth docs, and the key records when it was last used."""
    ka = server.apikeys["KA"]
    server.sql("UPDATE api_keys SET last_used_at = NULL WHERE key = :k", {"k": ka["key"]})
    listed = call(server, "GET", "/api/actors", key_auth(server))
    assert listed.status_code == 200, listed.text
    assert_deprecated(listed)
    imported = call(server, "POST", "/api/import/users", key_auth(server), json={"users": [], "verify": True})
    assert imported.status_code == 200, imported.text
    assert_deprecated(imported)
    assert server.sql("SELECT last_used_at FROM api_keys WHERE key = :k", {"k": ka["key"]})[0][0] is not None
    # A refusal after a good Basic credential is still a Basic-authenticated answer.
    bad = call(server, "GET", "/api/actors", key_auth(server), params={"limit": "x"})
    assert bad.status_code == 400
    assert_deprecated(bad)


def test_H10_bearer_answers_carry_no_deprecation(server: Server) -> None:
    """H-10: OAuth (the recommended way) answers carry no Deprecation header."""
    response = api(server, tokens(server)["access_token"], method="GET", path="/api/actors")
    assert response.status_code == 200
    assert "deprecation" not in response.headers


def test_H02_wrong_basic_secret_on_api(server: Server) -> None:
    """H-02: a wrong secret or an unknown key on /api answers 401 with the Basic challenge, not deprecated."""
    ka = server.apikeys["KA"]
    for header in (basic(ka["key"], secrets.token_urlsafe(32)), basic(secrets.token_urlsafe(16), "x" * 40)):
        response = call(server, "GET", "/api/actors", header)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == 'Basic realm="openxp"'
        assert response.json()["error"] == "invalid_credentials"
        assert "deprecation" not in response.headers


def test_H07_api_key_scope_and_token_endpoint(server: Server) -> None:
    """H-07: an API key on /api holds only its scopes (403 insufficient_scope beyond them),
    and is no OAuth client at the token endpoint (401 invalid_client)."""
    narrow = server.cli_json("apikey", "create", "--tenant", "a", "--name", "narrow", "--scope", "actors/read")
    header = basic(narrow["key"], narrow["secret"])
    assert call(server, "GET", "/api/actors", header).status_code == 200
    for method, path, body in (
        ("POST", "/api/import/users", {"users": []}),
        ("POST", "/api/auth/basic", {"username": "x", "ttlMins": 5}),
        ("POST", "/api/launch", {}),
    ):
        refused = call(server, method, path, header, json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "insufficient_scope"
    ka = server.apikeys["KA"]
    token = httpx.post(
        f"{server.base_url}/auth/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(ka["key"], ka["secret"]),
        timeout=30,
    )
    assert token.status_code == 401, token.text
    assert token.json()["error"] == "invalid_client"


def test_I11_api_key_with_other_tenant_header(server: Server) -> None:
    """I-11: an API key of tenant a naming tenant b in X-CXP-Tenant is 403 tenant_mismatch; naming a is fine."""
    refused = call(server, "GET", "/api/actors", key_auth(server), tenant="b")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "tenant_mismatch"
    assert call(server, "GET", "/api/actors", key_auth(server), tenant="a").status_code == 200


# -- POST /api/auth/basic ---------------------------------------------------------


def test_J03_short_lived_credential_bound_to_actor(server: Server) -> None:
    """J-03: a credential with data.actor writes statements only as that actor (403 otherwise),
    reads only that actor's statements (another's by id is 404, as if absent: I-04), and
    state/profile documents only for that actor."""
    header = basic(*new_credential(server))
    mine = statement(actor=LEARNER)
    written = lrs(server, "POST", "/statements", header, json=mine)
    assert written.status_code == 200, written.text
    assert "deprecation" not in written.headers
    statement_id = written.json()[0]
    foreign = lrs(server, "POST", "/statements", header, json=statement(actor=OTHER))
    assert foreign.status_code == 403, foreign.text
    assert foreign.json()["error"] == "forbidden_by_credential"
    batch = lrs(server, "POST", "/statements", header, json=[statement(actor=LEARNER), statement(actor=OTHER)])
    assert batch.status_code == 403
    # Reads: only with agent = the bound actor.
    own = lrs(server, "GET", "/statements", header, params={"agent": json.dumps(LEARNER)})
    assert own.status_code == 200
    ids = [s["id"] for s in own.json()["statements"]]
    assert statement_id in ids
    assert all(s["actor"]["mbox"] == LEARNER["mbox"] for s in own.json()["statements"])
    assert lrs(server, "GET", "/statements", header).status_code == 403
    assert lrs(server, "GET", "/statements", header, params={"agent": json.dumps(OTHER)}).status_code == 403
    related = {"agent": json.dumps(LEARNER), "related_agents": "true"}
    assert lrs(server, "GET", "/statements", header, params=related).status_code == 403
    assert lrs(server, "GET", "/statements", header, params={"statementId": statement_id}).status_code == 200
    by_key = lrs(server, "POST", "/statements", key_auth(server), json=statement(actor=OTHER))
    other_id = by_key.json()[0]
    # Another learner's statement by id answers as an unknown id would (I-04; docs/security.md).
    assert lrs(server, "GET", "/statements", header, params={"statementId": other_id}).status_code == 404
    # Documents.
    activity = "http://example.com/activities/short-lived"
    own_state = {"activityId": activity, "agent": json.dumps(LEARNER), "stateId": "s1"}
    assert lrs(server, "PUT", "/activities/state", header, params=own_state, content=b"x").status_code == 204
    assert lrs(server, "GET", "/activities/state", header, params=own_state).content == b"x"
    other_state = {**own_state, "agent": json.dumps(OTHER)}
    assert lrs(server, "PUT", "/activities/state", header, params=other_state, content=b"x").status_code == 403
    assert lrs(server, "GET", "/activities/state", header, params=other_state).status_code == 403
    profile = {"agent": json.dumps(OTHER), "profileId": "p1"}
    assert lrs(server, "GET", "/agents/profile", header, params=profile).status_code == 403
    own_profile = {"agent": json.dumps(LEARNER), "profileId": "p1"}
    body = {"pref": 1}
    assert lrs(server, "POST", "/agents/profile", header, params=own_profile, json=body).status_code == 204
    shared = {"activityId": activity, "profileId": "p1"}
    assert lrs(server, "POST", "/activities/profile", header, params=shared, json=body).status_code == 403
    assert lrs(server, "GET", "/activities/profile", header, params=shared).status_code == 404


def test_J03_short_lived_credentials_are_lrs_only(server: Server) -> None:
    """J-03 / G-10: short-lived credentials hold no ClearXP API scope (403), not even to make more of themselves."""
    header = basic(*new_credential(server, actor=None))
    assert lrs(server, "POST", "/statements", header, json=statement()).status_code == 200
    for method, path, body in (
        ("GET", "/api/actors", None),
        ("POST", "/api/import/users", {"users": []}),
        ("POST", "/api/auth/basic", {"username": "again", "ttlMins": 5}),
    ):
        refused = call(server, method, path, header, json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "insufficient_scope"
    as_bearer = call(server, "GET", "/api/actors", "Bearer " + header.split(" ", 1)[1], tenant="a")
    assert as_bearer.status_code == 401
    assert as_bearer.json()["error"] == "invalid_token"


def test_J05_short_lived_password_stored_as_digest(server: Server) -> None:
    """J-05: only the SHA-256 digest of the password is stored, and the password never reaches the log."""
    username, password = new_credential(server)
    assert lrs(server, "GET", "/statements", basic(username, password), params={"limit": "1"}).status_code == 403
    rows = server.sql("SELECT * FROM short_lived_credentials WHERE username = :u", {"u": username})
    assert len(rows) == 1
    assert digest(password) in [str(v) for v in rows[0]]
    assert all(password not in str(v) for v in rows[0])
    assert password not in server.log()


def test_J02_short_lived_expiry(server: Server) -> None:
    """J-02: a short-lived credential past its expiry answers 401 (Basic challenge)."""
    username, password = new_credential(server)
    header = basic(username, password)
    assert lrs(server, "POST", "/statements", header, json=statement(actor=LEARNER)).status_code == 200
    server.sql("UPDATE short_lived_credentials SET expires_at = 1 WHERE username = :u", {"u": username})
    expired = lrs(server, "POST", "/statements", header, json=statement(actor=LEARNER))
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == 'Basic realm="openxp"'
    # Its name is free again once it is dead.
    assert create(server, username=username, password=password + "x", ttlMins=5).status_code == 200


def test_J06_short_lived_revocation(server: Server) -> None:
    """J-06: DELETE /api/auth/basic/{username} ends the credential at once (401); a second DELETE is 404,
    and another tenant cannot revoke it (I-11)."""
    username, password = new_credential(server)
    header = basic(username, password)
    assert lrs(server, "POST", "/statements", header, json=statement(actor=LEARNER)).status_code == 200
    assert call(server, "DELETE", f"/api/auth/basic/{username}", key_auth(server, "KB")).status_code == 404
    assert lrs(server, "POST", "/statements", header, json=statement(actor=LEARNER)).status_code == 200
    revoked = call(server, "DELETE", f"/api/auth/basic/{username}", key_auth(server))
    assert revoked.status_code == 204, revoked.text
    assert lrs(server, "POST", "/statements", header, json=statement(actor=LEARNER)).status_code == 401
    assert call(server, "DELETE", f"/api/auth/basic/{username}", key_auth(server)).status_code == 404


def test_I11_short_lived_credentials_and_tenants(server: Server) -> None:
    """I-11: a short-lived credential of tenant a naming tenant b is 403 tenant_mismatch; the same username
    may be live in both tenants, each acting in its own."""
    username = f"shared-{secrets.token_hex(4)}"
    pass_a, pass_b = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    assert create(server, username=username, password=pass_a, ttlMins=5).status_code == 200
    assert create(server, key_auth(server, "KB"), username=username, password=pass_b, ttlMins=5).status_code == 200
    a, b = basic(username, pass_a), basic(username, pass_b)
    sid = str(uuid.uuid4())
    assert lrs(server, "PUT", "/statements", a, params={"statementId": sid}, json=statement()).status_code == 204
    assert lrs(server, "GET", "/statements", a, params={"statementId": sid}).status_code == 200
    assert lrs(server, "GET", "/statements", b, params={"statementId": sid}).status_code == 404
    refused = lrs(server, "GET", "/statements", a, params={"limit": "1"}, headers={"X-CXP-Tenant": "b"})
    assert refused.status_code == 403
    assert refused.json()["error"] == "tenant_mismatch"


def test_short_lived_creation_rules(server: Server) -> None:
    """POST /api/auth/basic validates its input: username charset and uniqueness among live credentials
    (409), a password of at least 16 characters or none (then one is generated and returned once),
    ttlMins 1..1440, data.actor an Agent; it needs the launch scope."""
    name = f"rules-{secrets.token_hex(4)}"
    for body, prop in (
        ({"username": "has space", "password": "p" * 16, "ttlMins": 5}, "username"),
        ({"username": "a:b", "password": "p" * 16, "ttlMins": 5}, "username"),
        ({"username": name, "password": "short", "ttlMins": 5}, "password"),
        ({"username": name, "password": "has space " * 2, "ttlMins": 5}, "password"),
        ({"username": name, "password": "p" * 16, "ttlMins": 0}, "ttlMins"),
        ({"username": name, "password": "p" * 16, "ttlMins": 1441}, "ttlMins"),
        ({"username": name, "password": "p" * 16, "ttlMins": "5"}, "ttlMins"),
        ({"username": name, "password": "p" * 16}, "ttlMins"),
        ({"username": name, "password": "p" * 16, "ttlMins": 5, "data": {"actor": {"name": "x"}}}, "data.actor"),
    ):
        response = create(server, **body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"] == "validation_error"
        assert response.json()["body"][0]["property"] == prop
    generated = create(server, username=name, ttlMins=5)
    assert generated.status_code == 200
    password = generated.json()["password"]
    assert len(password) >= 32
    assert lrs(server, "GET", "/statements", basic(name, password), params={"limit": "1"}).status_code == 200
    taken = create(server, username=name, password="p" * 16, ttlMins=5)
    assert taken.status_code == 409
    assert taken.json()["error"] == "username_taken"
    # OAuth clients with the launch scope (here: all) may create them too.
    bearer = api(
        server,
        tokens(server)["access_token"],
        path="/api/auth/basic",
        json={"username": f"oauth-{secrets.token_hex(4)}", "ttlMins": 1},
    )
    assert bearer.status_code == 200, bearer.text
    narrow = tokens(server, "cs")["access_token"]
    refused = api(server, narrow, path="/api/auth/basic", json={"username": "nope", "ttlMins": 1})
    assert refused.status_code == 403


@pytest.mark.parametrize("password", ["with+plus%2Fand:colon!", "p" * 256])
def test_short_lived_password_alphabet(server: Server, password: str) -> None:
    """A client-chosen password of printable ASCII (colons, '+', '%' included) works as sent."""
    username = f"alpha-{secrets.token_hex(4)}"
    assert create(server, username=username, password=password, ttlMins=5).status_code == 200
    assert lrs(server, "GET", "/statements", basic(username, password), params={"limit": "1"}).status_code == 200


def test_whoami_names_the_bearer_tokens_tenant_client_and_scope(server: Server) -> None:
    """GET /api/auth/me answers from the bearer check alone: tenant, kind, client and scope."""
    access = str(tokens(server)["access_token"])
    response = call(server, "GET", "/api/auth/me", f"Bearer {access}", tenant="a")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["tenant"] == "a"
    assert body["kind"] == "oauth"
    assert body["client_id"] == server.clients["c1"]["client_id"]
    assert body["scope"].split()  # the granted scopes, space-separated
    assert "key" not in body


def test_whoami_refuses_what_the_bearer_check_refuses(server: Server) -> None:
    access = str(tokens(server)["access_token"])
    assert call(server, "GET", "/api/auth/me", f"Bearer {access}").status_code == 400  # no tenant named
    assert call(server, "GET", "/api/auth/me", f"Bearer {access}", tenant="b").status_code == 403
    assert call(server, "GET", "/api/auth/me", f"Bearer {access}x", tenant="a").status_code == 401
    assert call(server, "GET", "/api/auth/me", "", tenant="a").status_code == 401


def test_whoami_for_an_api_key_names_the_key_and_is_marked_deprecated(server: Server) -> None:
    response = call(server, "GET", "/api/auth/me", key_auth(server))
    assert response.status_code == 200, response.text
    assert response.json()["key"] == server.apikeys["KA"]["key"]
    assert response.json()["kind"] == "apikey"
    assert response.headers["deprecation"] == "@1735689600"
