"""Connected integrations: the grants a tenant's admins approved, as the console lists them.

"Last used" is when the grant last had a token issued (a code exchange or a refresh): the
bearer check stays a read, so using a token writes nothing; a token lives minutes, so this
is within one access-token lifetime of the integration's last call.

Service-account grants (``client_credentials``: no approving admin, one per token) are not
listed: the inner join on the approving account leaves them out; the Integrations page is where
such a client is disabled, which ends all its tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openxp.store.db import Connection

LIMIT = 500


@dataclass(frozen=True)
class ConnectedGrant:
    grant_id: int
    client_id: str
    client_name: str
    approved_by: str
    scope: str
    created_at: float
    expires_at: float
    last_used_at: float | None
    revoked_at: float | None
    revoked_reason: str | None


_SELECT = """
    SELECT g.id AS grant_id, c.client_id, c.name AS client_name, a.email AS approved_by, g.scope,
           g.created_at, g.expires_at, g.revoked_at, g.revoked_reason,
           (SELECT MAX(x.created_at) FROM access_tokens x WHERE x.grant_id = g.id) AS last_used_at
    FROM grants g
    JOIN clients c ON c.id = g.client_pk
    JOIN accounts a ON a.id = g.account_id
    WHERE g.tenant_id = $1"""


def _row(r: Any) -> ConnectedGrant:
    return ConnectedGrant(
        grant_id=r["grant_id"],
        client_id=r["client_id"],
        client_name=r["client_name"],
        approved_by=r["approved_by"],
        scope=r["scope"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        last_used_at=r["last_used_at"],
        revoked_at=r["revoked_at"],
        revoked_reason=r["revoked_reason"],
    )


async def list_for_tenant(conn: Connection, tenant_id: int, *, include_revoked: bool = False) -> list[ConnectedGrant]:
    """Newest first; revoked grants only when asked (they stay for their history)."""
    where = "" if include_revoked else " AND g.revoked_at IS NULL"
    rows = await conn.fetch_all(f"{_SELECT}{where} ORDER BY g.id DESC LIMIT {LIMIT}", tenant_id)
    return [_row(r) for r in rows]


async def find(conn: Connection, tenant_id: int, grant_id: int) -> ConnectedGrant | None:
    """A grant of this tenant; another tenant's is not found (the console answers 404)."""
    row = await conn.fetch_one(f"{_SELECT} AND g.id = $2", tenant_id, grant_id)
    return _row(row) if row else None
