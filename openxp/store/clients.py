"""OAuth clients (integrations), registered per tenant by an operator."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import delete, insert, select, update

from openxp import crypto, scopes
from openxp.config import MAX_REFRESH_REUSE_GRACE
from openxp.store import grants as grant_store
from openxp.store import revocations, scope_lists
from openxp.store.db import Connection, now
from openxp.store.errors import Invalid, NotFound
from openxp.store.models import clients

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
# What a client gets when it names none: the seed's flow.
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")
SERVICE_GRANT = "client_credentials"
MAX_REDIRECT_URI_LENGTH = 2000


@dataclass(frozen=True)
class Client:
    id: int
    client_id: str
    tenant_id: int
    name: str
    secret_hash: str | None
    confidential: bool
    require_pkce: bool
    redirect_uris: list[str]
    scopes: list[str]
    default_scopes: list[str]
    grant_types: list[str]
    disabled: bool
    # Seconds a rotated refresh token may be re-presented (a retry); None: the server's default.
    refresh_reuse_grace: int | None = None


def _list(value: Any) -> list[str]:
    # Plain SQL hands JSON columns back as text; SQLAlchemy Core, decoded.
    return list(orjson.loads(value) if isinstance(value, str | bytes) else value)


def _client(r: Any) -> Client:
    """From a Core row's ``_mapping`` or a plain-SQL row."""
    return Client(
        id=r["id"],
        client_id=r["client_id"],
        tenant_id=r["tenant_id"],
        name=r["name"],
        secret_hash=r["secret_hash"],
        confidential=bool(r["confidential"]),
        require_pkce=bool(r["require_pkce"]),
        redirect_uris=_list(r["redirect_uris"]),
        scopes=_list(r["scopes"]),
        default_scopes=_list(r["default_scopes"]),
        grant_types=_list(r["grant_types"]),
        disabled=bool(r["disabled"]),
        refresh_reuse_grace=r["refresh_reuse_grace"],
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_redirect_uri(uri: str) -> str:
    """Registration rules (A-10, A-11): absolute https (http only on loopback), no
    fragment, no user-info, no control characters or spaces."""
    if not uri or len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise Invalid("a redirect URI must be 1 to 2000 characters")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F or ord(ch) > 0x7E for ch in uri) or "\\" in uri:
        raise Invalid(f"redirect URI {uri!r} contains spaces, control or non-ASCII characters")
    parts = urlsplit(uri)
    if parts.scheme not in {"https", "http"}:
        raise Invalid(f"redirect URI {uri!r} must use https (or http on a loopback host)")
    if not uri.startswith(parts.scheme + "://"):
        raise Invalid(f"redirect URI {uri!r} must be written in lower case 'https://host/...' form")
    if "#" in uri:
        raise Invalid(f"redirect URI {uri!r} must not contain a fragment")
    if "@" in parts.netloc or not parts.hostname:
        raise Invalid(f"redirect URI {uri!r} must name a host and carry no user-info")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise Invalid(f"redirect URI {uri!r}: plain http is allowed only for loopback hosts")
    return uri


async def create(
    conn: Connection,
    *,
    tenant_id: int,
    name: str,
    redirect_uris: list[str],
    confidential: bool = True,
    require_pkce: bool = False,
    allowed_scopes: list[str] | None = None,
    default_scopes: list[str] | None = None,
    grant_types: list[str] | None = None,
    refresh_reuse_grace: int | None = None,
) -> tuple[Client, str | None]:
    """Register a client; returns it with its secret, shown this once."""
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("a client name must be 1 to 200 characters")
    grant_list = _grant_types(grant_types, confidential)
    if "authorization_code" in grant_list and not redirect_uris:
        raise Invalid("register at least one redirect URI")
    if "authorization_code" not in grant_list and redirect_uris:
        raise Invalid("a client_credentials client is never redirected: register no redirect URI")
    uris = [validate_redirect_uri(u) for u in redirect_uris]
    allowed = scope_lists.validate(allowed_scopes or [scopes.ALL])
    defaults = scope_lists.validate(default_scopes or allowed)
    if not set(defaults) <= set(allowed):
        raise Invalid("default scopes must be among the allowed scopes")
    _check_reuse_grace(refresh_reuse_grace, grant_list)
    client_id = crypto.random_token(16)
    secret = crypto.new_credential() if confidential else None
    values = dict(
        client_id=client_id,
        tenant_id=tenant_id,
        name=name,
        secret_hash=crypto.digest(secret) if secret else None,
        confidential=confidential,
        require_pkce=require_pkce or not confidential,
        redirect_uris=uris,
        scopes=allowed,
        default_scopes=defaults,
        grant_types=grant_list,
        disabled=False,
        created_at=now(),
        refresh_reuse_grace=refresh_reuse_grace,
    )
    result = await conn.execute(insert(clients).values(**values).returning(clients.c.id))
    row_id = result.scalar_one()
    client = Client(
        id=row_id,
        client_id=client_id,
        tenant_id=tenant_id,
        name=name,
        secret_hash=values["secret_hash"],  # type: ignore[arg-type]
        confidential=confidential,
        require_pkce=bool(values["require_pkce"]),
        redirect_uris=uris,
        scopes=allowed,
        default_scopes=defaults,
        grant_types=grant_list,
        disabled=False,
        refresh_reuse_grace=refresh_reuse_grace,
    )
    return client, secret


def _grant_types(requested: list[str] | None, confidential: bool) -> list[str]:
    """The seed's flow (authorization_code, optionally refresh_token), client_credentials beside
    it, or client_credentials alone (a service account). Only a client that can authenticate
    may act for itself: a public client's id is no secret (RFC 6749 4.4)."""
    grant_list = list(dict.fromkeys(requested or DEFAULT_GRANT_TYPES))
    unknown = [g for g in grant_list if g not in GRANT_TYPES]
    if unknown:
        raise Invalid(f"unknown grant type {unknown[0]!r}; grant types are {', '.join(GRANT_TYPES)}")
    if SERVICE_GRANT in grant_list and not confidential:
        raise Invalid("client_credentials needs a confidential client (one with a secret), not --public")
    if "authorization_code" not in grant_list and grant_list != [SERVICE_GRANT]:
        raise Invalid("refresh_token comes with authorization_code; a service account has client_credentials only")
    return grant_list


def _check_reuse_grace(grace: int | None, grant_list: list[str]) -> None:
    if grace is None:
        return
    if not 0 <= grace <= MAX_REFRESH_REUSE_GRACE:
        raise Invalid(f"the refresh reuse grace must be 0 to {MAX_REFRESH_REUSE_GRACE} seconds")
    if "refresh_token" not in grant_list:
        raise Invalid("a refresh reuse grace needs the refresh_token grant")


async def find(conn: Connection, client_id: str) -> Client | None:
    row = (await conn.execute(select(clients).where(clients.c.client_id == client_id))).first()
    return _client(row._mapping) if row else None


async def find_active(conn: Connection, client_id: str) -> tuple[Client, bool] | None:
    """The client a token request names, and whether it may act now (neither it nor its
    tenant disabled): one look-up on the hot path."""
    row = await conn.fetch_one(
        "SELECT c.id, c.client_id, c.tenant_id, c.name, c.secret_hash, c.confidential, c.require_pkce,"
        " c.redirect_uris, c.scopes, c.default_scopes, c.grant_types, c.disabled, c.refresh_reuse_grace,"
        " t.disabled AS tenant_disabled"
        " FROM clients c JOIN tenants t ON t.id = c.tenant_id WHERE c.client_id = $1",
        client_id,
    )
    if row is None:
        return None
    return _client(row), not (row["disabled"] or row["tenant_disabled"])


async def find_by_pk(conn: Connection, client_pk: int) -> Client | None:
    row = (await conn.execute(select(clients).where(clients.c.id == client_pk))).first()
    return _client(row._mapping) if row else None


async def get(conn: Connection, client_id: str, tenant_id: int | None = None) -> Client:
    client = await find(conn, client_id)
    if client is None or (tenant_id is not None and client.tenant_id != tenant_id):
        raise NotFound(f"no client {client_id!r} in this tenant")
    return client


async def list_for_tenant(conn: Connection, tenant_id: int) -> list[Client]:
    rows = (await conn.execute(select(clients).where(clients.c.tenant_id == tenant_id).order_by(clients.c.id))).all()
    return [_client(r._mapping) for r in rows]


async def set_disabled(conn: Connection, client: Client, disabled: bool) -> None:
    await conn.execute(update(clients).where(clients.c.id == client.id).values(disabled=disabled))
    if disabled:
        await grant_store.revoke_grants_of_client(conn, client.id, "client_disabled")


async def rotate_secret(conn: Connection, client: Client, revoke_tokens: bool = False) -> str:
    if not client.confidential:
        raise Invalid("a public client has no secret")
    secret = crypto.new_credential()
    await conn.execute(
        update(clients)
        .where(clients.c.id == client.id)
        .values(secret_hash=crypto.digest(secret), secret_rotated_at=now())
    )
    if revoke_tokens:
        await grant_store.revoke_grants_of_client(conn, client.id, "secret_rotated")
    return secret


async def delete_client(conn: Connection, client: Client) -> None:
    revocations.ended()
    await conn.execute(delete(clients).where(clients.c.id == client.id))


def secret_matches(client: Client | None, presented: str) -> bool:
    """Constant time, and the same work whether or not the client exists."""
    stored = client.secret_hash if client is not None and client.secret_hash else crypto.DUMMY_DIGEST
    matched = crypto.equals(crypto.digest(presented), stored)
    return matched and client is not None and client.secret_hash is not None
