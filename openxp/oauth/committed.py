"""The write transaction of the token, revocation and introspection endpoints.

It is committed whatever the outcome: a spent code, a revoked family or a counted
failure must persist even when the answer is an error. So a protocol refusal
(``OAuthError``) raised inside is held until the commit and raised after it;
anything else (a store error, a bug) rolls back as usual. The security events raised inside
(a replay, a reuse, a lock) are written in the same transaction (``audit_writer.kept_with``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from openxp.audit_writer import kept_with
from openxp.oauth.errors import OAuthError
from openxp.store import Database
from openxp.store.db import Connection


@contextlib.asynccontextmanager
async def write(db: Database) -> AsyncIterator[Connection]:
    refusal: OAuthError | None = None
    async with db.write() as conn, kept_with(conn):
        try:
            yield conn
        except OAuthError as exc:
            refusal = exc
    if refusal is not None:
        raise refusal
