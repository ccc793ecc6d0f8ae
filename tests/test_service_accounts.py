"""Service accounts: the client credentials grant (RFC 6749 4.4) over HTTP against the real server.

A client registered with ``--grant-type client_credentials`` only (no redirect URI) gets an
access token and no refresh token; that token works on /api (with X-CXP-Tenant) and /xapi like an
admin-approved one, within the client's allowed scopes, and statements it writes carry the client
as their authority. Introspection, revocation, metadata, client authentication, tenant binding
and disabling behave as for the other grants. Catalogue ids: E-13 (grant type not allowed for the
client), F-09 (grant_type handling), F-11 (client authentication), G-* (bearer check), I-01
(tenant binding), K-* (revocation, introspection, metadata), E-10 (security events end tokens),
E-12 (stored as digests).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from tests.support.asserts import assert_dead_token, assert_token_error
from tests.support.flow import api, refresh_body, token_post
from tests.support.records import digest, wait_for_audit
from tests.support.server import Server

XAPI_VERSION = {"X-Experience-API-Version": "1.0.3"}
SCOPED = ("statements/write", "actors/read")


def service_account(server: Server, label: str, *scopes: str) -> dict[str, Any]:
    """`openxp client create --grant-type client_credentials` in tenant a; the CLI's JSON."""
    args = ["client", "create", "--tenant", "a", "--name", f"Service {label}", "--grant-type", "client_credentials"]
    for scope in scopes:
        args += ["--scope", scope]
    created = server.cli_json(*args)
    server.clients[f"svc-{label}-{created['client_id']}"] = created
    return created


@pytest.fixture(scope="module")
def svc(server: Server) -> dict[str, Any]:
    return service_account(server, "all")


@pytest.fixture(scope="module")
def scoped(server: Server) -> dict[str, Any]:
    return service_account(server, "scoped", *SCOPED)


def cc_token(server: Server, client: dict[str, Any], *, form: bool = False, **extra: str) -> httpx.Response:
    """grant_type=client_credentials with client_secret_post (JSON body, or a form body)."""
    body = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        **extra,
    }
    return token_post(server, data=body) if form else token_post(server, json=body)


def issued(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers.get("cache-control") == "no-store"
    body: dict[str, Any] = response.json()
    assert body["access_token"].startswith("cxa_")
    assert body["token_type"].lower() == "bearer"
    assert body["expires_in"] == 3600
    assert "refresh_token" not in body
    return body


def statement(actor_email: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "mbox": f"mailto:{actor_email}"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
        "object": {"objectType": "Activity", "id": "https://courses.example.com/onboarding"},
    }


# ---- registration ---------------------------------------------------------------------------------


def test_service_account_registration_prints_the_contract_shape(svc: dict[str, Any]) -> None:
    """`client create --grant-type client_credentials` needs no redirect URI and prints
    `"redirect_uris": [], "grant_types": ["client_credentials"]` with a secret."""
    assert svc["redirect_uris"] == []
    assert svc["grant_types"] == ["client_credentials"]
    assert svc["confidential"] is True and svc["client_secret"]
    assert svc["tenant"] == "a"


def test_registration_refuses_what_a_service_account_cannot_be(server: Server) -> None:
    """Only confidential clients act for themselves (RFC 6749 4.4); a service account is never
    redirected; the seed's flow still needs a redirect URI; refresh_token comes with a code flow."""
    base = ["client", "create", "--tenant", "a", "--name", "Refused"]
    cases = [
        (["--grant-type", "client_credentials", "--public"], "confidential"),
        (["--grant-type", "client_credentials", "--redirect-uri", "https://svc.a.test/cb"], "redirect URI"),
        ([], "redirect URI"),
        (["--grant-type", "client_credentials", "--grant-type", "refresh_token"], "refresh_token"),
        (["--grant-type", "password", "--redirect-uri", "https://svc.a.test/cb"], "unknown grant type"),
    ]
    for extra, message in cases:
        result = server.cli(*base, *extra, "--json", check=False)
        assert result.returncode != 0, (extra, result.stdout)
        assert message in result.stderr, (extra, result.stderr)
        assert "Traceback" not in result.stderr


def test_metadata_lists_the_grant(server: Server) -> None:
    """K (metadata, RFC 8414): grant_types_supported names client_credentials beside the others."""
    meta = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server", timeout=30).json()
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}


# ---- the grant --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_calls_api_and_xapi(server: Server, svc: dict[str, Any], method: str) -> None:
    """Authlib's httpx OAuth2Client, unchanged, fetches a client_credentials token (either client
    authentication method) and calls /api with X-CXP-Tenant and /xapi; the statement's authority is
    the client, as for an admin-approved token."""
    with OAuth2Client(svc["client_id"], svc["client_secret"], token_endpoint_auth_method=method) as client:
        token = client.fetch_token(f"{server.base_url}/auth/oauth/token", grant_type="client_credentials")
        assert token["access_token"].startswith("cxa_") and "refresh_token" not in token
        assert token["scope"] == "all"
        tenant = {"X-CXP-Tenant": "a"}
        listed = client.get(f"{server.base_url}/api/actors", headers=tenant)
        assert listed.status_code == 200, listed.text
        imported = client.post(f"{server.base_url}/api/import/users", json={"users": []}, headers=tenant)
        assert imported.status_code == 200, imported.text
        sent = statement("service-learner@example.com")
        stored = client.post(f"{server.base_url}/xapi/statements", json=sent, headers={**tenant, **XAPI_VERSION})
        assert stored.status_code == 200, stored.text
        assert stored.json() == [sent["id"]]
        read = client.get(
            f"{server.base_url}/xapi/statements", params={"statementId": sent["id"]}, headers={**tenant, **XAPI_VERSION}
        )
        assert read.status_code == 200, read.text
        authority = read.json()["authority"]
        assert authority["account"] == {"homePage": server.base_url, "name": svc["client_id"]}


def test_json_and_form_bodies(server: Server, svc: dict[str, Any]) -> None:
    """The grant takes a JSON body (as the seed's token requests) and an RFC 6749 form body."""
    for form in (False, True):
        body = issued(cc_token(server, svc, form=form))
        assert api(server, body["access_token"]).status_code == 200


def test_no_refresh_token_and_no_refresh_grant(server: Server, svc: dict[str, Any]) -> None:
    """RFC 6749 4.4.3: no refresh token is issued; E-13: a refresh attempt by a client without the
    refresh_token grant is unauthorized_client, whatever it presents."""
    body = issued(cc_token(server, svc))
    assert "refresh_token" not in body
    refreshed = token_post(
        server,
        json={
            "grant_type": "refresh_token",
            "client_id": svc["client_id"],
            "client_secret": svc["client_secret"],
            "refresh_token": "cxr_" + "x" * 43,
        },
    )
    assert_token_error(refreshed, 400, "unauthorized_client")
    rows = server.sql(
        "SELECT count(*) FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN clients c ON c.id = g.client_pk"
        " WHERE c.client_id = :c",
        {"c": svc["client_id"]},
    )
    assert rows[0][0] == 0


def test_unauthorized_client(server: Server) -> None:
    """E-13 / F-09: a client not registered for client_credentials (the seed's c1, the public cp,
    the code-only cnr) gets unauthorized_client and no token."""
    for label in ("c1", "cp", "cnr"):
        client = server.clients[label]
        body = {"grant_type": "client_credentials", "client_id": client["client_id"]}
        if client.get("client_secret"):
            body["client_secret"] = client["client_secret"]
        assert_token_error(token_post(server, json=body), 400, "unauthorized_client")


def test_client_authentication_rules(server: Server, svc: dict[str, Any]) -> None:
    """F-11: a wrong secret, no secret, or an unknown id: 401 invalid_client (Basic: with a challenge)."""
    wrong = {"grant_type": "client_credentials", "client_id": svc["client_id"], "client_secret": "not-it"}
    assert_token_error(token_post(server, json=wrong), 401, "invalid_client")
    missing = {"grant_type": "client_credentials", "client_id": svc["client_id"]}
    assert_token_error(token_post(server, json=missing), 401, "invalid_client")
    unknown = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}
    assert_token_error(token_post(server, json=unknown), 401, "invalid_client")
    basic = token_post(server, data={"grant_type": "client_credentials"}, auth=(svc["client_id"], "not-it"))
    assert_token_error(basic, 401, "invalid_client")
    assert basic.headers.get("www-authenticate", "").startswith("Basic")


def test_scope_rules(server: Server, scoped: dict[str, Any]) -> None:
    """No scope asked: the client's allowed scopes. A subset: exactly that, and the token holds no
    more (403 on what it lacks). Anything beyond the allowed scopes, or unknown: invalid_scope."""
    everything = issued(cc_token(server, scoped))
    assert everything["scope"].split() == list(SCOPED)
    narrow = issued(cc_token(server, scoped, scope="actors/read"))
    assert narrow["scope"] == "actors/read"
    token = narrow["access_token"]
    assert api(server, token, method="GET", path="/api/actors").status_code == 200
    refused = api(server, token)  # POST /api/import/users needs users/import
    assert refused.status_code == 403, refused.text
    for scope in ("users/import", "all", "actors/read bogus"):
        assert_token_error(cc_token(server, scoped, scope=scope), 400, "invalid_scope")


def test_tenant_binding(server: Server, svc: dict[str, Any]) -> None:
    """I-01: the token belongs to its client's tenant: X-CXP-Tenant b is 403 tenant_mismatch, none is 400."""
    token = issued(cc_token(server, svc))["access_token"]
    mismatch = api(server, token, tenant="b")
    assert mismatch.status_code == 403 and mismatch.json()["error"] == "tenant_mismatch", mismatch.text
    assert api(server, token, tenant=None).status_code == 400


def test_introspection_and_revocation(server: Server, svc: dict[str, Any]) -> None:
    """K: the client introspects its token (active, the client as subject, its tenant); another
    client sees it inactive; revoking it (RFC 7009) ends it on /api and in introspection."""
    token = issued(cc_token(server, svc))["access_token"]
    own = (svc["client_id"], svc["client_secret"])
    introspect_url = f"{server.base_url}/auth/oauth/introspect"
    info = httpx.post(introspect_url, data={"token": token}, auth=own, timeout=30).json()
    assert info["active"] is True
    assert info["client_id"] == svc["client_id"] and info["sub"] == svc["client_id"]
    assert info["tenant"] == "a" and info["scope"] == "all" and info["token_type"] == "bearer"
    c1 = server.clients["c1"]
    other = httpx.post(introspect_url, data={"token": token}, auth=(c1["client_id"], c1["client_secret"]), timeout=30)
    assert other.json() == {"active": False}
    revoked = httpx.post(f"{server.base_url}/auth/oauth/revoke", data={"token": token}, auth=own, timeout=30)
    assert revoked.status_code == 200
    assert_dead_token(server, token)
    assert httpx.post(introspect_url, data={"token": token}, auth=own, timeout=30).json() == {"active": False}


def test_each_token_is_its_own_grant_stored_as_a_digest(server: Server, svc: dict[str, Any]) -> None:
    """E-12: only the digest is stored; the grant has no account (a service grant), and revoking
    one service token leaves the client's other tokens working."""
    first = issued(cc_token(server, svc))["access_token"]
    second = issued(cc_token(server, svc))["access_token"]
    rows = server.sql(
        "SELECT g.account_id, g.id FROM access_tokens x JOIN grants g ON g.id = x.grant_id WHERE x.token_hash = :h",
        {"h": digest(first)},
    )
    assert len(rows) == 1 and rows[0][0] is None
    assert server.sql("SELECT count(*) FROM access_tokens WHERE token_hash = :t", {"t": first})[0][0] == 0
    own = (svc["client_id"], svc["client_secret"])
    httpx.post(f"{server.base_url}/auth/oauth/revoke", data={"token": first}, auth=own, timeout=30)
    assert_dead_token(server, first)
    assert api(server, second).status_code == 200


def test_audited_as_the_client(server: Server, svc: dict[str, Any]) -> None:
    """P-01: `token_issued` with via=client_credentials names the client and tenant; no token in the log."""
    token = issued(cc_token(server, svc))["access_token"]
    grant_id = server.sql(
        "SELECT grant_id FROM access_tokens WHERE token_hash = :h", {"h": digest(token)}
    )[0][0]  # fmt: skip
    event = wait_for_audit(server, "token_issued", lambda e: e.get("grant") == grant_id)
    assert event["via"] == "client_credentials"
    assert event["client_id"] == svc["client_id"] and event["tenant"] == "a"
    assert token not in server.log() and svc["client_secret"] not in server.log()


def test_disabling_the_client_ends_its_tokens(server: Server) -> None:
    """E-10: `client disable` revokes every grant of the client, service grants included; a disabled
    client gets no new token (invalid_client)."""
    doomed = service_account(server, "doomed")
    token = issued(cc_token(server, doomed))["access_token"]
    assert api(server, token).status_code == 200
    server.cli("client", "disable", "--tenant", "a", doomed["client_id"])
    assert_dead_token(server, token)
    assert_token_error(cc_token(server, doomed), 401, "invalid_client")


def test_the_library_sees_unauthorized_client(server: Server) -> None:
    """Authlib's client, unchanged, surfaces unauthorized_client for a code-flow client."""
    c1 = server.clients["c1"]
    with OAuth2Client(c1["client_id"], c1["client_secret"]) as client, pytest.raises(OAuthError) as refused:
        client.fetch_token(f"{server.base_url}/auth/oauth/token", grant_type="client_credentials")
    assert refused.value.error == "unauthorized_client"


def test_service_account_never_refreshes_someone_elses_token(server: Server, svc: dict[str, Any]) -> None:
    """E-05 (binding) from the service side: a service account presenting any refresh token is
    refused before a token is looked at."""
    body = refresh_body(server, "cxr_" + "y" * 43, "c1") | {
        "client_id": svc["client_id"],
        "client_secret": svc["client_secret"],
    }
    assert_token_error(token_post(server, json=body), 400, "unauthorized_client")
