"""Pre-issue what the openxp targets spend: codes, refresh tokens, access tokens.

Written straight into a fresh database before the server starts. The tenant,
admin and client come from openxp's repositories; the first code and the first
refresh token from the store functions the server itself uses
(``create_grant`` + ``store_code``, ``create_grant`` + ``issue_tokens``).
Tens of thousands more are needed, and one call per row runs at ~700 rows/s on
the benchmark machine, so the rest are inserted in batches into the same
tables with the same column values those functions write (checked against the
first rows by ``_same_shape``). Each code and each refresh token has its own
grant, as after real authorizations. The plaintext values go to files, one per
line, for the wrk script (bench/tokens.lua).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from openxp import crypto, scopes
from openxp.store import Database
from openxp.store import accounts as account_store
from openxp.store import clients as client_store
from openxp.store import grants as grant_store
from openxp.store import tenants as tenant_store
from openxp.store.db import now
from openxp.store.migrate import upgrade
from openxp.store.models import access_tokens, authorization_codes, grants, refresh_tokens

TENANT = "bench"
REDIRECT_URI = "https://app.bench.test/cb"
CODE_TTL = 24 * 3600  # longer than any run: no code expires mid-measurement
GRANT_LIFETIME = 365 * 24 * 3600
ACCESS_TTL = 3600
REFRESH_TTL = 30 * 24 * 3600
BATCH = 5000  # rows per statement while seeding


@dataclass(frozen=True)
class Seeded:
    tenant: str
    client_id: str
    client_secret: str
    redirect_uri: str
    service_id: str  # a service account: the client_credentials grant only
    service_secret: str
    codes: Path
    refresh: Path
    access: Path


@dataclass(frozen=True)
class _Owner:
    tenant_id: int
    client_pk: int
    account_id: int
    scope: str


async def _grant(conn: AsyncConnection, owner: _Owner) -> int:
    return await grant_store.create_grant(
        conn,
        tenant_id=owner.tenant_id,
        client_pk=owner.client_pk,
        account_id=owner.account_id,
        scope=owner.scope,
        lifetime=GRANT_LIFETIME,
    )


async def _issue(conn: AsyncConnection, owner: _Owner, grant_id: int, refresh: str | None) -> str:
    access = crypto.new_credential(crypto.ACCESS_TOKEN_PREFIX)
    await grant_store.issue_tokens(
        conn,
        grant_id=grant_id,
        access_hash=crypto.digest(access),
        access_scope=owner.scope,
        access_ttl=ACCESS_TTL,
        refresh_hash=crypto.digest(refresh) if refresh else None,
        refresh_ttl=REFRESH_TTL,
        refresh_limit=now() + GRANT_LIFETIME,
    )
    return access


async def _bulk_grants(conn: AsyncConnection, owner: _Owner, n: int) -> list[int]:
    t = now()
    row = dict(
        tenant_id=owner.tenant_id,
        client_pk=owner.client_pk,
        account_id=owner.account_id,
        scope=owner.scope,
        created_at=t,
        expires_at=t + GRANT_LIFETIME,
    )
    result = await conn.execute(
        insert(grants).returning(grants.c.id, sort_by_parameter_order=True), [dict(row) for _ in range(n)]
    )
    return [int(r.id) for r in result.all()]


async def _bulk_codes(conn: AsyncConnection, owner: _Owner, n: int) -> list[str]:
    codes = [crypto.random_token() for _ in range(n)]
    grant_ids = await _bulk_grants(conn, owner, n)
    t = now()
    rows = [
        dict(
            code_hash=crypto.digest(code),
            grant_id=grant_id,
            redirect_uri=REDIRECT_URI,
            code_challenge=None,
            created_at=t,
            expires_at=t + CODE_TTL,
        )
        for code, grant_id in zip(codes, grant_ids, strict=True)
    ]
    await conn.execute(insert(authorization_codes), rows)
    return codes


async def _bulk_refresh(conn: AsyncConnection, owner: _Owner, n: int) -> list[str]:
    values = [crypto.new_credential(crypto.REFRESH_TOKEN_PREFIX) for _ in range(n)]
    grant_ids = await _bulk_grants(conn, owner, n)
    t = now()
    await conn.execute(
        insert(access_tokens),
        [
            dict(
                token_hash=crypto.digest(crypto.new_credential(crypto.ACCESS_TOKEN_PREFIX)),
                grant_id=grant_id,
                scope=owner.scope,
                created_at=t,
                expires_at=t + ACCESS_TTL,
            )
            for grant_id in grant_ids
        ],
    )
    await conn.execute(
        insert(refresh_tokens),
        [
            dict(
                token_hash=crypto.digest(value),
                grant_id=grant_id,
                created_at=t,
                expires_at=min(t + REFRESH_TTL, t + GRANT_LIFETIME),
            )
            for value, grant_id in zip(values, grant_ids, strict=True)
        ],
    )
    return values


FILLER_CHUNK = 100_000  # filler rows per transaction


async def _filler(conn: AsyncConnection, owner: _Owner, n: int) -> None:
    """``n`` more grants, each with a live access token and a live refresh token, generated inside
    the database (a recursive CTE on SQLite, ``generate_series`` on PostgreSQL): the token tables
    at size, for the cost-as-the-work-grows rows. Never handed to wrk; checked against the
    reference rows by ``_same_shape`` like the other batches."""
    sqlite = conn.dialect.name == "sqlite"
    series = (
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < :n) "
        if sqlite
        else "WITH k(i) AS (SELECT generate_series(1, :n)) "
    )
    token = "lower(hex(randomblob(32)))" if sqlite else "md5(random()::text) || md5(random()::text)"
    t = now()
    values = {"n": n, "tenant_id": owner.tenant_id, "client_pk": owner.client_pk, "account_id": owner.account_id}
    values |= {"scope": owner.scope, "t": t, "grant_end": t + GRANT_LIFETIME}
    values |= {"access_end": t + ACCESS_TTL, "refresh_end": t + REFRESH_TTL}
    last = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM grants"))).scalar_one()
    await conn.execute(
        text(
            series + "INSERT INTO grants (tenant_id, client_pk, account_id, scope, created_at, expires_at)"
            " SELECT :tenant_id, :client_pk, :account_id, :scope, :t, :grant_end FROM k"
        ),
        values,
    )
    made = "FROM grants WHERE id > :last"
    await conn.execute(
        text(
            "INSERT INTO access_tokens (token_hash, grant_id, scope, created_at, expires_at)"
            f" SELECT {token}, id, :scope, :t, :access_end {made}"
        ),
        values | {"last": last},
    )
    await conn.execute(
        text(
            "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at)"
            f" SELECT {token}, id, :t, :refresh_end {made}"
        ),
        values | {"last": last},
    )


async def _same_shape(conn: AsyncConnection, table: Table, key: str, first: str, bulk: str) -> None:
    """The batch rows must differ from the store function's row only in keys and times."""
    column = table.c[key]
    rows = [
        (await conn.execute(select(table).where(column == crypto.digest(v)))).one()._asdict() for v in (first, bulk)
    ]
    ignore = {key, "grant_id", "created_at", "expires_at"}
    a, b = ({k: v for k, v in row.items() if k not in ignore} for row in rows)
    if a != b:
        raise AssertionError(f"bench seeding drifted from openxp's store in {table.name}: {a} != {b}")


async def _seed(url: str, out: Path, n_codes: int, n_refresh: int, n_access: int, n_filler: int) -> Seeded:
    db = Database(url, pool_size=1)
    try:
        async with db.write() as conn:
            tenant = await tenant_store.create(conn, TENANT)
            account = await account_store.create(conn, tenant.id, "admin@bench.test", crypto.random_token(), "admin")
            client, secret = await client_store.create(
                conn, tenant_id=tenant.id, name="bench client", redirect_uris=[REDIRECT_URI]
            )
            assert secret is not None
            service, service_secret = await client_store.create(
                conn, tenant_id=tenant.id, name="bench service", redirect_uris=[], grant_types=["client_credentials"]
            )
            assert service_secret is not None
            owner = _Owner(tenant.id, client.id, account.id, scopes.join(client.default_scopes))

            # The reference rows, written exactly as the server writes them.
            code = crypto.random_token()
            await grant_store.store_code(
                conn,
                code_hash=crypto.digest(code),
                grant_id=await _grant(conn, owner),
                redirect_uri=REDIRECT_URI,
                code_challenge=None,
                ttl=CODE_TTL,
            )
            refresh = crypto.new_credential(crypto.REFRESH_TOKEN_PREFIX)
            await _issue(conn, owner, await _grant(conn, owner), refresh)
            grant_id = await _grant(conn, owner)
            accesses = [await _issue(conn, owner, grant_id, None) for _ in range(n_access)]

        codes, refreshes = [code], [refresh]
        for values, n, bulk in ((codes, n_codes, _bulk_codes), (refreshes, n_refresh, _bulk_refresh)):
            while len(values) < n:
                async with db.write() as conn:
                    values += await bulk(conn, owner, min(BATCH, n - len(values)))
        filled = 0
        while filled < n_filler:
            async with db.write() as conn:
                await _filler(conn, owner, min(FILLER_CHUNK, n_filler - filled))
            filled += min(FILLER_CHUNK, n_filler - filled)
        if n_filler:
            async with db.read() as conn:
                stored = (await conn.execute(text("SELECT count(*) FROM access_tokens"))).scalar_one()
            if stored < n_filler:
                raise AssertionError(f"the filler wrote {stored} access tokens, not {n_filler}")
        if not db.is_sqlite:
            # As autovacuum would have by now on a live server (SQLite has no automatic ANALYZE).
            async with db.write() as conn:
                await conn.execute(text("ANALYZE"))
        async with db.read() as conn:
            if len(codes) > 1:
                await _same_shape(conn, authorization_codes, "code_hash", codes[0], codes[1])
            if len(refreshes) > 1:
                await _same_shape(conn, refresh_tokens, "token_hash", refreshes[0], refreshes[1])
    finally:
        await db.dispose()

    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / f"{name}.txt" for name in ("codes", "refresh", "access")}
    for name, values in (("codes", codes), ("refresh", refreshes), ("access", accesses)):
        files[name].write_text("".join(v + "\n" for v in values), encoding="ascii")
    return Seeded(
        TENANT,
        client.client_id,
        secret,
        REDIRECT_URI,
        service.client_id,
        service_secret,
        files["codes"],
        files["refresh"],
        files["access"],
    )


def seed(url: str, out: Path, *, codes: int, refresh: int, access: int = 10, filler: int = 0) -> Seeded:
    """Migrate ``url`` and fill it; returns the client's credentials and the value files.
    ``filler``: that many more grants with an access and a refresh token each, never used."""
    upgrade(url)
    return asyncio.run(_seed(url, out, codes, refresh, access, filler))
