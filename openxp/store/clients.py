"""OAuth clients (integrations), registered per tenant by an operator."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import delete, insert, select, update

from openxp import crypto, scopes
from openxp.store import grants as grant_store
from openxp.store import scope_lists
from openxp.store.db import Connection, now
from openxp.store.errors import Invalid, NotFound
from openxp.store.models import clients

GRANT_TYPES = ("authorization_code", "refresh_token")
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
) -> tuple[Client, str | None]:
    """Register a client; returns it with its secret, shown this once."""
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("a client name must be 1 to 200 characters")
    if not redirect_uris:
        raise Invalid("register at least one redirect URI")
    uris = [validate_redirect_uri(u) for u in redirect_uris]
    allowed = scope_lists.validate(allowed_scopes or [scopes.ALL])
    defaults = scope_lists.validate(default_scopes or allowed)
    if not set(defaults) <= set(allowed):
        raise Invalid("default scopes must be among the allowed scopes")
    grant_list = grant_types or list(GRANT_TYPES)
    if any(g not in GRANT_TYPES for g in grant_list) or "authorization_code" not in grant_list:
        raise Invalid(f"grant types must include authorization_code and be among {', '.join(GRANT_TYPES)}")
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
    )
    return client, secret


async def find(conn: Connection, client_id: str) -> Client | None:
    row = (await conn.execute(select(clients).where(clients.c.client_id == client_id))).first()
    return _client(row._mapping) if row else None


async def find_active(conn: Connection, client_id: str) -> tuple[Client, bool] | None:
    """The client a token request names, and whether it may act now (neither it nor its
    tenant disabled): one look-up on the hot path."""
    row = await conn.fetch_one(
        "SELECT c.id, c.client_id, c.tenant_id, c.name, c.secret_hash, c.confidential, c.require_pkce,"
        " c.redirect_uris, c.scopes, c.default_scopes, c.grant_types, c.disabled, t.disabled AS tenant_disabled"
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
    await conn.execute(delete(clients).where(clients.c.id == client.id))


def secret_matches(client: Client | None, presented: str) -> bool:
    """Constant time, and the same work whether or not the client exists."""
    stored = client.secret_hash if client is not None and client.secret_hash else crypto.DUMMY_DIGEST
    matched = crypto.equals(crypto.digest(presented), stored)
    return matched and client is not None and client.secret_hash is not None
