"""RFC 6749 4.1.1-4.1.2: validating the authorization request, and issuing the code once the
request is approved.

Order matters (RFC 6749 4.1.2.1, RFC 9700 4.11.2): the client and the redirect
URI are checked first and, if either is wrong, the user sees our own error page
and is never redirected. Only after both are good may other errors travel back
to the (registered) redirect URI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from openxp import crypto, scopes, wire
from openxp.config import Settings
from openxp.errors import OpenXPError
from openxp.oauth import errors as oauth_errors
from openxp.oauth import rfc7636
from openxp.oauth.errors import (
    InvalidRequest,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from openxp.store import clients as client_store
from openxp.store import grants as grant_store
from openxp.store import tenants as tenant_store
from openxp.store.accounts import Account
from openxp.store.clients import Client
from openxp.store.db import Connection
from openxp.store.sessions import Interaction

MAX_STATE_LENGTH = 4096
# Every client_id we issue is 1..64 characters of the URL-safe alphabet; anything
# else names no client and never reaches the database (a NUL breaks PostgreSQL).
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class InvalidAuthorizationRequest(OpenXPError):
    """The client or redirect URI cannot be trusted: show an error page, never redirect."""

    code = "invalid_request"


class AuthorizationError(OpenXPError):
    """``error`` to send back to the client's registered redirect URI (RFC 6749 4.1.2.1)."""

    status = 302

    def __init__(self, error: OAuthError, redirect_uri: str, state: str | None) -> None:
        super().__init__(error.description, detail=error.detail)
        self.code = error.code
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True)
class AuthorizationRequest:
    client: Client
    tenant: str
    redirect_uri: str
    scope: list[str]
    state: str | None
    code_challenge: str | None


def redirect_to(redirect_uri: str, params: dict[str, str]) -> str:
    """Append parameters to a registered URI, keeping its own query (RFC 6749 3.1.2)."""
    query = urlencode(params, quote_via=quote, safe="")
    return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"


def error_redirect(err: AuthorizationError, issuer: str) -> str:
    params = oauth_errors.body(err)
    if err.state is not None:
        params["state"] = err.state
    params["iss"] = issuer
    return redirect_to(err.redirect_uri, params)


def _one(pairs: list[tuple[str, str]], name: str) -> tuple[int, str | None]:
    values = [v for k, v in pairs if k == name]
    return len(values), (values[0] if values else None)


def _optional(value: str | None) -> str | None:
    # RFC 6749 3.1: a parameter sent without a value is treated as omitted.
    return value if value else None


async def validate(conn: Connection, raw_query: bytes) -> AuthorizationRequest:
    try:
        pairs = wire.parse_query(raw_query)
    except wire.WireError as exc:
        raise InvalidAuthorizationRequest(f"The request is malformed: {exc}.") from None

    count, client_id = _one(pairs, "client_id")
    if count > 1:
        raise InvalidAuthorizationRequest("client_id was sent more than once.")
    if not client_id:
        raise InvalidAuthorizationRequest("The request names no client (client_id is missing).")
    client = await client_store.find(conn, client_id) if _CLIENT_ID.fullmatch(client_id) else None
    tenant = await tenant_store.get_by_id(conn, client.tenant_id) if client else None
    if client is None or tenant is None or client.disabled or tenant.disabled:
        raise InvalidAuthorizationRequest("The client is unknown or disabled.")

    count, redirect_uri = _one(pairs, "redirect_uri")
    if count > 1:
        raise InvalidAuthorizationRequest("redirect_uri was sent more than once.")
    if not redirect_uri:
        raise InvalidAuthorizationRequest("redirect_uri is required.")
    # Byte-for-byte: no normalisation, no prefix match, no case folding.
    if not any(redirect_uri == registered for registered in client.redirect_uris):
        raise InvalidAuthorizationRequest("The redirect_uri is not registered for this client.")

    state_count, state = _one(pairs, "state")
    state = _optional(state) if state_count == 1 else None

    def fail(error: OAuthError) -> AuthorizationError:
        return AuthorizationError(error, redirect_uri, state)

    for name, value in pairs:
        if sum(1 for k, _ in pairs if k == name) > 1:
            raise fail(InvalidRequest(f"parameter {name} was sent more than once"))
        if wire.contains_surrogates(value):
            raise fail(InvalidRequest(f"parameter {name} is not valid UTF-8"))
        if "\x00" in value:
            # Text columns cannot hold NUL on PostgreSQL; no legitimate value has one.
            raise fail(InvalidRequest(f"parameter {name} contains a NUL character"))
    if state is not None and len(state) > MAX_STATE_LENGTH:
        raise AuthorizationError(
            InvalidRequest(f"state is longer than {MAX_STATE_LENGTH} characters"), redirect_uri, None
        )

    params = dict(pairs)
    response_type = _optional(params.get("response_type"))
    if response_type is None:
        raise fail(InvalidRequest("response_type is required"))
    if response_type != "code":
        raise fail(UnsupportedResponseType("only response_type=code is supported"))
    response_mode = _optional(params.get("response_mode"))
    if response_mode not in (None, "query"):
        raise fail(InvalidRequest("only response_mode=query is supported"))
    if "authorization_code" not in client.grant_types:
        raise fail(UnauthorizedClient("this client may not use the authorization code grant"))

    requested = scopes.parse(params.get("scope", ""))
    if not requested:
        granted = list(client.default_scopes)
    else:
        unknown = [s for s in requested if s not in scopes.SCOPES or not scopes.permits(client.scopes, s)]
        if unknown:
            raise fail(InvalidScope("scope not allowed for this client: " + " ".join(unknown)))
        granted = requested

    try:
        challenge = rfc7636.validate_challenge(
            _optional(params.get("code_challenge")),
            _optional(params.get("code_challenge_method")),
            required=client.require_pkce or not client.confidential,
        )
    except OAuthError as exc:
        raise fail(exc) from None

    return AuthorizationRequest(client, tenant.name, redirect_uri, granted, state, challenge)


@dataclass(frozen=True)
class IssuedCode:
    grant_id: int
    redirect: str  # the client's redirect URI with code, state and iss


async def issue_code(
    conn: Connection, approved: Interaction, client: Client, account: Account, settings: Settings
) -> IssuedCode:
    """RFC 6749 4.1.2: the account approved the stored request (its scopes as validated at the
    authorization endpoint): record the grant and a one-time code bound to the request's
    redirect URI and PKCE challenge, in the caller's transaction. Only the code's digest is
    stored; the code itself travels once, in the redirect (RFC 9207 adds ``iss``)."""
    grant_id = await grant_store.create_grant(
        conn,
        tenant_id=client.tenant_id,
        client_pk=client.id,
        account_id=account.id,
        scope=approved.scope,
        lifetime=settings.refresh_absolute_ttl,
    )
    code = crypto.random_token(32)
    await grant_store.store_code(
        conn,
        code_hash=crypto.digest(code),
        grant_id=grant_id,
        redirect_uri=approved.redirect_uri,
        code_challenge=approved.code_challenge,
        ttl=settings.code_ttl,
    )
    params = {"code": code}
    if approved.state is not None:
        params["state"] = approved.state
    params["iss"] = settings.issuer
    return IssuedCode(grant_id, redirect_to(approved.redirect_uri, params))
